// Delivery and the watcher's mapping, against a stand-in for wapulse on
// loopback and stand-in sockets (the real-Baileys, real-wapulse tests are in
// the other files).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher, createClient, watch, stopAll } from '../src/index.js';
import { fakeWapulse, fakeSocket } from './helpers/fake-server.js';
import { waitFor, freePort } from './helpers/wapulse.js';

const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejections');
});

const quiet = { logger: null };
const boom = (statusCode, message = 'x') => Object.assign(new Error(message), { output: { statusCode } });
const states = (events) => events.filter((e) => e.type === 'state').map((e) => (e.reason === undefined ? e.state : `${e.state}:${e.reason}`));

test('ids are unique and stay the same when a batch is retried', async () => {
  const srv = await fakeWapulse((r, i) => (i === 0 ? { destroy: true } : i === 1 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 }));
  const w = createWatcher({ url: srv.url, token: 't', session: 's1', flushIntervalMs: 20, minBackoffMs: 10, maxBackoffMs: 40, ...quiet });
  w.lock('worker-1', 'connect');
  w.breaker(true, 3);
  w.validation(false, 'checksum mismatch');
  w.unlock();
  await waitFor(() => srv.requests.some((r) => r.status === 200), { what: 'a delivered batch' });
  const [first, second, third] = srv.requests;
  assert.equal(first.status, 0);
  assert.equal(second.status, 503);
  const ids = (r) => r.events.map((e) => e.id);
  assert.deepEqual(ids(second), ids(first));
  assert.deepEqual(ids(third), ids(first));
  assert.equal(new Set(ids(first)).size, 4);
  assert.equal(first.headers.authorization, 'Bearer t');
  assert.deepEqual(
    third.events.map((e) => e.type),
    ['lock_acquired', 'circuit_breaker', 'validation', 'lock_released'],
  );
  assert.deepEqual(third.events[1], { ...third.events[1], open: true, consecutive_failures: 3 });
  for (const e of third.events) assert.match(e.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const s = await w.stop(1000);
  assert.equal(s.retries, 2);
  assert.equal(s.sent, 4);
  assert.equal(s.queued, 0);
  await srv.close();
});

test('Retry-After is honoured', async () => {
  const srv = await fakeWapulse((r, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 10, minBackoffMs: 10, maxBackoffMs: 20, ...quiet });
  w.validation(true);
  await waitFor(() => srv.requests.length >= 2, { what: 'the retry' });
  const gap = srv.requests[1].at - srv.requests[0].at;
  assert.ok(gap >= 950, `retried after ${gap} ms`);
  await w.stop(1000);
  await srv.close();
});

test('a 400 naming an event drops that event only; a 401 drops the batch, counted, not retried', async () => {
  let phase = 'index';
  const srv = await fakeWapulse((r) => {
    if (phase === 'index' && r.events.length === 3) return { status: 400, body: { error: 'event 1: field `labels`: …', index: 1, field: 'labels' } };
    if (phase === 'token') return { status: 401, body: { error: 'unauthorized' } };
    return { status: 200 };
  });
  const errors = [];
  const c = createClient({ url: srv.url, flushIntervalMs: 10, minBackoffMs: 10, onError: (e) => errors.push(e), ...quiet });
  const w = c.session('s1');
  w.validation(true);
  w.event('labels', { labels: { zone: 'x' } });
  w.validation(false);
  await waitFor(() => srv.requests.some((r) => r.status === 200), { what: 'the rest delivered' });
  assert.deepEqual(srv.delivered().map((e) => e.type), ['validation', 'validation']);
  assert.equal(c.stats().rejected, 1);
  assert.match(errors[0].message, /400.*labels/);
  phase = 'token';
  w.validation(true);
  w.validation(true);
  await waitFor(() => c.stats().rejected === 3, { what: 'the batch refused' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(srv.requests.filter((r) => r.status === 401).length, 1, 'a 401 is not retried');
  assert.equal(c.stats().queued, 0);
  await c.stop(500);
  await srv.close();
});

test('a 413 halves the batches and delivers everything', async () => {
  const srv = await fakeWapulse((r) => (r.events.length > 25 ? { status: 413, body: { error: 'too many events' } } : { status: 200 }));
  const c = createClient({ url: srv.url, flushIntervalMs: 10, maxBatch: 100, ...quiet });
  const w = c.session('s1');
  for (let i = 0; i < 100; i++) w.validation(true, `check ${i}`);
  await waitFor(() => srv.delivered().length === 100, { what: '100 delivered' });
  assert.deepEqual(srv.delivered().map((e) => e.detail), Array.from({ length: 100 }, (_, i) => `check ${i}`));
  assert.ok(c.maxBatch <= 25);
  await c.stop(500);
  await srv.close();
});

test('stop() flushes what is queued, message counts included', async () => {
  const srv = await fakeWapulse();
  const sock = fakeSocket();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, ...quiet }).watch(sock);
  sock.ev.emit('connection.update', { connection: 'connecting' });
  sock.ev.emit('connection.update', { connection: 'open' });
  sock.ev.emit('messages.upsert', { type: 'notify', messages: [{ key: { fromMe: false } }, { key: { fromMe: true } }, { key: { fromMe: false } }] });
  assert.equal(srv.requests.length, 0);
  const s = await w.stop(2000);
  assert.equal(s.flushed, true);
  assert.equal(s.queued, 0);
  const ev = srv.delivered();
  assert.deepEqual(states(ev), ['connecting', 'connected']);
  assert.deepEqual(ev.filter((e) => e.type === 'message').map((e) => [e.direction, e.count]), [['inbound', 2], ['outbound', 1]]);
  // detached: later events are not sent
  sock.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(428) } });
  assert.equal(sock.ev.listenerCount('connection.update'), 0);
  assert.equal(sock.ws.listenerCount('frame'), 0);
  await srv.close();
});

test('an unreachable wapulse never throws into the gateway, and stop() is bounded', async () => {
  const port = await freePort(); // nothing listens there
  const errors = [];
  const w = createWatcher({ url: `http://127.0.0.1:${port}`, session: 's1', flushIntervalMs: 5, minBackoffMs: 5, maxBackoffMs: 20, onError: (e) => errors.push(e), logger: null });
  const sock = fakeSocket(async () => {
    throw new Error('no ping today');
  });
  w.watch(sock);
  const saved = w.wrapSaveCreds(async () => 'saved');
  for (let i = 0; i < 200; i++) {
    sock.ev.emit('connection.update', { connection: 'connecting' });
    sock.ev.emit('connection.update', { connection: 'open' });
    sock.ev.emit('messages.upsert', { type: 'notify', messages: [{ key: { fromMe: i % 2 === 0 } }] });
    sock.ws.emit('frame', {});
    assert.equal(await saved(), 'saved');
  }
  // garbage payloads are survived too
  sock.ev.emit('connection.update', null);
  sock.ev.emit('messages.upsert', { type: 'notify', messages: [null, 3] });
  sock.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: 'not an error' } });
  await waitFor(() => errors.length >= 2, { what: 'errors reported' });
  assert.match(errors[0].message, /unreachable/);
  const t0 = Date.now();
  const s = await w.stop(300);
  assert.ok(Date.now() - t0 < 2000, 'stop() kept to its timeout');
  assert.equal(s.flushed, false);
  assert.ok(s.queued > 0);
  assert.ok(s.retries >= 2);
});

test('wrapSaveCreds records after the original resolves, and passes its errors through', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, store: 'postgres', ...quiet });
  let saved = 0;
  const ok = w.wrapSaveCreds(async (x) => {
    saved += x;
    return 'done';
  });
  const bad = w.wrapSaveCreds(async () => {
    throw new Error('disk full');
  }, 'files');
  assert.equal(await ok(2), 'done');
  await assert.rejects(bad(), /disk full/);
  assert.equal(saved, 2);
  await w.stop(1000);
  assert.deepEqual(srv.delivered().map((e) => [e.type, e.store]), [['credentials_written', 'postgres']]);
  await srv.close();
});

test('labels are sent at start and by setLabels; bad ones are refused locally', async () => {
  const srv = await fakeWapulse();
  const errors = [];
  const w = createWatcher({ url: srv.url, session: 's1', labels: { tenant: 'acme', region: 'eu-1' }, onError: (e) => errors.push(e), ...quiet });
  assert.equal(w.setLabels({ region: null, tier: 'gold' }), true);
  assert.equal(w.setLabels({ 'bad-name': 'x' }), false);
  assert.equal(w.setLabels({ severity: 'x' }), false);
  assert.equal(w.setLabels({ ok: 'x'.repeat(129) }), false);
  await w.stop(1000);
  assert.deepEqual(srv.delivered().map((e) => e.labels), [{ tenant: 'acme', region: 'eu-1' }, { region: null, tier: 'gold' }]);
  assert.equal(errors.length, 3);
  await srv.close();
});

test('state mapping across sockets: connecting, reconnecting with the close code, logged out', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, ...quiet });
  // the gateway's own listener runs first and makes the next socket inside
  // the close event, as a typical reconnect loop does
  const sockets = [];
  const open = (then) => {
    const sock = fakeSocket();
    sock.ev.on('connection.update', (u) => {
      if (u.connection === 'close') then?.();
    });
    w.watch(sock);
    sockets.push(sock);
    return sock;
  };
  const s1 = open(() => open());
  s1.ev.emit('connection.update', { connection: 'connecting', qr: undefined });
  s1.ev.emit('connection.update', { connection: 'open' });
  s1.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(428) } });
  const s2 = sockets[1];
  assert.ok(s2, 'the gateway made a second socket');
  s2.ev.emit('connection.update', { connection: 'connecting' });
  s2.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(408) } });
  // the gateway waits before the next one this time; its first event is
  // `open` (watch() came late): the reconnect is still counted
  const s3 = open();
  s3.ev.emit('connection.update', { connection: 'open' });
  s3.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(401) } });
  const s4 = open();
  s4.ev.emit('connection.update', { connection: 'connecting' });
  s4.ev.emit('connection.update', { qr: 'ref1' });
  s4.ev.emit('connection.update', { qr: 'ref2' });
  s4.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: new Error('QR refs attempts ended') } });
  // a stale event from an old socket changes nothing
  s1.ev.emit('connection.update', { connection: 'open' });
  await w.stop(1000);
  const ev = srv.delivered();
  assert.deepEqual(states(ev), [
    'connecting',
    'connected',
    'disconnected:428',
    'reconnecting',
    'disconnected:408',
    'reconnecting',
    'connected',
    'logged_out:401',
    'connecting',
    'qr_required',
    'disconnected:QR refs attempts ended',
  ]);
  assert.deepEqual(ev.filter((e) => e.type === 'auth').map((e) => e.method), ['session_restore', 'session_restore']);
  await srv.close();
});

test('auth: qr_scan after a QR and isNewLogin, pairing_code when a pairing code was asked for', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, ...quiet });
  const a = fakeSocket();
  w.watch(a);
  a.ev.emit('connection.update', { connection: 'connecting' });
  a.ev.emit('connection.update', { qr: 'ref' });
  a.ev.emit('connection.update', { isNewLogin: true, qr: undefined });
  a.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(515) } });
  const b = fakeSocket();
  w.watch(b);
  b.ev.emit('connection.update', { connection: 'connecting' });
  b.ev.emit('connection.update', { connection: 'open' });
  b.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(401) } });
  const c = fakeSocket();
  let asked = null;
  c.requestPairingCode = async (phone) => {
    asked = phone;
    return 'ABCD1234';
  };
  w.watch(c);
  c.ev.emit('connection.update', { connection: 'connecting' });
  assert.equal(await c.requestPairingCode('5511999999999'), 'ABCD1234');
  assert.equal(asked, '5511999999999');
  c.ev.emit('connection.update', { isNewLogin: true });
  await w.stop(1000);
  const ev = srv.delivered();
  assert.deepEqual(ev.filter((e) => e.type === 'auth').map((e) => e.method), ['qr_scan', 'pairing_code']);
  assert.deepEqual(states(ev), ['connecting', 'qr_required', 'disconnected:515', 'reconnecting', 'connected', 'logged_out:401', 'connecting']);
  await srv.close();
});

test('heartbeats: one per keepalive interval, from frames after open, with the ping RTT', async () => {
  const srv = await fakeWapulse();
  const pings = [];
  const sock = fakeSocket(async (node) => {
    pings.push(node);
    // 15 ms by the clock the RTT is measured with (a timer alone may fire a
    // little early against it on a busy loop)
    const asked = performance.now();
    do await new Promise((r) => setTimeout(r, 2));
    while (performance.now() - asked < 15);
    return { tag: 'iq', attrs: { type: 'result', id: node.attrs.id } };
  });
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, keepAliveIntervalMs: 150, ...quiet }).watch(sock);
  sock.ws.emit('frame', {}); // before open: no heartbeat
  sock.ev.emit('connection.update', { connection: 'connecting' });
  sock.ev.emit('connection.update', { connection: 'open' });
  for (let i = 0; i < 50; i++) sock.ws.emit('frame', {});
  await waitFor(() => w.stats().queued >= 4, { what: 'the first heartbeat' });
  const t = Date.now();
  await waitFor(() => Date.now() - t > 160);
  for (let i = 0; i < 50; i++) sock.ws.emit('frame', {});
  await waitFor(() => w.stats().queued >= 5, { what: 'the second heartbeat' });
  await w.stop(1000);
  const beats = srv.delivered().filter((e) => e.type === 'heartbeat');
  assert.equal(beats.length, 2);
  for (const b of beats) assert.ok(b.rtt_ms >= 10 && b.rtt_ms < 1000, `rtt ${b.rtt_ms}`);
  assert.equal(pings.length, 2);
  assert.deepEqual(pings[0], { tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] });
  await srv.close();
});

test('heartbeats: a ping that fails or hangs still gives a heartbeat, without RTT', async () => {
  const srv = await fakeWapulse();
  const failing = fakeSocket(() => {
    throw new Error('sync failure');
  });
  const hanging = fakeSocket(() => new Promise(() => {}));
  const c = createClient({ url: srv.url, flushIntervalMs: 60000, ...quiet });
  c.session('a', { pingTimeoutMs: 50 }).watch(failing);
  c.session('b', { pingTimeoutMs: 50 }).watch(hanging);
  for (const s of [failing, hanging]) {
    s.ev.emit('connection.update', { connection: 'open' });
    s.ws.emit('frame', {});
  }
  await waitFor(() => c.stats().queued >= 8, { what: 'both heartbeats' }); // 3 each before: connecting, connected, auth
  await c.stop(1000);
  const beats = srv.delivered().filter((e) => e.type === 'heartbeat');
  assert.deepEqual(beats.map((b) => [b.session, 'rtt_ms' in b]).sort(), [['a', false], ['b', false]]);
  await srv.close();
});

test('watch(sock, opts) keeps one watcher per session across sockets and shares a client', async () => {
  const srv = await fakeWapulse();
  const opts = { url: srv.url, token: 'k', flushIntervalMs: 60000, ...quiet };
  const a1 = fakeSocket();
  const w1 = watch(a1, { ...opts, session: 'a' });
  const b1 = fakeSocket();
  const wb = watch(b1, { ...opts, session: 'b' });
  a1.ev.emit('connection.update', { connection: 'connecting' });
  a1.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom(428) } });
  const a2 = fakeSocket();
  const w2 = watch(a2, { ...opts, session: 'a' });
  assert.equal(w1, w2);
  assert.equal(w1.client, wb.client);
  a2.ev.emit('connection.update', { connection: 'connecting' });
  b1.ev.emit('connection.update', { connection: 'connecting' });
  await stopAll(1000);
  const ev = srv.delivered();
  assert.deepEqual(states(ev.filter((e) => e.session === 'a')), ['connecting', 'disconnected:428', 'reconnecting']);
  assert.deepEqual(states(ev.filter((e) => e.session === 'b')), ['connecting']);
  assert.equal(srv.requests.length, 1, 'one batch for both sessions');
  await srv.close();
});

test('setup mistakes are told at once', () => {
  assert.throws(() => createWatcher({ session: 's' }), /url/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 'bad id' }), /session/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 's', maxQueue: 0 }), /maxQueue/);
  const w = createWatcher({ url: 'http://127.0.0.1:1', session: 's', logger: null });
  assert.throws(() => w.watch({}), /socket/);
  assert.throws(() => w.wrapSaveCreds(null), /function/);
  return w.stop(0);
});

