// Delivery acks as the adapter posts them: real Baileys sockets (against a
// loopback server that holds the connection), events driven through the
// socket's own `sock.ev` from recorded payloads (test/fixtures/acks.json) or
// produced by Baileys itself from server nodes fed to its `ws` (`ack` with
// an `error`, receipts), and a stand-in for wapulse that records every
// request. No wapulse binary needed: this is the exact JSON on the wire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateWAMessageFromContent } from 'baileys';
import { createWatcher } from '../src/index.js';
import { ackId } from '../src/watcher.js';
import { fakeWapulse, fakeSocket } from './helpers/fake-server.js';
import { waitFor } from './helpers/wapulse.js';
import { loopbackServer, socket, memoryAuth, fixture, nextUpdate, endQuietly, renumbered } from './helpers/baileys.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const F = fixture('acks.json');
const ID = F.sendAppend.messages[0].key.id; // 3EB0A1B2C3D4E5F6A7B8C9
const GROUP_ID = F.sendGroupAppend.messages[0].key.id;
// Logged in as 5511900001111, set after connecting: with creds.me at connect,
// Baileys would buffer every event until the server's offline batch.
const ME = { id: '5511900001111:3@s.whatsapp.net', lid: '98765432101234:3@lid', name: 'gateway' };

let hold;
let srv;
const sockets = [];
const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  hold = await loopbackServer('hold');
  srv = await fakeWapulse();
});

after(async () => {
  for (const s of sockets) await endQuietly(s);
  await hold?.close();
  await srv?.close();
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejections');
});

/** A watcher that counts the gateway's own sends (`append`), and a real socket it follows. */
async function setup(session, { auth = memoryAuth(), beforeWatch, ...extra } = {}) {
  const errors = [];
  const w = createWatcher({
    url: srv.url,
    session,
    flushIntervalMs: 60000, // nothing is sent before stop(): one look at everything
    messageTypes: ['notify', 'append'],
    logger: null,
    onError: (e, ctx) => errors.push(`${ctx}: ${e.message}`),
    ...extra,
  });
  const sock = socket(hold.url, auth);
  sockets.push(sock);
  beforeWatch?.(sock);
  w.watch(sock);
  await nextUpdate(sock, (u) => u.connection === 'connecting');
  return { w, sock, errors };
}

/** Stops the watcher and returns the message and ack events it posted for its session. */
async function posted(w, errors) {
  const s = await w.stop(2000);
  assert.equal(s.flushed, true);
  assert.deepEqual(errors, []);
  return srv.delivered().filter((e) => e.session === w.session && (e.type === 'message' || e.type === 'ack'));
}

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

const acks = (events) => events.filter((e) => e.type === 'ack');
const strip = ({ at, ...rest }) => {
  assert.match(at, ISO);
  return rest;
};

test('a send then SERVER_ACK, DELIVERY_ACK, READ: one outbound event with the id, then one ack per status, exact JSON', async () => {
  const { w, sock, errors } = await setup('map-flow');
  const t0 = Date.now();
  sock.ev.emit('messages.upsert', F.sendAppend);
  sock.ev.emit('messages.update', F.messagesUpdate.serverAck);
  sock.ev.emit('messages.update', F.messagesUpdate.deliveryAck);
  sock.ev.emit('messages.update', F.messagesUpdate.read);
  sock.ev.emit('messages.update', F.messagesUpdate.read); // repeated: once
  sock.ev.emit('messages.update', F.messagesUpdate.deliveryAck); // after read: nothing
  const ev = await posted(w, errors);
  assert.deepEqual(ev.map(strip), [
    { session: 'map-flow', type: 'message', id: ev[0].id, direction: 'outbound', count: 1, ids: [ID] },
    { session: 'map-flow', type: 'ack', id: `ack:${ID}:server`, message: ID, status: 'server' },
    { session: 'map-flow', type: 'ack', id: `ack:${ID}:delivered`, message: ID, status: 'delivered' },
    { session: 'map-flow', type: 'ack', id: `ack:${ID}:read`, message: ID, status: 'read' },
  ]);
  // the send is timed when Baileys emitted it, before its acks
  const at = ev.map((e) => Date.parse(e.at));
  assert.ok(at[0] >= t0 - 1 && at.every((t) => t >= at[0]), JSON.stringify(ev.map((e) => e.at)));
  assert.match(ev[0].id, /^wb[0-9a-f]{16}-[0-9a-z]+$/);
});

test('PLAYED → played; PENDING and updates without a status → nothing', async () => {
  const { w, sock, errors } = await setup('map-played');
  sock.ev.emit('messages.upsert', F.sendAppend);
  const pending = structuredClone(F.messagesUpdate.serverAck);
  pending[0].update.status = 1;
  sock.ev.emit('messages.update', pending);
  sock.ev.emit('messages.update', F.messagesUpdate.starred);
  sock.ev.emit('messages.update', F.messagesUpdate.played);
  sock.ev.emit('messages.update', F.messagesUpdate.read); // played is final
  const ev = await posted(w, errors);
  assert.deepEqual(acks(ev).map(strip), [{ session: 'map-played', type: 'ack', id: `ack:${ID}:played`, message: ID, status: 'played' }]);
});

test('error acks as Baileys emits them from the server node (handleBadAck): code and detail', async () => {
  const { w, sock, errors } = await setup('map-error');
  const sends = [0x463, 0x479].map((n) => renumbered(F.sendAppend, n));
  for (const s of sends) sock.ev.emit('messages.upsert', s);
  const [id463, id479] = sends.map((s) => s.messages[0].key.id);
  const node = (name, id) => ({ ...F.nodes[name], attrs: { ...F.nodes[name].attrs, id } });
  // Baileys turns each into messages.update status ERROR (0)
  const seen = [];
  sock.ev.on('messages.update', (u) => seen.push(...u));
  sock.ws.emit('CB:ack,class:message', node('errorAck463', id463));
  sock.ws.emit('CB:ack,class:message', node('errorAck479', id479));
  await waitFor(() => seen.length >= 2, { what: "Baileys' messages.update" });
  assert.deepEqual(
    seen.map((u) => [u.key.id, u.key.fromMe, u.update.status, u.update.messageStubParameters]),
    [
      [id463, true, 0, ['463', 'Your account has been restricted']],
      [id479, true, 0, ['479']],
    ],
  );
  // a later error for the same message is not sent again
  sock.ev.emit('messages.update', renumbered(F.messagesUpdate.error463, 0x463));
  const ev = await posted(w, errors);
  assert.deepEqual(acks(ev).map(strip), [
    { session: 'map-error', type: 'ack', id: `ack:${id463}:error`, message: id463, status: 'error', code: '463', detail: 'Your account has been restricted' },
    { session: 'map-error', type: 'ack', id: `ack:${id479}:error`, message: id479, status: 'error', code: '479' },
  ]);
  // an error ack gives no `server` (the hook on the ack node takes plain ones only)
  assert.equal(acks(ev).filter((e) => e.status === 'server').length, 0);
});

test('error parameters that are not a code wapulse takes are kept as detail; a long detail is cut at 1024', async () => {
  const { w, sock, errors } = await setup('map-error-text');
  const u = (n, params) => {
    const x = structuredClone(renumbered(F.messagesUpdate.error463, n));
    x[0].update.messageStubParameters = params;
    return x;
  };
  sock.ev.emit('messages.update', u(1, ['Key used already or never filled']));
  sock.ev.emit('messages.update', u(2, ['131048', 'x'.repeat(3000)]));
  sock.ev.emit('messages.update', u(3, [429]));
  sock.ev.emit('messages.update', u(4, undefined));
  const ev = acks(await posted(w, errors)).map(strip);
  assert.deepEqual(
    ev.map(({ code, detail }) => [code, detail?.length > 100 ? detail.length : detail]),
    [
      [undefined, 'Key used already or never filled'],
      ['131048', 1024],
      ['429', undefined],
      [undefined, undefined],
    ],
  );
});

test('group receipts (message-receipt.update): the highest timestamp present; once per message; our own devices skipped', async () => {
  const auth = memoryAuth();
  const { w, sock, errors } = await setup('map-group', { auth });
  auth.creds.me = ME;
  sock.ev.emit('messages.upsert', F.sendGroupAppend);
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.ownDevice);
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.groupDelivered);
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.groupRead); // two members read it
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.notFromMe);
  const played = renumbered(F.messageReceiptUpdate.groupDelivered, 7);
  played[0].receipt = { userJid: '5511966665555@s.whatsapp.net', receiptTimestamp: 1, readTimestamp: 2, playedTimestamp: 3 };
  sock.ev.emit('message-receipt.update', played);
  const ev = await posted(w, errors);
  assert.deepEqual(ev.filter((e) => e.type === 'message').map((e) => [e.count, e.ids]), [[1, [GROUP_ID]]]);
  const playedId = played[0].key.id;
  // the played one is of a message sent earlier (not gathered here): at once;
  // the others after their send's event
  assert.deepEqual(ev.map(strip), [
    { session: 'map-group', type: 'ack', id: `ack:${playedId}:played`, message: playedId, status: 'played' },
    { session: 'map-group', type: 'message', id: ev[1].id, direction: 'outbound', count: 1, ids: [GROUP_ID] },
    { session: 'map-group', type: 'ack', id: `ack:${GROUP_ID}:delivered`, message: GROUP_ID, status: 'delivered' },
    { session: 'map-group', type: 'ack', id: `ack:${GROUP_ID}:read`, message: GROUP_ID, status: 'read' },
  ]);
});

test('a group receipt node through Baileys (handleReceipt) becomes read', async () => {
  const { w, sock, errors } = await setup('map-group-node');
  sock.ev.emit('messages.upsert', F.sendGroupAppend);
  const got = nextEvent(sock, 'message-receipt.update');
  sock.ws.emit('CB:receipt', F.nodes.groupReceiptRead);
  const [r] = await got;
  assert.deepEqual(r, {
    key: { remoteJid: '120363025246125486@g.us', id: GROUP_ID, fromMe: true, participant: '5511966665555@s.whatsapp.net' },
    receipt: { userJid: '5511966665555@s.whatsapp.net', readTimestamp: 1764021760 },
  });
  const ev = await posted(w, errors);
  assert.deepEqual(acks(ev).map((e) => [e.message, e.status]), [[GROUP_ID, 'read']]);
});

test('updates of messages not from us give no ack', async () => {
  const { w, sock, errors } = await setup('map-not-mine');
  sock.ev.emit('messages.update', F.messagesUpdate.readSelf);
  sock.ev.emit('messages.update', F.messagesUpdate.placeholderResend);
  sock.ev.emit('message-receipt.update', F.messageReceiptUpdate.notFromMe);
  const notMine = structuredClone(F.messagesUpdate.error463);
  notMine[0].key.fromMe = false;
  sock.ev.emit('messages.update', notMine);
  // a read-self receipt node: Baileys makes it a READ of a message not from us
  const seen = nextEvent(sock, 'messages.update');
  sock.ws.emit('CB:receipt', {
    tag: 'receipt',
    attrs: { from: '5511900001111@s.whatsapp.net', recipient: '5511988887777@s.whatsapp.net', id: '3EB0C431C26A1916E07A', t: '1764021800', type: 'read-self' },
  });
  const [u] = await seen;
  assert.equal(u.key.fromMe, false);
  assert.equal(u.update.status, 4);
  const ev = await posted(w, errors);
  assert.deepEqual(ev, []);
});

/**
 * The real socket's sendMessage with its relay left out (no server here):
 * builds the message as Baileys does and, as its sendMessage does with
 * emitOwnEvents, upserts it as `append` on the next tick.
 */
function stubRelay(sock) {
  sock.sendMessage = async (jid, content) => {
    const msg = generateWAMessageFromContent(jid, content, { userJid: ME.id });
    process.nextTick(() => sock.upsertMessage(msg, 'append'));
    return msg;
  };
}

const ackNode = (id, extra = {}) => ({ tag: 'ack', attrs: { class: 'message', id, from: '5511977776666@s.whatsapp.net', t: '1764021701', ...extra } });

test("sendMessage: the send is taken when it resolves; the server's plain ack node → server, even before Baileys' upsert", async () => {
  const auth = memoryAuth();
  const { w, sock, errors } = await setup('map-send', { auth, beforeWatch: stubRelay });
  auth.creds.me = ME;
  const upserted = nextEvent(sock, 'messages.upsert');
  const t0 = Date.now();
  const msg = await sock.sendMessage('5511977776666@s.whatsapp.net', { conversation: 'oi' });
  assert.equal(msg.key.fromMe, true, 'the original result comes back');
  const id = msg.key.id;
  sock.ws.emit('CB:ack,class:message', ackNode(id)); // faster than the upsert
  const up = await upserted; // ~100 ms later (Baileys' buffered upsert)
  assert.equal(up.type, 'append');
  assert.equal(up.messages[0].key.id, id);
  sock.ws.emit('CB:ack,class:message', ackNode(id)); // again: once
  sock.ws.emit('CB:ack,class:message', ackNode('3EB0FFFFFFFFFFFFFFFF01')); // not a send of ours (a peer message)
  const ev = await posted(w, errors);
  assert.deepEqual(
    ev.map((e) => [e.type, e.type === 'message' ? [e.count, e.ids] : e.message, e.status]),
    [
      ['message', [1, [id]], undefined],
      ['ack', id, 'server'],
    ],
  );
  const [sent, acked] = ev.map((e) => Date.parse(e.at));
  assert.ok(sent >= t0 - 1 && acked >= sent, `sent ${ev[0].at}, acked ${ev[1].at}`);
});

test('sendMessage errors reach the gateway unchanged; without `append` counted, sendMessage counts nothing', async () => {
  const failing = (sock) => {
    sock.sendMessage = async () => {
      throw new Error('not connected');
    };
  };
  const a = await setup('map-send-fail', { beforeWatch: failing });
  await assert.rejects(a.sock.sendMessage('5511977776666@s.whatsapp.net', { conversation: 'oi' }), /not connected/);
  assert.deepEqual(await posted(a.w, a.errors), []);

  const auth = memoryAuth();
  const b = await setup('map-send-notify-only', { auth, beforeWatch: stubRelay, messageTypes: ['notify'] });
  auth.creds.me = ME;
  const upserted = nextEvent(b.sock, 'messages.upsert');
  const msg = await b.sock.sendMessage('5511977776666@s.whatsapp.net', { conversation: 'oi' });
  await upserted;
  b.sock.ws.emit('CB:ack,class:message', ackNode(msg.key.id));
  assert.deepEqual(await posted(b.w, b.errors), []);
});

test("an `append` upsert alone (no sendMessage): the server's ack node after it → server", async () => {
  const auth = memoryAuth();
  const { w, sock, errors } = await setup('map-server-node', { auth });
  auth.creds.me = ME;
  const msg = generateWAMessageFromContent('5511977776666@s.whatsapp.net', { conversation: 'oi' }, { userJid: ME.id });
  const id = msg.key.id;
  const upserted = nextEvent(sock, 'messages.upsert');
  await sock.upsertMessage(msg, 'append');
  await upserted;
  sock.ws.emit('CB:ack,class:message', ackNode(id));
  const ev = await posted(w, errors);
  assert.deepEqual(
    ev.map((e) => [e.type, e.ids ?? e.message, e.status]),
    [
      ['message', [id], undefined],
      ['ack', id, 'server'],
    ],
  );
});

test('sends are aggregated per flush with their ids; acks of gathered sends follow their event', async () => {
  const { w, sock, errors } = await setup('map-aggregate');
  const batch = (from, n) => ({
    type: 'append',
    messages: Array.from({ length: n }, (_, i) => renumbered(F.sendAppend, from + i).messages[0]),
  });
  sock.ev.emit('messages.upsert', batch(0, 3));
  sock.ev.emit('messages.upsert', batch(0, 1)); // the same message again: once
  sock.ev.emit('messages.upsert', { type: 'append', messages: [{ key: { remoteJid: '5511977776666@s.whatsapp.net', fromMe: true } }] }); // no id: counted
  sock.ev.emit('messages.upsert', fixture('messages-upsert.json').notifyInbound);
  const first = batch(0, 1).messages[0].key.id;
  sock.ev.emit('messages.update', renumbered(F.messagesUpdate.serverAck, 0)); // waits for its send's event
  sock.ev.emit('messages.upsert', batch(100, 2));
  sock.ev.emit('messages.update', renumbered(F.messagesUpdate.deliveryAck, 0x9999)); // not gathered: queued at once
  const ev = await posted(w, errors);
  assert.deepEqual(
    ev.map((e) => (e.type === 'message' ? [e.direction, e.count, e.ids?.length ?? 0] : [e.type, e.message])),
    [
      ['ack', renumbered(F.messagesUpdate.deliveryAck, 0x9999)[0].key.id],
      ['inbound', 3, 0],
      ['outbound', 6, 5],
      ['ack', first],
    ],
  );
});

test("acks merged into the send's upsert by Baileys' event buffer (an ack within ~100 ms of the send) are taken from its status", async () => {
  // error 463 right after the send: Baileys never emits messages.update for
  // it, the `append` upsert carries it; taken even when `append` is not
  // counted (the default), for the restriction it tells of
  const auth = memoryAuth();
  const { w, sock, errors } = await setup('map-merged-error', { auth, messageTypes: ['notify'] });
  auth.creds.me = ME;
  const jid = '5511977776666@s.whatsapp.net';
  const msg = generateWAMessageFromContent(jid, { conversation: 'oi' }, { userJid: ME.id });
  const updates = [];
  sock.ev.on('messages.update', (u) => updates.push(u));
  const upserted = nextEvent(sock, 'messages.upsert');
  process.nextTick(() => sock.upsertMessage(msg, 'append')); // as sendMessage does
  await new Promise((r) => setTimeout(r, 20));
  sock.ws.emit('CB:ack,class:message', { ...F.nodes.errorAck463, attrs: { ...F.nodes.errorAck463.attrs, id: msg.key.id } });
  const up = await upserted;
  assert.equal(up.messages[0].status, 0);
  assert.deepEqual(up.messages[0].messageStubParameters, ['463', 'Your account has been restricted']);
  assert.deepEqual(updates, [], 'no messages.update');
  const ev = await posted(w, errors);
  assert.deepEqual(ev.map(strip), [
    { session: 'map-merged-error', type: 'ack', id: `ack:${msg.key.id}:error`, message: msg.key.id, status: 'error', code: '463', detail: 'Your account has been restricted' },
  ]);

  // a delivery receipt within the window, `append` counted: the send, then delivered
  const auth2 = memoryAuth();
  const b = await setup('map-merged-delivered', { auth: auth2 });
  auth2.creds.me = ME;
  const msg2 = generateWAMessageFromContent(jid, { conversation: 'oi' }, { userJid: ME.id });
  const upserted2 = nextEvent(b.sock, 'messages.upsert');
  process.nextTick(() => b.sock.upsertMessage(msg2, 'append'));
  await new Promise((r) => setTimeout(r, 20));
  b.sock.ws.emit('CB:receipt', { ...F.nodes.receiptDelivered, attrs: { ...F.nodes.receiptDelivered.attrs, id: msg2.key.id } });
  assert.equal((await upserted2).messages[0].status, 3);
  const ev2 = await posted(b.w, b.errors);
  assert.deepEqual(
    ev2.map((e) => [e.type, e.ids ?? e.message, e.status]),
    [
      ['message', [msg2.key.id], undefined],
      ['ack', msg2.key.id, 'delivered'],
    ],
  );
});

test('our messages from another device (notify, status SERVER_ACK as Baileys decodes them) → server after their send', async () => {
  const { w, sock, errors } = await setup('map-other-device', { messageTypes: ['notify'] });
  const up = fixture('messages-upsert.json');
  sock.ev.emit('messages.upsert', up.notifyOutbound);
  sock.ev.emit('messages.upsert', up.append); // not counted, status PENDING: nothing
  const ids = up.notifyOutbound.messages.map((m) => m.key.id);
  const ev = await posted(w, errors);
  assert.deepEqual(
    ev.map((e) => [e.type, e.ids ?? e.message, e.status]),
    [['message', ids, undefined], ...ids.map((id) => ['ack', id, 'server'])],
  );
});

test('more than 1000 sends before a flush: events of at most 1000 ids, every message counted', async () => {
  const { w, sock, errors } = await setup('map-many');
  const n = 2500;
  for (let i = 0; i < n; i += 500) {
    sock.ev.emit('messages.upsert', {
      type: 'append',
      messages: Array.from({ length: 500 }, (_, j) => ({ key: { remoteJid: '5511977776666@s.whatsapp.net', fromMe: true, id: `3EB0${(i + j).toString(16).toUpperCase().padStart(18, '0')}` } })),
    });
  }
  const ev = await posted(w, errors);
  const out = ev.filter((e) => e.type === 'message');
  assert.deepEqual(out.map((e) => [e.count, e.ids.length]), [
    [1000, 1000],
    [1000, 1000],
    [500, 500],
  ]);
  assert.equal(new Set(out.flatMap((e) => e.ids)).size, n);
});

test('ack ids: stable per message and status, within 256 characters', () => {
  assert.equal(ackId('3EB0A1B2C3D4E5F6A7B8C9', 'read'), 'ack:3EB0A1B2C3D4E5F6A7B8C9:read');
  const long = 'X'.repeat(256);
  const a = ackId(long, 'delivered');
  assert.ok(a.length <= 256, a);
  assert.equal(a, ackId(long, 'delivered'));
  assert.notEqual(a, ackId(long, 'read'));
  assert.notEqual(a, ackId('Y'.repeat(256), 'delivered'));
});

test('garbage payloads never throw into the bot', async () => {
  const { w, sock, errors } = await setup('map-garbage');
  for (const bad of [null, 3, 'x', {}, [null], [{ key: null }], [{ key: { fromMe: true, id: 5 }, update: { status: 3 } }], [{ key: { fromMe: true, id: 'a' }, update: null }]]) {
    sock.ev.emit('messages.update', bad);
    sock.ev.emit('message-receipt.update', bad);
  }
  for (const bad of [{}, { attrs: {} }, { attrs: { class: 'message', id: 7 } }]) sock.ws.emit('CB:ack,class:message', bad);
  sock.ev.emit('message-receipt.update', [{ key: { fromMe: true, id: 'b' }, receipt: 'read' }]);
  const ev = await posted(w, errors);
  assert.deepEqual(ev, []);
});

test('stop() detaches: ack listeners gone, sendMessage given back', async () => {
  const sock = fakeSocket();
  const send = async () => ({ key: { remoteJid: '5511977776666@s.whatsapp.net', fromMe: true, id: '3EB0A1B2C3D4E5F6A7B8C9' } });
  sock.sendMessage = send;
  const w = createWatcher({ url: srv.url, session: 'map-detach', flushIntervalMs: 60000, messageTypes: ['append'], logger: null }).watch(sock);
  assert.notEqual(sock.sendMessage, send);
  await sock.sendMessage('5511977776666@s.whatsapp.net', { conversation: 'oi' });
  sock.ev.emit('messages.update', F.messagesUpdate.deliveryAck);
  await w.stop(1000);
  assert.equal(sock.sendMessage, send);
  for (const e of ['messages.upsert', 'messages.update', 'message-receipt.update', 'connection.update']) assert.equal(sock.ev.listenerCount(e), 0, e);
  assert.equal(sock.ws.listenerCount('CB:ack,class:message'), 0);
  assert.deepEqual(
    srv.delivered().filter((e) => e.session === 'map-detach').map((e) => [e.type, e.ids ?? e.status]),
    [
      ['message', ['3EB0A1B2C3D4E5F6A7B8C9']],
      ['ack', 'delivered'],
    ],
  );
});
