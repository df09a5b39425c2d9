// The real whatsapp-web.js package, and a WhatsApp Web stand-in for it to
// load in a real Chromium.
//
// Constructing a Client launches nothing; its events are emitted through the
// Client's own EventEmitter with the payloads whatsapp-web.js builds (real
// `Message` objects from message models, the WAState and MessageAck values
// of its Constants).
//
// For liveness, `pageClient()` makes a Client whose own initialize() launches
// Debian's Chromium (puppeteer, executablePath) and loads "WhatsApp Web"
// through whatsapp-web.js' own LocalWebCache: the cached index.html it serves
// for https://web.whatsapp.com/ is ours, with the one module Client.getState()
// reads (`window.require('WAWebSocketModel').Socket.state`). No network is
// used. WhatsApp Web's own scripts never load, so initialize() stays in
// inject(), polling for `window.Debug.VERSION` until authTimeoutMs (an hour
// here) or the browser goes: pupBrowser and pupPage are the Client's own,
// set by its initialize().

import { mkdtemp, writeFile, rm, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wwebjs from 'whatsapp-web.js';

export const { Client, Message, Events, WAState, MessageAck, version: WWEBJS_VERSION } = wwebjs;
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const here = path.dirname(fileURLToPath(import.meta.url));

const BROWSER_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'];

/** A real Client, never initialized (nothing launched). */
export function newClient(extra = {}) {
  return new Client({ puppeteer: { executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS }, ...extra });
}

let models;
/** A real whatsapp-web.js Message from a fixture model; `n` renumbers its id. */
export async function message(client, name, n) {
  models ??= JSON.parse(await readFile(path.join(here, '../fixtures/messages.json'), 'utf8'));
  const data = structuredClone(models[name]);
  if (!data) throw new Error(`no message fixture ${name}`);
  if (n !== undefined) {
    const tail = Number(n).toString(16).toUpperCase().padStart(6, '0');
    const old = data.id.id;
    data.id.id = old.slice(0, -6) + tail;
    data.id._serialized = data.id._serialized.replace(old, data.id.id);
  }
  return new Message(client, data);
}

// The index.html LocalWebCache serves for https://web.whatsapp.com/: the part
// of WhatsApp Web's module system that getState() reads, the socket state
// settable from a test (`window.wapulseTest.setState('OPENING')`).
const INDEX_HTML = `<!doctype html>
<html><head><title>WhatsApp</title></head><body>
<script>
(() => {
  const Socket = { state: 'CONNECTED' };
  const modules = { WAWebSocketModel: { Socket } };
  window.require = (name) => {
    if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    throw new Error('Requiring unknown module "' + name + '"');
  };
  window.wapulseTest = {
    setState(s) { Socket.state = s; },
    // a page whose main thread never comes back: every evaluate waits forever
    hang() { setTimeout(() => { for (;;) {} }, 0); },
  };
})();
</script></body></html>`;

export const WEB_VERSION = '2.3000.0-wapulse-test';

/** A directory holding the stand-in as whatsapp-web.js' local web cache. */
export async function webCache() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wapulse-wwebjs-webcache-'));
  await writeFile(path.join(dir, `${WEB_VERSION}.html`), INDEX_HTML);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A real Client that loads the stand-in (call initialize() to launch it). */
export function pageClient(cacheDir, extra = {}) {
  return newClient({
    webVersion: WEB_VERSION,
    webVersionCache: { type: 'local', path: cacheDir, strict: true },
    authTimeoutMs: 3600000,
    ...extra,
  });
}

/** Resolves once the Client's own page has loaded the stand-in. */
export async function pageLoaded(client, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = client.pupPage;
    if (page) {
      try {
        const probe = page.evaluate(() => typeof window.wapulseTest === 'object');
        probe.catch(() => {});
        const loaded = await Promise.race([probe, new Promise((r) => setTimeout(() => r(false), 2000))]);
        if (loaded) return page;
      } catch {
        /* still navigating */
      }
    }
    if (Date.now() > deadline) throw new Error('the Client never loaded the WhatsApp Web stand-in');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Chromium process the Client launched, killed (a crash, not a close). */
export function killBrowser(client) {
  const proc = client.pupBrowser?.process?.();
  if (!proc) throw new Error('no browser process');
  proc.kill('SIGKILL');
}
