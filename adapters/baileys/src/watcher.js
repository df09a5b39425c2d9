// One session seen through the Baileys sockets that serve it, one after the
// other. Baileys never reconnects by itself: the gateway makes a new socket
// per attempt and calls watch() on each; the session's state (was there a
// close before? was a QR shown?) lives here, across sockets.

import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { MAX_IDS } from './queue.js';

/** Close codes after which the session must be paired again. */
export const LOGGED_OUT_CODES = Object.freeze([401, 403, 411]);

const SESSION_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
const RESERVED_LABELS = new Set(['session', 'alertname', 'severity', 'code', 'level']);
const OK = Symbol('ok');
const FAILED = Symbol('failed');

// wapulse's bounds: a message id (and an event id) at most 256 characters,
// an error code 1-24 of [A-Za-z0-9_.-], a detail at most 1024 characters
const MAX_ID_LEN = 256;
const CODE_RE = /^[A-Za-z0-9_.-]{1,24}$/;
const MAX_DETAIL_LEN = 1024;
// how many recent message ids a watcher remembers (sends, acks already queued)
const RECENT = 4096;

// proto.WebMessageInfo.Status (WAProto/index.d.ts; Baileys exports it as
// WAMessageStatus): ERROR 0, PENDING 1, SERVER_ACK 2, DELIVERY_ACK 3, READ 4,
// PLAYED 5. PENDING is the state of a send before any ack: nothing to say.
const ACK_OF_STATUS = Object.freeze(['error', undefined, 'server', 'delivered', 'read', 'played']);
// after these, nothing more is sent for a message (wapulse stops following it)
const FINAL = new Set(['read', 'played', 'error']);

/**
 * The idempotency id of an ack: the same for the same message and status
 * whoever reports it (`messages.update`, a group receipt, the server's ack
 * node) and however often, so wapulse counts it once.
 */
export function ackId(message, status) {
  const id = `ack:${message}:${status}`;
  if (id.length <= MAX_ID_LEN) return id;
  return `ack:sha256:${createHash('sha256').update(message).digest('base64url')}:${status}`;
}

/** `user@server` of a jid (no device, no agent), as Baileys' jidNormalizedUser. */
function userOf(jid) {
  if (typeof jid !== 'string') return undefined;
  const at = jid.indexOf('@');
  if (at < 0) return undefined;
  const user = jid.slice(0, at).split(':')[0].split('_')[0];
  const server = jid.slice(at + 1);
  return `${user}@${server === 'c.us' ? 's.whatsapp.net' : server}`;
}

/**
 * The account's own users (pn and lid): Baileys' creds.me, read live from
 * `sock.authState.creds` (`sock.user` is a copy taken when the socket was
 * made: the layers of makeWASocket spread the object, getter included).
 */
function ownUsers(sock) {
  const out = new Set();
  try {
    const me = sock.authState?.creds?.me ?? sock.user;
    for (const jid of [me?.id, me?.lid]) {
      const u = userOf(jid);
      if (u) out.add(u);
    }
  } catch {
    /* no user yet */
  }
  return out;
}

/** At most max characters (code points, as wapulse counts them). */
function clip(text, max) {
  if (text.length <= max) return text;
  const cps = Array.from(text);
  return cps.length <= max ? text : cps.slice(0, max).join('');
}

/** Adds to a set kept to its newest `RECENT` entries. */
function remember(set, value) {
  set.delete(value);
  set.add(value);
  if (set.size > RECENT) set.delete(set.values().next().value);
}

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
    this.outIds = new Set(); // ids of those outbound messages (at most MAX_IDS)
    this.outSince = 0; // when the first of them was seen
    this.outAcks = []; // acks of those messages, queued right after them
    this.announced = new Set(); // recent outbound ids sent to wapulse (or about to be)
    this.acked = new Map(); // recent message id -> the ack statuses queued for it
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
      const onMessagesUpdate = (u) => this.#guard('messages.update', () => this.#onMessagesUpdate(u));
      const onReceipts = (u) => this.#guard('message-receipt.update', () => this.#onReceipts(a, u));
      sock.ev.on('connection.update', onUpdate);
      sock.ev.on('messages.upsert', onUpsert);
      sock.ev.on('messages.update', onMessagesUpdate);
      sock.ev.on('message-receipt.update', onReceipts);
      a.off.push(
        () => sock.ev.off('connection.update', onUpdate),
        () => sock.ev.off('messages.upsert', onUpsert),
        () => sock.ev.off('messages.update', onMessagesUpdate),
        () => sock.ev.off('message-receipt.update', onReceipts),
      );
      const ws = sock.ws;
      if (ws && typeof ws.on === 'function') {
        // The server's ack of a message stanza we sent. Baileys itself only
        // looks at the ones with an `error` (Socket/messages-recv.js,
        // handleBadAck: they become a messages.update with status ERROR);
        // a plain one is the only sign that the server took a send, so it
        // is taken here, for the sends this watcher reported.
        const onServerAck = (node) => this.#guard('ack', () => this.#onServerAck(node));
        ws.on('CB:ack,class:message', onServerAck);
        a.off.push(() => ws.off?.('CB:ack,class:message', onServerAck));
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
      // The gateway's own sends, when counted ('append'): taken when
      // sendMessage resolves, i.e. once Baileys wrote the stanza
      // (Socket/messages-send.js: relayMessage, then the `append` upsert on
      // a later tick, which createBufferedFunction holds ~100 ms more,
      // Utils/event-buffer.js). Taken then, a send is known before the
      // server can ack it, and timed when it left. The upsert that follows
      // is the same message (same id): not counted again. The original's
      // result and errors reach the gateway unchanged.
      const send = sock.sendMessage;
      if (typeof send === 'function') {
        const self = this;
        const wrappedSend = async function sendMessage(...args) {
          const msg = await send.apply(this, args);
          self.#guard('sendMessage', () => self.#onSendMessage(msg));
          return msg;
        };
        try {
          sock.sendMessage = wrappedSend;
          a.off.push(() => {
            if (sock.sendMessage === wrappedSend) sock.sendMessage = send;
          });
        } catch (err) {
          // a socket that will not take it: its sends come from the upserts
          this.client._report(err, 'wrapping sendMessage');
        }
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

  // messages.upsert of the counted types: inbound and outbound counts, the
  // ids of the outbound ones. Our messages' `status` is read too: an ack
  // that reaches Baileys while the upsert is still held in its event buffer
  // is merged into the message (Utils/event-buffer.js, `messages.update`:
  // Object.assign(existing, update)) and never emitted as messages.update.
  // That is how a send the server refuses at once (463) arrives: the
  // `append` upsert of the send, status ERROR (0), messageStubParameters
  // ['463', …]. An error is taken from upserts of any type (an error of a
  // send wapulse does not follow still tells of a restriction); other
  // statuses from the counted types only (SERVER_ACK is also what Baileys
  // gives our messages sent from another device: the server has them).
  #onUpsert(u) {
    if (this.stopped || !u || !Array.isArray(u.messages) || u.messages.length === 0) return;
    const counted = this.messageTypes.has(u.type);
    const now = Date.now();
    for (const m of u.messages) {
      const mine = Boolean(m?.key?.fromMe);
      if (counted) {
        if (mine) this.#sent(m.key.id, now);
        else this.inbound++;
      }
      if (!mine || typeof m.status !== 'number') continue;
      const name = ACK_OF_STATUS[m.status];
      if (name === 'error') {
        const p = Array.isArray(m.messageStubParameters) ? m.messageStubParameters : [];
        this.#ack(m.key.id, 'error', p[0], p[1]);
      } else if (name && counted) this.#ack(m.key.id, name);
    }
    if (counted) this.client.dirty.add(this);
  }

  #onSendMessage(msg) {
    if (this.stopped || !this.messageTypes.has('append') || !msg?.key?.fromMe) return;
    this.#sent(msg.key.id, Date.now());
    this.client.dirty.add(this);
  }

  // One outbound message: counted, and its id kept for the outbound event.
  // An id seen lately is the same message reported again (a sendMessage
  // and its upsert; an upsert repeated): not counted twice (wapulse does
  // the same for an id it follows). A message without a usable id is
  // counted without one. The event's time is the first send's: wapulse
  // times the acks from it.
  #sent(id, now) {
    const usable = typeof id === 'string' && id !== '' && id.length <= MAX_ID_LEN;
    if (usable && (this.outIds.has(id) || this.announced.has(id))) return;
    if (this.outbound === 0) this.outSince = now;
    this.outbound++;
    if (!usable) return;
    this.outIds.add(id);
    remember(this.announced, id);
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

  // messages.update: [{ key, update }] (Types/Message.d.ts WAMessageUpdate).
  // Statuses of our sends come from receipts (Socket/messages-recv.js,
  // handleReceipt: 1:1 chats; Utils/generics.js getStatusFromReceiptType:
  // no type → DELIVERY_ACK, `read` → READ, `played` → PLAYED, `sender` (our
  // other devices) → SERVER_ACK) and from error acks (handleBadAck: the
  // server's `ack` node with an `error` attribute becomes status ERROR with
  // messageStubParameters [error] — [error, 'Your account has been
  // restricted'] for 463). Other updates (edits, revokes, polls, stars, the
  // placeholder-resend stub without a status) carry no status and are not
  // acks; updates of messages not from us neither.
  #onMessagesUpdate(updates) {
    if (this.stopped || !Array.isArray(updates)) return;
    for (const u of updates) {
      const key = u?.key;
      if (!key?.fromMe) continue;
      const status = u.update?.status;
      const name = typeof status === 'number' ? ACK_OF_STATUS[status] : undefined;
      if (!name) continue;
      if (name === 'error') {
        const p = Array.isArray(u.update.messageStubParameters) ? u.update.messageStubParameters : [];
        this.#ack(key.id, 'error', p[0], p[1]);
      } else this.#ack(key.id, name);
    }
  }

  // message-receipt.update: [{ key, receipt: { userJid, receiptTimestamp?,
  // readTimestamp?, playedTimestamp? } }] (proto.IUserReceipt), one per
  // member of a group (or status broadcast) receipt. Baileys 7 sets
  // receiptTimestamp for a delivery receipt and readTimestamp for any other
  // (read, played, and `sender` receipts of our own devices, which are
  // skipped: they say nothing of the recipients); playedTimestamp is taken
  // when present. The first member's receipt counts (the ack id is the same
  // for all of them).
  #onReceipts(a, receipts) {
    if (this.stopped || !Array.isArray(receipts)) return;
    let me;
    for (const r of receipts) {
      const key = r?.key;
      const rc = r?.receipt;
      if (!key?.fromMe || !rc || typeof rc !== 'object') continue;
      const status = rc.playedTimestamp != null ? 'played' : rc.readTimestamp != null ? 'read' : rc.receiptTimestamp != null ? 'delivered' : undefined;
      if (!status) continue;
      me ??= ownUsers(a.sock);
      if (me.has(userOf(rc.userJid))) continue;
      this.#ack(key.id, status);
    }
  }

  // `ack` node, class message, from the server (see watch()): `server` for
  // a send this watcher reported (other stanzas — our own devices' peer
  // messages — are acked too, and are no sends of the gateway).
  #onServerAck(node) {
    const attrs = node?.attrs;
    if (this.stopped || !attrs || attrs.error !== undefined || typeof attrs.id !== 'string') return;
    if (!this.announced.has(attrs.id)) return;
    this.#ack(attrs.id, 'server');
  }

  // Queues an ack, once per message and status (and nothing after a read,
  // played or error: wapulse is done with the message). The ack of a send
  // still gathered for the next outbound event waits for it, to be queued
  // right after it: wapulse then knows the message when its ack comes.
  #ack(message, status, code, detail) {
    if (this.stopped || typeof message !== 'string' || message === '' || message.length > MAX_ID_LEN) return false;
    const done = this.acked.get(message);
    if (done && (done.includes(status) || done.some((s) => FINAL.has(s)))) return false;
    if (done) done.push(status);
    else {
      this.acked.set(message, [status]);
      if (this.acked.size > RECENT) this.acked.delete(this.acked.keys().next().value);
    }
    const fields = { message, status };
    if (status === 'error') {
      const c = code === undefined || code === null ? '' : String(code);
      let d = detail === undefined || detail === null ? '' : String(detail);
      if (CODE_RE.test(c)) fields.code = c;
      else if (c) d = d ? `${c}: ${d}` : c; // not a code wapulse takes: kept as text
      if (d) fields.detail = clip(d, MAX_DETAIL_LEN);
    }
    const at = Date.now();
    const id = ackId(message, status);
    if (this.outIds.has(message)) {
      this.outAcks.push({ fields, at, id });
      return true;
    }
    return this.#emit('ack', fields, at, id);
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

  #emit(type, fields, at, id) {
    if (this.stopped) return false;
    return this.client._enqueue(this.session, type, fields, at, id);
  }

  /** @internal queue the message counts gathered since the last flush */
  _drainMessages(now) {
    if (this.inbound > 0) this.client._enqueue(this.session, 'message', { direction: 'inbound', count: this.inbound }, now);
    this.inbound = 0;
    this.#drainOutbound();
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
