// `/`: the cards agree with the API, and a grid cell leads to exactly its
// sessions.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

export default function (env) {
  describe('overview', () => {
    let wp;
    let ctx;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-overview' } }).start();
      const events = [];
      for (let i = 1; i <= 5; i++) events.push({ session: `ok-${i}`, type: 'state', state: 'connected' });
      events.push({ session: 'out-1', type: 'state', state: 'logged_out', reason: 401 });
      events.push({ session: 'out-2', type: 'state', state: 'logged_out', reason: 401 });
      events.push({ session: 'recon-1', type: 'state', state: 'reconnecting' });
      await wp.ingest(events);
      await wp.settled((t) => t.critical === 2, 'two critical sessions');
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('the sessions card shows GET /sessions total, and the grid adds up to it', async () => {
      const { total } = await wp.get('/sessions');
      assert.ok(total >= 8, `8 sessions ingested, total ${total}`);
      const page = await ctx.newPage();
      await page.goto('/');
      assert.equal(await page.textContent('[data-live="sessions"]'), String(total));
      assert.equal(await page.textContent('[data-live="critical"]'), '2');
      // The grid: a row per state, whose "All" cells add up to the total.
      const all = await texts(page, 'table.grid tbody tr td:last-child');
      assert.equal(all.length, 7);
      assert.equal(all.reduce((n, x) => n + Number(x), 0), total);
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('a non-zero grid cell leads to /ui/sessions with its state and status, and exactly its rows', async () => {
      const page = await ctx.newPage();
      await page.goto('/');
      const cell = page.locator('a[data-live-cell="logged_out/critical"]');
      assert.equal((await cell.textContent()).trim(), '2');
      await cell.click();
      await page.waitForURL((u) => u.pathname === '/ui/sessions');
      const url = new URL(page.url());
      assert.equal(url.searchParams.get('state'), 'logged_out');
      assert.equal(url.searchParams.get('status'), 'critical');
      const ids = await texts(page, 'table#sessions tbody tr td:first-child a');
      assert.deepEqual(ids.sort(), ['out-1', 'out-2']);
      assert.deepEqual(await texts(page, 'table#sessions tbody tr td:nth-child(2) .badge'), ['✖ critical', '✖ critical']);
      assert.deepEqual(await texts(page, 'table#sessions tbody tr td:nth-child(3) .badge'), ['⏏ logged_out', '⏏ logged_out']);
      assert.equal(await page.textContent('#total'), '2');
      // The filter form shows the filter it was opened with.
      assert.equal(await page.inputValue('select[name="state"]'), 'logged_out');
      assert.equal(await page.inputValue('select[name="status"]'), 'critical');
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });
  });
}
