// Pictures of the dashboard for the docs: starts `wapulse demo`, lets it
// simulate ~20 s (until the overview shows critical sessions), saves
// full-page PNGs of overview, sessions, one session and alerts into
// artifacts/ (light and dark) and copies the light set to
// docs/screenshots/. Run from web/browser: `npm run screenshots`
// (WAPULSE_BIN picks the binary; default ../../target/debug/wapulse).

import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch } from './lib/browser.mjs';
import { capture, demoReady, startDemo } from './lib/capture.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, 'artifacts');
const docs = path.resolve(here, '..', '..', 'docs', 'screenshots');

const browser = await launch();
const demo = await startDemo();
try {
  const tick = await demoReady(demo);
  console.log(`demo: ${tick.sessions} sessions, ${tick.critical} critical, ${tick.firing} alerts firing`);
  await capture(browser, demo, artifacts, { colorScheme: 'dark', suffix: '-dark' });
  const shots = await capture(browser, demo, artifacts);
  await mkdir(docs, { recursive: true });
  for (const [name, { file, overflowX }] of Object.entries(shots)) {
    const to = path.join(docs, `${name}.png`);
    await copyFile(file, to);
    console.log(`${path.relative(process.cwd(), to)}${overflowX > 0 ? ` (${overflowX}px wider than 1280)` : ''}`);
  }
} finally {
  await demo.stop();
  await browser.close();
}
