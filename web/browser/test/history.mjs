// The history on the dashboard (issue 31): the overview's last 24 hours,
// a session's week and availability, /ui/availability; each chart with its
// exact values in <title>s and as a table, in dark mode too, and without
// JavaScript.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse, ago } from '../lib/wapulse.mjs';

const HOUR = 3_600_000;

export default function (env) {
  describe('history', () => {
    let wp;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-history' } }).start();
      await wp.ingest([
        { session: 'h-acme', type: 'labels', labels: { tenant: 'acme' } },
        { session: 'h-beta', type: 'labels', labels: { tenant: 'beta' } },
        // h-acme: up 30 h ago, down 10–9 h ago, up since.
        { session: 'h-acme', type: 'state', state: 'connected', at: ago(30 * HOUR) },
        { session: 'h-acme', type: 'state', state: 'reconnecting', at: ago(10 * HOUR) },
        { session: 'h-acme', type: 'state', state: 'connected', at: ago(9 * HOUR) },
        { session: 'h-acme', type: 'message', direction: 'inbound', count: 7, at: ago(2 * HOUR) },
        { session: 'h-acme', type: 'heartbeat', rtt_ms: 120, at: ago(2 * HOUR) },
        // h-beta: up 30 h ago, logged out 3 h ago.
        { session: 'h-beta', type: 'state', state: 'connected', at: ago(30 * HOUR) },
        { session: 'h-beta', type: 'state', state: 'logged_out', reason: 401, at: ago(3 * HOUR) },
      ]);
      await wp.settled((t) => t.critical >= 1, 'h-beta critical');
    });
    after(async () => {
      await wp?.stop();
    });

    test('the overview charts the last 24 hours, every bar titled with its exact value, and as a table', async () => {
      const ctx = await context(env.browser, wp.url);
      const page = await ctx.newPage();
      await page.goto('/');
      const charts = page.locator('figure.chart');
      assert.equal(await charts.count(), 2);
      const titles = await texts(page, 'figure.chart:first-of-type svg rect title');
      // The hour now running: the live fleet (h-acme and the default
      // session connected... at least h-acme; h-beta logged out).
      assert.ok(titles.some((t) => / logged out 1$/.test(t)), JSON.stringify(titles));
      assert.ok(titles.some((t) => / connected \d+$/.test(t)), JSON.stringify(titles));
      // The table holds the same figures: 25 hours, a head naming the states.
      const rows = page.locator('figure.chart:first-of-type table tbody tr');
      assert.equal(await rows.count(), 25);
      const head = await texts(page, 'figure.chart:first-of-type table thead th');
      assert.equal(head[0], 'When');
      assert.ok(head.includes('logged out'), JSON.stringify(head));
      // Hover: a bar answers the pointer (its title is the tooltip).
      const bar = page.locator('figure.chart:first-of-type svg rect').last();
      const before = await bar.evaluate((e) => getComputedStyle(e).opacity);
      await bar.hover();
      const hovered = await bar.evaluate((e) => getComputedStyle(e).opacity);
      assert.equal(before, '1');
      assert.notEqual(hovered, '1');
      assert.deepEqual(ctx.pageErrors, []);
      await ctx.close();
    });

    test('in dark mode the bars take the dark palette', async () => {
      const fill = async (scheme) => {
        const ctx = await context(env.browser, wp.url, { colorScheme: scheme });
        const page = await ctx.newPage();
        await page.goto('/');
        const f = await page.locator('figure.chart svg rect.critical').first().evaluate((e) => getComputedStyle(e).fill);
        await ctx.close();
        return f;
      };
      const [light, dark] = [await fill('light'), await fill('dark')];
      assert.ok(light && dark && light !== dark, `${light} / ${dark}`);
    });

    test('a session page shows its week, availability, hourly messages and outages, without JavaScript too', async () => {
      for (const javaScriptEnabled of [true, false]) {
        const ctx = await context(env.browser, wp.url, { javaScriptEnabled });
        const page = await ctx.newPage();
        await page.goto('/ui/sessions/h-acme');
        const bands = await texts(page, 'svg#week rect.band title');
        assert.ok(bands.some((t) => t.startsWith('reconnecting for 1h')), JSON.stringify(bands));
        const availability = await texts(page, 'table#availability tbody tr th');
        assert.deepEqual(availability, ['24 h', '7 d', '30 d']);
        const day = await page.textContent('table#availability tbody tr:first-child td');
        // Down 1 h of the last 24: 95.833 %.
        assert.match(day, /^95\.83\d %/);
        const messages = await texts(page, 'figure.chart svg[aria-label^="Messages"] rect title');
        assert.ok(messages.some((t) => / in 7$/.test(t)), JSON.stringify(messages));
        const rtt = await texts(page, 'figure.chart svg[aria-label^="Mean heartbeat"] rect title');
        assert.ok(rtt.some((t) => / round trip 120 ms$/.test(t)), JSON.stringify(rtt));
        assert.deepEqual(await texts(page, 'table#outages tbody td:last-child'), ['1h']);
        assert.deepEqual(ctx.pageErrors, []);
        await ctx.close();
      }
    });

    test('the availability page ranks label values and the worst sessions', async () => {
      const ctx = await context(env.browser, wp.url, { javaScriptEnabled: false });
      const page = await ctx.newPage();
      await page.goto('/ui/availability?window=24h');
      const groups = await texts(page, 'table#groups tbody tr td:first-child');
      assert.deepEqual(groups, ['beta', 'acme'], 'worst first');
      const worst = await texts(page, 'table#worst tbody tr td:first-child');
      assert.equal(worst[0], 'h-beta');
      await Promise.all([page.waitForURL((u) => u.pathname === '/ui/sessions/h-beta'), page.click('table#worst a[href="/ui/sessions/h-beta"]')]);
      await ctx.close();
    });
  });
}
