// Starts a real wapulse (the binary the Rust side built) on loopback, with a
// temporary data dir, and stops it: SIGTERM, then SIGKILL if it lingers.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, access, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WAPULSE_BIN = process.env.WAPULSE_BIN || path.resolve(here, '../../../../target/debug/wapulse');
export const TOKEN = 'adapter-test-token';

export async function binaryPresent() {
  try {
    await access(WAPULSE_BIN, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A free loopback port (listen on 0, close, reuse). */
export async function freePort() {
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

/** Polls `check` (async, truthy = done) until it holds or the deadline passes. */
export async function waitFor(check, { timeoutMs = 10000, intervalMs = 25, what = 'condition' } = {}) {
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
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export class Wapulse {
  /** @param {{ config?: string }} [opts] config: a TOML configuration (e.g. short `[thresholds]`) */
  constructor(opts = {}) {
    this.config = opts.config;
    this.proc = null;
    this.port = 0;
    this.dir = null;
    this.log = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the same port and data dir when restarting). */
  async start() {
    if (!this.dir) this.dir = await mkdtemp(path.join(os.tmpdir(), 'wapulse-wwebjs-'));
    if (this.config !== undefined) await writeFile(path.join(this.dir, 'wapulse.toml'), this.config);
    // the port is free when chosen; another process could take it before
    // wapulse binds: try a few
    for (let attempt = 0; ; attempt++) {
      if (!this.port || attempt > 0) {
        if (this.fixedPort) throw new Error(`wapulse could not start on port ${this.port}:\n${this.log.slice(-2000)}`);
        this.port = await freePort();
      }
      try {
        await this.#spawn();
        this.fixedPort = true; // a restart reuses the port
        return this;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }

  async #spawn() {
    const proc = spawn(WAPULSE_BIN, ['serve'], {
      env: {
        PATH: process.env.PATH,
        WAPULSE_BIND: `127.0.0.1:${this.port}`,
        WAPULSE_DATA_DIR: this.dir,
        WAPULSE_DURABILITY: 'process',
        INGEST_TOKEN: TOKEN,
        LOG_LEVEL: 'WARNING',
        ...(this.config !== undefined ? { WAPULSE_CONFIG: path.join(this.dir, 'wapulse.toml') } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const keep = (d) => {
      this.log = (this.log + d.toString()).slice(-20000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let exited = null;
    proc.once('exit', (code, sig) => {
      exited = { code, sig };
    });
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`wapulse exited (${JSON.stringify(exited)}):\n${this.log.slice(-2000)}`);
          const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          return res.status === 200;
        },
        { timeoutMs: 20000, intervalMs: 50, what: 'wapulse /healthz' },
      );
    } catch (err) {
      if (exited) throw new Error(`wapulse exited (${JSON.stringify(exited)}):\n${this.log.slice(-2000)}`);
      await this.kill();
      throw err;
    }
  }

  /** SIGTERM, and SIGKILL after 10 s; resolves once the process is gone. */
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

  async get(p) {
    const res = await fetch(this.url + p, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body };
  }

  /** /sessions/{id}/observe, or null while the session is unknown. */
  async observe(session) {
    const { status, body } = await this.get(`/sessions/${encodeURIComponent(session)}/observe`);
    if (status === 404) return null;
    if (status !== 200) throw new Error(`observe ${session}: ${status} ${JSON.stringify(body)}`);
    return body;
  }

  /** /sessions/{id}/alerts: the alerts firing now. */
  async alerts(session) {
    const { status, body } = await this.get(`/sessions/${encodeURIComponent(session)}/alerts`);
    if (status !== 200) throw new Error(`alerts ${session}: ${status} ${JSON.stringify(body)}`);
    return body;
  }

  /** The session's journal, oldest first. */
  async journal(session) {
    const out = [];
    let before;
    for (let i = 0; i < 100; i++) {
      const q = `/sessions/${encodeURIComponent(session)}/events?limit=1000${before ? `&before=${before}` : ''}`;
      const { status, body } = await this.get(q);
      if (status !== 200) throw new Error(`events ${session}: ${status} ${JSON.stringify(body)}`);
      out.push(...body.events);
      if (!body.nextBefore) break;
      before = body.nextBefore;
    }
    return out.reverse();
  }
}
