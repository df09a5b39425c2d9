// A real wapulse (the binary cargo built) on a free loopback port with its
// own temporary data dir: `wapulse serve` for the tests, `wapulse demo` for
// the screenshots. Stopped with SIGTERM (SIGKILL after 10 s); a process
// still running when node exits is killed too.

import { spawn } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** WAPULSE_BIN, else ../../target/debug/wapulse (from web/browser). */
export const WAPULSE_BIN = process.env.WAPULSE_BIN || path.resolve(here, '../../../target/debug/wapulse');

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** Polls `check` (async; a truthy result ends it) until the deadline. */
export async function waitFor(check, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const said = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${said}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A loopback port free when asked (listen on 0, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class Wapulse {
  /**
   * @param {object} o
   * @param {'serve'|'demo'} [o.command]
   * @param {string[]} [o.args] extra arguments (`--sessions 50`)
   * @param {Record<string,string>} [o.env] tokens and the like
   */
  constructor({ command = 'serve', args = [], env = {} } = {}) {
    this.command = command;
    this.args = args;
    this.env = env;
    this.proc = null;
    this.port = 0;
    this.dir = null;
    this.log = '';
    this.startedAt = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get ingestToken() {
    return this.env.INGEST_TOKEN;
  }

  async start() {
    try {
      await access(WAPULSE_BIN, constants.X_OK);
    } catch {
      throw new Error(`no wapulse binary at ${WAPULSE_BIN} (cargo build -p wapulse, or set WAPULSE_BIN)`);
    }
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'wapulse-browser-'));
    // A port free when chosen may be taken before wapulse binds: try again.
    for (let attempt = 0; ; attempt++) {
      this.port = await freePort();
      try {
        await this.#spawn();
        return this;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }

  async #spawn() {
    const proc = spawn(WAPULSE_BIN, [this.command, ...this.args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME ?? os.tmpdir(),
        WAPULSE_BIND: `127.0.0.1:${this.port}`,
        WAPULSE_DATA_DIR: this.dir,
        WAPULSE_DURABILITY: 'process',
        LOG_LEVEL: 'WARNING',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    running.add(proc);
    const keep = (d) => {
      this.log = (this.log + d.toString()).slice(-20000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let exited = null;
    proc.once('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(proc);
    });
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`wapulse exited ${JSON.stringify(exited)}:\n${this.log.slice(-2000)}`);
          const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          return res.status === 200;
        },
        { timeoutMs: 30000, intervalMs: 50, what: `wapulse ${this.command} /healthz` },
      );
      this.startedAt = Date.now();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  /** SIGTERM, SIGKILL after 10 s; resolves once the process is gone. */
  async kill() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await gone;
    clearTimeout(t);
  }

  /** Stops it and removes its data dir. */
  async stop() {
    await this.kill();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  /** A request with an optional bearer token → {status, body (JSON or text), headers}. */
  async request(p, { method = 'GET', token, json, timeoutMs = 30000 } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    }
    const res = await fetch(this.url + p, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** GET, read with READ_TOKEN when it is set; fails unless 200. */
  async get(p) {
    const r = await this.request(p, { token: this.env.READ_TOKEN });
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** POST /v1/events (a JSON array) → the raw answer. */
  async post(events) {
    return this.request('/v1/events', { method: 'POST', token: this.env.INGEST_TOKEN, json: events, timeoutMs: 120000 });
  }

  /** POST /v1/events; fails unless every event was accepted. */
  async ingest(events) {
    const r = await this.post(events);
    if (r.status !== 200 || r.body.accepted + r.body.duplicates !== events.length) {
      throw new Error(`ingest: ${r.status} ${JSON.stringify(r.body)}`);
    }
    return r.body;
  }

  /** The next `tick` of /ui/live: the counts the overview shows (the evaluator's view). */
  async tick() {
    const headers = {};
    if (this.env.READ_TOKEN) headers.Authorization = `Bearer ${this.env.READ_TOKEN}`;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    try {
      const res = await fetch(`${this.url}/ui/live`, { headers, signal: ctl.signal });
      if (res.status !== 200) throw new Error(`/ui/live: ${res.status}`);
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        const m = /^event: tick\ndata: (.*)\n\n/m.exec(buf);
        if (m) return JSON.parse(m[1]);
      }
      throw new Error('/ui/live ended without a tick');
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
  }

  /** Waits until the evaluator's counts (a tick) satisfy `pred`. */
  async settled(pred, what = 'the evaluator to catch up', timeoutMs = 20000) {
    return waitFor(async () => {
      const t = await this.tick();
      return pred(t) ? t : false;
    }, { timeoutMs, intervalMs: 100, what });
  }
}

/** Time `ms` before now, RFC 3339. */
export function ago(ms) {
  return new Date(Date.now() - ms).toISOString();
}
