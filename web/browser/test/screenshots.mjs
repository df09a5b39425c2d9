// Full-page pictures of the four pages of a `wapulse demo` that has run
// ~20 s (critical sessions, firing alerts), into artifacts/ (light and
// dark). screenshots.mjs takes the same set for docs/screenshots.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { capture, demoReady, startDemo } from '../lib/capture.mjs';

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export default function (env) {
  describe('screenshots of wapulse demo', () => {
    let demo;
    before(async () => {
      demo = await startDemo();
    });
    after(async () => {
      await demo?.stop();
    });

    test('overview, sessions, session, alerts and availability, light and dark, into artifacts/', async (t) => {
      const tick = await demoReady(demo);
      for (const scheme of ['light', 'dark']) {
        const shots = await capture(env.browser, demo, ARTIFACTS, { colorScheme: scheme, suffix: scheme === 'dark' ? '-dark' : '' });
        assert.deepEqual(Object.keys(shots), ['overview', 'sessions', 'session', 'alerts', 'availability']);
        for (const [name, { file, overflowX }] of Object.entries(shots)) {
          const png = await readFile(file);
          assert.ok(png.subarray(0, 8).equals(PNG) && png.length > 10_000, `${file} is a picture`);
          if (overflowX > 0) t.diagnostic(`${name} (${scheme}) is ${overflowX}px wider than the viewport`);
        }
      }
      t.diagnostic(`demo after ${Math.round((Date.now() - demo.startedAt) / 1000)} s: ${tick.sessions} sessions, ${tick.critical} critical, ${tick.firing} firing`);
    });
  });
}
