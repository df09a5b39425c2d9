// Real Baileys sockets against a loopback WebSocket server.

import makeWASocket, { initAuthCreds } from 'baileys';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function fixture(name) {
  return JSON.parse(readFileSync(path.join(here, '..', 'fixtures', name), 'utf8'));
}

/**
 * A copy of a recorded `messages.upsert` (or any `{ messages }` / list of
 * `{ key }`) whose message ids end in `n` (4 hex digits): the same payload
 * as new messages. wapulse takes a repeated id for the same message.
 */
export function renumbered(payload, n) {
  const tail = (Number(n) & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  const fix = (m) => (m?.key?.id ? { ...m, key: { ...m.key, id: m.key.id.slice(0, -4) + tail } } : m);
  return Array.isArray(payload) ? payload.map(fix) : { ...payload, messages: payload.messages.map(fix) };
}

/**
 * A loopback server for Baileys to connect to.
 * mode 'close': a WebSocket server that accepts each connection and closes it
 * (Baileys answers with `close` 428, as against a real server that drops it).
 * mode 'hold': a TCP server that accepts and never answers the WebSocket
 * upgrade, so the socket stays `connecting` (no handshake pending that an
 * injected frame could upset) while a test drives events through `sock.ev`.
 */
export async function loopbackServer(mode) {
  if (mode === 'hold') return holdServer();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  let connections = 0;
  wss.on('connection', (s) => {
    connections++;
    s.on('error', () => {});
    setImmediate(() => s.close());
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}`,
    get connections() {
      return connections;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}

async function holdServer() {
  const held = new Set();
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    held.add(s);
    s.on('error', () => {});
    s.on('close', () => held.delete(s));
    s.resume(); // read the upgrade request, never answer it
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `ws://127.0.0.1:${srv.address().port}`,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of held) s.destroy();
      await new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** In-memory auth state (fresh credentials: never logged in). */
export function memoryAuth() {
  const store = new Map();
  return {
    creds: initAuthCreds(),
    keys: {
      async get(type, ids) {
        const out = {};
        for (const id of ids) {
          const v = store.get(`${type}:${id}`);
          if (v !== undefined) out[id] = v;
        }
        return out;
      },
      async set(data) {
        for (const type of Object.keys(data)) {
          for (const id of Object.keys(data[type])) {
            const v = data[type][id];
            if (v) store.set(`${type}:${id}`, v);
            else store.delete(`${type}:${id}`);
          }
        }
      },
    },
  };
}

export function socket(url, auth = memoryAuth(), extra = {}) {
  return makeWASocket({
    waWebSocketUrl: url,
    auth,
    logger: pino({ level: 'silent' }),
    connectTimeoutMs: 60000,
    keepAliveIntervalMs: 60000,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    ...extra,
  });
}

/** Resolves with the next `connection.update` of sock that passes `pred`. */
export function nextUpdate(sock, pred, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      sock.ev.off('connection.update', on);
      reject(new Error('timed out waiting for a connection.update'));
    }, timeoutMs);
    const on = (u) => {
      if (pred(u)) {
        clearTimeout(t);
        sock.ev.off('connection.update', on);
        resolve(u);
      }
    };
    sock.ev.on('connection.update', on);
  });
}

/** Ends a socket quietly (the watcher should be stopped or detached first). */
export async function endQuietly(sock) {
  try {
    await sock.end(undefined);
  } catch {
    /* already closed */
  }
}
