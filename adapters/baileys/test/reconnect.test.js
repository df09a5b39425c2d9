// Real Baileys sockets against a loopback WebSocket server that closes every
// connection: each attempt is a real `connecting` then `close` 428. The test
// plays the gateway's reconnect loop (a new socket per attempt, watch() on
// each) and a real wapulse counts the reconnects.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { loopbackServer, socket, memoryAuth } from './helpers/baileys.js';

let wapulse;
let ws;

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
  ws = await loopbackServer('close');
});

after(async () => {
  await ws?.close();
  await wapulse?.stop();
});

/**
 * The gateway's loop: a socket, watched; on a retryable close, the next one.
 * Resolves once `attempts` sockets have closed.
 */
function reconnectLoop(w, attempts, url) {
  const auth = memoryAuth();
  const closes = [];
  return new Promise((resolve, reject) => {
    const start = () => {
      let sock;
      try {
        sock = socket(url, auth);
      } catch (err) {
        reject(err);
        return;
      }
      w.watch(sock);
      sock.ev.on('connection.update', (u) => {
        if (u.connection !== 'close') return;
        closes.push(u.lastDisconnect?.error?.output?.statusCode);
        if (closes.length < attempts) start();
        else resolve(closes);
      });
    };
    start();
  });
}

test('real connecting → close 428 cycles: reconnect attempts counted by wapulse', async () => {
  const session = 'baileys-reconnect-1';
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, logger: null });
  const attempts = 5;
  const closes = await reconnectLoop(w, attempts, ws.url);
  assert.deepEqual(closes, Array(attempts).fill(428), 'Baileys closed each socket with 428');
  assert.equal(ws.connections, attempts);

  const s = await w.stop(5000);
  assert.equal(s.flushed, true);
  assert.equal(s.rejected, 0);

  const obs = await wapulse.observe(session);
  // the first `connecting` is not a reconnect; each later socket is one attempt
  assert.equal(obs.reconnect.attempts, attempts - 1);
  assert.equal(obs.reconnect.totalAttempts, attempts - 1);
  assert.equal(obs.reconnect.inProgress, true);
  assert.equal(obs.session.state, 'disconnected');
  assert.equal(String(obs.session.stateReason), '428');
  if (obs.session.lastDisconnect) assert.equal(obs.session.lastDisconnect.code, 428);

  const journal = await wapulse.journal(session);
  const states = journal.filter((e) => e.type === 'state').map((e) => `${e.state}${e.reason !== undefined ? ':' + e.reason : ''}`);
  const expected = ['connecting', 'disconnected:428'];
  for (let i = 1; i < attempts; i++) expected.push('reconnecting', 'disconnected:428');
  assert.deepEqual(states, expected);
});

test('the next socket after the gateway connects again continues the session', async () => {
  // same session, a new burst of attempts later: still reconnects, and the
  // count goes on (nothing in between said `connected`)
  const session = 'baileys-reconnect-2';
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, logger: null });
  await reconnectLoop(w, 2, ws.url);
  await waitFor(async () => (await wapulse.observe(session))?.reconnect.attempts === 1, { what: '1 attempt' });
  await reconnectLoop(w, 3, ws.url);
  await w.stop(5000);
  const obs = await wapulse.observe(session);
  assert.equal(obs.reconnect.attempts, 4);
  assert.equal(obs.session.state, 'disconnected');
});
