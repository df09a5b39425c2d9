// One session seen through the whatsapp-web.js Client that serves it (and
// the next Client, when the gateway makes a new one to restart). The
// session's history (was it connected before? was a QR or a pairing code
// shown? which restriction was reported?) lives here, across Clients.
//
// whatsapp-web.js drives WhatsApp Web in a Chromium page: its events say
// what the page saw, and the only way to know the page still works is to ask
// it something. The liveness heartbeat is that question: every
// `keepAliveIntervalMs` the watcher calls `client.getState()` (an evaluate
// in the page) and sends a heartbeat only when the page answers CONNECTED
// in time. A hung, crashed or unlinked page answers nothing, so wapulse sees
// the heartbeats stop (HEARTBEAT_STALE) even though no event ever said so.
//
// Event names and values are whatsapp-web.js 1.34's (src/util/Constants.js:
// Events, WAState, MessageAck); the adapter never imports the package, and
// test/constants.test.js checks these copies against it.

import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { MAX_IDS } from './queue.js';

/** whatsapp-web.js `WAState` (src/util/Constants.js). */
export const WAState = Object.freeze({
  CONFLICT: 'CONFLICT',
  CONNECTED: 'CONNECTED',
  DEPRECATED_VERSION: 'DEPRECATED_VERSION',
  OPENING: 'OPENING',
  PAIRING: 'PAIRING',
  PROXYBLOCK: 'PROXYBLOCK',
  SMB_TOS_BLOCK: 'SMB_TOS_BLOCK',
  TIMEOUT: 'TIMEOUT',
  TOS_BLOCK: 'TOS_BLOCK',
  UNLAUNCHED: 'UNLAUNCHED',
  UNPAIRED: 'UNPAIRED',
  UNPAIRED_IDLE: 'UNPAIRED_IDLE',
});

/** The whatsapp-web.js `Events` the watcher follows (src/util/Constants.js). */
export const FOLLOWED_EVENTS = Object.freeze({
  QR_RECEIVED: 'qr',
  CODE_RECEIVED: 'code',
  LOADING_SCREEN: 'loading_screen',
  AUTHENTICATED: 'authenticated',
  AUTHENTICATION_FAILURE: 'auth_failure',
  READY: 'ready',
  STATE_CHANGED: 'change_state',
  DISCONNECTED: 'disconnected',
  MESSAGE_RECEIVED: 'message',
  MESSAGE_CREATE: 'message_create',
  MESSAGE_ACK: 'message_ack',
  REMOTE_SESSION_SAVED: 'remote_session_saved',
});

/**
 * whatsapp-web.js `MessageAck` → wapulse ack status. ACK_PENDING (0) is a
 * send no one has taken yet: nothing to say.
 */
export const ACK_STATUS = Object.freeze({ [-1]: 'error', 1: 'server', 2: 'delivered', 3: 'read', 4: 'played' });

// after these, nothing more is sent for a message (wapulse stops following it)
const FINAL = new Set(['read', 'played', 'error']);
// states in which the session is down: the browser closing then says nothing new
const DOWN = new Set(['disconnected', 'logged_out', 'stopped']);
// restrictions: a code wapulse's `restriction` event takes
const RESTRICTIONS = new Set([WAState.TOS_BLOCK, WAState.SMB_TOS_BLOCK]);

const SESSION_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
const GAUGE_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const RESERVED_LABELS = new Set(['session', 'alertname', 'severity', 'code', 'level']);
// wapulse's bounds: a message id (and an event id) at most 256 characters,
// a reason at most 1024
const MAX_ID_LEN = 256;
const MAX_REASON_LEN = 1024;
// how many recent message ids a watcher remembers (sends, acks already queued)
const RECENT = 4096;
const TIMED_OUT = Symbol('timed out');

/**
 * The idempotency id of an ack: the same for the same message and status
 * however often whatsapp-web.js reports it, so wapulse counts it once.
 */
export function ackId(message, status) {
  const id = `ack:${message}:${status}`;
  if (id.length <= MAX_ID_LEN) return id;
  return `ack:sha256:${createHash('sha256').update(message).digest('base64url')}:${status}`;
}

/**
 * What a WAState (from `change_state`, `disconnected` or `getState()`) means
 * for wapulse: `{ state, reason?, restriction? }`.
 *
 * - `connectedBefore`: the session was connected since it last logged out
 *   (OPENING / PAIRING are then a reconnect, else a first connect).
 * - `gone`: the state came with `disconnected`, after which whatsapp-web.js
 *   destroys the Client: never an up state.
 */
export function mapWAState(waState, { connectedBefore = false, gone = false } = {}) {
  let out;
  switch (waState) {
    case WAState.CONNECTED:
      out = { state: 'connected' };
      break;
    case WAState.OPENING:
    case WAState.PAIRING:
      out = { state: connectedBefore ? 'reconnecting' : 'connecting' };
      break;
    case WAState.CONFLICT:
      // another WhatsApp Web took the session: wapulse's "connection
      // replaced" close code, which SESSION_CONFLICT counts
      out = { state: 'disconnected', reason: 440 };
      break;
    case 'LOGOUT':
    case WAState.UNPAIRED:
    case WAState.UNPAIRED_IDLE:
      out = { state: 'logged_out', reason: waState };
      break;
    case WAState.TOS_BLOCK:
    case WAState.SMB_TOS_BLOCK:
      out = { state: 'logged_out', reason: waState, restriction: waState };
      break;
    default:
      // PROXYBLOCK, TIMEOUT, DEPRECATED_VERSION, UNLAUNCHED, and the text
      // whatsapp-web.js gives otherwise ('Max qrcode retries reached')
      out = { state: 'disconnected' };
      if (typeof waState === 'string' && waState !== '') out.reason = clip(waState, MAX_REASON_LEN);
  }
  if (gone && (out.state === 'connected' || out.state === 'connecting' || out.state === 'reconnecting')) {
    return { state: 'disconnected', reason: waState };
  }
  return out;
}

/** At most max characters (code points, as wapulse counts them). */
function clip(text, max) {
  if (text.length <= max) return text;
  const cps = Array.from(text);
  return cps.length <= max ? text : cps.slice(0, max).join('');
}

/**
 * A map of its newest `max` keys, the oldest forgotten first. Its order is
 * kept in a ring rather than read off the Map: taking a Map's first key
 * after many deletions from its front scans the holes they leave (a few
 * microseconds an event at 4096 keys).
 */
class Recent {
  constructor(max) {
    this.max = max;
    this.map = new Map();
    this.ring = [];
    this.next = 0; // where the next key goes (the oldest, once full)
  }

  has(key) {
    return this.map.has(key);
  }

  get(key) {
    return this.map.get(key);
  }

  set(key, value) {
    if (!this.map.has(key)) {
      if (this.ring.length < this.max) this.ring.push(key);
      else {
        this.map.delete(this.ring[this.next]);
        this.ring[this.next] = key;
      }
      this.next = (this.next + 1) % this.max;
    }
    this.map.set(key, value);
  }
}

const fromMe = (msg) => Boolean(msg?.fromMe ?? msg?.id?.fromMe);
const idOf = (msg) => {
  const id = msg?.id?._serialized;
  return typeof id === 'string' ? id : undefined;
};

export function checkSession(session) {
  if (typeof session !== 'string' || !SESSION_RE.test(session)) {
    throw new TypeError(`wapulse-wwebjs: session must be 1-128 characters of [A-Za-z0-9._:@-], got ${JSON.stringify(session)}`);
  }
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

function duration(name, v, fallback) {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new TypeError(`wapulse-wwebjs: option ${name} must be a non-negative number of milliseconds, got ${String(v)}`);
  }
  return v;
}

/** `stop(timeoutMs)` or `stop({ stopped, timeoutMs })`. */
export function stopOptions(opts, defaults = {}) {
  if (typeof opts === 'number') return { timeoutMs: opts, stopped: Boolean(defaults.stopped) };
  const o = opts && typeof opts === 'object' ? opts : {};
  return {
    timeoutMs: typeof o.timeoutMs === 'number' ? o.timeoutMs : defaults.timeoutMs,
    stopped: o.stopped === undefined ? Boolean(defaults.stopped) : Boolean(o.stopped),
  };
}

function isClient(c) {
  return Boolean(c) && typeof c.on === 'function' && (typeof c.off === 'function' || typeof c.removeListener === 'function');
}

export class SessionWatcher {
  /**
   * @param {import('./client.js').WapulseClient} client
   * @param {string | undefined} session undefined until watch() names it
   */
  constructor(client, session, opts = {}) {
    this.client = client;
    this.session = session;
    this.keepAliveIntervalMs = duration('keepAliveIntervalMs', opts.keepAliveIntervalMs, 30000);
    this.pingTimeoutMs = duration('pingTimeoutMs', opts.pingTimeoutMs, 10000);
    this.loadingTimeoutMs = duration('loadingTimeoutMs', opts.loadingTimeoutMs, 120000);
    if (opts.memoryGaugeName !== undefined && opts.memoryGaugeName !== null && (typeof opts.memoryGaugeName !== 'string' || !GAUGE_RE.test(opts.memoryGaugeName))) {
      throw new TypeError(`wapulse-wwebjs: memoryGaugeName must be [A-Za-z_][A-Za-z0-9_]* of at most 128 characters, got ${JSON.stringify(opts.memoryGaugeName)}`);
    }
    this.memoryGaugeName = opts.memoryGaugeName ?? undefined;
    this.reportStop = Boolean(opts.reportStop);
    this.store = opts.store;
    this.labels = opts.labels;
    this.current = null; // the followed Client's attachment
    this.state = null; // the last state sent
    this.reason = undefined; // and its reason
    this.connectedBefore = false; // connected since the last logout
    this.qrSeen = false; // since the last authenticated
    this.codeSeen = false;
    this.restricted = null; // the restriction code reported since the last connected
    this.loadingTimer = null;
    this.keepAliveTimer = null;
    this.inbound = 0; // message counts not yet queued
    this.outbound = 0;
    this.outIds = new Set(); // ids of those outbound messages (at most MAX_IDS)
    this.outSince = 0; // when the first of them was seen
    this.outAcks = []; // acks of those messages, queued right after them
    this.announced = new Recent(RECENT); // recent outbound ids sent to wapulse (or about to be)
    this.acked = new Recent(RECENT); // recent message id -> the ack statuses queued for it
    this.liveness = { pings: 0, connected: 0, otherAnswers: 0, failures: 0, timeouts: 0, skipped: 0, lastAnswer: undefined, lastRttMs: undefined };
    this.stopped = false;
    if (session !== undefined && this.labels !== undefined && this.labels !== null) this.setLabels(this.labels);
  }

  // ---- following a Client --------------------------------------------------

  /**
   * Follows a whatsapp-web.js Client (call it before `client.initialize()`;
   * again with the next Client when the gateway makes a new one for the
   * session). `opts.session` names the session when the watcher was made
   * without one. Returns the watcher.
   */
  watch(wc, opts = {}) {
    if (!isClient(wc)) throw new TypeError('wapulse-wwebjs: watch() takes a whatsapp-web.js Client');
    const session = opts?.session;
    if (session !== undefined && session !== this.session) {
      if (this.session !== undefined) {
        throw new TypeError(`wapulse-wwebjs: this watcher follows session ${JSON.stringify(this.session)}; one watcher per session (createClient().session(id) for more)`);
      }
      this.client._bind(this, session);
      if (this.labels !== undefined && this.labels !== null) this.setLabels(this.labels);
    }
    if (this.session === undefined) throw new TypeError('wapulse-wwebjs: watch(client, { session }) needs the session id (or give `session` to createWatcher)');
    if (this.stopped) return this;
    if (this.current?.wc === wc) return this;
    if (this.current) this.#detach(this.current); // a Client the gateway replaced: its end is no news
    const a = { wc, off: [], browser: null, browserOff: null, browserGone: false, page: null, pageOff: null, closing: null, initCalls: 0, pinging: false, metering: false };
    this.current = a;
    try {
      this.#listen(a);
      this.#wrapMethods(a);
      this.#trap(a, 'pupBrowser', (b) => this.#attachBrowser(a, b));
      this.#trap(a, 'pupPage', (p) => this.#attachPage(a, p));
    } catch (err) {
      this.client._report(err, 'attaching to the client');
    }
    this.#startKeepAlive();
    if (wc.info && wc.pupPage) {
      // watched after `ready`: the page says what state the session is in
      this.#ping(a, true);
    } else {
      this.#start();
    }
    return this;
  }

  #listen(a) {
    const wc = a.wc;
    const on = (event, fn) => {
      const listener = (...args) => {
        if (this.current !== a || this.stopped) return;
        this.#guard(event, () => {
          this.#sync(a);
          fn(...args);
        });
      };
      wc.on(event, listener);
      a.off.push(() => (wc.off ?? wc.removeListener).call(wc, event, listener));
    };
    const E = FOLLOWED_EVENTS;
    on(E.QR_RECEIVED, () => {
      this.qrSeen = true;
      this.#clearLoading();
      this.#state('qr_required');
    });
    on(E.CODE_RECEIVED, () => {
      this.codeSeen = true;
      this.#clearLoading();
      this.#state('qr_required', 'pairing_code');
    });
    on(E.LOADING_SCREEN, () => this.#onLoadingScreen());
    on(E.AUTHENTICATED, () => {
      this.#emit('auth', { method: this.codeSeen ? 'pairing_code' : this.qrSeen ? 'qr_scan' : 'session_restore' });
      this.qrSeen = false;
      this.codeSeen = false;
    });
    on(E.AUTHENTICATION_FAILURE, () => this.#state('logged_out', 'auth_failure'));
    on(E.READY, () => this.#state('connected'));
    on(E.STATE_CHANGED, (s) => this.#onWAState(s, false));
    on(E.DISCONNECTED, (reason) => this.#onWAState(reason, true));
    on(E.MESSAGE_RECEIVED, (msg) => {
      if (fromMe(msg)) return; // whatsapp-web.js never emits it for ours; counted from message_create
      this.inbound++;
      this.client.dirty.add(this);
    });
    on(E.MESSAGE_CREATE, (msg) => this.#onCreate(msg));
    on(E.MESSAGE_ACK, (msg, ack) => {
      if (!fromMe(msg)) return;
      const status = ACK_STATUS[ack];
      if (status) this.#ack(idOf(msg), status);
    });
    on(E.REMOTE_SESSION_SAVED, () => this.credentialsWritten());
  }

  // initialize(): a (re)start; destroy() and logout(): the browser closing
  // after them is the gateway's doing, not a crash. The originals' results
  // and errors reach the gateway unchanged.
  #wrapMethods(a) {
    const self = this;
    const wc = a.wc;
    const wrap = (name, make) => {
      const orig = wc[name];
      if (typeof orig !== 'function') return;
      const wrapped = make(orig);
      const own = Object.prototype.hasOwnProperty.call(wc, name);
      try {
        wc[name] = wrapped;
        a.off.push(() => {
          if (wc[name] !== wrapped) return;
          // the Client's own method again: the prototype's, or its own one
          if (own) wc[name] = orig;
          else delete wc[name];
        });
      } catch (err) {
        this.client._report(err, `wrapping ${name}`);
      }
    };
    wrap('initialize', (orig) =>
      async function initialize(...args) {
        const call = ++a.initCalls;
        self.#guard('initialize', () => {
          if (self.current !== a || self.stopped) return;
          a.closing = null;
          a.browserGone = false;
          self.#start();
        });
        try {
          return await orig.apply(this, args);
        } catch (err) {
          // only the latest call speaks: an earlier one, still in inject()
          // when the gateway destroyed the browser and started again,
          // fails late and says nothing of the new start
          if (call === a.initCalls) self.#guard('initialize', () => self.#initFailed(a, err));
          throw err;
        }
      },
    );
    for (const name of ['destroy', 'logout']) {
      wrap(name, (orig) =>
        function closing(...args) {
          if (self.current === a) a.closing = name;
          return orig.apply(this, args);
        },
      );
    }
  }

  // pupBrowser / pupPage are set by initialize() once Chromium is up, before
  // WhatsApp Web loads: an accessor catches the moment, so a browser that
  // dies while the page loads is seen too. Where the property cannot be
  // redefined, the browser and page are picked up at the next event or tick.
  #trap(a, prop, attach) {
    const wc = a.wc;
    const desc = Object.getOwnPropertyDescriptor(wc, prop);
    if (desc && desc.configurable && 'value' in desc) {
      let value = desc.value;
      const get = () => value;
      const set = (v) => {
        value = v;
        if (this.current === a && !this.stopped) this.#guard(prop, () => attach(v));
      };
      Object.defineProperty(wc, prop, { configurable: true, enumerable: desc.enumerable, get, set });
      a.off.push(() => {
        const d = Object.getOwnPropertyDescriptor(wc, prop);
        if (d && d.get === get) Object.defineProperty(wc, prop, { configurable: true, enumerable: desc.enumerable, writable: true, value });
      });
    }
    attach(wc[prop]);
  }

  #sync(a) {
    if (a.wc.pupBrowser !== a.browser) this.#attachBrowser(a, a.wc.pupBrowser);
    if (a.wc.pupPage !== a.page) this.#attachPage(a, a.wc.pupPage);
  }

  #attachBrowser(a, browser) {
    if (a.browser === browser) return;
    a.browserOff?.();
    a.browserOff = null;
    a.browser = browser ?? null;
    a.browserGone = false;
    if (!browser || typeof browser.on !== 'function') return;
    const onGone = () => {
      if (this.current !== a || this.stopped || a.browser !== browser) return;
      this.#guard('browser disconnected', () => this.#onBrowserGone(a));
    };
    browser.on('disconnected', onGone);
    a.browserOff = () => browser.off?.('disconnected', onGone);
  }

  #attachPage(a, page) {
    if (a.page === page) return;
    a.pageOff?.();
    a.pageOff = null;
    a.page = page ?? null;
    if (!page || typeof page.on !== 'function') return;
    // puppeteer's PageEvent.Error: "Page crashed!" (the renderer died)
    const onCrash = () => {
      if (this.current !== a || this.stopped || a.page !== page) return;
      this.#guard('page crash', () => {
        if (!DOWN.has(this.state)) this.#state('disconnected', 'page_crashed');
      });
    };
    page.on('error', onCrash);
    a.pageOff = () => page.off?.('error', onCrash);
  }

  #onBrowserGone(a) {
    a.browserGone = true;
    if (DOWN.has(this.state)) return; // whatsapp-web.js destroys the Client after its own `disconnected`
    if (a.closing === 'logout') this.#state('logged_out', 'LOGOUT');
    else if (a.closing === 'destroy') this.#state('disconnected', 'destroyed');
    else this.#state('disconnected', 'browser_disconnected');
  }

  // initialize() rejected: Chromium did not start, WhatsApp Web did not
  // load (whatsapp-web.js' 'auth timeout'), or the browser went away under
  // it. In the last case the browser's end says why, whichever comes first:
  // the gateway's destroy() or logout() (the page's evaluate fails with
  // "Target closed" before the browser's `disconnected`), or a browser
  // whose connection is already gone.
  #initFailed(a, err) {
    if (this.current !== a || this.stopped || DOWN.has(this.state)) return;
    const b = a.browser;
    if (a.closing || (b && (b.connected === false || (b.connected === undefined && b.isConnected?.() === false)))) {
      this.#onBrowserGone(a);
      return;
    }
    const text = typeof err === 'string' ? err : err?.message;
    this.#state('disconnected', clip(text ? `initialize_failed: ${text}` : 'initialize_failed', MAX_REASON_LEN));
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
        /* the client may be gone already */
      }
    }
    a.off = [];
    for (const off of [a.browserOff, a.pageOff]) {
      try {
        off?.();
      } catch {
        /* the browser may be gone already */
      }
    }
    a.browserOff = a.pageOff = null;
    if (this.current === a) this.current = null;
  }

  // The start of a Client (watch(), initialize()): `connecting`, or
  // `reconnecting` when the session was connected before and has not
  // logged out since.
  #start() {
    if (this.state === 'connecting' || this.state === 'reconnecting') return;
    this.#state(this.connectedBefore ? 'reconnecting' : 'connecting');
  }

  #onWAState(s, gone) {
    const m = mapWAState(s, { connectedBefore: this.connectedBefore, gone });
    if (m.reason === undefined) this.#state(m.state);
    else this.#state(m.state, m.reason);
    if (m.restriction && this.restricted !== m.restriction) {
      this.restricted = m.restriction;
      this.#emit('restriction', { code: m.restriction });
    }
  }

  // `loading_screen(percent, message)`: WhatsApp Web syncing before `ready`.
  // A sync that never ends ("stuck at loading screen 100") sends no event:
  // no `ready` within loadingTimeoutMs of the last progress is a disconnect.
  // Once connected, a loading screen (a resync) arms nothing.
  #onLoadingScreen() {
    if (this.state === 'connected' || this.loadingTimeoutMs === 0) return;
    this.#clearLoading();
    this.loadingTimer = setTimeout(() => {
      this.loadingTimer = null;
      if (this.stopped || this.state === 'connected' || DOWN.has(this.state)) return;
      this.#guard('loading screen', () => this.#state('disconnected', 'loading_screen_stuck'));
    }, this.loadingTimeoutMs);
    this.loadingTimer.unref?.();
  }

  #clearLoading() {
    if (this.loadingTimer) clearTimeout(this.loadingTimer);
    this.loadingTimer = null;
  }

  // ---- liveness --------------------------------------------------------------

  #startKeepAlive() {
    if (this.keepAliveTimer || this.keepAliveIntervalMs === 0) return;
    this.keepAliveTimer = setInterval(() => this.#tick(), this.keepAliveIntervalMs);
    this.keepAliveTimer.unref?.();
  }

  #tick() {
    const a = this.current;
    if (!a || this.stopped) return;
    this.#guard('keepalive', () => {
      this.#sync(a);
      if (!a.page || a.browserGone) return; // not started yet, or the browser is gone
      this.#ping(a, false);
      if (this.memoryGaugeName) this.#meter(a);
    });
  }

  // client.getState(): an evaluate in the page, answering WhatsApp Web's
  // socket state. One in flight at a time (a hung page must not pile up
  // evaluates): the next tick is skipped until this one settles, whatever
  // pingTimeoutMs says. Only CONNECTED within pingTimeoutMs is a heartbeat;
  // a late answer, an error or another state sends nothing. With
  // `initial` (watched after `ready`), the answer also sets the state.
  #ping(a, initial) {
    if (a.pinging) {
      this.liveness.skipped++;
      return;
    }
    a.pinging = true;
    this.liveness.pings++;
    const t0 = performance.now();
    const call = (async () => a.wc.getState())().then(
      (s) => ({ s }),
      (err) => ({ err }),
    );
    call.then(() => {
      a.pinging = false;
    });
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.pingTimeoutMs);
      timer.unref?.();
    });
    Promise.race([call, timeout])
      .then((r) => {
        clearTimeout(timer);
        if (r === TIMED_OUT) {
          this.liveness.timeouts++;
          return;
        }
        if (r.err !== undefined) {
          this.liveness.failures++;
          return;
        }
        this.liveness.lastAnswer = r.s;
        if (this.current !== a || this.stopped) return;
        if (initial && typeof r.s === 'string') this.#onWAState(r.s, false);
        if (r.s !== WAState.CONNECTED) {
          this.liveness.otherAnswers++;
          return;
        }
        const rtt = Math.max(0, Math.round(performance.now() - t0));
        this.liveness.connected++;
        this.liveness.lastRttMs = rtt;
        this.#emit('heartbeat', { rtt_ms: rtt });
      })
      .catch((err) => this.client._report(err, 'keepalive'));
  }

  // The page's JS heap (puppeteer's page.metrics().JSHeapUsedSize), one
  // reading in flight at a time: whatsapp-web.js sessions are known to grow
  // until the host dies.
  #meter(a) {
    const page = a.page;
    if (a.metering || typeof page?.metrics !== 'function') return;
    a.metering = true;
    (async () => page.metrics())()
      .then((m) => {
        const v = m?.JSHeapUsedSize;
        if (this.current === a && Number.isFinite(v) && v >= 0) this.#emit('gauge', { name: this.memoryGaugeName, value: v });
      })
      .catch(() => {
        /* a page that cannot answer: the heartbeat says so */
      })
      .finally(() => {
        a.metering = false;
      });
  }

  // ---- messages and acks -------------------------------------------------------

  // message_create: every message created, ours included (from this Client
  // and the account's other devices). Ours are the sends: counted, with
  // their ids. A message created with an ack already past PENDING (synced
  // from another device) carries that ack too.
  #onCreate(msg) {
    if (!fromMe(msg)) return; // inbound: counted from `message`
    this.#sent(idOf(msg), Date.now());
    this.client.dirty.add(this);
    const status = ACK_STATUS[msg?.ack];
    if (status) this.#ack(idOf(msg), status);
  }

  // One outbound message: counted, and its id kept for the outbound event.
  // An id seen lately is the same message reported again: not counted twice.
  #sent(id, now) {
    const usable = typeof id === 'string' && id !== '' && id.length <= MAX_ID_LEN;
    if (usable && (this.outIds.has(id) || this.announced.has(id))) return;
    if (this.outbound === 0) this.outSince = now;
    this.outbound++;
    if (!usable) return;
    this.outIds.add(id);
    this.announced.set(id, true);
    if (this.outIds.size >= MAX_IDS) this.#drainOutbound();
  }

  // Queues the outbound messages gathered so far: one event, or one per
  // MAX_IDS ids (the last one carries the messages without an id), then
  // the acks of those messages that came meanwhile.
  #drainOutbound() {
    const count = this.outbound;
    if (count === 0) return;
    const ids = [...this.outIds];
    const acks = this.outAcks;
    const at = this.outSince;
    this.outbound = 0;
    this.outIds.clear();
    this.outAcks = [];
    if (ids.length === 0) {
      this.client._enqueue(this.session, 'message', { direction: 'outbound', count }, at);
    } else {
      let left = count;
      for (let i = 0; i < ids.length; i += MAX_IDS) {
        const chunk = ids.slice(i, i + MAX_IDS);
        const n = i + MAX_IDS >= ids.length ? left : chunk.length;
        left -= n;
        this.client._enqueue(this.session, 'message', { direction: 'outbound', count: n, ids: chunk }, at);
      }
    }
    for (const a of acks) this.client._enqueue(this.session, 'ack', a.fields, a.at, a.id);
  }

  // Queues an ack, once per message and status (and nothing after read,
  // played or error: wapulse is done with the message). The ack of a send
  // still gathered for the next outbound event waits for it, so that
  // wapulse knows the message when its ack comes.
  #ack(message, status) {
    if (this.stopped || typeof message !== 'string' || message === '' || message.length > MAX_ID_LEN) return false;
    const done = this.acked.get(message);
    if (done && (done.includes(status) || done.some((s) => FINAL.has(s)))) return false;
    if (done) done.push(status);
    else this.acked.set(message, [status]);
    const fields = { message, status };
    const at = Date.now();
    const id = ackId(message, status);
    if (this.outIds.has(message)) {
      this.outAcks.push({ fields, at, id });
      return true;
    }
    return this.#emit('ack', fields, at, id);
  }

  // ---- sending -------------------------------------------------------------------

  // A state change; the same state with the same reason again says nothing
  // new (change_state then disconnected with the same WAState; a QR renewed
  // every ~20 s) and is not repeated: a 440 is one conflict.
  #state(state, reason) {
    if (state === this.state && reason === this.reason) return;
    this.state = state;
    this.reason = reason;
    if (state === 'connected') {
      this.connectedBefore = true;
      this.#clearLoading();
    } else if (DOWN.has(state)) {
      this.#clearLoading();
      if (state === 'logged_out') this.connectedBefore = false;
    }
    this.#emit('state', reason === undefined ? { state } : { state, reason });
    if (state === 'connected' && this.restricted) {
      // connected again after a ban this watcher reported: WhatsApp Web
      // does not connect a banned number, so the ban is over
      const code = this.restricted;
      this.restricted = null;
      this.#emit('restriction', { code, lifted: true });
    }
  }

  #emit(type, fields, at, id) {
    if (this.stopped || this.session === undefined) return false;
    return this.client._enqueue(this.session, type, fields, at, id);
  }

  /** @internal queue the message counts gathered since the last flush */
  _drainMessages(now) {
    if (this.inbound > 0) this.client._enqueue(this.session, 'message', { direction: 'inbound', count: this.inbound }, now);
    this.inbound = 0;
    this.#drainOutbound();
  }

  /** @internal stop following: listeners, wrapped methods and timers given back */
  _detachAll() {
    if (this.current) this.#detach(this.current);
    this.current = null;
    this.#clearLoading();
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  /** @internal `state stopped`: an operator stopped the session on purpose */
  _stoppedState() {
    if (this.stopped || this.session === undefined) return;
    this.state = 'stopped';
    this.reason = undefined;
    this.#emit('state', { state: 'stopped' });
  }

  /** @internal */
  _markStopped() {
    this.stopped = true;
  }

  // ---- what the gateway reports itself -----------------------------------------

  /** Records that credentials were persisted (RemoteAuth's `remote_session_saved` does it for you). */
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
      session: this.session ?? null,
      state: this.state,
      following: Boolean(this.current),
      pendingInbound: this.inbound,
      pendingOutbound: this.outbound,
      liveness: { ...this.liveness },
    };
  }

  /**
   * Stops following the Client and sends what is queued, within timeoutMs.
   * `stop({ stopped: true })` (or the `reportStop` option) first sends
   * `state stopped`: the operator stopped the session on purpose. Resolves
   * to the stats (with `flushed`); never rejects.
   * @param {number | { stopped?: boolean, timeoutMs?: number }} [opts]
   */
  async stop(opts) {
    const { timeoutMs, stopped } = stopOptions(opts, { stopped: this.reportStop });
    if (this.stopped) return { ...this.stats(), flushed: this.client.queue.length === 0 };
    this._detachAll();
    const c = this.client;
    try {
      if (c.implicit && [...c.watchers.values()].every((w) => w === this)) {
        if (stopped) this._stoppedState();
        const s = await c.stop(timeoutMs);
        this.stopped = true;
        return { ...s, session: this.session ?? null, state: this.state, following: false, pendingInbound: 0, pendingOutbound: 0, liveness: { ...this.liveness } };
      }
      if (stopped) this._stoppedState();
      if (this.inbound + this.outbound > 0) {
        this._drainMessages(Date.now());
        c.dirty.delete(this);
      }
      const flushed = await c.flush(timeoutMs);
      this.stopped = true;
      if (this.session !== undefined && c.watchers.get(this.session) === this) c.watchers.delete(this.session);
      return { ...this.stats(), flushed };
    } catch (err) {
      c._report(err, 'stop');
      this.stopped = true;
      return { ...this.stats(), flushed: false };
    }
  }
}
