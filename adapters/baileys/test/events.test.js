// Real Baileys sockets (makeWASocket against a loopback server that holds the
// connection open), with the events past the Noise handshake driven through
// the socket's own `sock.ev` emitter from recorded payloads (test/fixtures),
// and closes produced by Baileys itself (stream errors fed to its `ws`, a real
// logout()). A real wapulse receives what the adapter sends.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { loopbackServer, socket, memoryAuth, fixture, nextUpdate, endQuietly, renumbered } from './helpers/baileys.js';

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

function watcher(session, extra = {}) {
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, pingTimeoutMs: 200, logger: null, ...extra });
  watchers.push(w);
  return w;
}

/** makeWASocket + watch, and the `connecting` Baileys emits on its own. */
async function connect(w, auth = memoryAuth()) {
  const sock = socket(hold.url, auth);
  sockets.push(sock);
  w.watch(sock);
  await nextUpdate(sock, (u) => u.connection === 'connecting');
  return sock;
}

const stateList = (journal) =>
  journal.filter((e) => e.type === 'state').map((e) => (e.reason === undefined ? e.state : `${e.state}:${e.reason}`));

async function observeWhen(session, pred, what) {
  return waitFor(
    async () => {
      const o = await wapulse.observe(session);
      return o && pred(o) ? o : null;
    },
    { what, timeoutMs: 10000 },
  );
}

test('open → connected + session_restore; messages counted exactly; saveCreds → credentials_written; frames → heartbeat; replaced → 440', async () => {
  const session = 'ev-restore';
  const w = watcher(session, { store: 'postgres' });
  const sock = await connect(w);
  let saves = 0;
  sock.ev.on(
    'creds.update',
    w.wrapSaveCreds(async () => {
      saves++;
    }),
  );

  sock.ev.emit('connection.update', fixture('connection-open.json'));
  const up = fixture('messages-upsert.json');
  for (let i = 0; i < 4; i++) sock.ev.emit('messages.upsert', up.notifyInbound); // 3 each
  for (let i = 0; i < 3; i++) sock.ev.emit('messages.upsert', renumbered(up.notifyOutbound, i)); // 2 new sends each
  sock.ev.emit('messages.upsert', up.append); // not counted
  sock.ev.emit('connection.update', fixture('connection-pending-notifications.json'));
  sock.ev.emit('creds.update', fixture('creds-update.json'));
  await waitFor(() => saves === 1, { what: 'saveCreds' });
  // inbound frames on the real ws: one heartbeat for the burst (the ping gets
  // no answer from this server: no RTT)
  for (let i = 0; i < 20; i++) sock.ws.emit('frame', { tag: 'ib', attrs: {}, content: undefined });

  const o = await observeWhen(session, (o) => o.heartbeat.count === 1 && o.messages.inbound > 0 && o.auth.lastCredentialWriteAt, 'everything applied');
  assert.equal(o.session.state, 'connected');
  assert.equal(o.session.authMethod, 'session_restore');
  assert.equal(o.auth.method, 'session_restore');
  assert.equal(o.messages.inbound, 12);
  assert.equal(o.messages.outbound, 6);
  assert.equal(o.auth.credentialStore, 'postgres');
  assert.equal(o.heartbeat.count, 1);
  assert.equal(o.heartbeat.lastRttMs, null);
  assert.equal(o.reconnect.totalAttempts, 0);

  // the peer replaced us: Baileys turns the stream error into close 440
  const closed = nextUpdate(sock, (u) => u.connection === 'close');
  sock.ws.emit('CB:stream:error', fixture('stream-error-replaced.json'));
  const u = await closed;
  assert.equal(u.lastDisconnect.error.output.statusCode, 440);
  const o2 = await observeWhen(session, (o) => o.session.state === 'disconnected', 'disconnected');
  assert.equal(String(o2.session.stateReason), '440');
  if (o2.session.conflicts) assert.equal(o2.session.conflicts.total, 1, 'one replaced connection, one conflict');

  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), ['connecting', 'connected', 'disconnected:440']);
  // aggregated: one message event per direction, not one per upsert
  assert.deepEqual(
    journal.filter((e) => e.type === 'message').map((e) => [e.direction, e.count]),
    [
      ['inbound', 12],
      ['outbound', 6],
    ],
  );
  assert.equal(new Set(journal.map((e) => e.id)).size, journal.length, 'every event has its own id');
});

test('qr → qr_required; isNewLogin → auth qr_scan; restart 515 → the next socket reconnects and opens without session_restore', async () => {
  const session = 'ev-qr';
  const w = watcher(session);
  const auth = memoryAuth();
  let next = null;
  const a = await connect(w, auth);
  a.ev.on('connection.update', (u) => {
    // the gateway's loop: a new socket when the server asks for a restart
    if (u.connection === 'close') next = connect(w, auth);
  });
  for (const q of fixture('connection-qr.json')) a.ev.emit('connection.update', q);
  await observeWhen(session, (o) => o.session.state === 'qr_required', 'qr_required');
  a.ev.emit('creds.update', fixture('creds-update.json'));
  a.ev.emit('connection.update', fixture('connection-new-login.json'));
  await observeWhen(session, (o) => o.auth.method === 'qr_scan', 'auth qr_scan');

  a.ws.emit('CB:stream:error', fixture('stream-error-restart-required.json'));
  await waitFor(() => next, { what: 'the next socket' });
  const b = await next;
  b.ev.emit('connection.update', fixture('connection-open.json'));
  const o = await observeWhen(session, (o) => o.session.state === 'connected', 'connected');
  assert.equal(o.session.authMethod, 'qr_scan');
  assert.equal(o.reconnect.completed, 1);
  assert.equal(o.reconnect.attempts, 0, 'connected resets the attempts');

  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), ['connecting', 'qr_required', 'disconnected:515', 'reconnecting', 'connected']);
  assert.deepEqual(journal.filter((e) => e.type === 'auth').map((e) => e.method), ['qr_scan']);
});

test('logout → logged_out with reason 401; the next socket is a new `connecting`, not a reconnect', async () => {
  const session = 'ev-logout';
  const w = watcher(session);
  const a = await connect(w);
  a.ev.emit('connection.update', fixture('connection-open.json'));
  const closed = nextUpdate(a, (u) => u.connection === 'close');
  await a.logout(); // real Baileys: close with DisconnectReason.loggedOut
  assert.equal((await closed).lastDisconnect.error.output.statusCode, 401);
  const o = await observeWhen(session, (o) => o.session.state === 'logged_out', 'logged_out');
  assert.equal(String(o.session.stateReason), '401');

  const b = await connect(w); // re-pairing with fresh credentials
  b.ev.emit('connection.update', fixture('connection-qr.json')[0]);
  const o2 = await observeWhen(session, (o) => o.session.state === 'qr_required', 'qr_required');
  assert.equal(o2.reconnect.totalAttempts, 0);
  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), ['connecting', 'connected', 'logged_out:401', 'connecting', 'qr_required']);
});

test('requestPairingCode on the real socket → auth pairing_code', async () => {
  const session = 'ev-pairing';
  const w = watcher(session);
  const a = await connect(w);
  const code = await a.requestPairingCode('5511999999999').catch(() => null);
  if (code !== null) assert.match(code, /^[A-Z0-9]{8}$/);
  a.ev.emit('connection.update', fixture('connection-new-login.json'));
  const o = await observeWhen(session, (o) => o.auth.method !== null, 'auth');
  assert.equal(o.auth.method, 'pairing_code');
});
