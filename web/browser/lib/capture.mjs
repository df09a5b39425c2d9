// Full-page screenshots of the five pages of a running `wapulse demo`.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { context } from './browser.mjs';
import { Wapulse, waitFor } from './wapulse.mjs';

/** Seconds of simulation before the pictures (the fleet has had trouble). */
export const DEMO_SECONDS = 20;

/** Starts `wapulse demo` (50 sessions) on a free port. */
export function startDemo() {
  return new Wapulse({ command: 'demo', args: ['--sessions', '50'] }).start();
}

/**
 * Waits until the demo has simulated DEMO_SECONDS and the overview shows
 * critical sessions and firing alerts; returns the last tick.
 */
export function demoReady(demo) {
  return waitFor(
    async () => {
      if (Date.now() - demo.startedAt < DEMO_SECONDS * 1000) return false;
      const t = await demo.tick();
      return t.critical > 0 && t.firing > 0 ? t : false;
    },
    { timeoutMs: (DEMO_SECONDS + 60) * 1000, intervalMs: 250, what: 'the demo to show critical sessions' },
  );
}

/**
 * Saves overview, sessions, session, alerts, availability (`<name><suffix>.png`) into
 * `dir`, in `colorScheme`; returns {name: {file, overflowX}}, where
 * overflowX is how many CSS pixels the page is wider than the viewport.
 */
export async function capture(browser, demo, dir, { colorScheme = 'light', suffix = '', width = 1280 } = {}) {
  await mkdir(dir, { recursive: true });
  const ctx = await context(browser, demo.url, { colorScheme, viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  const out = {};
  try {
    // The worst session first: its timeline, alerts and last disconnect.
    await page.goto('/ui/sessions?status=critical');
    const href = await page.getAttribute('table#sessions tbody tr:first-child td:first-child a', 'href');
    const pages = [
      ['overview', '/'],
      ['sessions', '/ui/sessions'],
      ['session', href],
      ['alerts', '/ui/alerts'],
      ['availability', '/ui/availability'],
    ];
    for (const [name, url] of pages) {
      await page.goto(url);
      await page.waitForSelector('span#live[data-state="live"]');
      const file = path.join(dir, `${name}${suffix}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const overflowX = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      out[name] = { file, overflowX };
    }
  } finally {
    await ctx.close();
  }
  return out;
}
