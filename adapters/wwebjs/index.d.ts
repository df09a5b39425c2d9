// Types for wapulse-wwebjs. whatsapp-web.js itself is only needed for its
// types (structural: any EventEmitter-like Client with the parts below is
// accepted).

/** The part of a whatsapp-web.js `Client` the adapter uses. */
export interface WatchableClient {
  /** `qr`, `code`, `loading_screen`, `authenticated`, `auth_failure`, `ready`, `change_state`, `disconnected`, `message`, `message_create`, `message_ack`, `remote_session_saved` are followed. */
  on(event: string, listener: (...args: any[]) => void): unknown;
  off?(event: string, listener: (...args: any[]) => void): unknown;
  removeListener?(event: string, listener: (...args: any[]) => void): unknown;
  /** Called every `keepAliveIntervalMs` (an evaluate in the page); a heartbeat only when it answers `CONNECTED` in time. */
  getState(): Promise<string | null>;
  /** Wrapped while watched: a call is a (re)start, a rejection a disconnect (`initialize_failed: …`). */
  initialize?(): Promise<void>;
  /** Wrapped while watched: the browser closing after them is the gateway's doing (`destroyed` / `LOGOUT`), not a crash. */
  destroy?(): Promise<void>;
  logout?(): Promise<void>;
  /** puppeteer's Browser, set by initialize(): its `disconnected` is followed. */
  pupBrowser?: { on(event: 'disconnected', listener: () => void): unknown; off?(event: string, listener: () => void): unknown; connected?: boolean; isConnected?(): boolean } | null;
  /** puppeteer's Page, set by initialize(): its `error` (the page crashed) is followed, and `metrics()` read for `memoryGaugeName`. */
  pupPage?: { on(event: 'error', listener: (err: Error) => void): unknown; off?(event: string, listener: (err: Error) => void): unknown; metrics?(): Promise<{ JSHeapUsedSize?: number }> } | null;
  /** Set by whatsapp-web.js right before `ready`: a Client watched after it is asked its state at once. */
  info?: unknown;
}

/** label name → value (`null` removes the label) */
export type Labels = Record<string, string | null>;

/** A pino-like logger; only `warn` is used. */
export interface Logger {
  warn(obj: unknown, msg?: string): void;
}

export interface ClientOptions {
  /** wapulse's address, e.g. `http://127.0.0.1:3001` (events go to `/v1/events`). */
  url: string;
  /** `INGEST_TOKEN`, sent as `Authorization: Bearer`. */
  token?: string;
  /** How often queued events are sent. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Most events per request; a full batch is sent at once. Default 500. */
  maxBatch?: number;
  /** Bound of the queue (see README: what is dropped first). Default 10 000. Message ids queued are bounded at ten times it (at least 10 000). */
  maxQueue?: number;
  /** One request's time limit. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** First retry delay (doubled per failure, with jitter). Default 500 ms. */
  minBackoffMs?: number;
  /** Cap of the retry delay. Default 30 000 ms. */
  maxBackoffMs?: number;
  /** Cap on how long a `Retry-After` is honoured. Default 300 000 ms. */
  maxRetryAfterMs?: number;
  /** How long `stop()` tries to flush. Default 5000 ms. */
  stopTimeoutMs?: number;
  /** Called with each delivery or handling error (never throws into the bot). */
  onError?: (err: Error, context: string) => void;
  /** Where errors are logged (at most one line a minute by default, to the console); `null` for none. */
  logger?: Logger | null;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Prefix of event ids (default: `ww` + 16 random hex digits, new per client). */
  idPrefix?: string;
}

export interface SessionOptions {
  /** Labels sent once the session is known. */
  labels?: Labels;
  /** `credentials_written.store` (sent on RemoteAuth's `remote_session_saved`, or by `credentialsWritten()`). */
  store?: string;
  /** How often the page is asked its state (`client.getState()`) for a heartbeat. Default 30 000 ms; 0 turns liveness off. */
  keepAliveIntervalMs?: number;
  /** How long that answer may take; a later one is no heartbeat. Default 10 000 ms. */
  pingTimeoutMs?: number;
  /** No `ready` this long after the last `loading_screen` → `disconnected` `loading_screen_stuck`. Default 120 000 ms; 0 turns it off. */
  loadingTimeoutMs?: number;
  /** When set, the page's JS heap (`pupPage.metrics().JSHeapUsedSize`) is sent as this wapulse gauge on every keepalive. wapulse's gauges are platform-wide: one name per session. `[A-Za-z_][A-Za-z0-9_]*`, at most 128. Default off. */
  memoryGaugeName?: string;
  /** `stop()` sends `state stopped` first, as `stop({ stopped: true })` does. Default false. */
  reportStop?: boolean;
}

export interface WatcherOptions extends ClientOptions, SessionOptions {
  /** The session id in wapulse: 1-128 characters of `[A-Za-z0-9._:@-]`; or give it to `watch(client, { session })`. */
  session?: string;
}

export interface StopOptions {
  /** Send `state stopped` (an operator stopped the session on purpose: it pages nothing) before flushing. */
  stopped?: boolean;
  /** How long to try to flush. Default `stopTimeoutMs`. */
  timeoutMs?: number;
}

export interface Stats {
  /** events waiting to be sent */
  queued: number;
  /** events in the request being sent */
  inFlight: number;
  enqueued: number;
  /** events wapulse accepted */
  sent: number;
  /** events wapulse acknowledged as already applied (a resend) */
  duplicates: number;
  requests: number;
  failedRequests: number;
  retries: number;
  /** events wapulse refused for good (4xx) */
  rejected: number;
  errors: number;
  droppedHeartbeats: number;
  droppedMessageEvents: number;
  /** messages whose count was lost (unmergeable message events dropped) */
  droppedMessages: number;
  mergedMessageEvents: number;
  /** ack events dropped (the queue full: plain acks before message counts, error acks after) */
  droppedAcks: number;
  /** message ids dropped from queued outbound events (their messages still counted, not followed) */
  droppedIds: number;
  /** most events ever kept beyond maxQueue (never-dropped kinds) */
  overCapacity: number;
  consecutiveFailures: number;
  lastError: { message: string; at: string; context: string } | null;
  sessions: number;
}

export interface LivenessStats {
  /** getState() calls made */
  pings: number;
  /** answered CONNECTED in time: a heartbeat each */
  connected: number;
  /** answered another state (or null) in time */
  otherAnswers: number;
  /** rejected */
  failures: number;
  /** no answer within pingTimeoutMs */
  timeouts: number;
  /** keepalives skipped because the previous getState() had not settled */
  skipped: number;
  lastAnswer: string | null | undefined;
  lastRttMs: number | undefined;
}

export interface WatcherStats extends Stats {
  session: string | null;
  /** the last state sent */
  state: string | null;
  /** a Client is followed now */
  following: boolean;
  pendingInbound: number;
  pendingOutbound: number;
  liveness: LivenessStats;
}

export interface StopResult extends Stats {
  /** true when everything queued was sent */
  flushed: boolean;
}

export declare class SessionWatcher {
  readonly session: string | undefined;
  readonly client: WapulseClient;
  /** Follows a Client (before `client.initialize()`; again with the next Client of the session). */
  watch(client: WatchableClient, opts?: { session?: string }): this;
  credentialsWritten(store?: string): boolean;
  setLabels(labels: Labels): boolean;
  lock(heldBy: string, operation: string): boolean;
  unlock(heldBy?: string, operation?: string): boolean;
  breaker(open: boolean, consecutiveFailures?: number): boolean;
  validation(valid: boolean, detail?: string): boolean;
  /** Any other wapulse event type for this session (`error`, `counter`, `gauge`, ...). */
  event(type: string, fields?: Record<string, unknown>): boolean;
  stats(): WatcherStats;
  /** Detaches (listeners, wrapped methods, timers), sends `stopped` if asked, flushes within the timeout; never rejects. */
  stop(opts?: number | StopOptions): Promise<StopResult & Partial<WatcherStats>>;
}

export declare class WapulseClient {
  constructor(opts: ClientOptions);
  /** The watcher of one session (made on first use). */
  session(session: string, opts?: SessionOptions): SessionWatcher;
  stats(): Stats;
  /** Sends everything queued within timeoutMs; true when emptied. */
  flush(timeoutMs?: number): Promise<boolean>;
  stop(opts?: number | StopOptions): Promise<StopResult>;
}

export declare class EventQueue {
  /** maxIds: bound of the message ids all queued events carry (default max × 10, at least 10 000). */
  constructor(max: number, maxIds?: number);
  readonly length: number;
  push(event: Record<string, unknown>): void;
  peek(): Array<Record<string, unknown>>;
}

export declare function createClient(opts: ClientOptions): WapulseClient;
export declare function createWatcher(opts: WatcherOptions): SessionWatcher;
/** Follows client for opts.session; one watcher per session (and client per url+token) kept across calls. */
export declare function watch(client: WatchableClient, opts: WatcherOptions & { session: string }): SessionWatcher;
export declare function stopAll(opts?: number | StopOptions): Promise<StopResult[]>;
export default watch;

/** whatsapp-web.js `WAState`. */
export declare const WAState: Readonly<{
  CONFLICT: 'CONFLICT';
  CONNECTED: 'CONNECTED';
  DEPRECATED_VERSION: 'DEPRECATED_VERSION';
  OPENING: 'OPENING';
  PAIRING: 'PAIRING';
  PROXYBLOCK: 'PROXYBLOCK';
  SMB_TOS_BLOCK: 'SMB_TOS_BLOCK';
  TIMEOUT: 'TIMEOUT';
  TOS_BLOCK: 'TOS_BLOCK';
  UNLAUNCHED: 'UNLAUNCHED';
  UNPAIRED: 'UNPAIRED';
  UNPAIRED_IDLE: 'UNPAIRED_IDLE';
}>;
/** whatsapp-web.js `MessageAck` value → wapulse ack status (PENDING has none). */
export declare const ACK_STATUS: Readonly<Record<number, 'error' | 'server' | 'delivered' | 'read' | 'played'>>;
/** The whatsapp-web.js `Events` followed, by their Constants key. */
export declare const FOLLOWED_EVENTS: Readonly<Record<string, string>>;
/** What a WAState means for wapulse (`gone`: it came with `disconnected`). */
export declare function mapWAState(
  waState: string,
  opts?: { connectedBefore?: boolean; gone?: boolean },
): { state: 'connected' | 'connecting' | 'reconnecting' | 'disconnected' | 'logged_out'; reason?: string | number; restriction?: string };
/** `ack:<message id>:<status>`, or its sha256 form past 256 characters. */
export declare function ackId(message: string, status: string): string;
/** Why wapulse would refuse these labels, or null. */
export declare function labelsProblem(labels: unknown): string | null;
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number;
