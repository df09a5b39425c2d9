// wapulse down for a while: what happens meanwhile is queued and retried;
// after the restart (same port, same data dir: its journal is durable) the
// counts are exact. And when wapulse applied a batch but its answer was
// lost, the resend (same ids) is not counted twice.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { loopbackServer, socket, memoryAuth, fixture, nextUpdate, endQuietly, renumbered } from './helpers/baileys.js';

let wapulse;
let hold;
let closing;
const sockets = [];

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
  hold = await loopbackServer('hold');
  closing = await loopbackServer('close');
});

after(async () => {
  for (const s of sockets) await endQuietly(s);
  await hold?.close();
  await closing?.close();
  await wapulse?.stop();
});

const stateList = (journal) =>
  journal.filter((e) => e.type === 'state').map((e) => (e.reason === undefined ? e.state : `${e.state}:${e.reason}`));

let sends = 0;
function upsert(sock, inbound, outbound) {
  const up = fixture('messages-upsert.json');
  const one = (m) => ({ type: 'notify', messages: [m] });
  for (let i = 0; i < inbound; i++) sock.ev.emit('messages.upsert', one(up.notifyInbound.messages[i % 3]));
  // each send a message of its own (wapulse takes a repeated id for the same one)
  for (let i = 0; i < outbound; i++) sock.ev.emit('messages.upsert', renumbered(one(up.notifyOutbound.messages[i % 2]), ++sends));
}

test('events made while wapulse is down arrive after its restart: nothing lost, nothing doubled', async () => {
  const session = 'outage-1';
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, minBackoffMs: 50, maxBackoffMs: 400, requestTimeoutMs: 2000, logger: null });
  const auth = memoryAuth();

  // up: connected, some traffic
  const a = socket(hold.url, auth);
  sockets.push(a);
  w.watch(a);
  await nextUpdate(a, (u) => u.connection === 'connecting');
  a.ev.emit('connection.update', fixture('connection-open.json'));
  upsert(a, 3, 2);
  await waitFor(async () => (await wapulse.observe(session))?.messages.inbound === 3, { what: 'the first messages' });

  // down
  await wapulse.kill();
  const failedBefore = w.stats().failedRequests;
  upsert(a, 12, 4);
  // replaced, then the gateway's loop tries three times; each attempt is
  // dropped by the server (428)
  let attempts = 0;
  const done = new Promise((resolve) => {
    const next = () => {
      const s = socket(closing.url, auth);
      sockets.push(s);
      w.watch(s);
      s.ev.on('connection.update', (u) => {
        if (u.connection !== 'close') return;
        if (++attempts < 3) next();
        else resolve();
      });
    };
    a.ev.on('connection.update', (u) => {
      if (u.connection === 'close') next();
    });
  });
  a.ws.emit('CB:stream:error', fixture('stream-error-replaced.json'));
  await done;
  await waitFor(() => w.stats().failedRequests >= failedBefore + 3, { what: 'retries while down' });
  const down = w.stats();
  assert.ok(down.queued >= 7, `queued while down: ${down.queued}`);
  assert.equal(down.rejected, 0);

  // back up, same port and data
  await wapulse.start();
  await waitFor(() => w.stats().queued === 0 && w.stats().inFlight === 0 && w.stats().pendingInbound === 0, { what: 'the queue drained', timeoutMs: 15000 });

  const o = await wapulse.observe(session);
  assert.equal(o.messages.inbound, 3 + 12);
  assert.equal(o.messages.outbound, 2 + 4);
  assert.equal(o.reconnect.attempts, 3);
  assert.equal(o.reconnect.totalAttempts, 3);
  assert.equal(o.session.state, 'disconnected');
  assert.equal(String(o.session.stateReason), '428');
  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), [
    'connecting',
    'connected',
    'disconnected:440',
    'reconnecting',
    'disconnected:428',
    'reconnecting',
    'disconnected:428',
    'reconnecting',
    'disconnected:428',
  ]);
  assert.equal(new Set(journal.map((e) => e.id)).size, journal.length);
  const s = await w.stop(5000);
  assert.equal(s.flushed, true);
  assert.equal(s.droppedHeartbeats + s.droppedMessageEvents, 0);
});

/** Forwards to wapulse; for the first `lose` requests, drops wapulse's answer. */
async function lossyProxy(target, lose) {
  let seen = 0;
  const srv = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const up = await fetch(target + req.url, {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'], authorization: req.headers.authorization },
      body: Buffer.concat(chunks),
    });
    const body = await up.text();
    if (seen++ < lose) {
      req.socket.destroy(); // applied by wapulse, but the gateway never hears it
      return;
    }
    res.writeHead(up.status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    async close() {
      srv.closeAllConnections();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}

test('a batch applied but not acknowledged is resent with the same ids and not counted twice', async () => {
  const session = 'outage-lost-ack';
  const proxy = await lossyProxy(wapulse.url, 2);
  const w = createWatcher({ url: proxy.url, token: TOKEN, session, flushIntervalMs: 60000, minBackoffMs: 20, maxBackoffMs: 50, logger: null });
  const a = socket(hold.url);
  sockets.push(a);
  w.watch(a);
  await nextUpdate(a, (u) => u.connection === 'connecting');
  a.ev.emit('connection.update', fixture('connection-open.json'));
  upsert(a, 7, 3);
  const s = await w.stop(10000);
  assert.equal(s.flushed, true);
  assert.equal(s.retries, 2);
  assert.ok(s.duplicates >= 1, `duplicates acknowledged: ${s.duplicates}`);
  const o = await wapulse.observe(session);
  assert.equal(o.messages.inbound, 7);
  assert.equal(o.messages.outbound, 3);
  assert.equal(o.session.state, 'connected');
  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), ['connecting', 'connected']);
  assert.deepEqual(journal.filter((e) => e.type === 'auth').map((e) => e.method), ['session_restore']);
  await proxy.close();
});
