// A tenant's status page (issue 30): without JavaScript, each of its
// sessions as operational / degraded / down with since-when and 30-day
// availability, what is wrong in plain words, and nothing of any other
// tenant, label or alert text.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { context, texts } from '../lib/browser.mjs';
import { Wapulse, ago } from '../lib/wapulse.mjs';

const HOUR = 3_600_000;

export default function (env) {
  describe('status page', () => {
    let wp;
    let dir;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'wapulse-status-'));
      const config = path.join(dir, 'wapulse.toml');
      await writeFile(config, '[status_pages]\nby = "tenant"\npublic = true\n');
      wp = await new Wapulse({ env: { INGEST_TOKEN: 'ingest-status', WAPULSE_CONFIG: config } }).start();
      await wp.ingest([
        { session: 'st-acme-1', type: 'labels', labels: { tenant: 'acme', region: 'eu-secret' } },
        { session: 'st-acme-2', type: 'labels', labels: { tenant: 'acme' } },
        { session: 'st-beta-1', type: 'labels', labels: { tenant: 'beta' } },
        { session: 'st-acme-1', type: 'state', state: 'connected' },
        { session: 'st-acme-1', type: 'heartbeat', rtt_ms: 40 },
        // Up two hours ago, logged out for the last one: 50 % over the window.
        { session: 'st-acme-2', type: 'state', state: 'connected', at: ago(2 * HOUR) },
        { session: 'st-acme-2', type: 'state', state: 'logged_out', reason: 401, at: ago(HOUR) },
        { session: 'st-acme-2', type: 'error', kind: 'send', message: 'internal-error-text-xyz' },
        { session: 'st-beta-1', type: 'state', state: 'logged_out', reason: 403 },
      ]);
    });
    after(async () => {
      await wp?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('shows its sessions in plain words, complete without JavaScript', async () => {
      const ctx = await context(env.browser, wp.url, { javaScriptEnabled: false });
      const page = await ctx.newPage();
      const res = await page.goto('/status/acme');
      assert.equal(res.status(), 200);
      assert.equal(res.headers()['cache-control'], 'public, max-age=30');
      assert.equal(await page.title(), 'acme: WhatsApp status');
      assert.equal((await page.textContent('p.overall')).trim(), 'Some connections down');
      assert.deepEqual(await texts(page, 'table.status-table tbody th'), ['st-acme-1', 'st-acme-2']);
      const cells = await texts(page, 'table.status-table tbody td');
      assert.equal(cells[0], 'operational');
      assert.match(cells[1], /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      assert.equal(cells[3], 'down');
      const share = Number.parseFloat(cells[5]);
      assert.ok(share > 49 && share < 51, `st-acme-2 was up half of its observed time: ${cells[5]}`);
      assert.deepEqual(await texts(page, 'ul.incidents li'), [
        'st-acme-2 was logged out of WhatsApp and must be linked again.',
      ]);
      assert.equal(await page.locator('script').count(), 0);
      assert.deepEqual(ctx.pageErrors, []);
      await ctx.close();
    });

    test('leaks no other tenant, label, code or error text', async () => {
      const html = await (await fetch(`${wp.url}/status/acme`)).text();
      for (const never of ['beta', 'st-beta-1', 'tenant', 'eu-secret', 'region', 'LOGGED_OUT', '401', 'internal-error-text-xyz']) {
        assert.ok(!html.includes(never), `${never} in the page`);
      }
      const other = await fetch(`${wp.url}/status/nobody`);
      assert.equal(other.status, 404);
    });
  });
}
