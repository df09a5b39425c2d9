// Figures for the docs, not a test: how fast the overview paints and how
// many bytes it moves, on a wapulse holding 100,000 sessions.
//
// Starts `wapulse serve` (WAPULSE_BIN, default ../../target/debug/wapulse:
// say which build you measured) on a free loopback port, loads SESSIONS
// sessions (one `state` event each, POST /v1/events in batches of 5,000),
// then opens `/` RUNS times in Debian's Chromium, each in a fresh context
// (cold cache) and once more warm, and prints:
// - first-paint / first-contentful-paint (performance.getEntriesByType('paint')),
//   time to first byte, DOMContentLoaded and load;
// - the transferred size of the page and every asset (resource timing's
//   transferSize: headers and body as they came over the wire);
// - the HTML, CSS and JS as served, raw and through `gzip -c`;
// - server render times of `/` and `/ui/sessions` from node (no browser).
//
//   node measure.mjs [--sessions 100000] [--runs 5] [--json out.json]

import { execFileSync, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { context, launch } from './lib/browser.mjs';
import { WAPULSE_BIN, Wapulse } from './lib/wapulse.mjs';

const { values: opt } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});
const SESSIONS = Number(opt.sessions);
const RUNS = Number(opt.runs);
const BATCH = 5000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x) => `${x.toFixed(1)} ms`;
const kb = (x) => `${(x / 1024).toFixed(1)} KiB`;

function stateOf(i) {
  if (i % 50 === 0) return { state: 'logged_out', reason: 401 };
  if (i % 20 === 1) return { state: 'reconnecting' };
  if (i % 100 === 7) return { state: 'qr_required' };
  return { state: 'connected' };
}

const version = execFileSync(WAPULSE_BIN, ['--version']).toString().trim();
const build = /\/target\/release\//.test(WAPULSE_BIN) ? 'release' : /\/target\/debug\//.test(WAPULSE_BIN) ? 'debug' : 'unknown';
console.log(`${version} (${build} build: ${WAPULSE_BIN})`);

const wp = await new Wapulse({ env: { INGEST_TOKEN: 'measure' } }).start();
const browser = await launch();
const out = { version, build, binary: WAPULSE_BIN, sessions: SESSIONS, runs: RUNS, chromium: browser.version() };
try {
  // ------------------------------------------------------------- load
  const t0 = performance.now();
  const batchMs = [];
  for (let start = 0; start < SESSIONS; start += BATCH) {
    const events = [];
    for (let i = start; i < Math.min(start + BATCH, SESSIONS); i++) {
      events.push({ session: `m-${String(i).padStart(6, '0')}`, type: 'state', ...stateOf(i) });
    }
    const b0 = performance.now();
    await wp.ingest(events);
    batchMs.push(performance.now() - b0);
  }
  const loadMs = performance.now() - t0;
  const tick = await wp.settled(
    (t) => t.sessions >= SESSIONS && t.ok + t.warning + t.critical >= t.sessions,
    `${SESSIONS} sessions judged by the evaluator`,
    600000,
  );
  out.load = { ms: loadMs, batches: batchMs.length, batchMedianMs: median(batchMs), settledMs: performance.now() - t0 };
  out.fleet = { sessions: tick.sessions, critical: tick.critical, warning: tick.warning, ok: tick.ok, firing: tick.firing };
  console.log(`loaded ${SESSIONS} sessions in ${ms(loadMs)} (${batchMs.length} batches of ${BATCH}, median ${ms(median(batchMs))}); evaluator caught up after ${ms(out.load.settledMs)}`);
  console.log(`fleet: ${JSON.stringify(out.fleet)}`);

  // ------------------------------------------------------------- server render times (no browser)
  out.server = {};
  for (const p of ['/', '/ui/sessions', '/ui/sessions?status=critical', '/ui/alerts']) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const s = performance.now();
      const res = await fetch(wp.url + p);
      bytes = (await res.arrayBuffer()).byteLength;
      times.push(performance.now() - s);
    }
    out.server[p] = { medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), bytes };
    console.log(`GET ${p}: median ${ms(median(times))} (min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))}), ${kb(bytes)}`);
  }

  // ------------------------------------------------------------- in the browser
  const measure = async (page) => {
    await page.waitForFunction(() => performance.getEntriesByType('navigation')[0]?.loadEventEnd > 0);
    // Paint entries are recorded when the frame is painted, which may come
    // after `load` in headless Chromium: wait for both.
    await page.waitForFunction(() => performance.getEntriesByType('paint').length >= 2);
    return page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
      const resources = performance
        .getEntriesByType('resource')
        .filter((r) => !r.name.includes('/ui/live'))
        .map((r) => ({
          name: new URL(r.name).pathname,
          transferSize: r.transferSize,
          encodedBodySize: r.encodedBodySize,
          decodedBodySize: r.decodedBodySize,
        }));
      return {
        firstPaint: paint['first-paint'],
        firstContentfulPaint: paint['first-contentful-paint'],
        ttfb: nav.responseStart,
        responseEnd: nav.responseEnd,
        domContentLoaded: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        document: { transferSize: nav.transferSize, encodedBodySize: nav.encodedBodySize, decodedBodySize: nav.decodedBodySize },
        resources,
        transferred: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
        domNodes: document.getElementsByTagName('*').length,
      };
    });
  };
  const cold = [];
  let warm;
  for (let i = 0; i < RUNS; i++) {
    const ctx = await context(browser, wp.url);
    const page = await ctx.newPage();
    await page.goto('/');
    cold.push(await measure(page));
    if (i === RUNS - 1) {
      // Warm: the same context again (CSS and JS cached for an hour).
      const again = await ctx.newPage();
      await again.goto('/');
      warm = await measure(again);
    }
    await ctx.close();
  }
  const pick = (k) => median(cold.map((r) => r[k]));
  out.browser = {
    cold: {
      firstPaintMs: pick('firstPaint'),
      firstContentfulPaintMs: pick('firstContentfulPaint'),
      ttfbMs: pick('ttfb'),
      domContentLoadedMs: pick('domContentLoaded'),
      loadMs: pick('load'),
      transferredBytes: pick('transferred'),
      runs: cold,
    },
    warm,
  };
  const c = out.browser.cold;
  console.log(`overview in Chromium ${out.chromium}, median of ${RUNS} cold loads:`);
  console.log(`  first paint ${ms(c.firstPaintMs)}, first contentful paint ${ms(c.firstContentfulPaintMs)}, TTFB ${ms(c.ttfbMs)}, DOMContentLoaded ${ms(c.domContentLoadedMs)}, load ${ms(c.loadMs)}`);
  console.log(`  transferred ${c.transferredBytes} B (${kb(c.transferredBytes)}): document ${cold[0].document.transferSize} B, ` +
    cold[0].resources.map((r) => `${r.name} ${r.transferSize} B`).join(', '));
  console.log(`  DOM elements: ${cold[0].domNodes}`);
  console.log(`  warm (same context): FCP ${ms(warm.firstContentfulPaint)}, transferred ${warm.transferred} B (` +
    warm.resources.map((r) => `${r.name} ${r.transferSize} B`).join(', ') + ')');

  // ------------------------------------------------------------- bytes as served, and gzip -c
  out.served = {};
  for (const p of ['/', '/ui/static/app.css', '/ui/static/app.js']) {
    const res = await fetch(wp.url + p);
    const body = Buffer.from(await res.arrayBuffer());
    const gz = spawnSync('gzip', ['-c'], { input: body, maxBuffer: 64 << 20 });
    if (gz.status !== 0) throw new Error(`gzip -c: ${gz.stderr}`);
    out.served[p] = { bytes: body.length, gzipBytes: gz.stdout.length, contentEncoding: res.headers.get('content-encoding') };
    console.log(`${p}: ${body.length} B as served (Content-Encoding: ${res.headers.get('content-encoding') ?? 'none'}), gzip -c ${gz.stdout.length} B`);
  }
  const sum = (k) => Object.values(out.served).reduce((n, x) => n + x[k], 0);
  console.log(`HTML+CSS+JS: ${sum('bytes')} B raw, ${sum('gzipBytes')} B with gzip -c`);
} finally {
  await browser.close();
  await wp.stop();
}
if (opt.json) await writeFile(opt.json, JSON.stringify(out, null, 2));
