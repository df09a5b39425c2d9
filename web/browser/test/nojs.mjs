// With JavaScript off every page is complete: the server renders it all.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse, ago } from '../lib/wapulse.mjs';

export default function (env) {
  describe('without JavaScript', () => {
    let wp;
    let ctx;
    let page;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-nojs' } }).start();
      await wp.ingest([
        { session: 'nj-ok', type: 'state', state: 'connected' },
        { session: 'nj-ok', type: 'heartbeat', rtt_ms: 40 },
        { session: 'nj-out', type: 'state', state: 'connected', at: ago(20 * 60_000) },
        { session: 'nj-out', type: 'state', state: 'logged_out', reason: 401, at: ago(60_000) },
      ]);
      await wp.settled((t) => t.critical === 1 && t.firing >= 1, 'nj-out critical and firing');
      ctx = await context(env.browser, wp.url, { javaScriptEnabled: false });
      page = await ctx.newPage();
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('the overview has its cards, grid and alerts', async () => {
      const { total } = await wp.get('/sessions');
      await page.goto('/');
      assert.equal(await page.getAttribute('span#live', 'data-state'), 'static', 'no script ran');
      assert.equal(await page.textContent('[data-live="sessions"]'), String(total));
      assert.equal(await page.textContent('[data-live="critical"]'), '1');
      assert.equal(await page.locator('table.grid tbody tr').count(), 7);
      assert.equal((await page.textContent('a[data-live-cell="logged_out/critical"]')).trim(), '1');
      assert.equal(await page.locator('main a[href="/ui/sessions/nj-out"]').count(), 1, 'the firing alert is listed');
      assert.match(await page.textContent('main'), /wapulse itself/);
    });

    test('the sessions list has its rows and its filter form works', async () => {
      const { total } = await wp.get('/sessions');
      await page.goto('/ui/sessions');
      assert.equal((await texts(page, 'table#sessions tbody tr')).length, total);
      await page.selectOption('form.filters select[name="status"]', 'critical');
      await Promise.all([page.waitForURL((u) => u.searchParams.get('status') === 'critical'), page.click('form.filters button')]);
      assert.deepEqual(await texts(page, 'table#sessions tbody tr td:first-child'), ['nj-out']);
    });

    test('the session page has its timeline, alerts and events', async () => {
      await page.goto('/ui/sessions/nj-out');
      const titles = await texts(page, 'svg#timeline rect.band title');
      assert.ok(titles.some((t) => t.startsWith('connected for')), JSON.stringify(titles));
      assert.ok(titles.some((t) => t.startsWith('logged_out for')), JSON.stringify(titles));
      assert.equal(await page.locator('table#events tbody tr').count(), 2);
      assert.ok((await texts(page, 'main table.list code')).includes('LOGGED_OUT'));
    });

    test('the alerts page lists the firing alert and the silence form', async () => {
      await page.goto('/ui/alerts');
      assert.equal(await page.locator('main a[href="/ui/sessions/nj-out"]').count(), 1);
      assert.equal(await page.locator('form.silence button[type="submit"]').count(), 1);
      assert.equal(await page.locator('form.silence input[name="token"]').count(), 1, 'INGEST_TOKEN guards silences');
      assert.deepEqual(ctx.pageErrors, []);
    });
  });
}
