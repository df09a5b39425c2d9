// A real whatsapp-web.js Client (never initialized: WhatsApp Web cannot be
// reached here) whose own EventEmitter carries the events, with real
// `Message` objects, into a real wapulse; the assertions read what wapulse
// shows: /sessions/{id}/observe, /sessions/{id}/alerts and the journal.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { newClient, message, WAState, MessageAck } from './helpers/wwebjs.js';

let wapulse;
const watchers = [];

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
});

after(async () => {
  for (const w of watchers) await w.stop(1000);
  await wapulse?.stop();
});

function watcher(session, extra = {}) {
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, keepAliveIntervalMs: 0, logger: null, ...extra });
  watchers.push(w);
  return w;
}

function watched(session, extra) {
  const client = newClient();
  const w = watcher(session, extra).watch(client);
  return { client, w };
}

const stateList = (journal) =>
  journal.filter((e) => e.type === 'state').map((e) => (e.reason === undefined || e.reason === null ? e.state : `${e.state}:${e.reason}`));

async function observeWhen(session, pred, what) {
  return waitFor(
    async () => {
      const o = await wapulse.observe(session);
      return o && pred(o) ? o : null;
    },
    { what, timeoutMs: 10000 },
  );
}

const alertCodes = async (session) => (await wapulse.alerts(session)).alerts.map((a) => a.code);

test('qr → QR_REQUIRED; authenticated after it → auth qr_scan; ready → connected; inbound and outbound counted exactly', async () => {
  const session = 'ww-pair';
  const { client, w } = watched(session);
  client.emit('qr', '2@AbC,dEf,gHi=,1');
  await observeWhen(session, (o) => o.session.state === 'qr_required', 'qr_required');
  assert.ok((await alertCodes(session)).includes('QR_REQUIRED'));
  client.emit('loading_screen', 100, 'WhatsApp');
  client.emit('authenticated');
  client.emit('ready');
  for (let i = 0; i < 5; i++) {
    const m = await message(client, i % 2 ? 'inboundGroup' : 'inbound', i);
    client.emit('message_create', m);
    client.emit('message', m);
  }
  for (let i = 0; i < 3; i++) client.emit('message_create', await message(client, 'outbound', i));
  const o = await observeWhen(session, (o) => o.session.state === 'connected' && o.messages.inbound === 5 && o.messages.outbound === 3, 'connected with the counts');
  assert.equal(o.session.authMethod, 'qr_scan');
  assert.equal(o.session.initSuccessful, true);
  assert.deepEqual(await alertCodes(session), []);
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'qr_required', 'connected']);
});

test('message_ack of sends → delivery: sent, serverAcked, delivered, read; an ack resent by another client counts once', async () => {
  const session = 'ww-acks';
  const { client, w } = watched(session);
  client.emit('authenticated');
  client.emit('ready');
  const sends = [];
  for (let i = 0; i < 3; i++) {
    const m = await message(client, 'outbound', i);
    sends.push(m);
    client.emit('message_create', m);
  }
  await observeWhen(session, (o) => o.delivery.sent === 3, 'three sends followed');
  for (const m of sends) client.emit('message_ack', m, MessageAck.ACK_SERVER);
  client.emit('message_ack', sends[0], MessageAck.ACK_DEVICE);
  client.emit('message_ack', sends[0], MessageAck.ACK_READ);
  client.emit('message_ack', sends[1], MessageAck.ACK_DEVICE);
  client.emit('message_ack', sends[2], MessageAck.ACK_PENDING); // nothing
  const o = await observeWhen(session, (o) => o.delivery.serverAcked === 3 && o.delivery.read === 1, 'the acks');
  assert.equal(o.delivery.sent, 3);
  assert.equal(o.delivery.delivered, 2); // read counts as delivered too
  assert.equal(o.delivery.failed, 0);
  assert.equal(o.delivery.pending, 0);
  // the same ack from another watcher (another process after a restart):
  // same id, applied once
  const again = watched(session);
  again.client.emit('message_ack', sends[0], MessageAck.ACK_READ);
  const s = await again.w.stop(2000);
  assert.equal(s.duplicates, 1);
  const after = await wapulse.observe(session);
  assert.equal(after.delivery.read, 1);
  await w.stop(2000);
});

test('CONFLICT (change_state and disconnected), twice across two Clients → 440 twice → SESSION_CONFLICT; the next Client reconnects', async () => {
  const session = 'ww-conflict';
  const w = watcher(session);
  for (let round = 0; round < 2; round++) {
    const client = newClient();
    w.watch(client);
    client.emit('authenticated');
    client.emit('ready');
    client.emit('change_state', WAState.CONFLICT);
    client.emit('disconnected', WAState.CONFLICT);
  }
  const o = await observeWhen(session, (o) => o.session.conflicts.recent === 2, 'two conflicts');
  assert.equal(o.session.lastDisconnect.code, 440);
  assert.equal(o.session.lastDisconnect.name, 'connection_replaced');
  const alerts = await wapulse.alerts(session);
  assert.deepEqual(alerts.alerts.filter((a) => a.code === 'SESSION_CONFLICT').map((a) => a.level), ['warning']);
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'disconnected:440', 'reconnecting', 'connected', 'disconnected:440']);
});

test('UNPAIRED (unlinked from the phone) → logged_out, LOGGED_OUT; LOGOUT too', async () => {
  const session = 'ww-unpaired';
  const { client, w } = watched(session);
  client.emit('authenticated');
  client.emit('ready');
  client.emit('change_state', WAState.UNPAIRED);
  client.emit('disconnected', WAState.UNPAIRED);
  const o = await observeWhen(session, (o) => o.session.state === 'logged_out', 'logged_out');
  assert.equal(o.session.stateReason, 'UNPAIRED');
  assert.ok((await alertCodes(session)).includes('LOGGED_OUT'));
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'logged_out:UNPAIRED']);

  const s2 = 'ww-logout';
  const b = watched(s2);
  b.client.emit('ready');
  b.client.emit('disconnected', 'LOGOUT');
  const o2 = await observeWhen(s2, (o) => o.session.state === 'logged_out', 'logged_out');
  assert.equal(o2.session.lastDisconnect.code, 401); // wapulse reads LOGOUT as 401
  await b.w.stop(2000);
});

test('OPENING after connected → reconnecting, CONNECTED → connected: one reconnect attempt counted; TIMEOUT is a disconnect', async () => {
  const session = 'ww-reconnect';
  const { client, w } = watched(session);
  client.emit('ready');
  client.emit('change_state', WAState.TIMEOUT);
  client.emit('change_state', WAState.OPENING);
  client.emit('change_state', WAState.PAIRING);
  await observeWhen(session, (o) => o.session.state === 'reconnecting', 'reconnecting');
  client.emit('change_state', WAState.CONNECTED);
  const o = await observeWhen(session, (o) => o.session.state === 'connected' && o.reconnect.completed >= 1, 'connected again');
  assert.equal(o.reconnect.totalAttempts, 1);
  assert.equal(o.session.lastDisconnect.code, 'TIMEOUT');
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'disconnected:TIMEOUT', 'reconnecting', 'connected']);
});

test('a loading screen with no ready → disconnected loading_screen_stuck, named in lastDisconnect', async () => {
  const session = 'ww-stuck';
  const { client, w } = watched(session, { loadingTimeoutMs: 300 });
  client.emit('authenticated');
  client.emit('loading_screen', 99, 'WhatsApp');
  client.emit('loading_screen', 100, 'WhatsApp');
  const o = await observeWhen(session, (o) => o.session.state === 'disconnected', 'disconnected');
  assert.equal(o.session.stateReason, 'loading_screen_stuck');
  assert.equal(o.session.lastDisconnect.code, 'loading_screen_stuck');
  await w.stop(2000);
});

test('auth_failure → logged_out auth_failure; the retry whatsapp-web.js makes (initialize again) → connecting', async () => {
  const session = 'ww-authfail';
  // a Client whose Chromium is missing: its initialize() really runs, and fails
  const client = newClient({ puppeteer: { executablePath: '/nonexistent/chromium' } });
  const w = watcher(session).watch(client);
  client.emit('auth_failure', 'Unable to log in. Are the session details valid?');
  await observeWhen(session, (o) => o.session.state === 'logged_out', 'logged_out');
  await assert.rejects(client.initialize(), /Browser was not found/);
  await observeWhen(session, (o) => o.session.state === 'disconnected', 'the failed start');
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)).slice(0, 3), ['connecting', 'logged_out:auth_failure', 'connecting']);
});
