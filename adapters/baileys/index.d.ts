// Types for wapulse-baileys. Baileys itself is only needed for its types
// (structural: any object with `ev`, and optionally `ws`, `query`,
// `requestPairingCode`, `sendMessage`, `authState`, is accepted).

/** The part of a Baileys socket (`ReturnType<typeof makeWASocket>`) the adapter uses. */
export interface WatchableSocket {
  /** `connection.update`, `messages.upsert`, `messages.update`, `message-receipt.update` are followed. */
  ev: {
    on(event: string, listener: (arg: any) => void): unknown;
    off(event: string, listener: (arg: any) => void): unknown;
  };
  /** `frame` (heartbeats) and `CB:ack,class:message` (the server's acks of sends) are followed. */
  ws?: {
    on(event: string, listener: (frame: any) => void): unknown;
    off?(event: string, listener: (frame: any) => void): unknown;
  };
  query?(node: unknown, timeoutMs?: number): Promise<unknown>;
  requestPairingCode?(phoneNumber: string, customPairingCode?: string): Promise<string>;
  /** Wrapped while watched (when `append` is counted, a send is taken when it resolves); given back at stop. */
  sendMessage?(jid: string, content: unknown, options?: unknown): Promise<unknown>;
  /** `creds.me` (the account's own jids): group receipts of its own devices are not acks. */
  authState?: { creds?: { me?: { id?: string; lid?: string } | null } };
  user?: { id?: string; lid?: string } | null;
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
  /** Called with each delivery or handling error (never throws into the gateway). */
  onError?: (err: Error, context: string) => void;
  /** Where errors are logged (at most one line a minute by default, to the console); `null` for none. */
  logger?: Logger | null;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Prefix of event ids (default: `wb` + 16 random hex digits, new per client). */
  idPrefix?: string;
}

export interface SessionOptions {
  /** Labels sent once when the watcher is made. */
  labels?: Labels;
  /** `credentials_written.store` (e.g. `postgres`, `files`). */
  store?: string;
  /** At most one heartbeat per this interval (Baileys' `keepAliveIntervalMs`). Default 30 000. */
  keepAliveIntervalMs?: number;
  /** Time a `w:p` ping for `rtt_ms` when a heartbeat is due. Default true. */
  rtt?: boolean;
  /** Time limit of that ping. Default 10 000 ms. */
  pingTimeoutMs?: number;
  /** Close codes that mean `logged_out`. Default [401, 403, 411]. */
  loggedOutCodes?: number[];
  /**
   * `messages.upsert` types counted. Default ['notify']. Add 'append' to
   * count (and follow the delivery of) the gateway's own sends (Baileys'
   * `emitOwnEvents`), and the offline backlog.
   */
  messageTypes?: Array<'notify' | 'append'>;
}

export interface WatcherOptions extends ClientOptions, SessionOptions {
  /** The session id in wapulse: 1-128 characters of `[A-Za-z0-9._:@-]`. */
  session: string;
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

export interface WatcherStats extends Stats {
  session: string;
  /** the last state sent */
  state: string | null;
  /** sockets followed now */
  sockets: number;
  pendingInbound: number;
  pendingOutbound: number;
}

export interface StopResult extends Stats {
  /** true when everything queued was sent */
  flushed: boolean;
}

export declare class SessionWatcher {
  readonly session: string;
  readonly client: WapulseClient;
  /** Follows a socket; call it right after makeWASocket, for every new socket of the session. */
  watch(sock: WatchableSocket): this;
  /** Wraps saveCreds: awaits it, then records `credentials_written`. */
  wrapSaveCreds<A extends unknown[], R>(saveCreds: (...args: A) => R | Promise<R>, store?: string): (...args: A) => Promise<R>;
  credentialsWritten(store?: string): boolean;
  setLabels(labels: Labels): boolean;
  lock(heldBy: string, operation: string): boolean;
  unlock(heldBy?: string, operation?: string): boolean;
  breaker(open: boolean, consecutiveFailures?: number): boolean;
  validation(valid: boolean, detail?: string): boolean;
  /** Any other wapulse event type for this session (`error`, `counter`, `gauge`, ...). */
  event(type: string, fields?: Record<string, unknown>): boolean;
  stats(): WatcherStats;
  /** Detaches, flushes within timeoutMs; never rejects. */
  stop(timeoutMs?: number): Promise<StopResult & Partial<WatcherStats>>;
}

export declare class WapulseClient {
  constructor(opts: ClientOptions);
  /** The watcher of one session (made on first use). */
  session(session: string, opts?: SessionOptions): SessionWatcher;
  stats(): Stats;
  /** Sends everything queued within timeoutMs; true when emptied. */
  flush(timeoutMs?: number): Promise<boolean>;
  stop(timeoutMs?: number): Promise<StopResult>;
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
/** Follows sock for opts.session; one watcher per session (and client per url+token) kept across calls. */
export declare function watch(sock: WatchableSocket, opts: WatcherOptions): SessionWatcher;
export declare function stopAll(timeoutMs?: number): Promise<StopResult[]>;
export default watch;

export declare const LOGGED_OUT_CODES: readonly number[];
/** `lastDisconnect.error.output.statusCode`, if a number. */
export declare function closeCode(lastDisconnect: { error?: unknown } | undefined): number | undefined;
/** Why wapulse would refuse these labels, or null. */
export declare function labelsProblem(labels: unknown): string | null;
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number;
