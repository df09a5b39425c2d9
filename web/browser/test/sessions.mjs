// /ui/sessions: the filter form puts its filter in the URL; keyset paging
// shows 50 rows a page, every session once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

const CONNECTED = 120;
const DISCONNECTED = 7;

export default function (env) {
  describe('sessions list', () => {
    let wp;
    let ctx;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-sessions' } }).start();
      const events = [];
      for (let i = 0; i < CONNECTED; i++) {
        events.push({ session: `p${String(i).padStart(3, '0')}`, type: 'state', state: 'connected' });
      }
      for (let i = 0; i < DISCONNECTED; i++) events.push({ session: `d${i}`, type: 'state', state: 'disconnected' });
      await wp.ingest(events);
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('the filter form puts the state in the URL and lists only that state', async () => {
      const page = await ctx.newPage();
      await page.goto('/ui/sessions');
      await page.selectOption('form.filters select[name="state"]', 'disconnected');
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get('state') === 'disconnected'),
        page.click('form.filters button[type="submit"]'),
      ]);
      const ids = await texts(page, 'table#sessions tbody tr td:first-child a');
      assert.deepEqual(ids.sort(), Array.from({ length: DISCONNECTED }, (_, i) => `d${i}`));
      const states = await texts(page, 'table#sessions tbody tr td:nth-child(3) .badge');
      assert.equal(states.length, DISCONNECTED);
      for (const s of states) assert.equal(s, '○ disconnected');
      assert.equal(await page.textContent('#total'), String(DISCONNECTED));
      assert.equal(await page.inputValue('form.filters select[name="state"]'), 'disconnected');
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('paging: 50 rows a page, Next leads to the next 50, every session exactly once', async () => {
      const page = await ctx.newPage();
      await page.goto('/ui/sessions?state=connected');
      assert.equal(await page.textContent('#total'), String(CONNECTED));
      const seen = [];
      const sizes = [];
      for (let n = 0; ; n++) {
        assert.ok(n < 5, 'too many pages');
        const ids = await texts(page, 'table#sessions tbody tr td:first-child a');
        sizes.push(ids.length);
        seen.push(...ids);
        if (n > 0) assert.equal(await page.locator('nav.pager a', { hasText: 'First' }).count(), 1);
        const next = page.locator('nav.pager a[rel="next"]');
        if ((await next.count()) === 0) break;
        const href = await next.getAttribute('href');
        assert.match(href, /state=connected/, 'Next keeps the filter');
        await Promise.all([page.waitForURL((u) => u.searchParams.has('after')), next.click()]);
        assert.equal(new URL(page.url()).searchParams.get('after'), ids.at(-1));
      }
      assert.deepEqual(sizes, [50, 50, CONNECTED - 100]);
      assert.equal(new Set(seen).size, seen.length, 'no session on two pages');
      const want = Array.from({ length: CONNECTED }, (_, i) => `p${String(i).padStart(3, '0')}`);
      assert.deepEqual([...seen].sort(), want);
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('unfiltered, the first page has 50 rows and Next the next 50, none repeated', async () => {
      const { total } = await wp.get('/sessions');
      const page = await ctx.newPage();
      await page.goto('/ui/sessions');
      assert.equal(await page.textContent('#total'), String(total));
      const first = await texts(page, 'table#sessions tbody tr td:first-child a');
      assert.equal(first.length, 50);
      await Promise.all([page.waitForURL((u) => u.searchParams.has('after')), page.click('nav.pager a[rel="next"]')]);
      const second = await texts(page, 'table#sessions tbody tr td:first-child a');
      assert.equal(second.length, 50);
      assert.deepEqual(first.filter((id) => second.includes(id)), []);
      await page.close();
    });
  });
}
