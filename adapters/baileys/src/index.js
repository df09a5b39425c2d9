// wapulse-baileys: sends a Baileys gateway's session events to wapulse.
//
//   const w = createWatcher({ url, token, session: 'acme-1' });
//   const sock = makeWASocket({ auth: state });   // for every new socket:
//   w.watch(sock);
//   sock.ev.on('creds.update', w.wrapSaveCreds(saveCreds));
//
// or, without keeping the watcher around: watch(sock, { url, token, session })
// on every new socket (one watcher per session, kept in a registry here).

import { WapulseClient, parseRetryAfter } from './client.js';
import { SessionWatcher, LOGGED_OUT_CODES, closeCode, labelsProblem } from './watcher.js';
import { EventQueue } from './queue.js';

export { WapulseClient, SessionWatcher, EventQueue, LOGGED_OUT_CODES, closeCode, labelsProblem, parseRetryAfter };

/**
 * A client: one queue and one connection to wapulse, shared by the watchers
 * of many sessions (`client.session(id)`).
 */
export function createClient(opts) {
  return new WapulseClient(opts);
}

/**
 * A watcher for one session with a client of its own; `stop()` stops both.
 */
export function createWatcher(opts = {}) {
  const client = new WapulseClient(opts);
  client.implicit = true;
  return client.session(opts.session, opts);
}

const registry = new Map(); // url + token -> client

/**
 * Follows `sock` for `opts.session`: the first call for a session makes its
 * watcher (and, per wapulse url and token, a shared client); later calls with
 * the next sockets of that session continue it. Options other than the
 * session are taken from the first call. Returns the watcher.
 */
export function watch(sock, opts = {}) {
  const key = `${opts.url}\u0000${opts.token ?? ''}`;
  let client = registry.get(key);
  if (!client || client.stopped) {
    client = new WapulseClient(opts);
    client.implicit = true;
    const made = client;
    client.onStop = () => {
      if (registry.get(key) === made) registry.delete(key);
    };
    registry.set(key, client);
  }
  return client.session(opts.session, opts).watch(sock);
}

/** Stops every watcher made by watch(), flushing each client within timeoutMs. */
export async function stopAll(timeoutMs) {
  const clients = [...registry.values()];
  registry.clear();
  return Promise.all(clients.map((c) => c.stop(timeoutMs)));
}

export default watch;
