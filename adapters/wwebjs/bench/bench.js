// The adapter's cost per whatsapp-web.js event: `message` (inbound),
// `message_create` (a send) and `message_ack` emitted through a real
// Client's own EventEmitter with real Message objects, with and without a
// watcher, the network stubbed (fetch answers at once).
//
//   npm run bench            (N=100000 by default; BENCH_N to change)

import { performance } from 'node:perf_hooks';
import { createWatcher } from '../src/index.js';
import { newClient, message, MessageAck, WWEBJS_VERSION } from '../test/helpers/wwebjs.js';

const N = Number(process.env.BENCH_N ?? 100000);
const ROUNDS = 5;

let posted = 0;
let requests = 0;
const stubFetch = async (_url, init) => {
  requests++;
  posted += JSON.parse(init.body).length;
  return new Response('{"accepted":1,"duplicates":0}', { status: 200 });
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// messages made up front: the bench times the emit, not the Message
async function messages(client, name, n, from = 0) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await message(client, name, from + i));
  return out;
}

function time(client, event, items, arg) {
  const t0 = performance.now();
  for (let i = 0; i < items.length; i++) client.emit(event, items[i], arg);
  return ((performance.now() - t0) * 1000) / items.length;
}

async function measure(client) {
  const inbound = await messages(client, 'inbound', 4096);
  const rows = { message: [], message_create: [], message_ack: [] };
  const loop = (xs) => Array.from({ length: N }, (_, i) => xs[i % xs.length]);
  const inboundN = loop(inbound);
  time(client, 'message', inbound); // warm up
  for (let r = 0; r < ROUNDS; r++) {
    rows.message.push(time(client, 'message', inboundN));
    // new sends each round (a repeated id is not a new send), then their acks
    const round = await messages(client, 'outbound', N, r * N);
    rows.message_create.push(time(client, 'message_create', round));
    rows.message_ack.push(time(client, 'message_ack', round, MessageAck.ACK_DEVICE));
  }
  return Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
}

const bare = await measure(newClient());

const w = createWatcher({ url: 'http://127.0.0.1:9', session: 'bench', fetch: stubFetch, flushIntervalMs: 1000, keepAliveIntervalMs: 0, maxQueue: 10 * N, logger: null });
const client = newClient();
w.watch(client);
client.emit('ready');
const watched = await measure(client);
const s = await w.stop(10000);

console.log(`node ${process.version}, whatsapp-web.js ${WWEBJS_VERSION}, ${N} events x ${ROUNDS} rounds (median)`);
for (const k of Object.keys(bare)) {
  console.log(`${k.padEnd(15)} ${bare[k].toFixed(3)} µs/event without the adapter, ${watched[k].toFixed(3)} µs with it: overhead ${(watched[k] - bare[k]).toFixed(3)} µs`);
}
console.log(`sent to wapulse: ${posted} events in ${requests} requests (inbound counts aggregated per flush; sends with their ids, 1000 an event; one event per ack), dropped ${s.droppedMessages + s.droppedAcks}`);
