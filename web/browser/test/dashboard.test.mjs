// The dashboard in a real browser. One Chromium for the whole run (node's
// test runner in Node 20 runs every *.test file in a process of its own,
// so the suites are files imported here, each starting its own wapulse in
// its before() and stopping it in its after()).

import { after, before } from 'node:test';

import { launch } from '../lib/browser.mjs';
import overview from './overview.mjs';
import sessions from './sessions.mjs';
import session from './session.mjs';
import live from './live.mjs';
import silences from './silences.mjs';
import escaping from './escaping.mjs';
import nojs from './nojs.mjs';
import keyboard from './keyboard.mjs';
import history from './history.mjs';
import status from './status.mjs';
import screenshots from './screenshots.mjs';

const env = { browser: null };

before(async () => {
  env.browser = await launch();
});

after(async () => {
  await env.browser?.close();
});

for (const suite of [overview, sessions, session, live, silences, escaping, nojs, keyboard, history, status, screenshots]) {
  suite(env);
}
