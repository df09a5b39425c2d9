// /ui/sessions/{id}: the state timeline and the journal's events.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse, ago } from '../lib/wapulse.mjs';

const MIN = 60_000;

export default function (env) {
  describe('session page', () => {
    let wp;
    let ctx;
    const events = [
      { session: 'tl-1', type: 'state', state: 'connecting', at: ago(50 * MIN) },
      { session: 'tl-1', type: 'state', state: 'connected', at: ago(49 * MIN) },
      { session: 'tl-1', type: 'heartbeat', rtt_ms: 84, at: ago(30 * MIN) },
      { session: 'tl-1', type: 'message', direction: 'inbound', count: 3, at: ago(20 * MIN) },
      { session: 'tl-1', type: 'state', state: 'disconnected', reason: 408, at: ago(10 * MIN) },
    ];
    before(async () => {
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-session' } }).start();
      await wp.ingest(events);
      await wp.ingest([{ session: 'other', type: 'state', state: 'connected' }]);
      ctx = await context(env.browser, wp.url);
    });
    after(async () => {
      await ctx?.close();
      await wp?.stop();
    });

    test('opened from the list, it shows a timeline band per state and the ingested events', async () => {
      const page = await ctx.newPage();
      await page.goto('/ui/sessions?q=tl-1');
      await Promise.all([page.waitForURL('**/ui/sessions/tl-1'), page.click('table#sessions a[href="/ui/sessions/tl-1"]')]);
      assert.match(await page.textContent('h1'), /tl-1/);

      const bands = await page.$$eval('svg#timeline rect.band', (rs) =>
        rs.map((r) => ({
          cls: r.getAttribute('class'),
          width: Number(r.getAttribute('width')),
          title: r.querySelector('title')?.textContent ?? '',
        })),
      );
      assert.ok(bands.length >= 1, 'at least one band');
      for (const b of bands) assert.ok(b.width > 0, `band ${b.title} has a width`);
      const byState = (s) => bands.find((b) => b.title.startsWith(`${s} for `));
      assert.ok(byState('connecting'), `a connecting band in ${JSON.stringify(bands)}`);
      assert.equal(byState('connected')?.cls, 'band ok');
      assert.equal(byState('disconnected')?.cls, 'band critical');
      // 39 minutes connected against 10 disconnected (of a 6 hour window).
      assert.ok(byState('connected').width > 3 * byState('disconnected').width);

      const rows = await page.$$eval('table#events tbody tr', (trs) =>
        trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())),
      );
      assert.equal(rows.length, events.length);
      const kinds = rows.map((r) => r[2]).sort();
      assert.deepEqual(kinds, ['heartbeat', 'message', 'state', 'state', 'state']);
      assert.match(rows.find((r) => r[2] === 'heartbeat')[3], /rtt_ms=84/);
      assert.match(rows.find((r) => r[2] === 'message')[3], /count=3/);
      const states = rows.filter((r) => r[2] === 'state').map((r) => r[3]);
      for (const s of ['connecting', 'connected', 'disconnected']) {
        assert.ok(states.some((d) => d.includes(`state=${s}`)), `a ${s} event in ${JSON.stringify(states)}`);
      }
      // Only this session's events.
      assert.ok(!(await texts(page, 'table#events td')).some((t) => t.includes('other')));
      assert.deepEqual(ctx.pageErrors, []);
      await page.close();
    });

    test('an unknown session is a 404 page', async () => {
      const page = await ctx.newPage();
      const res = await page.goto('/ui/sessions/nope-404');
      assert.equal(res.status(), 404);
      assert.match(await page.textContent('main'), /No session `nope-404`/);
      await page.close();
    });
  });
}
