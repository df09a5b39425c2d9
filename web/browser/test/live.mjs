// `/` stays current without a reload: the SSE ticks update the counts and,
// when the fleet changed, the page's <main> is swapped in place.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

export default function (env) {
  describe('live updates', () => {
    let wp;
    let ctx;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-live' } }).start();
      await wp.ingest([
        { session: 'calm-1', type: 'state', state: 'connected' },
        { session: 'calm-2', type: 'state', state: 'connected' },
      ]);
      await wp.settled((t) => t.sessions >= 2 && t.critical === 0, 'a calm fleet');
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('a new critical session shows up on an open overview without a reload', async () => {
      const page = await ctx.newPage();
      await page.goto('/');
      await page.waitForSelector('span#live[data-state="live"]', { timeout: 10000 });
      const sessions = Number(await page.textContent('[data-live="sessions"]'));
      assert.equal(await page.textContent('[data-live="critical"]'), '0');
      assert.equal(await page.locator('a[data-live-cell="logged_out/critical"]').textContent(), '0');

      let navigations = 0;
      page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) navigations++;
      });
      await page.evaluate(() => {
        window.__marker = 'still here';
      });

      await wp.ingest([{ session: 'live-crit', type: 'state', state: 'logged_out', reason: 401 }]);

      await page.waitForFunction(
        (want) =>
          document.querySelector('[data-live="sessions"]')?.textContent === String(want) &&
          document.querySelector('[data-live="critical"]')?.textContent === '1',
        sessions + 1,
        { timeout: 15000 },
      );
      // The version moved, so <main> was fetched again: the grid and the
      // alert list (not [data-live]) show the new session too.
      await page.waitForSelector('main a[href="/ui/sessions/live-crit"]', { timeout: 15000 });
      assert.equal((await page.locator('a[data-live-cell="logged_out/critical"]').textContent()).trim(), '1');

      // wapulse's own ingest: the total counts the event, and the rate
      // between ticks is shown (pages without JavaScript show the total).
      await page.waitForFunction(
        () => /^\d+\/s now$/.test(document.querySelector('[data-rate="ingest"]')?.textContent ?? ''),
        null,
        { timeout: 15000 },
      );
      assert.ok(Number(await page.textContent('[data-live="ingest"]')) >= 1);

      assert.equal(await page.evaluate(() => window.__marker), 'still here');
      assert.equal(navigations, 0, 'no navigation happened');
      assert.equal(await page.getAttribute('span#live', 'data-state'), 'live');
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });
  });
}
