// The adapter's cost per Baileys event: `messages.upsert` emitted through a
// real socket's `sock.ev` (makeWASocket against a loopback server that holds
// the connection), with and without a watcher, the network stubbed (fetch
// answers at once). Also inbound frames on `sock.ws` (the heartbeat path).
//
//   npm run bench            (N=100000 by default; BENCH_N to change)

import { performance } from 'node:perf_hooks';
import { createWatcher } from '../src/index.js';
import { loopbackServer, socket, nextUpdate, endQuietly } from '../test/helpers/baileys.js';

const N = Number(process.env.BENCH_N ?? 100000);
const ROUNDS = 5;

const hold = await loopbackServer('hold');
let posted = 0;
const stubFetch = async (_url, init) => {
  posted += JSON.parse(init.body).length;
  return new Response('{"accepted":1,"duplicates":0}', { status: 200 });
};

const payloads = [
  { type: 'notify', messages: [{ key: { remoteJid: '5511988887777@s.whatsapp.net', fromMe: false, id: '3EB0C431C26A1916E07A' }, message: { conversation: 'oi' } }] },
  { type: 'notify', messages: [{ key: { remoteJid: '5511988887777@s.whatsapp.net', fromMe: true, id: '3EB0F2A9C1D4E6B8A733' }, message: { conversation: 'olá' } }] },
];

async function newSocket() {
  const sock = socket(hold.url);
  await nextUpdate(sock, (u) => u.connection === 'connecting');
  return sock;
}

function timeEmits(sock, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sock.ev.emit('messages.upsert', payloads[i & 1]);
  return ((performance.now() - t0) * 1000) / n;
}

function timeFrames(sock, n) {
  const frame = { tag: 'ib', attrs: {}, content: undefined };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sock.ws.emit('frame', frame);
  return ((performance.now() - t0) * 1000) / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// without the adapter
const bare = await newSocket();
timeEmits(bare, 10000);
const base = [];
const baseFrames = [];
for (let r = 0; r < ROUNDS; r++) {
  base.push(timeEmits(bare, N));
  baseFrames.push(timeFrames(bare, N));
}

// with it
const w = createWatcher({ url: 'http://127.0.0.1:9', session: 'bench', fetch: stubFetch, flushIntervalMs: 1000, logger: null, rtt: false });
const sock = await newSocket();
w.watch(sock);
sock.ev.emit('connection.update', { connection: 'open' });
timeEmits(sock, 10000);
const withAdapter = [];
const frames = [];
for (let r = 0; r < ROUNDS; r++) {
  withAdapter.push(timeEmits(sock, N));
  frames.push(timeFrames(sock, N));
}
const s = await w.stop(5000);

const b = median(base);
const a = median(withAdapter);
const fb = median(baseFrames);
const fa = median(frames);
console.log(`node ${process.version}, baileys 7.0.0-rc14, ${N} events x ${ROUNDS} rounds (median)`);
console.log(`messages.upsert through sock.ev: ${b.toFixed(3)} µs/event without the adapter, ${a.toFixed(3)} µs/event with it`);
console.log(`adapter overhead: ${(a - b).toFixed(3)} µs per messages.upsert`);
console.log(`inbound frame on sock.ws: ${fb.toFixed(3)} µs without, ${fa.toFixed(3)} µs with (overhead ${(fa - fb).toFixed(3)} µs)`);
console.log(`sent to wapulse: ${posted} events in ${s.requests} requests for ${(ROUNDS * N + 10000).toLocaleString('en')} upserts (aggregated), dropped ${s.droppedMessages}`);

await endQuietly(bare);
await endQuietly(sock);
await hold.close();
