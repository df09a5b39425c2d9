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

const ack = (status, message = 'm') => ev('ack', { message, status });
const out = (ids, count = ids.length) => ev('message', { direction: 'outbound', count, ids });

test('acks are dropped after message counts are merged and before they are dropped; error acks last', () => {
  const q = new EventQueue(10);
  q.push(st('connected'));
  const errors = [ack('error', 'e1'), ack('error', 'e2')];
  for (const e of errors) q.push(e);
  const delivered = Array.from({ length: 6 }, (_, i) => ack('delivered', `d${i}`));
  for (const e of delivered) q.push(e);
  q.push(msg('inbound', 1));
  q.push(ack('read', 'r')); // 11: two over 90 %
  assert.deepEqual(
    q.peek().map((e) => e.message ?? e.type),
    ['state', 'e1', 'e2', 'd2', 'd3', 'd4', 'd5', 'message', 'r'],
  );
  assert.equal(q.stats.droppedAcks, 2);
  assert.equal(q.stats.droppedMessages, 0);

  const r = new EventQueue(5);
  r.push(st('connected'));
  r.push(ack('error', 'e1'));
  r.push(msg('inbound', 2));
  r.push(ack('error', 'e2'));
  r.push(ack('server', 's'));
  r.push(st('disconnected')); // the plain ack, then the message count
  assert.deepEqual(r.peek().map((e) => e.message ?? e.state), ['connected', 'e1', 'e2', 'disconnected']);
  assert.equal(r.stats.droppedMessages, 2);
  r.push(st('reconnecting'));
  r.push(st('connected')); // only error acks are left to drop
  assert.deepEqual(r.peek().map((e) => e.state), ['connected', 'disconnected', 'reconnecting', 'connected']);
  assert.equal(r.stats.droppedAcks, 3);
});

test('merged outbound counts keep their ids ahead of their acks, at most 1000 ids an event', () => {
  const q = new EventQueue(4);
  const first = out(['a']);
  q.push(first);
  q.push(ack('server', 'a'));
  q.push(out(['b']));
  q.push(out(['c', 'd'], 3));
  q.push(st('connected')); // merged into the oldest: ids stay before later acks
  assert.deepEqual(q.peek().map((e) => [e.type, e.count, e.ids ?? e.message]), [
    ['message', 5, ['a', 'b', 'c', 'd']],
    ['ack', undefined, 'a'],
    ['state', undefined, undefined],
  ]);
  assert.equal(q.peek()[0].id, first.id);
  assert.equal(q.stats.mergedMessageEvents, 2);
  assert.equal(q.ids, 4);

  const full = new EventQueue(10);
  full.push(out(Array.from({ length: 997 }, (_, i) => `x${i}`)));
  full.push(out(['y1', 'y2']));
  full.push(out(['z1', 'z2'], 3));
  for (let i = 0; i < 8; i++) full.push(st('connected')); // 11: two merges
  const [m] = full.peek();
  assert.equal(m.count, 1002, 'every message still counted');
  assert.equal(m.ids.length, 1000);
  assert.deepEqual(m.ids.slice(-3), ['y1', 'y2', 'z1']);
  assert.equal(full.stats.droppedIds, 1);
  assert.equal(full.ids, 1000);
});

test('the ids queued are bounded: the oldest unsent events lose theirs, counts kept', () => {
  const q = new EventQueue(100, 50);
  const sent = out(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10']);
  q.push(sent);
  const taken = q.take(1);
  taken[0].attempted = true;
  q.unshift(taken); // an event already sent once is never changed
  for (let i = 0; i < 6; i++) q.push(out(Array.from({ length: 10 }, (_, j) => `m${i}-${j}`)));
  const left = q.peek();
  assert.ok(q.ids <= 50, `ids ${q.ids}`);
  assert.equal(left.length, 7);
  assert.deepEqual(left[0].ids, sent.ids);
  assert.ok(left.every((e) => e.count === 10));
  assert.equal(left.filter((e) => !e.ids).length, 2);
  assert.equal(q.stats.droppedIds, 20);
  assert.deepEqual(left.at(-1).ids.length, 10, 'the newest keep theirs');
  q.take(100);
  assert.equal(q.ids, 0);
});
