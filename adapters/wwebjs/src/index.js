// wapulse-wwebjs: sends a whatsapp-web.js gateway's session events to wapulse.
//
//   const w = createWatcher({ url, token, session: 'acme-1' });
//   const client = new Client({ authStrategy: new LocalAuth() });
//   w.watch(client);              // or createWatcher({ url, token }).watch(client, { session })
//   client.initialize();
//   ...
//   await w.stop({ stopped: true });   // the operator stops the session
//
// or, without keeping the watcher around: watch(client, { url, token, session })
// (one watcher per session, kept in a registry here).

import { WapulseClient, parseRetryAfter } from './client.js';
import { SessionWatcher, WAState, ACK_STATUS, FOLLOWED_EVENTS, mapWAState, ackId, labelsProblem } from './watcher.js';
import { EventQueue } from './queue.js';

export { WapulseClient, SessionWatcher, EventQueue, WAState, ACK_STATUS, FOLLOWED_EVENTS, mapWAState, ackId, labelsProblem, parseRetryAfter };

/**
 * A client: one queue and one connection to wapulse, shared by the watchers
 * of many sessions (`client.session(id).watch(waClient)`).
 */
export function createClient(opts) {
  return new WapulseClient(opts);
}

/**
 * A watcher for one session with a client of its own; `stop()` stops both.
 * The session is `opts.session`, or the one given to the first
 * `watch(client, { session })`.
 */
export function createWatcher(opts = {}) {
  const client = new WapulseClient(opts);
  client.implicit = true;
  if (opts.session === undefined) return new SessionWatcher(client, undefined, opts);
  return client.session(opts.session, opts);
}

const registry = new Map(); // url + token -> client

/**
 * Follows a whatsapp-web.js Client for `opts.session`: the first call for a
 * session makes its watcher (and, per wapulse url and token, a shared
 * client); later calls with the next Clients of that session continue it.
 * Options other than the session are taken from the first call. Returns the
 * watcher.
 */
export function watch(waClient, opts = {}) {
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
  return client.session(opts.session, opts).watch(waClient);
}

/**
 * Stops every watcher made by watch(), flushing each client within
 * timeoutMs (`stopAll({ stopped: true })` first sends `state stopped` for
 * every session).
 */
export async function stopAll(opts) {
  const clients = [...registry.values()];
  registry.clear();
  return Promise.all(clients.map((c) => c.stop(opts)));
}

export default watch;
