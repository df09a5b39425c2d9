// A bounded FIFO of wapulse events waiting to be sent.
//
// Events come in three kinds:
//   - 'heartbeat': droppable first (a later heartbeat says the same thing);
//   - 'message':   message counts; merged (counts added) when the queue is
//                  full, dropped (and counted) only when no merge is possible;
//   - 'keep':      state changes, auth, credentials, locks, breaker,
//                  validation, labels: never dropped. Only these may push the
//                  queue past its bound (counted as `overCapacity`).
//
// An entry that was part of a request whose outcome is unknown is marked
// `attempted`: wapulse may already have applied it, so it is resent with the
// same id (wapulse ignores a repeated id) and never merged into another
// event (that would count it twice under a new id).

export const KIND_KEEP = 0;
export const KIND_HEARTBEAT = 1;
export const KIND_MESSAGE = 2;

export function kindOf(type) {
  if (type === 'heartbeat') return KIND_HEARTBEAT;
  if (type === 'message') return KIND_MESSAGE;
  return KIND_KEEP;
}

export class EventQueue {
  /** @param {number} max */
  constructor(max) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('maxQueue must be a positive integer');
    this.max = max;
    /** @type {{event: object, kind: number, attempted: boolean}[]} */
    this.items = [];
    this.head = 0; // items before head are consumed (amortised shift)
    this.limit = max; // compact when the length goes past this
    this.stats = {
      droppedHeartbeats: 0,
      droppedMessageEvents: 0,
      droppedMessages: 0,
      mergedMessageEvents: 0,
      overCapacity: 0,
    };
  }

  get length() {
    return this.items.length - this.head;
  }

  push(event) {
    this.items.push({ event, kind: kindOf(event.type), attempted: false });
    if (this.length > this.limit) this.#compact();
  }

  /** Takes up to n events off the front (oldest first). */
  take(n) {
    const end = Math.min(this.items.length, this.head + n);
    const out = this.items.slice(this.head, end);
    this.head = end;
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
    if (this.length > this.limit) this.#compact();
  }

  /** All queued events, oldest first (for inspection and tests). */
  peek() {
    return this.items.slice(this.head).map((e) => e.event);
  }

  // Brings the queue back under its bound, to 90% of it so that a full
  // queue costs one pass per tenth of its size rather than one per event.
  #compact() {
    let items = this.items.slice(this.head);
    this.head = 0;
    const target = Math.max(1, Math.min(this.max - 1, Math.floor(this.max * 0.9)));
    let excess = items.length - target;

    // 1. the oldest heartbeats
    if (excess > 0) {
      const kept = [];
      for (const it of items) {
        if (excess > 0 && it.kind === KIND_HEARTBEAT) {
          excess--;
          this.stats.droppedHeartbeats++;
        } else kept.push(it);
      }
      items = kept;
    }

    // 2. merge the oldest message counts into the newest unsent event of the
    //    same session and direction
    if (excess > 0) {
      const newest = new Map();
      for (let i = items.length - 1; i >= 0; i--) {
        const it = items[i];
        if (it.kind !== KIND_MESSAGE || it.attempted) continue;
        const key = it.event.session + '\u0000' + it.event.direction;
        if (!newest.has(key)) newest.set(key, it);
      }
      const kept = [];
      for (const it of items) {
        if (excess > 0 && it.kind === KIND_MESSAGE && !it.attempted) {
          const into = newest.get(it.event.session + '\u0000' + it.event.direction);
          if (into !== it) {
            into.event.count = (into.event.count ?? 1) + (it.event.count ?? 1);
            excess--;
            this.stats.mergedMessageEvents++;
            continue;
          }
        }
        kept.push(it);
      }
      items = kept;
    }

    // 3. drop the oldest message counts that could not be merged
    if (excess > 0) {
      const kept = [];
      for (const it of items) {
        if (excess > 0 && it.kind === KIND_MESSAGE) {
          excess--;
          this.stats.droppedMessageEvents++;
          this.stats.droppedMessages += it.event.count ?? 1;
        } else kept.push(it);
      }
      items = kept;
    }

    // 4. what is left is kept whatever its size: state changes are never lost
    // (the next pass waits for another tenth of the bound, so a queue full of
    // them does not cost a pass per event)
    if (items.length > this.max) this.stats.overCapacity = Math.max(this.stats.overCapacity, items.length - this.max);
    this.limit = Math.max(this.max, items.length + Math.ceil(this.max / 10));
    this.items = items;
  }
}
