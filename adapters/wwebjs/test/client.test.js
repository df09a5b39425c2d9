// Delivery (batches, stable ids, retries, refusals, the bound, stop) and the
// watcher's hold on the Client (what it wraps, what it gives back), against a
// stand-in for wapulse on loopback and real whatsapp-web.js Clients that are
// never initialized.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher, createClient, watch, stopAll } from '../src/index.js';
import { fakeWapulse } from './helpers/fake-server.js';
import { waitFor, freePort } from './helpers/wapulse.js';
import { newClient, message, Client, MessageAck } from './helpers/wwebjs.js';

const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejections');
});

const quiet = { logger: null, keepAliveIntervalMs: 0 };
const states = (events) => events.filter((e) => e.type === 'state').map((e) => (e.reason === undefined ? e.state : `${e.state}:${e.reason}`));
const FOLLOWED = ['qr', 'code', 'loading_screen', 'authenticated', 'auth_failure', 'ready', 'change_state', 'disconnected', 'message', 'message_create', 'message_ack', 'remote_session_saved'];

test('ids are unique and stay the same when a batch is retried', async () => {
  const srv = await fakeWapulse((r, i) => (i === 0 ? { destroy: true } : i === 1 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 }));
  const w = createWatcher({ url: srv.url, token: 't', session: 's1', flushIntervalMs: 20, minBackoffMs: 10, maxBackoffMs: 40, ...quiet });
  const client = newClient();
  w.watch(client);
  client.emit('qr', 'ref');
  client.emit('authenticated');
  client.emit('ready');
  await waitFor(() => srv.requests.some((r) => r.status === 200), { what: 'a delivered batch' });
  const [first, second, third] = srv.requests;
  assert.equal(first.status, 0);
  assert.equal(second.status, 503);
  const ids = (r) => r.events.map((e) => e.id);
  assert.deepEqual(ids(second), ids(first));
  assert.deepEqual(ids(third), ids(first));
  assert.equal(new Set(ids(first)).size, 4);
  for (const id of ids(first)) assert.match(id, /^ww[0-9a-f]{16}-[0-9a-z]+$/);
  assert.equal(first.headers.authorization, 'Bearer t');
  assert.deepEqual(states(third.events), ['connecting', 'qr_required', 'connected']);
  const s = await w.stop(1000);
  assert.equal(s.retries, 2);
  assert.equal(s.sent, 4);
  assert.equal(s.queued, 0);
  await srv.close();
});

test('Retry-After is honoured', async () => {
  const srv = await fakeWapulse((r, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 10, minBackoffMs: 10, maxBackoffMs: 20, ...quiet });
  w.watch(newClient());
  await waitFor(() => srv.requests.length >= 2, { what: 'the retry' });
  const gap = srv.requests[1].at - srv.requests[0].at;
  assert.ok(gap >= 950, `retried after ${gap} ms`);
  await w.stop(1000);
  await srv.close();
});

test('a 400 naming an event drops that event only (an older wapulse refusing `restriction`); a 401 drops the batch, not retried', async () => {
  let phase = 'index';
  const srv = await fakeWapulse((r) => {
    const at = r.events.findIndex((e) => e.type === 'restriction');
    if (phase === 'index' && at >= 0) return { status: 400, body: { error: `event ${at}: field \`type\`: "restriction" is not an event type`, index: at, field: 'type' } };
    if (phase === 'token') return { status: 401, body: { error: 'unauthorized' } };
    return { status: 200 };
  });
  const errors = [];
  const c = createClient({ url: srv.url, flushIntervalMs: 10, minBackoffMs: 10, onError: (e) => errors.push(e), ...quiet });
  const client = newClient();
  c.session('s1', { keepAliveIntervalMs: 0 }).watch(client);
  client.emit('ready');
  client.emit('change_state', 'TOS_BLOCK');
  await waitFor(() => srv.requests.some((r) => r.status === 200), { what: 'the rest delivered' });
  assert.deepEqual(states(srv.delivered()), ['connecting', 'connected', 'logged_out:TOS_BLOCK']);
  assert.equal(c.stats().rejected, 1);
  assert.match(errors[0].message, /400.*restriction/);
  phase = 'token';
  client.emit('change_state', 'OPENING'); // connecting (logged out before)
  client.emit('change_state', 'CONNECTED'); // connected, and the ban lifted
  await waitFor(() => c.stats().rejected === 4, { what: 'the batch of 3 refused' });
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

test('stop() flushes what is queued, message counts included, and gives the Client back as it was', async () => {
  const srv = await fakeWapulse();
  const client = newClient();
  const before = Object.getOwnPropertyNames(client).sort();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, ...quiet }).watch(client);
  for (const e of FOLLOWED) assert.equal(client.listenerCount(e), 1, e);
  assert.notEqual(client.initialize, Client.prototype.initialize);
  assert.ok(Object.getOwnPropertyDescriptor(client, 'pupPage').get, 'pupPage followed');
  client.emit('ready');
  client.emit('message', await message(client, 'inbound', 1));
  client.emit('message', await message(client, 'inbound', 2));
  client.emit('message_create', await message(client, 'outbound', 1));
  assert.equal(srv.requests.length, 0);
  const s = await w.stop(2000);
  assert.equal(s.flushed, true);
  assert.equal(s.queued, 0);
  const ev = srv.delivered();
  assert.deepEqual(states(ev), ['connecting', 'connected']);
  assert.deepEqual(ev.filter((e) => e.type === 'message').map((e) => [e.direction, e.count]), [['inbound', 2], ['outbound', 1]]);
  // detached: listeners gone, methods and properties the Client's own again
  for (const e of FOLLOWED) assert.equal(client.listenerCount(e), 0, e);
  for (const m of ['initialize', 'destroy', 'logout']) assert.equal(client[m], Client.prototype[m], m);
  assert.deepEqual(Object.getOwnPropertyNames(client).sort(), before);
  for (const p of ['pupPage', 'pupBrowser']) assert.equal(Object.getOwnPropertyDescriptor(client, p).writable, true, p);
  client.emit('disconnected', 'LOGOUT');
  await srv.close();
});

test('an unreachable wapulse never throws into the bot, garbage payloads neither, and stop() is bounded', async () => {
  const port = await freePort(); // nothing listens there
  const errors = [];
  const w = createWatcher({ url: `http://127.0.0.1:${port}`, session: 's1', flushIntervalMs: 5, minBackoffMs: 5, maxBackoffMs: 20, onError: (e) => errors.push(e), logger: null, keepAliveIntervalMs: 0 });
  const client = newClient();
  w.watch(client);
  for (let i = 0; i < 200; i++) {
    client.emit('qr', `ref${i}`);
    client.emit('authenticated');
    client.emit('ready');
    client.emit('message', await message(client, 'inbound', i));
    const m = await message(client, 'outbound', i);
    client.emit('message_create', m);
    client.emit('message_ack', m, MessageAck.ACK_DEVICE);
    client.emit('change_state', i % 2 ? 'OPENING' : 'CONNECTED');
  }
  // payloads no whatsapp-web.js sends: survived
  client.emit('message', null);
  client.emit('message_create', { id: 7 });
  client.emit('message_create', { fromMe: true, id: { _serialized: 'x'.repeat(300) } });
  client.emit('message_ack', undefined, 9);
  client.emit('message_ack', { fromMe: true }, 2);
  client.emit('change_state', { not: 'a state' });
  client.emit('disconnected');
  client.emit('loading_screen');
  await waitFor(() => errors.length >= 2, { what: 'errors reported' });
  assert.match(errors[0].message, /unreachable/);
  const t0 = Date.now();
  const s = await w.stop(300);
  assert.ok(Date.now() - t0 < 2000, 'stop() kept to its timeout');
  assert.equal(s.flushed, false);
  assert.ok(s.queued > 0);
  assert.ok(s.retries >= 2);
});

test('initialize(), destroy() and logout() are wrapped: results and errors unchanged; a failed initialize is a disconnect', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, session: 's1', flushIntervalMs: 60000, ...quiet });
  // a real initialize() whose Chromium is missing: puppeteer's own error
  const client = newClient({ puppeteer: { executablePath: '/nonexistent/chromium' } });
  w.watch(client);
  await assert.rejects(client.initialize(), /Browser was not found at the configured executablePath \(\/nonexistent\/chromium\)/);
  // the gateway tries again: a new start (never connected: connecting)
  await assert.rejects(client.initialize(), /Browser was not found/);
  // destroy() with no browser: whatsapp-web.js' own, resolved
  assert.equal(await client.destroy(), undefined);
  await w.stop(1000);
  assert.deepEqual(states(srv.delivered()), [
    'connecting',
    'disconnected:initialize_failed: Browser was not found at the configured executablePath (/nonexistent/chromium)',
    'connecting',
    'disconnected:initialize_failed: Browser was not found at the configured executablePath (/nonexistent/chromium)',
  ]);
  await srv.close();
});

test('a new Client for the session continues it: reconnecting after a connected one; the old Client is no longer followed', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, flushIntervalMs: 60000, ...quiet });
  const first = newClient();
  w.watch(first, { session: 's1' });
  first.emit('authenticated');
  first.emit('ready');
  first.emit('change_state', 'CONFLICT');
  first.emit('disconnected', 'CONFLICT');
  const second = newClient();
  assert.equal(w.watch(second, { session: 's1' }), w);
  assert.throws(() => w.watch(newClient(), { session: 'other' }), /one watcher per session/);
  for (const e of FOLLOWED) assert.equal(first.listenerCount(e), 0, e);
  first.emit('ready'); // the old one: ignored
  second.emit('authenticated');
  second.emit('ready');
  await w.stop(1000);
  const ev = srv.delivered();
  assert.deepEqual(states(ev), ['connecting', 'connected', 'disconnected:440', 'reconnecting', 'connected']);
  assert.deepEqual(ev.filter((e) => e.type === 'auth').map((e) => e.method), ['session_restore', 'session_restore']);
  await srv.close();
});

test('labels are sent at start and by setLabels; bad ones are refused locally; the helpers send their events', async () => {
  const srv = await fakeWapulse();
  const errors = [];
  const w = createWatcher({ url: srv.url, labels: { tenant: 'acme', region: 'eu-1' }, onError: (e) => errors.push(e), ...quiet });
  w.watch(newClient(), { session: 's1' }); // labels go once the session is known
  assert.equal(w.setLabels({ region: null, tier: 'gold' }), true);
  assert.equal(w.setLabels({ 'bad-name': 'x' }), false);
  assert.equal(w.setLabels({ severity: 'x' }), false);
  assert.equal(w.lock('pod-7', 'connect'), true);
  assert.equal(w.unlock(), true);
  assert.equal(w.breaker(true, 5), true);
  assert.equal(w.validation(false, 'session dir checksum mismatch'), true);
  assert.equal(w.event('counter', { name: 'calls_started' }), true);
  await w.stop(1000);
  const ev = srv.delivered().map(({ at, id, session, ...rest }) => rest);
  assert.deepEqual(ev, [
    { type: 'labels', labels: { tenant: 'acme', region: 'eu-1' } },
    { type: 'state', state: 'connecting' },
    { type: 'labels', labels: { region: null, tier: 'gold' } },
    { type: 'lock_acquired', held_by: 'pod-7', operation: 'connect' },
    { type: 'lock_released' },
    { type: 'circuit_breaker', open: true, consecutive_failures: 5 },
    { type: 'validation', valid: false, detail: 'session dir checksum mismatch' },
    { type: 'counter', name: 'calls_started' },
  ]);
  assert.equal(errors.length, 2);
  await srv.close();
});

test('watch(client, opts) keeps one watcher per session across Clients and shares a client; stopAll({ stopped: true }) stops them all', async () => {
  const srv = await fakeWapulse();
  const opts = { url: srv.url, token: 'k', flushIntervalMs: 60000, ...quiet };
  const a1 = newClient();
  const w1 = watch(a1, { ...opts, session: 'a' });
  const wb = watch(newClient(), { ...opts, session: 'b' });
  a1.emit('ready');
  a1.emit('disconnected', 'TIMEOUT');
  const w2 = watch(newClient(), { ...opts, session: 'a' });
  assert.equal(w1, w2);
  assert.equal(w1.client, wb.client);
  await stopAll({ stopped: true, timeoutMs: 1000 });
  const ev = srv.delivered();
  assert.deepEqual(states(ev.filter((e) => e.session === 'a')), ['connecting', 'connected', 'disconnected:TIMEOUT', 'reconnecting', 'stopped']);
  assert.deepEqual(states(ev.filter((e) => e.session === 'b')), ['connecting', 'stopped']);
  assert.equal(srv.requests.length, 1, 'one batch for both sessions');
  await srv.close();
});

test('one client, many sessions: a watcher stopped with { stopped: true } leaves the others running', async () => {
  const srv = await fakeWapulse();
  const c = createClient({ url: srv.url, flushIntervalMs: 60000, ...quiet });
  const x = newClient();
  const y = newClient();
  const wx = c.session('x').watch(x);
  c.session('y').watch(y);
  x.emit('ready');
  y.emit('ready');
  const sx = await wx.stop({ stopped: true, timeoutMs: 1000 });
  assert.equal(sx.flushed, true);
  y.emit('change_state', 'OPENING');
  x.emit('change_state', 'OPENING'); // stopped: not followed
  await c.stop(1000);
  const ev = srv.delivered();
  assert.deepEqual(states(ev.filter((e) => e.session === 'x')), ['connecting', 'connected', 'stopped']);
  assert.deepEqual(states(ev.filter((e) => e.session === 'y')), ['connecting', 'connected', 'reconnecting']);
  await srv.close();
});

test('setup mistakes are told at once', () => {
  assert.throws(() => createWatcher({ session: 's' }), /url/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 'bad id' }), /session/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 's', maxQueue: 0 }), /maxQueue/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 's', keepAliveIntervalMs: -5 }), /keepAliveIntervalMs/);
  const w = createWatcher({ url: 'http://127.0.0.1:1', session: 's', logger: null });
  assert.throws(() => w.watch({}), /Client/);
  assert.throws(() => w.watch(null), /Client/);
  return w.stop(0);
});
