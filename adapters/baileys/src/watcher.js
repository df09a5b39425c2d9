// One session seen through the Baileys sockets that serve it, one after the
// other. Baileys never reconnects by itself: the gateway makes a new socket
// per attempt and calls watch() on each; the session's state (was there a
// close before? was a QR shown?) lives here, across sockets.

import { performance } from 'node:perf_hooks';

/** Close codes after which the session must be paired again. */
export const LOGGED_OUT_CODES = Object.freeze([401, 403, 411]);

const SESSION_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
const RESERVED_LABELS = new Set(['session', 'alertname', 'severity', 'code', 'level']);
const OK = Symbol('ok');
const FAILED = Symbol('failed');

export function checkSession(session) {
  if (typeof session !== 'string' || !SESSION_RE.test(session)) {
    throw new TypeError(`wapulse-baileys: session must be 1-128 characters of [A-Za-z0-9._:@-], got ${JSON.stringify(session)}`);
  }
}

/**
 * The Baileys close code of a `connection.update` close, if any: the Boom
 * error's `output.statusCode`.
 * @returns {number | undefined}
 */
export function closeCode(lastDisconnect) {
  const err = lastDisconnect?.error;
  const code = err?.output?.statusCode ?? err?.statusCode;
  return Number.isInteger(code) ? code : undefined;
}

/** Checks a labels object the way wapulse does; returns a problem or null. */
export function labelsProblem(labels) {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) return 'labels must be an object';
  const keys = Object.keys(labels);
  if (keys.length > 16) return `at most 16 labels, got ${keys.length}`;
  for (const k of keys) {
    if (!LABEL_RE.test(k)) return `labels.${k}: a name is [a-zA-Z_][a-zA-Z0-9_]* of at most 64 characters`;
    if (RESERVED_LABELS.has(k) || k.startsWith('__')) return `labels.${k}: reserved name`;
    const v = labels[k];
    if (v !== null && (typeof v !== 'string' || v.length > 128)) return `labels.${k}: a value is a string of at most 128 characters, or null to remove it`;
  }
  return null;
}

function pingNode() {
  // the keepalive Baileys itself sends every keepAliveIntervalMs
  // (Socket/socket.js, startKeepAliveRequest); query() adds the id
  return { tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] };
}

export class SessionWatcher {
  constructor(client, session, opts = {}) {
    this.client = client;
    this.session = session;
    this.keepAliveIntervalMs = opts.keepAliveIntervalMs ?? 30000;
    if (!Number.isFinite(this.keepAliveIntervalMs) || this.keepAliveIntervalMs < 0) {
      throw new TypeError('wapulse-baileys: keepAliveIntervalMs must be a non-negative number');
    }
    this.rtt = opts.rtt ?? true;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 10000;
    this.store = opts.store;
    this.loggedOutCodes = new Set(opts.loggedOutCodes ?? LOGGED_OUT_CODES);
    this.messageTypes = new Set(opts.messageTypes ?? ['notify']);
    this.attachments = new Map(); // socket -> attachment
    this.current = null; // the newest socket's attachment
    this.lastClose = null; // { reason, loggedOut } of the last close, until an open
    this.qrSeen = false; // since the last open
    this.newLogin = false; // isNewLogin seen since the last open
    this.pairingRequested = false; // requestPairingCode called since the last open
    this.lastBeatAt = 0;
    this.inbound = 0; // message counts not yet queued
    this.outbound = 0;
    this.state = null; // the last state sent
    this.stopped = false;
    if (opts.labels !== undefined && opts.labels !== null) this.setLabels(opts.labels);
  }

  // ---- following sockets ---------------------------------------------------

  /**
   * Follows a Baileys socket (call it right after makeWASocket, for every
   * new socket of this session). Returns the watcher.
   */
  watch(sock) {
    if (!sock || !sock.ev || typeof sock.ev.on !== 'function' || typeof sock.ev.off !== 'function') {
      throw new TypeError('wapulse-baileys: watch() takes the socket makeWASocket returned');
    }
    if (this.stopped) return this;
    if (this.attachments.has(sock)) return this;
    const a = { sock, started: false, open: false, closed: false, pinging: false, off: [] };
    try {
      const onUpdate = (u) => this.#guard('connection.update', () => this.#onUpdate(a, u));
      const onUpsert = (u) => this.#guard('messages.upsert', () => this.#onUpsert(u));
      sock.ev.on('connection.update', onUpdate);
      sock.ev.on('messages.upsert', onUpsert);
      a.off.push(() => sock.ev.off('connection.update', onUpdate), () => sock.ev.off('messages.upsert', onUpsert));
      const ws = sock.ws;
      if (ws && typeof ws.on === 'function') {
        const onFrame = () => {
          // every inbound frame: keep this cheap
          if (!a.open || this.stopped) return;
          const now = Date.now();
          if (now - this.lastBeatAt < this.keepAliveIntervalMs) return;
          this.lastBeatAt = now;
          this.#guard('frame', () => this.#beat(a, now));
        };
        ws.on('frame', onFrame);
        a.off.push(() => ws.off?.('frame', onFrame));
      }
      const orig = sock.requestPairingCode;
      if (typeof orig === 'function') {
        const self = this;
        const wrapped = function requestPairingCode(...args) {
          if (self.current === a) self.pairingRequested = true;
          return orig.apply(this, args);
        };
        sock.requestPairingCode = wrapped;
        a.off.push(() => {
          if (sock.requestPairingCode === wrapped) sock.requestPairingCode = orig;
        });
      }
    } catch (err) {
      this.client._report(err, 'attaching to the socket');
    }
    this.attachments.set(sock, a);
    this.current = a;
    return this;
  }

  #guard(what, fn) {
    try {
      fn();
    } catch (err) {
      this.client._report(err, `handling ${what}`);
    }
  }

  #detach(a) {
    for (const off of a.off) {
      try {
        off();
      } catch {
        /* the socket may be gone already */
      }
    }
    a.off = [];
    this.attachments.delete(a.sock);
  }

  #onUpdate(a, u) {
    if (this.stopped || !u || typeof u !== 'object') return;
    if (a !== this.current) {
      // A socket the gateway has replaced. Its close still tells why (the
      // gateway usually makes the next socket from inside this very close
      // event), unless the newer socket has already begun.
      if (u.connection === 'close' && !a.closed && !this.current?.started) this.#onClose(a, u);
      else if (u.connection === 'close') {
        a.closed = true;
        this.#detach(a);
      }
      return;
    }
    if (a.closed) return;
    if (u.connection === 'connecting') this.#start(a);
    if (u.qr) {
      this.#start(a);
      this.qrSeen = true;
      if (this.state !== 'qr_required') this.#state('qr_required');
    }
    if (u.isNewLogin) {
      this.#start(a);
      this.newLogin = true;
      this.#auth(this.pairingRequested ? 'pairing_code' : 'qr_scan');
    }
    if (u.connection === 'open') {
      this.#start(a);
      a.open = true;
      this.#state('connected');
      if (!this.newLogin) this.#auth(this.pairingRequested ? 'pairing_code' : this.qrSeen ? 'qr_scan' : 'session_restore');
      this.qrSeen = false;
      this.newLogin = false;
      this.pairingRequested = false;
      this.lastClose = null;
      this.lastBeatAt = 0; // the first frame after an open is a heartbeat
    }
    if (u.connection === 'close') this.#onClose(a, u);
  }

  // The first event of a socket: `connecting`, or `reconnecting` when the
  // socket follows a close the session can come back from. The close code
  // went with the `disconnected` before it (wapulse keeps it as the session's
  // last disconnect); repeating it here would count a 440 twice as a conflict.
  #start(a) {
    if (a.started) return;
    a.started = true;
    const lc = this.lastClose;
    this.#state(lc && !lc.loggedOut ? 'reconnecting' : 'connecting');
  }

  #onClose(a, u) {
    this.#start(a);
    const code = closeCode(u.lastDisconnect);
    const loggedOut = code !== undefined && this.loggedOutCodes.has(code);
    let reason = code;
    if (reason === undefined) {
      const msg = u.lastDisconnect?.error?.message;
      if (typeof msg === 'string' && msg) reason = msg.slice(0, 200);
    }
    this.#state(loggedOut ? 'logged_out' : 'disconnected', reason);
    this.lastClose = { reason, loggedOut };
    a.closed = true;
    a.open = false;
    this.#detach(a);
  }

  #onUpsert(u) {
    if (this.stopped || !u || !this.messageTypes.has(u.type) || !Array.isArray(u.messages)) return;
    let inbound = 0;
    let outbound = 0;
    for (const m of u.messages) {
      if (m?.key?.fromMe) outbound++;
      else inbound++;
    }
    if (inbound + outbound === 0) return;
    this.inbound += inbound;
    this.outbound += outbound;
    this.client.dirty.add(this);
  }

  #beat(a, at) {
    const sock = a.sock;
    if (!this.rtt || a.pinging || typeof sock.query !== 'function') {
      this.#emit('heartbeat', {}, at);
      return;
    }
    a.pinging = true;
    const t0 = performance.now();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(FAILED), this.pingTimeoutMs);
      timer.unref?.();
    });
    let reply;
    try {
      reply = Promise.resolve(sock.query(pingNode(), this.pingTimeoutMs)).then((r) => (r ? OK : FAILED));
    } catch {
      reply = Promise.resolve(FAILED);
    }
    Promise.race([reply, timeout])
      .catch(() => FAILED)
      .then((r) => {
        clearTimeout(timer);
        a.pinging = false;
        // the frame was heard either way; the RTT only when the ping answered
        this.#emit('heartbeat', r === OK ? { rtt_ms: Math.max(0, Math.round(performance.now() - t0)) } : {}, at);
      })
      .catch((err) => this.client._report(err, 'heartbeat'));
  }

  #state(state, reason) {
    this.state = state;
    this.#emit('state', reason === undefined ? { state } : { state, reason });
  }

  #auth(method) {
    this.#emit('auth', { method });
  }

  #emit(type, fields, at) {
    if (this.stopped) return false;
    return this.client._enqueue(this.session, type, fields, at);
  }

  /** @internal queue the message counts gathered since the last flush */
  _drainMessages(now) {
    if (this.inbound > 0) this.client._enqueue(this.session, 'message', { direction: 'inbound', count: this.inbound }, now);
    if (this.outbound > 0) this.client._enqueue(this.session, 'message', { direction: 'outbound', count: this.outbound }, now);
    this.inbound = 0;
    this.outbound = 0;
  }

  /** @internal */
  _detachAll() {
    for (const a of [...this.attachments.values()]) this.#detach(a);
    this.current = null;
  }

  /** @internal */
  _markStopped() {
    this.stopped = true;
  }

  // ---- what the gateway reports itself -------------------------------------

  /**
   * Wraps the gateway's saveCreds: the returned function awaits the original
   * and then records `credentials_written`. The original's errors reach the
   * caller unchanged (and nothing is recorded).
   */
  wrapSaveCreds(saveCreds, store = this.store) {
    if (typeof saveCreds !== 'function') throw new TypeError('wapulse-baileys: wrapSaveCreds() takes a function');
    const self = this;
    return async function savedCreds(...args) {
      const result = await saveCreds.apply(this, args);
      self.credentialsWritten(store);
      return result;
    };
  }

  /** Records that credentials were persisted. */
  credentialsWritten(store = this.store) {
    return this.#guarded(() => this.#emit('credentials_written', typeof store === 'string' ? { store } : {}));
  }

  /** Merges labels into the session (`null` removes one). */
  setLabels(labels) {
    const problem = labelsProblem(labels);
    if (problem) {
      this.client._report(new TypeError(problem), 'setLabels');
      return false;
    }
    return this.#guarded(() => this.#emit('labels', { labels: { ...labels } }));
  }

  /** The distributed session lock was taken. */
  lock(heldBy, operation) {
    return this.#guarded(() => this.#emit('lock_acquired', { held_by: String(heldBy), operation: String(operation) }));
  }

  /** The lock was released. */
  unlock(heldBy, operation) {
    const f = {};
    if (heldBy !== undefined) f.held_by = String(heldBy);
    if (operation !== undefined) f.operation = String(operation);
    return this.#guarded(() => this.#emit('lock_released', f));
  }

  /** The gateway's reconnect circuit breaker opened or closed. */
  breaker(open, consecutiveFailures) {
    const f = { open: Boolean(open) };
    if (Number.isInteger(consecutiveFailures) && consecutiveFailures >= 0) f.consecutive_failures = consecutiveFailures;
    return this.#guarded(() => this.#emit('circuit_breaker', f));
  }

  /** An integrity check of the session data ran. */
  validation(valid, detail) {
    const f = { valid: Boolean(valid) };
    if (detail !== undefined) f.detail = String(detail);
    return this.#guarded(() => this.#emit('validation', f));
  }

  /** Any other wapulse event for this session (`error`, `counter`, ...). */
  event(type, fields = {}) {
    if (typeof type !== 'string') return false;
    const { session: _s, type: _t, id: _i, at: _a, ...rest } = fields ?? {};
    return this.#guarded(() => this.#emit(type, rest));
  }

  #guarded(fn) {
    try {
      return fn();
    } catch (err) {
      this.client._report(err, 'recording an event');
      return false;
    }
  }

  stats() {
    return {
      ...this.client.stats(),
      session: this.session,
      state: this.state,
      sockets: this.attachments.size,
      pendingInbound: this.inbound,
      pendingOutbound: this.outbound,
    };
  }

  /**
   * Detaches from every socket and sends what is queued, within timeoutMs.
   * Resolves to the stats (with `flushed`); never rejects.
   */
  async stop(timeoutMs) {
    if (this.stopped) return { ...this.stats(), flushed: this.client.queue.length === 0 };
    this._detachAll();
    const c = this.client;
    try {
      if (c.implicit && [...c.watchers.values()].every((w) => w === this)) {
        const s = await c.stop(timeoutMs);
        return { ...s, session: this.session, state: this.state, sockets: 0, pendingInbound: 0, pendingOutbound: 0 };
      }
      if (this.inbound + this.outbound > 0) {
        this._drainMessages(Date.now());
        c.dirty.delete(this);
      }
      const flushed = await c.flush(timeoutMs);
      this.stopped = true;
      c.watchers.delete(this.session);
      return { ...this.stats(), flushed };
    } catch (err) {
      c._report(err, 'stop');
      this.stopped = true;
      return { ...this.stats(), flushed: false };
    }
  }
}
