// A bounded FIFO of wapulse events waiting to be sent.
//
// Events come in four kinds:
//   - 'heartbeat': droppable first (a later heartbeat says the same thing);
//   - 'message':   message counts (outbound ones with the ids of the sends);
//                  merged (counts added, ids joined up to MAX_IDS an event)
//                  when the queue is full, dropped (and counted) only when
//                  no merge is possible;
//   - 'ack':       delivery acks: dropped after merging, before message
//                  counts (error acks, which tell of failures and
//                  restrictions, only after message counts);
//   - 'keep':      state changes, auth, credentials, locks, breaker,
//                  validation, labels: never dropped. Only these may push the
//                  queue past its bound (counted as `overCapacity`).
//
// The ids outbound message events carry are bounded too (`maxIds`, all
// events together): past it, the oldest unsent events lose their ids (the
// messages stay counted, wapulse just does not follow them: `droppedIds`).
//
// An entry that was part of a request whose outcome is unknown is marked
// `attempted`: wapulse may already have applied it, so it is resent with the
// same id (wapulse ignores a repeated id) and never merged into another
// event, nor changed (that would count it twice under a new id).

export const KIND_KEEP = 0;
export const KIND_HEARTBEAT = 1;
export const KIND_MESSAGE = 2;
export const KIND_ACK = 3;

/** Most message ids one `message` event may carry (wapulse's bound). */
export const MAX_IDS = 1000;

export function kindOf(type) {
  if (type === 'heartbeat') return KIND_HEARTBEAT;
  if (type === 'message') return KIND_MESSAGE;
  if (type === 'ack') return KIND_ACK;
  return KIND_KEEP;
}

const idsOf = (event) => (Array.isArray(event.ids) ? event.ids.length : 0);

export class EventQueue {
  /**
   * @param {number} max bound of the queue, in events
   * @param {number} [maxIds] bound of the message ids all queued events
   *   carry: ten a queued event, and at least ten full events' worth
   */
  constructor(max, maxIds = Math.max(max * 10, 10 * MAX_IDS)) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('maxQueue must be a positive integer');
    if (!Number.isInteger(maxIds) || maxIds < 0) throw new TypeError('maxIds must be a non-negative integer');
    this.max = max;
    this.maxIds = maxIds;
    /** @type {{event: object, kind: number, attempted: boolean}[]} */
    this.items = [];
    this.head = 0; // items before head are consumed (amortised shift)
    this.limit = max; // compact when the length goes past this
    this.ids = 0; // message ids carried by the queued events
    this.stats = {
      droppedHeartbeats: 0,
      droppedMessageEvents: 0,
      droppedMessages: 0,
      mergedMessageEvents: 0,
      droppedAcks: 0,
      droppedIds: 0,
      overCapacity: 0,
    };
  }

  get length() {
    return this.items.length - this.head;
  }

  push(event) {
    this.items.push({ event, kind: kindOf(event.type), attempted: false });
    this.ids += idsOf(event);
    if (this.length > this.limit) this.#compact();
    if (this.ids > this.maxIds) this.#trimIds();
  }

  /** Takes up to n events off the front (oldest first). */
  take(n) {
    const end = Math.min(this.items.length, this.head + n);
    const out = this.items.slice(this.head, end);
    this.head = end;
    for (const it of out) this.ids -= idsOf(it.event);
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.length <= this.max) this.limit = this.max;
    return out;
  }

  /** Puts entries taken earlier back at the front, in their order. */
  unshift(entries) {
    if (entries.length === 0) return;
    this.items = entries.concat(this.items.slice(this.head));
    this.head = 0;
    for (const it of entries) this.ids += idsOf(it.event);
    if (this.length > this.limit) this.#compact();
  }

  /** All queued events, oldest first (for inspection and tests). */
  peek() {
    return this.items.slice(this.head).map((e) => e.event);
  }

  // Drops the ids of the oldest unsent message events (their counts stay)
  // until the ids are back at 90 % of their bound.
  #trimIds() {
    const target = Math.floor(this.maxIds * 0.9);
    for (let i = this.head; i < this.items.length && this.ids > target; i++) {
      const it = this.items[i];
      if (it.kind !== KIND_MESSAGE || it.attempted) continue;
      const n = idsOf(it.event);
      if (n === 0) continue;
      it.event.count = it.event.count ?? n;
      delete it.event.ids;
      this.ids -= n;
      this.stats.droppedIds += n;
    }
  }

  // Brings the queue back under its bound, to 90% of it so that a full
  // queue costs one pass per tenth of its size rather than one per event.
  #compact() {
    let items = this.items.slice(this.head);
    this.head = 0;
    const target = Math.max(1, Math.min(this.max - 1, Math.floor(this.max * 0.9)));
    let excess = items.length - target;

    // Drops the oldest entries that `pick` chooses, while there is excess.
    const dropOldest = (pick, count) => {
      if (excess <= 0) return;
      const kept = [];
      for (const it of items) {
        if (excess > 0 && pick(it)) {
          excess--;
          count(it);
        } else kept.push(it);
      }
      items = kept;
    };

    // 1. the oldest heartbeats
    dropOldest(
      (it) => it.kind === KIND_HEARTBEAT,
      () => this.stats.droppedHeartbeats++,
    );

    // 2. merge newer message counts into the oldest unsent event of the same
    //    session and direction: the ids of the sends then stay ahead of their
    //    acks (an id moved later could reach wapulse after its own ack).
    //    Ids past MAX_IDS an event are dropped, their messages still counted.
    if (excess > 0) {
      const oldest = new Map();
      const kept = [];
      for (const it of items) {
        if (it.kind !== KIND_MESSAGE || it.attempted) {
          kept.push(it);
          continue;
        }
        const key = it.event.session + '\u0000' + it.event.direction;
        const into = oldest.get(key);
        if (!into) {
          oldest.set(key, it);
          kept.push(it);
          continue;
        }
        if (excess <= 0) {
          kept.push(it);
          continue;
        }
        const a = into.event;
        const b = it.event;
        const nb = idsOf(b);
        a.count = (a.count ?? Math.max(1, idsOf(a))) + (b.count ?? Math.max(1, nb));
        if (nb > 0) {
          const room = MAX_IDS - idsOf(a);
          const moved = Math.max(0, Math.min(room, nb));
          if (moved > 0) a.ids = (a.ids ?? []).concat(moved === nb ? b.ids : b.ids.slice(0, moved));
          if (nb > moved) {
            this.ids -= nb - moved;
            this.stats.droppedIds += nb - moved;
          }
        }
        excess--;
        this.stats.mergedMessageEvents++;
      }
      items = kept;
    }

    // 3. the oldest acks other than errors
    dropOldest(
      (it) => it.kind === KIND_ACK && it.event.status !== 'error',
      () => this.stats.droppedAcks++,
    );

    // 4. the oldest message counts that could not be merged
    dropOldest(
      (it) => it.kind === KIND_MESSAGE,
      (it) => {
        this.stats.droppedMessageEvents++;
        this.stats.droppedMessages += it.event.count ?? Math.max(1, idsOf(it.event));
        this.ids -= idsOf(it.event);
      },
    );

    // 5. the oldest error acks
    dropOldest(
      (it) => it.kind === KIND_ACK,
      () => this.stats.droppedAcks++,
    );

    // 6. what is left is kept whatever its size: state changes are never lost
    // (the next pass waits for another tenth of the bound, so a queue full of
    // them does not cost a pass per event)
    if (items.length > this.max) this.stats.overCapacity = Math.max(this.stats.overCapacity, items.length - this.max);
    this.limit = Math.max(this.max, items.length + Math.ceil(this.max / 10));
    this.items = items;
  }
}
