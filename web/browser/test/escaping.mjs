// Whatever a gateway or a URL carries is shown as text, never run: labels
// (the only place event data can carry HTML: session ids are
// [A-Za-z0-9._:@-]), and what the pages echo back from the URL.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '"><img src=x onerror="window.__pwned=2">';

/** Nothing injected ran or was parsed into an element. */
async function clean(page) {
  assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined');
  assert.equal(await page.locator('main script, main img, head script:not([src])').count(), 0);
}

export default function (env) {
  describe('escaping', () => {
    let wp;
    let ctx;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-escaping' } }).start();
      await wp.ingest([
        { session: 'xss-1', type: 'state', state: 'connected' },
        { session: 'xss-1', type: 'labels', labels: { note: SCRIPT, img: IMG } },
      ]);
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('a session id with HTML in it is refused at ingest', async () => {
      const r = await wp.post([{ session: 'a<b', type: 'state', state: 'connected' }]);
      assert.equal(r.status, 400);
      assert.equal(r.body.field, 'session');
      assert.notEqual((await wp.request('/sessions/a%3Cb/observe')).status, 200);
      const { sessions } = await wp.get('/sessions');
      assert.ok(!sessions.some((s) => s.id.includes('<')));
    });

    test('labels are shown literally on /ui/sessions and on the session page', async () => {
      const page = await ctx.newPage();
      await page.goto('/ui/sessions?q=xss-1');
      const tags = await texts(page, 'table#sessions tbody tr td:last-child .tag');
      assert.deepEqual(tags.sort(), [`img=${IMG}`, `note=${SCRIPT}`]);
      await clean(page);

      await page.goto('/ui/sessions/xss-1');
      const headline = await texts(page, 'p.headline .tag');
      assert.deepEqual(headline.sort(), [`img=${IMG}`, `note=${SCRIPT}`]);
      // observe's sections list the labels too.
      assert.ok((await texts(page, '.sections dd')).includes(SCRIPT));
      await clean(page);

      // A live refresh swaps <main> in: still text.
      await page.waitForSelector('span#live[data-state="live"]', { timeout: 10000 });
      await wp.ingest([{ session: 'xss-1', type: 'heartbeat', rtt_ms: 5 }]);
      await page.waitForFunction(() => [...document.querySelectorAll('#events td code')].some((c) => c.textContent === 'heartbeat'), null, {
        timeout: 15000,
      });
      assert.deepEqual((await texts(page, 'p.headline .tag')).sort(), [`img=${IMG}`, `note=${SCRIPT}`]);
      await clean(page);
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('what the URL carries is echoed as text (search, filter errors, unknown session)', async () => {
      const page = await ctx.newPage();
      await page.goto(`/ui/sessions?q=${encodeURIComponent(SCRIPT)}&label=${encodeURIComponent(IMG)}`);
      assert.equal(await page.inputValue('form.filters input[name="q"]'), SCRIPT);
      assert.equal(await page.inputValue('form.filters input[name="label"]'), IMG);
      await clean(page);

      const res = await page.goto(`/ui/sessions?status=${encodeURIComponent(IMG)}`);
      assert.equal(res.status(), 400);
      assert.ok((await page.textContent('p.error')).includes(IMG));
      await clean(page);

      const nf = await page.goto(`/ui/sessions/${encodeURIComponent(IMG)}`);
      assert.equal(nf.status(), 404);
      assert.ok((await page.textContent('main')).includes(IMG));
      await clean(page);
      await page.close();
    });
  });
}
