// wapulse down for a while: what happens meanwhile is queued and retried;
// after the restart (same port, same data dir: its journal is durable) the
// counts are exact. And when wapulse applied a batch but its answer was
// lost, the resend (same ids) is not counted twice. A real whatsapp-web.js
// Client carries the events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { newClient, message, WAState, MessageAck } from './helpers/wwebjs.js';

let wapulse;

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
});

after(async () => {
  await wapulse?.stop();
});

const stateList = (journal) => journal.filter((e) => e.type === 'state').map((e) => (e.reason == null ? e.state : `${e.state}:${e.reason}`));

let n = 0;
async function traffic(client, inbound, outbound) {
  const sent = [];
  for (let i = 0; i < inbound; i++) client.emit('message', await message(client, 'inbound', ++n));
  for (let i = 0; i < outbound; i++) {
    const m = await message(client, 'outbound', ++n);
    sent.push(m);
    client.emit('message_create', m);
  }
  return sent;
}

test('events made while wapulse is down arrive after its restart: nothing lost, nothing doubled', async () => {
  const session = 'ww-outage';
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, minBackoffMs: 50, maxBackoffMs: 400, requestTimeoutMs: 2000, keepAliveIntervalMs: 0, logger: null });
  const client = newClient();
  w.watch(client);
  client.emit('authenticated');
  client.emit('ready');
  const first = await traffic(client, 3, 2);
  await waitFor(async () => (await wapulse.observe(session))?.delivery.sent === 2, { what: 'the first messages' });

  // down
  await wapulse.kill();
  const failedBefore = w.stats().failedRequests;
  for (const m of first) client.emit('message_ack', m, MessageAck.ACK_SERVER);
  const later = await traffic(client, 12, 4);
  for (const m of later) client.emit('message_ack', m, MessageAck.ACK_DEVICE);
  client.emit('change_state', WAState.CONFLICT);
  client.emit('disconnected', WAState.CONFLICT);
  // the gateway starts a new Client for the session: three tries that fail
  for (let i = 0; i < 3; i++) {
    const next = newClient();
    w.watch(next);
    next.emit('change_state', WAState.TIMEOUT);
  }
  await waitFor(() => w.stats().failedRequests >= failedBefore + 3, { what: 'retries while down' });
  const down = w.stats();
  assert.ok(down.queued >= 10, `queued while down: ${down.queued}`);
  assert.equal(down.rejected, 0);

  // back up, same port and data
  await wapulse.start();
  await waitFor(() => w.stats().queued === 0 && w.stats().inFlight === 0 && w.stats().pendingInbound === 0, { what: 'the queue drained', timeoutMs: 15000 });

  const o = await wapulse.observe(session);
  assert.equal(o.messages.inbound, 3 + 12);
  assert.equal(o.messages.outbound, 2 + 4);
  assert.equal(o.delivery.sent, 6);
  assert.equal(o.delivery.serverAcked, 6); // a device ack counts as server too
  assert.equal(o.delivery.delivered, 4);
  assert.equal(o.reconnect.totalAttempts, 3);
  assert.equal(o.session.conflicts.total, 1);
  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), [
    'connecting',
    'connected',
    'disconnected:440',
    'reconnecting',
    'disconnected:TIMEOUT',
    'reconnecting',
    'disconnected:TIMEOUT',
    'reconnecting',
    'disconnected:TIMEOUT',
  ]);
  assert.equal(new Set(journal.map((e) => e.id)).size, journal.length);
  const s = await w.stop(5000);
  assert.equal(s.flushed, true);
  assert.equal(s.droppedHeartbeats + s.droppedMessageEvents + s.droppedAcks, 0);
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
  const session = 'ww-lost-answer';
  const proxy = await lossyProxy(wapulse.url, 2);
  const w = createWatcher({ url: proxy.url, token: TOKEN, session, flushIntervalMs: 60000, minBackoffMs: 20, maxBackoffMs: 50, keepAliveIntervalMs: 0, logger: null });
  const client = newClient();
  w.watch(client);
  client.emit('authenticated');
  client.emit('ready');
  const sent = await traffic(client, 7, 3);
  for (const m of sent) client.emit('message_ack', m, MessageAck.ACK_READ);
  const s = await w.stop(10000);
  assert.equal(s.flushed, true);
  assert.equal(s.retries, 2);
  assert.ok(s.duplicates >= 1, `duplicates acknowledged: ${s.duplicates}`);
  const o = await wapulse.observe(session);
  assert.equal(o.messages.inbound, 7);
  assert.equal(o.messages.outbound, 3);
  assert.equal(o.delivery.read, 3);
  assert.equal(o.session.state, 'connected');
  const journal = await wapulse.journal(session);
  assert.deepEqual(stateList(journal), ['connecting', 'connected']);
  assert.deepEqual(journal.filter((e) => e.type === 'auth').map((e) => e.method), ['session_restore']);
  await proxy.close();
});
