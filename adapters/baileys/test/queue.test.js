import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from '../src/queue.js';

let n = 0;
const ev = (type, fields = {}, session = 's') => ({ session, type, id: `e${n++}`, ...fields });
const hb = () => ev('heartbeat');
const msg = (direction, count, session = 's') => ev('message', { direction, count }, session);
const st = (state) => ev('state', { state });

test('the bound holds while there is something droppable', () => {
  const q = new EventQueue(100);
  for (let i = 0; i < 1000; i++) q.push(i % 2 ? hb() : msg('inbound', 1, `s${i % 7}`));
  assert.ok(q.length <= 100, `length ${q.length}`);
  const s = q.stats;
  assert.ok(s.droppedHeartbeats > 0);
  assert.equal(s.overCapacity, 0);
});

test('heartbeats go first, oldest first; state changes stay', () => {
  const q = new EventQueue(10);
  const states = [];
  for (let i = 0; i < 5; i++) {
    const s = st(i % 2 ? 'connecting' : 'disconnected');
    states.push(s.id);
    q.push(s);
    q.push(hb());
  }
  // 10 queued: 5 states, 5 heartbeats. One more heartbeat overflows.
  const last = hb();
  q.push(last);
  assert.ok(q.length <= 10);
  const left = q.peek();
  assert.deepEqual(left.filter((e) => e.type === 'state').map((e) => e.id), states);
  // the survivors among the heartbeats are the newest
  const hbs = left.filter((e) => e.type === 'heartbeat').map((e) => e.id);
  assert.equal(hbs.at(-1), last.id);
  assert.equal(q.stats.droppedHeartbeats, 6 - hbs.length);
  assert.equal(q.stats.droppedMessageEvents, 0);
});

test('message counts are merged before anything is dropped, totals kept', () => {
  const q = new EventQueue(20);
  q.push(st('connected'));
  let inbound = 0;
  let outbound = 0;
  for (let i = 0; i < 200; i++) {
    const c = (i % 5) + 1;
    if (i % 3) {
      q.push(msg('inbound', c));
      inbound += c;
    } else {
      q.push(msg('outbound', c));
      outbound += c;
    }
  }
  assert.ok(q.length <= 20);
  const left = q.peek();
  const sum = (d) => left.filter((e) => e.type === 'message' && e.direction === d).reduce((a, e) => a + e.count, 0);
  assert.equal(sum('inbound'), inbound);
  assert.equal(sum('outbound'), outbound);
  assert.equal(q.stats.droppedMessages, 0);
  assert.ok(q.stats.mergedMessageEvents > 0);
  assert.equal(left[0].type, 'state');
});

test('a message event already sent once is never merged (its id may be applied)', () => {
  const q = new EventQueue(4);
  q.push(msg('inbound', 5));
  const taken = q.take(10);
  for (const e of taken) e.attempted = true;
  q.unshift(taken);
  q.push(msg('inbound', 1));
  q.push(msg('inbound', 1));
  q.push(msg('inbound', 1));
  q.push(msg('inbound', 1)); // over the bound: merge the unsent ones only
  const left = q.peek();
  assert.equal(left[0].id, taken[0].event.id);
  assert.equal(left[0].count, 5, 'the attempted event keeps its count and id');
  assert.equal(left.slice(1).reduce((a, e) => a + e.count, 0), 4);
});

test('state changes are never dropped, even past the bound', () => {
  const q = new EventQueue(10);
  const ids = [];
  for (let i = 0; i < 50; i++) {
    const s = st('reconnecting');
    ids.push(s.id);
    q.push(s);
    q.push(hb());
    q.push(msg('inbound', 1));
  }
  const left = q.peek();
  assert.deepEqual(left.filter((e) => e.type === 'state').map((e) => e.id), ids);
  assert.ok(q.stats.overCapacity >= 40);
  assert.ok(q.stats.droppedHeartbeats >= 49);
  // message counts that could not be merged away were dropped and counted
  const kept = left.filter((e) => e.type === 'message').reduce((a, e) => a + e.count, 0);
  assert.equal(kept + q.stats.droppedMessages, 50);
});

test('take and unshift keep the order', () => {
  const q = new EventQueue(1000);
  const all = [];
  for (let i = 0; i < 30; i++) {
    const e = st('connecting');
    all.push(e.id);
    q.push(e);
  }
  const a = q.take(10);
  const b = q.take(5);
  q.unshift(b);
  q.unshift(a);
  assert.deepEqual(q.peek().map((e) => e.id), all);
  assert.equal(q.length, 30);
});
