// "/" jumps to the session search, except while typing in a field.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context } from '../lib/browser.mjs';
import { Wapulse } from '../lib/wapulse.mjs';

export default function (env) {
  describe('keyboard', () => {
    let wp;
    let ctx;
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-keyboard' } }).start();
      await wp.ingest([{ session: 'kb-1', type: 'state', state: 'connected' }]);
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('pressing "/" focuses input#q, and the search finds the session', async () => {
      const page = await ctx.newPage();
      await page.goto('/');
      assert.notEqual(await page.evaluate(() => document.activeElement?.id), 'q');
      await page.keyboard.press('/');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'q');
      assert.equal(await page.inputValue('input#q'), '', 'the "/" itself is not typed');
      await page.keyboard.type('kb-');
      await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === 'kb-'), page.keyboard.press('Enter')]);
      assert.equal(new URL(page.url()).pathname, '/ui/sessions');
      assert.equal(await page.textContent('table#sessions tbody tr td:first-child'), 'kb-1');
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('"/" typed into another field stays there', async () => {
      const page = await ctx.newPage();
      await page.goto('/ui/sessions');
      await page.click('form.filters input[name="label"]');
      await page.keyboard.type('region/eu');
      assert.equal(await page.inputValue('form.filters input[name="label"]'), 'region/eu');
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'label');
      await page.close();
    });
  });
}
