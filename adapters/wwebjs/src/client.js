// The delivery side: one queue, one request in flight at a time, batches
// flushed on a timer, retried with capped exponential backoff and jitter.
// Shared by every session watcher made from it (a batch may carry events of
// many sessions).

import { randomBytes } from 'node:crypto';
import { EventQueue } from './queue.js';
import { SessionWatcher, checkSession, stopOptions } from './watcher.js';

const DEFAULTS = {
  flushIntervalMs: 1000,
  maxBatch: 500,
  maxQueue: 10000,
  requestTimeoutMs: 10000,
  minBackoffMs: 500,
  maxBackoffMs: 30000,
  maxRetryAfterMs: 300000,
  stopTimeoutMs: 5000,
};

// ref'd on purpose: a gateway awaiting stop() at exit must not see the
// process end before the flush is done (it is bounded by its timeout)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for a promise, at most ms; the timer is cleared either way. */
async function within(promise, ms) {
  let timer;
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function positive(name, v, fallback, { integer = true, allowZero = false } = {}) {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || (allowZero ? v < 0 : v <= 0) || (integer && !Number.isInteger(v))) {
    throw new TypeError(`wapulse-wwebjs: option ${name} must be a ${allowZero ? 'non-negative' : 'positive'}${integer ? ' integer' : ' number'}, got ${String(v)}`);
  }
  return v;
}

function defaultLogger() {
  // At most one line a minute: a gateway with a wrong token or an unreachable
  // wapulse should be told, not flooded.
  let last = 0;
  return {
    warn(obj, msg) {
      const now = Date.now();
      if (now - last < 60000) return;
      last = now;
      const err = obj?.err;
      console.warn(`[wapulse-wwebjs] ${msg}${err ? `: ${err.message ?? err}` : ''}`);
    },
  };
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === '') return 0;
  const s = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? 0 : Math.max(0, t - now);
}

class HttpError extends Error {
  constructor(status, body, retryAfterMs) {
    let detail = '';
    try {
      const j = JSON.parse(body);
      detail = j && typeof j.error === 'string' ? j.error : body;
    } catch {
      detail = body;
    }
    super(`wapulse answered ${status}${detail ? `: ${String(detail).slice(0, 500)}` : ''}`);
    this.name = 'WapulseHttpError';
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
    try {
      const j = JSON.parse(body);
      if (j && Number.isInteger(j.index)) this.index = j.index;
      if (j && typeof j.field === 'string') this.field = j.field;
    } catch {
      /* not JSON */
    }
  }
}

export class WapulseClient {
  /**
   * @param {object} opts see index.d.ts (ClientOptions)
   */
  constructor(opts = {}) {
    if (typeof opts.url !== 'string' || !/^https?:\/\//.test(opts.url)) {
      throw new TypeError('wapulse-wwebjs: option url must be the http(s) address of wapulse, e.g. http://127.0.0.1:3001');
    }
    this.url = opts.url.replace(/\/+$/, '') + '/v1/events';
    this.token = opts.token ?? undefined;
    this.flushIntervalMs = positive('flushIntervalMs', opts.flushIntervalMs, DEFAULTS.flushIntervalMs);
    this.maxBatch = positive('maxBatch', opts.maxBatch, DEFAULTS.maxBatch);
    this.requestTimeoutMs = positive('requestTimeoutMs', opts.requestTimeoutMs, DEFAULTS.requestTimeoutMs);
    this.minBackoffMs = positive('minBackoffMs', opts.minBackoffMs, DEFAULTS.minBackoffMs);
    this.maxBackoffMs = Math.max(this.minBackoffMs, positive('maxBackoffMs', opts.maxBackoffMs, DEFAULTS.maxBackoffMs));
    this.maxRetryAfterMs = positive('maxRetryAfterMs', opts.maxRetryAfterMs, DEFAULTS.maxRetryAfterMs, { allowZero: true });
    this.stopTimeoutMs = positive('stopTimeoutMs', opts.stopTimeoutMs, DEFAULTS.stopTimeoutMs, { allowZero: true });
    this.queue = new EventQueue(positive('maxQueue', opts.maxQueue, DEFAULTS.maxQueue));
    this.onError = typeof opts.onError === 'function' ? opts.onError : undefined;
    this.logger = opts.logger === null ? undefined : opts.logger ?? defaultLogger();
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.defaults = opts; // session-level defaults for watchers made here
    // ids: a random prefix per client and a counter; unique across restarts
    // of the gateway, stable across retries of a batch
    this.idPrefix = opts.idPrefix ?? 'ww' + randomBytes(8).toString('hex');
    this.seq = 0;
    this.watchers = new Map();
    this.dirty = new Set(); // watchers with message counts not yet queued
    this.counters = { enqueued: 0, sent: 0, duplicates: 0, requests: 0, failedRequests: 0, retries: 0, rejected: 0, errors: 0 };
    this.lastError = null;
    this.failures = 0; // consecutive failed requests
    this.retryAt = 0; // no request before this time (backoff)
    this.inFlight = null; // the promise of the request being sent
    this.stopped = false;
    this.timer = setInterval(() => this.#tick(), this.flushIntervalMs);
    this.timer.unref?.();
    this.kick = null; // an early flush already scheduled
  }

  /**
   * The watcher of one session (made on first use; the same one after).
   * @param {string} session
   * @param {object} [opts]
   */
  session(session, opts = {}) {
    checkSession(session);
    let w = this.watchers.get(session);
    if (!w) {
      if (this.stopped) throw new Error('wapulse-wwebjs: the client is stopped');
      w = new SessionWatcher(this, session, { ...this.defaults, ...opts });
      this.watchers.set(session, w);
    }
    return w;
  }

  /** @internal a watcher made without a session takes its session at watch() */
  _bind(watcher, session) {
    checkSession(session);
    const other = this.watchers.get(session);
    if (other && other !== watcher) throw new TypeError(`wapulse-wwebjs: session ${JSON.stringify(session)} already has a watcher on this client`);
    if (this.stopped) throw new Error('wapulse-wwebjs: the client is stopped');
    watcher.session = session;
    this.watchers.set(session, watcher);
  }

  /**
   * @internal queue one event (envelope fields added here). The id is the
   * client's prefix and sequence unless the caller gives one derived from
   * what the event says (acks: `ack:<message id>:<status>`, the same
   * whoever reports it and however often).
   */
  _enqueue(session, type, fields, atMs = Date.now(), id = undefined) {
    if (this.stopped) return false;
    const event = { session, type, at: new Date(atMs).toISOString(), id: id ?? `${this.idPrefix}-${(this.seq++).toString(36)}`, ...fields };
    this.queue.push(event);
    this.counters.enqueued++;
    if (this.queue.length >= this.maxBatch && !this.kick) {
      this.kick = setImmediate(() => {
        this.kick = null;
        this.#tick();
      });
      this.kick.unref?.();
    }
    return true;
  }

  /** @internal report an error to the gateway's callback, never throwing */
  _report(err, context) {
    this.counters.errors++;
    this.lastError = { message: String(err?.message ?? err), at: new Date().toISOString(), context };
    try {
      this.onError?.(err, context);
    } catch {
      /* the callback's own trouble is not ours to raise */
    }
    try {
      this.logger?.warn?.({ err, context }, `wapulse-wwebjs: ${context}`);
    } catch {
      /* same */
    }
  }

  stats() {
    return {
      queued: this.queue.length,
      inFlight: this.inFlight ? this.inFlightCount : 0,
      ...this.counters,
      ...this.queue.stats,
      consecutiveFailures: this.failures,
      lastError: this.lastError,
      sessions: this.watchers.size,
    };
  }

  #drainCounters() {
    if (this.dirty.size === 0) return;
    const now = Date.now();
    for (const w of this.dirty) w._drainMessages(now);
    this.dirty.clear();
  }

  #tick() {
    if (this.inFlight || Date.now() < this.retryAt) return;
    this.#drainCounters();
    if (this.queue.length === 0) return;
    this.inFlight = this.#sendOne()
      .catch((err) => this._report(err, 'sending'))
      .finally(() => {
        this.inFlight = null;
      });
  }

  // Sends one batch; on success, goes on while a full batch is waiting.
  async #sendOne() {
    const batch = this.queue.take(this.maxBatch);
    this.inFlightCount = batch.length;
    try {
      const res = await this.#post(batch.map((e) => e.event));
      this.failures = 0;
      this.retryAt = 0;
      this.counters.sent += res.accepted ?? batch.length;
      this.counters.duplicates += res.duplicates ?? 0;
    } catch (err) {
      this.counters.failedRequests++;
      if (err instanceof HttpError && err.status === 413 && batch.length > 1) {
        // too big for this wapulse: halve the batches and go on at once
        this.maxBatch = Math.max(1, Math.floor(batch.length / 2));
        this.queue.unshift(batch);
        this._report(err, `batch of ${batch.length} events too large; batches now ${this.maxBatch}`);
        return;
      }
      if (err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
        // refused for good: retrying the same bytes would be refused again.
        // Drop the event wapulse named, resend the rest at once; without an
        // index, the whole batch is lost (e.g. a wrong token): counted.
        if (err.index !== undefined && err.index >= 0 && err.index < batch.length) {
          const [bad] = batch.splice(err.index, 1);
          this.counters.rejected++;
          this.queue.unshift(batch);
          this._report(err, `event ${bad.event.type} of session ${bad.event.session} rejected`);
        } else {
          this.counters.rejected += batch.length;
          this._report(err, `batch of ${batch.length} events rejected`);
        }
        return;
      }
      // unknown outcome or a transient refusal: resend the same events,
      // with the same ids, after a backoff
      for (const e of batch) e.attempted = true;
      this.queue.unshift(batch);
      this.failures++;
      this.counters.retries++;
      const exp = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.min(30, this.failures - 1));
      let delay = exp / 2 + Math.random() * (exp / 2);
      if (err.retryAfterMs) delay = Math.max(delay, Math.min(err.retryAfterMs, this.maxRetryAfterMs));
      this.retryAt = Date.now() + delay;
      this._report(err, `sending ${batch.length} events failed; retry ${this.failures} in ${Math.round(delay)} ms`);
      return;
    } finally {
      this.inFlightCount = 0;
    }
    if (this.queue.length >= this.maxBatch && !this.stopped) {
      setImmediate(() => this.#tick()).unref?.();
    }
  }

  async #post(events) {
    this.counters.requests++;
    const headers = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await this.fetch(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(events),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (err) {
      const e = new Error(`wapulse unreachable at ${this.url}: ${err?.cause?.code ?? err?.message ?? err}`);
      e.cause = err;
      throw e;
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw new HttpError(res.status, text, parseRetryAfter(res.headers.get('retry-after')));
    try {
      return JSON.parse(text);
    } catch {
      return {};
    }
  }

  /**
   * Sends everything queued now (message counts included), retrying within
   * the time given. Resolves to true when the queue was emptied.
   */
  async flush(timeoutMs = this.stopTimeoutMs) {
    const deadline = Date.now() + timeoutMs;
    this.#drainCounters();
    for (;;) {
      if (this.inFlight) {
        await within(this.inFlight, Math.max(0, deadline - Date.now()));
      }
      if (this.queue.length === 0 && !this.inFlight) {
        this.#drainCounters();
        if (this.queue.length === 0) return true;
      }
      const now = Date.now();
      if (now >= deadline) return false;
      if (this.inFlight) continue;
      if (now < this.retryAt) {
        await sleep(Math.min(this.retryAt, deadline) - now);
        continue;
      }
      this.#tick();
      if (!this.inFlight) await sleep(5);
    }
  }

  /**
   * Flushes (bounded by timeoutMs), then stops every watcher and the timer.
   * `stop({ stopped: true, timeoutMs })` first sends `state stopped` for
   * every session (an operator stopped them on purpose).
   */
  async stop(opts) {
    const { timeoutMs = this.stopTimeoutMs, stopped } = stopOptions(opts);
    if (this.stopped) return this.stats();
    for (const w of this.watchers.values()) w._detachAll();
    if (stopped) for (const w of this.watchers.values()) w._stoppedState();
    let flushed = false;
    try {
      flushed = await this.flush(timeoutMs);
    } catch (err) {
      this._report(err, 'flush at stop');
    }
    this.stopped = true;
    clearInterval(this.timer);
    if (this.kick) clearImmediate(this.kick);
    for (const w of this.watchers.values()) w._markStopped();
    this.watchers.clear();
    this.onStop?.();
    return { ...this.stats(), flushed };
  }
}
