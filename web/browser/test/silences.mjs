// /ui/alerts with READ_TOKEN and ADMIN_TOKEN: sign in once (an HttpOnly
// cookie; the token in no URL), create a silence, expire it; a wrong admin
// token is refused and changes nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

const READ = 'read-Zq81vX4kTnY';
const ADMIN = 'admin-Hw27pLm0QaE';
const INGEST = 'ingest-Ub93rCd5JsK';

export default function (env) {
  describe('silences', () => {
    let wp;
    let ctx;
    let page;
    const urls = [];
    before(async () => {
      wp = await new Wapulse({ env: { READ_TOKEN: READ, ADMIN_TOKEN: ADMIN, INGEST_TOKEN: INGEST } }).start();
      await wp.ingest([{ session: 'maint-1', type: 'state', state: 'logged_out', reason: 401 }]);
      ctx = await context(env.browser, wp.url);
      ctx.on('request', (r) => urls.push(r.url()));
      page = await ctx.newPage();
      page.on('framenavigated', (f) => urls.push(f.url()));
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    const silences = async () => (await wp.request('/v1/silences', { token: ADMIN })).body.silences;
    const row = (value) => page.locator('table#silences tbody tr', { hasText: `session="${value}"` });

    test('the pages ask for READ_TOKEN once and keep it in an HttpOnly cookie', async () => {
      const res = await page.goto('/ui/alerts');
      const at = new URL(page.url());
      assert.equal(at.pathname, '/ui/login');
      assert.equal(at.searchParams.get('next'), '/ui/alerts');
      assert.equal(res.status(), 200);

      await page.fill('input[name="token"]', 'not-the-token');
      await Promise.all([page.waitForResponse((r) => r.url().endsWith('/ui/login')), page.click('button[type="submit"]')]);
      assert.match(await page.textContent('p.error'), /not a token of this wapulse/);
      assert.deepEqual(await ctx.cookies(), []);

      await page.fill('input[name="token"]', READ);
      await Promise.all([page.waitForURL((u) => u.pathname === '/ui/alerts'), page.click('button[type="submit"]')]);
      assert.equal(await page.textContent('h1'), 'Alerts');
      const [cookie, ...others] = await ctx.cookies();
      assert.deepEqual(others, []);
      assert.equal(cookie.name, 'wapulse_token');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the token');
      // The live stream is allowed with the cookie.
      await page.waitForSelector('span#live[data-state="live"]', { timeout: 10000 });
    });

    test('a silence is created from the form, listed as active, and expired', async () => {
      assert.equal(new URL(page.url()).pathname, '/ui/alerts');
      const form = page.locator('form.silence');
      await form.locator('input[name="name"]').fill('session');
      await form.locator('input[name="value"]').fill('maint-1');
      await form.locator('input[name="duration"]').fill('2h');
      await form.locator('input[name="created_by"]').fill('browser-test');
      await form.locator('input[name="comment"]').fill('planned maintenance');
      await form.locator('input[name="token"]').fill(ADMIN);
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get('saved') === 'created'),
        form.locator('button[type="submit"]').click(),
      ]);
      assert.match(await page.textContent('p.notice'), /saved/);
      assert.equal(await row('maint-1').count(), 1);
      assert.match(await row('maint-1').locator('td').first().textContent(), /active/);
      assert.match(await row('maint-1').textContent(), /browser-test/);
      let listed = await silences();
      assert.equal(listed.length, 1);
      assert.equal(listed[0].status, 'active');
      assert.deepEqual(listed[0].matchers.map((m) => [m.name, m.value]), [['session', 'maint-1']]);

      await row('maint-1').locator('input[name="token"]').fill(ADMIN);
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get('saved') === 'expired'),
        row('maint-1').locator('button', { hasText: 'Expire' }).click(),
      ]);
      assert.match(await page.textContent('p.notice'), /expired/);
      assert.match(await row('maint-1').locator('td').first().textContent(), /expired/);
      assert.equal(await row('maint-1').locator('button').count(), 0, 'an expired silence has no Expire button');
      listed = await silences();
      assert.equal(listed.length, 1);
      assert.equal(listed[0].status, 'expired');
    });

    test('a wrong admin token shows the error and creates or expires nothing', async () => {
      await page.goto('/ui/alerts');
      const form = page.locator('form.silence');
      await form.locator('input[name="value"]').fill('maint-2');
      await form.locator('input[name="created_by"]').fill('browser-test');
      await form.locator('input[name="comment"]').fill('should not exist');
      await form.locator('input[name="token"]').fill('wrong-admin-token');
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/ui/silences') && r.request().method() === 'POST'),
        form.locator('button[type="submit"]').click(),
      ]);
      assert.equal(res.status(), 401);
      await page.waitForSelector('p.error');
      assert.match(await page.textContent('p.error'), /Wrong admin token/);
      assert.equal(await row('maint-2').count(), 0);
      let listed = await silences();
      assert.equal(listed.length, 1, 'still only the first silence');
      assert.ok(!listed.some((s) => s.matchers.some((m) => m.value === 'maint-2')));

      // Expire with a wrong token: a silence made with the right one stays active.
      await page.goto('/ui/alerts');
      await form.locator('input[name="value"]').fill('maint-3');
      await form.locator('input[name="created_by"]').fill('browser-test');
      await form.locator('input[name="comment"]').fill('stays');
      await form.locator('input[name="token"]').fill(ADMIN);
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get('saved') === 'created'),
        form.locator('button[type="submit"]').click(),
      ]);
      await row('maint-3').locator('input[name="token"]').fill('wrong-admin-token');
      const [expire] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/expire')),
        row('maint-3').locator('button', { hasText: 'Expire' }).click(),
      ]);
      assert.equal(expire.status(), 401);
      await page.waitForSelector('p.error');
      assert.match(await page.textContent('p.error'), /Wrong admin token/);
      listed = await silences();
      assert.equal(listed.find((s) => s.matchers[0].value === 'maint-3')?.status, 'active');
      assert.deepEqual(ctx.pageErrors, []);
    });

    test('neither token ever appeared in a URL', () => {
      assert.ok(urls.length > 5, `requests were recorded (${urls.length})`);
      for (const u of urls) {
        const decoded = decodeURIComponent(u);
        for (const secret of [READ, ADMIN]) assert.ok(!decoded.includes(secret), `${secret} in ${u}`);
      }
    });
  });
}
