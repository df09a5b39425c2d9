// Delivery acks end to end: real Baileys sockets (makeWASocket against a
// loopback server that holds the connection), events driven through the
// socket's own `sock.ev` from recorded payloads (test/fixtures/acks.json) or
// made by Baileys itself from server nodes fed to its `ws`, and a real
// wapulse, read back through /sessions/{id}/observe (`delivery`) and the
// session journal.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateWAMessageFromContent } from 'baileys';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { loopbackServer, socket, memoryAuth, fixture, nextUpdate, endQuietly, renumbered } from './helpers/baileys.js';

const F = fixture('acks.json');
const ID = F.sendAppend.messages[0].key.id;
const GROUP_ID = F.sendGroupAppend.messages[0].key.id;
const ME = { id: '5511900001111:3@s.whatsapp.net', lid: '98765432101234:3@lid', name: 'gateway' };

let wapulse;
let hold;
const sockets = [];
const watchers = [];

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
  hold = await loopbackServer('hold');
});

after(async () => {
  for (const w of watchers) await w.stop(1000);
  for (const s of sockets) await endQuietly(s);
  await hold?.close();
  await wapulse?.stop();
});

/** A watcher counting the gateway's own sends (`append`) and a real socket it follows. */
async function connect(session, { auth = memoryAuth(), beforeWatch, ...extra } = {}) {
  const errors = [];
  const w = createWatcher({
    url: wapulse.url,
    token: TOKEN,
    session,
    flushIntervalMs: 50,
    messageTypes: ['notify', 'append'],
    logger: null,
    onError: (e, ctx) => errors.push(`${ctx}: ${e.message}`),
    ...extra,
  });
  watchers.push(w);
  const sock = socket(hold.url, auth);
  sockets.push(sock);
  beforeWatch?.(sock);
  w.watch(sock);
  await nextUpdate(sock, (u) => u.connection === 'connecting');
  sock.ev.emit('connection.update', fixture('connection-open.json'));
  return { w, sock, errors };
}

async function observeWhen(session, pred, what) {
  return waitFor(
    async () => {
      const o = await wapulse.observe(session);
      return o && pred(o) ? o : null;
    },
    { what, timeoutMs: 10000 },
  );
}

/** The delivery counts of an observe, in one comparable object. */
const counts = (d) => ({ sent: d.sent, serverAcked: d.serverAcked, delivered: d.delivered, read: d.read, failed: d.failed, pending: d.pending });

/** Resolves once Baileys emitted `event` on sock.ev. */
function nextEvent(sock, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event}`)), timeoutMs);
    sock.ev.on(event, function on(x) {
      clearTimeout(t);
      sock.ev.off(event, on);
      resolve(x);
    });
  });
}

test('a send, then SERVER_ACK, DELIVERY_ACK, READ → sent, serverAcked, delivered, read 1, pending 0; a resent ack counts once', async () => {
  const session = 'ack-flow';
  const { w, sock, errors } = await connect(session);
  sock.ev.emit('messages.upsert', F.sendAppend);
  const o1 = await observeWhen(session, (o) => o.delivery.sent === 1, 'the send');
  assert.deepEqual(counts(o1.delivery), { sent: 1, serverAcked: 0, delivered: 0, read: 0, failed: 0, pending: 1 });
  assert.equal(typeof o1.delivery.oldestPendingAge, 'number');

  sock.ev.emit('messages.update', F.messagesUpdate.serverAck);
  await observeWhen(session, (o) => o.delivery.serverAcked === 1, 'the server ack');
  sock.ev.emit('messages.update', F.messagesUpdate.deliveryAck);
  sock.ev.emit('messages.update', F.messagesUpdate.read);
  const o = await observeWhen(session, (o) => o.delivery.read === 1, 'the read');
  assert.deepEqual(counts(o.delivery), { sent: 1, serverAcked: 1, delivered: 1, read: 1, failed: 0, pending: 0 });
  assert.equal(o.delivery.oldestPendingAge, null);
  assert.ok(o.delivery.timeToServer, 'a time to server');
  assert.ok(o.delivery.timeToDelivered, 'a time to delivered');
  assert.equal(o.delivery.restriction, null);
  assert.equal(o.messages.outbound, 1);

  const journal = await wapulse.journal(session);
  assert.deepEqual(
    journal.filter((e) => e.type === 'ack').map((e) => [e.id, e.message, e.status]),
    [
      [`ack:${ID}:server`, ID, 'server'],
      [`ack:${ID}:delivered`, ID, 'delivered'],
      [`ack:${ID}:read`, ID, 'read'],
    ],
  );
  assert.deepEqual(journal.filter((e) => e.type === 'message').map((e) => [e.direction, e.count, e.ids]), [['outbound', 1, [ID]]]);

  // the same acks from another client (a restarted gateway: new event id
  // prefix, nothing remembered): same ids, wapulse counts them once
  const again = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 60000, logger: null });
  const s2 = socket(hold.url);
  sockets.push(s2);
  again.watch(s2);
  await nextUpdate(s2, (u) => u.connection === 'connecting');
  s2.ev.emit('messages.update', F.messagesUpdate.deliveryAck);
  s2.ev.emit('messages.update', F.messagesUpdate.read);
  const st = await again.stop(5000);
  assert.equal(st.flushed, true);
  assert.ok(st.duplicates >= 2, `duplicates acknowledged: ${st.duplicates}`);
  const o2 = await wapulse.observe(session);
  assert.deepEqual(counts(o2.delivery), counts(o.delivery));
  assert.deepEqual(errors, []);
  await w.stop(1000);
});

test("an error ack (the server's ack node with error 463, turned by Baileys into messages.update ERROR) → failed 1, errorsByCode 463, restriction 463", async () => {
  const session = 'ack-error-463';
  const { sock, errors } = await connect(session);
  sock.ev.emit('messages.upsert', F.sendAppend);
  await observeWhen(session, (o) => o.delivery.sent === 1, 'the send');
  const seen = nextEvent(sock, 'messages.update');
  sock.ws.emit('CB:ack,class:message', F.nodes.errorAck463);
  const [u] = await seen;
  assert.deepEqual(u, F.messagesUpdate.error463[0], 'Baileys emits the recorded shape');
  const o = await observeWhen(session, (o) => o.delivery.failed === 1, 'the failure');
  assert.deepEqual(counts(o.delivery), { sent: 1, serverAcked: 0, delivered: 0, read: 0, failed: 1, pending: 0 });
  assert.deepEqual(o.delivery.errorsByCode, { 463: 1 });
  assert.equal(o.delivery.errorsByCode['463'], 1);
  assert.equal(typeof o.delivery.lastErrorAt, 'string');
  assert.equal(o.delivery.restriction.code, '463');
  assert.equal(o.delivery.restriction.kind, 'reachout_timelock');
  const journal = await wapulse.journal(session);
  const [ack] = journal.filter((e) => e.type === 'ack');
  assert.deepEqual(
    { id: ack.id, message: ack.message, status: ack.status, code: ack.code, detail: ack.detail },
    { id: `ack:${ID}:error`, message: ID, status: 'error', code: '463', detail: 'Your account has been restricted' },
  );
  assert.deepEqual(errors, []);
});

test('a group receipt (message-receipt.update) with readTimestamp for a sent id counts as read', async () => {
  const session = 'ack-group-read';
  const { sock, errors } = await connect(session);
  sock.ev.emit('messages.upsert', F.sendGroupAppend);
  await observeWhen(session, (o) => o.delivery.sent === 1, 'the send');
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.groupRead); // two members: one read
  const o = await observeWhen(session, (o) => o.delivery.read === 1, 'the read');
  assert.deepEqual(counts(o.delivery), { sent: 1, serverAcked: 1, delivered: 1, read: 1, failed: 0, pending: 0 });
  const journal = await wapulse.journal(session);
  assert.deepEqual(journal.filter((e) => e.type === 'ack').map((e) => [e.message, e.status]), [[GROUP_ID, 'read']]);
  assert.deepEqual(errors, []);
});

test('updates of messages not from us produce no ack', async () => {
  const session = 'ack-not-mine';
  const { w, sock, errors } = await connect(session);
  sock.ev.emit('messages.upsert', fixture('messages-upsert.json').notifyInbound);
  sock.ev.emit('messages.update', F.messagesUpdate.readSelf);
  sock.ev.emit('messages.update', F.messagesUpdate.placeholderResend);
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.notFromMe);
  const notMine = structuredClone(F.messagesUpdate.deliveryAck);
  notMine[0].key.fromMe = false;
  sock.ev.emit('messages.update', notMine);
  // our other device read a message sent to us: Baileys' READ, fromMe false
  const seen = nextEvent(sock, 'messages.update');
  sock.ws.emit('CB:receipt', {
    tag: 'receipt',
    attrs: { from: '5511900001111@s.whatsapp.net', recipient: '5511988887777@s.whatsapp.net', id: '3EB0C431C26A1916E07A', t: '1764021800', type: 'read-self' },
  });
  assert.equal((await seen)[0].key.fromMe, false);
  w.validation(true, 'marker'); // everything before it has reached wapulse once it has
  const o = await observeWhen(session, (o) => o.integrity.lastCheckAt && o.messages.inbound === 3, 'the marker');
  assert.deepEqual(counts(o.delivery), { sent: 0, serverAcked: 0, delivered: 0, read: 0, failed: 0, pending: 0 });
  assert.deepEqual(o.delivery.errorsByCode, {});
  const journal = await wapulse.journal(session);
  assert.deepEqual(journal.filter((e) => e.type === 'ack'), []);
  assert.deepEqual(errors, []);
});

test("Baileys' own path: sendMessage, the server's ack node, delivery and read receipt nodes → server, delivered, read, with times", async () => {
  const session = 'ack-real-path';
  const auth = memoryAuth();
  // the real socket's sendMessage without its relay (no server here): the
  // message as Baileys builds it, upserted as `append` on the next tick
  const stubRelay = (sock) => {
    sock.sendMessage = async (jid, content) => {
      const msg = generateWAMessageFromContent(jid, content, { userJid: ME.id });
      process.nextTick(() => sock.upsertMessage(msg, 'append'));
      return msg;
    };
  };
  const { sock, errors } = await connect(session, { auth, beforeWatch: stubRelay });
  auth.creds.me = ME; // logged in (after connecting: no initial event buffering)
  const jid = '5511977776666@s.whatsapp.net';
  const upserted = nextEvent(sock, 'messages.upsert');
  const msg = await sock.sendMessage(jid, { conversation: 'seu pedido saiu para entrega' });
  const id = msg.key.id;
  // 30 ms by the clock the adapter stamps with (a timer alone may fire a
  // little early against Date.now() on a busy loop)
  const sentAt = Date.now();
  do await new Promise((r) => setTimeout(r, 5));
  while (Date.now() - sentAt < 30);
  // the server's ack, before Baileys' own upsert of the send (~100 ms)
  sock.ws.emit('CB:ack,class:message', { tag: 'ack', attrs: { class: 'message', id, from: jid, t: String(Math.floor(Date.now() / 1000)) } });
  await upserted;
  await observeWhen(session, (o) => o.delivery.serverAcked === 1, 'the server ack');
  for (const type of [undefined, 'read']) {
    const seen = nextEvent(sock, 'messages.update');
    sock.ws.emit('CB:receipt', { tag: 'receipt', attrs: { from: jid, id, t: String(Math.floor(Date.now() / 1000)), ...(type ? { type } : {}) } });
    const [u] = await seen;
    assert.equal(u.key.id, id);
    assert.equal(u.update.status, type ? 4 : 3);
  }
  const o = await observeWhen(session, (o) => o.delivery.read === 1, 'the read');
  assert.deepEqual(counts(o.delivery), { sent: 1, serverAcked: 1, delivered: 1, read: 1, failed: 0, pending: 0 });
  assert.ok(o.delivery.timeToServer.p50 >= 25, `time to server ${JSON.stringify(o.delivery.timeToServer)}`);
  assert.ok(o.delivery.timeToDelivered.p50 >= o.delivery.timeToServer.p50);
  assert.equal(o.messages.outbound, 1, 'sendMessage and its upsert are one message');
  assert.deepEqual(errors, []);
});
