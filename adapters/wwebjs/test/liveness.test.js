// Liveness through a real browser: a real whatsapp-web.js Client whose own
// initialize() launches Debian's Chromium (puppeteer) and loads a WhatsApp
// Web stand-in through whatsapp-web.js' own web cache (test/helpers/wwebjs.js),
// so that Client.getState() is a real evaluate in a real page. A real
// wapulse, with short heartbeat thresholds, says what it makes of it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { pageClient, webCache, pageLoaded, killBrowser, CHROMIUM } from './helpers/wwebjs.js';
import { access } from 'node:fs/promises';

// HEARTBEAT_STALE after 2 s without a heartbeat (the default is 60 s)
const CONFIG = `[thresholds]
heartbeat_interval = "1s"
heartbeat_age_warning = "2s"
heartbeat_age_critical = "10s"
`;

let wapulse;
let cache;
const clients = [];
const watchers = [];

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  await access(CHROMIUM).catch(() => assert.fail(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN)`));
  wapulse = await new Wapulse({ config: CONFIG }).start();
  cache = await webCache();
});

after(async () => {
  for (const w of watchers) await w.stop(1000);
  for (const c of clients) {
    try {
      if (c.pupBrowser?.connected) await c.pupBrowser.close();
    } catch {
      /* gone already */
    }
  }
  await cache?.remove();
  await wapulse?.stop();
});

/** A real Client, watched, initialized: resolves once its page has loaded. */
async function started(session, extra = {}) {
  const client = pageClient(cache.dir);
  clients.push(client);
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, keepAliveIntervalMs: 200, pingTimeoutMs: 300, logger: null, ...extra });
  watchers.push(w);
  w.watch(client);
  // initialize() stays in whatsapp-web.js' inject() (WhatsApp Web's own
  // scripts are not there) until the browser goes; then it rejects
  const init = client.initialize().then(
    () => 'resolved',
    (err) => err,
  );
  const page = await pageLoaded(client);
  return { client, w, page, init };
}

const observe = (session) => wapulse.observe(session);
const alertCodes = async (session) => (await wapulse.alerts(session)).alerts.map((a) => a.code);
const stateList = (journal) => journal.filter((e) => e.type === 'state').map((e) => (e.reason == null ? e.state : `${e.state}:${e.reason}`));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Until a ping has ended as `counter` counts (beyond `from`, read before the
// page changed) and wapulse has acknowledged everything queued: then no
// heartbeat of an earlier CONNECTED answer is still on its way.
const quiet = (w, counter, from) =>
  waitFor(
    () => {
      const s = w.stats();
      return s.liveness[counter] > from && s.queued === 0 && s.inFlight === 0;
    },
    { what: `a ping ending in ${counter}, then nothing queued`, timeoutMs: 10000 },
  );

test('getState answering CONNECTED → heartbeats with RTT; another state → none; a hung page → none, one getState in flight, HEARTBEAT_STALE; a killed browser → browser_disconnected', async () => {
  const session = 'ww-live';
  const { client, w, page, init } = await started(session, { memoryGaugeName: 'wwebjs_js_heap_bytes_ww_live' });
  // watch the calls the watcher makes through the Client's own getState
  const getState = client.getState;
  let calls = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  client.getState = async function (...args) {
    calls++;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      return await getState.apply(this, args);
    } finally {
      inFlight--;
    }
  };
  assert.equal(await getState.call(client), 'CONNECTED', 'the page answers as WhatsApp Web would');
  client.emit('authenticated');
  client.emit('ready');
  let o = await waitFor(
    async () => {
      const o = await observe(session);
      return o?.session.state === 'connected' && o.heartbeat.count >= 3 ? o : null;
    },
    { what: 'heartbeats from the page', timeoutMs: 10000 },
  );
  assert.equal(typeof o.heartbeat.lastRttMs, 'number');
  assert.ok(o.heartbeat.lastRttMs >= 0 && o.heartbeat.lastRttMs < 1000, `rtt ${o.heartbeat.lastRttMs}`);
  assert.equal(o.heartbeat.healthy, true);
  assert.deepEqual(await alertCodes(session), []);

  // the page answers another state: no heartbeat
  const others = w.stats().liveness.otherAnswers;
  await page.evaluate(() => window.wapulseTest.setState('OPENING'));
  await quiet(w, 'otherAnswers', others);
  const before = (await observe(session)).heartbeat.count;
  await sleep(800);
  assert.equal((await observe(session)).heartbeat.count, before, 'no heartbeat while the page says OPENING');
  await page.evaluate(() => window.wapulseTest.setState('CONNECTED'));
  await waitFor(async () => (await observe(session)).heartbeat.count > before, { what: 'heartbeats again' });

  // the page hangs: its main thread never comes back
  const timeouts = w.stats().liveness.timeouts;
  await page.evaluate(() => window.wapulseTest.hang());
  await quiet(w, 'timeouts', timeouts);
  const hungAt = (await observe(session)).heartbeat.count;
  const callsAtHang = calls;
  await sleep(1500);
  o = await observe(session);
  assert.equal(o.heartbeat.count, hungAt, 'no heartbeat from a hung page');
  assert.equal(o.session.state, 'connected', 'no event says so: only the heartbeats stop');
  assert.ok(calls - callsAtHang <= 1, `getState calls piled up: ${calls - callsAtHang} during the hang`);
  assert.equal(maxInFlight, 1, 'one getState in flight at a time');
  const live = w.stats().liveness;
  assert.ok(live.timeouts >= 1, JSON.stringify(live));
  assert.ok(live.skipped >= 3, JSON.stringify(live));
  await waitFor(async () => (await alertCodes(session)).includes('HEARTBEAT_STALE'), { what: 'HEARTBEAT_STALE', timeoutMs: 10000 });

  // the memory gauge came with the keepalives
  const metrics = await wapulse.get('/metrics');
  const m = /wa_platform_current\{name="wwebjs_js_heap_bytes_ww_live"\} (\d+(\.\d+)?(e\+?\d+)?)/.exec(metrics.body);
  assert.ok(m, 'the heap gauge in /metrics');
  assert.ok(Number(m[1]) > 100000, `heap ${m[1]} bytes`);

  // the browser dies
  killBrowser(client);
  o = await waitFor(
    async () => {
      const o = await observe(session);
      return o.session.state === 'disconnected' ? o : null;
    },
    { what: 'the disconnect' },
  );
  assert.equal(o.session.stateReason, 'browser_disconnected');
  assert.ok(!(await alertCodes(session)).includes('HEARTBEAT_STALE'), 'not connected: the heartbeat rules no longer apply');
  assert.ok((await init) instanceof Error, 'initialize() rejected when the browser went');
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'disconnected:browser_disconnected']);
});

test('a getState that rejects sends nothing and never throws into the bot', async () => {
  const session = 'ww-reject';
  const { client, w, page } = await started(session);
  client.emit('ready');
  await waitFor(async () => (await observe(session))?.heartbeat.count >= 1, { what: 'a heartbeat' });
  // WhatsApp Web's module system gone from the page: the evaluate throws
  const failures = w.stats().liveness.failures;
  await page.evaluate(() => {
    window.require = () => {
      throw new Error('Requiring unknown module "WAWebSocketModel"');
    };
  });
  await quiet(w, 'failures', failures);
  await assert.rejects(client.getState(), /Requiring unknown module/);
  const count = (await observe(session)).heartbeat.count;
  await sleep(800);
  assert.equal((await observe(session)).heartbeat.count, count);
  assert.ok(w.stats().liveness.failures >= 2);
  await client.destroy();
  await w.stop(2000);
});

test('the page crashes → disconnected page_crashed; the browser closing after it says nothing more', async () => {
  const session = 'ww-crash';
  const { client, w, page } = await started(session);
  client.emit('ready');
  await waitFor(async () => (await observe(session))?.session.state === 'connected', { what: 'connected' });
  page.goto('chrome://crash').catch(() => {});
  const o = await waitFor(
    async () => {
      const o = await observe(session);
      return o.session.state === 'disconnected' ? o : null;
    },
    { what: 'the crash' },
  );
  assert.equal(o.session.stateReason, 'page_crashed');
  await client.destroy();
  await sleep(300);
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'disconnected:page_crashed']);
});

test('destroy() by the gateway → disconnected destroyed; initialize() again → reconnecting, on the new browser', async () => {
  const session = 'ww-destroy';
  const { client, w } = await started(session);
  client.emit('ready');
  await waitFor(async () => (await observe(session))?.heartbeat.count >= 1, { what: 'a heartbeat' });
  await client.destroy();
  await waitFor(async () => (await observe(session)).session.state === 'disconnected', { what: 'the disconnect' });
  assert.equal((await observe(session)).session.stateReason, 'destroyed');
  // the usual restart: the same Client, initialized again (a new browser)
  const firstBrowser = client.pupBrowser;
  client.initialize().catch(() => {});
  await waitFor(() => client.pupBrowser && client.pupBrowser !== firstBrowser, { what: 'the new browser' });
  await pageLoaded(client);
  client.emit('ready');
  const count = (await waitFor(async () => (await observe(session)).session.state === 'connected' && observe(session), { what: 'connected' })).heartbeat.count;
  await waitFor(async () => (await observe(session)).heartbeat.count > count, { what: 'heartbeats from the new page' });
  killBrowser(client); // the new browser is followed too
  await waitFor(async () => (await observe(session)).session.stateReason === 'browser_disconnected', { what: 'the new browser gone' });
  await w.stop(2000);
  const o = await observe(session);
  assert.equal(o.reconnect.totalAttempts, 1);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'disconnected:destroyed', 'reconnecting', 'connected', 'disconnected:browser_disconnected']);
});

test('watched after ready (client.info set): the page says the state at once', async () => {
  const session = 'ww-late';
  const client = pageClient(cache.dir);
  clients.push(client);
  client.initialize().catch(() => {});
  await pageLoaded(client);
  // what whatsapp-web.js sets right before `ready` (src/Client.js: new ClientInfo(...))
  client.info = { pushname: 'Loja', wid: { server: 'c.us', user: '5511999999999', _serialized: '5511999999999@c.us' }, platform: 'android' };
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, keepAliveIntervalMs: 60000, logger: null });
  watchers.push(w);
  w.watch(client);
  const o = await waitFor(
    async () => {
      const o = await observe(session);
      return o?.session.state === 'connected' && o.heartbeat.count === 1 ? o : null;
    },
    { what: 'connected from the first answer' },
  );
  assert.equal(typeof o.heartbeat.lastRttMs, 'number');
  await client.destroy();
  await w.stop(2000);
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connected', 'disconnected:destroyed']);
});
