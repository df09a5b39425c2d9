// The exact JSON the adapter posts for each whatsapp-web.js event, row by
// row of the README's table: a real whatsapp-web.js Client (constructed,
// never initialized) whose own EventEmitter carries the events, with real
// `Message` objects; a stand-in for wapulse that records the requests (the
// same flows through a real wapulse are in wapulse.test.js).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher, ackId } from '../src/index.js';
import { fakeWapulse } from './helpers/fake-server.js';
import { waitFor } from './helpers/wapulse.js';
import { newClient, message, WAState, MessageAck } from './helpers/wwebjs.js';

const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejections');
});

const bare = (events) => events.map(({ at, id, session, ...rest }) => rest);

/** Drives a watched real Client through `fn`; resolves to what wapulse got. */
async function posted(fn, { stop, ...opts } = {}) {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, token: 't', flushIntervalMs: 60000, keepAliveIntervalMs: 0, logger: null, ...opts });
  const client = newClient();
  w.watch(client, { session: 'wa-1' });
  try {
    await fn(client, w);
  } catch (e) {
    // A failed step still stops the watcher and the server: the run ends.
    await w.stop(0);
    await srv.close();
    throw e;
  }
  const s = await w.stop(stop ?? 2000);
  assert.equal(s.flushed, true);
  const events = srv.delivered();
  for (const e of events) {
    assert.equal(e.session, 'wa-1');
    assert.match(e.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof e.id, 'string');
  }
  assert.equal(srv.requests[0]?.headers.authorization, 'Bearer t');
  await srv.close();
  return events;
}

test('first start → connecting; qr → qr_required (once while it renews); authenticated after a QR → auth qr_scan; ready → connected', async () => {
  const ev = await posted(async (client) => {
    client.emit('qr', '2@AbC,dEf,gHi=,1');
    client.emit('qr', '2@JkL,dEf,gHi=,1'); // renewed every ~20 s: nothing new
    client.emit('loading_screen', 50, 'WhatsApp');
    client.emit('authenticated', undefined);
    client.emit('ready');
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'qr_required' },
    { type: 'auth', method: 'qr_scan' },
    { type: 'state', state: 'connected' },
  ]);
});

test('code (pairing code) → qr_required with reason pairing_code; authenticated → auth pairing_code', async () => {
  const ev = await posted(async (client) => {
    client.emit('code', 'ABCD1234');
    client.emit('authenticated');
    client.emit('ready');
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'qr_required', reason: 'pairing_code' },
    { type: 'auth', method: 'pairing_code' },
    { type: 'state', state: 'connected' },
  ]);
});

test('authenticated with no QR or code since the last one → auth session_restore', async () => {
  const ev = await posted(async (client) => {
    client.emit('authenticated');
    client.emit('ready');
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'auth', method: 'session_restore' },
    { type: 'state', state: 'connected' },
  ]);
});

test('auth_failure(msg) → logged_out with reason auth_failure', async () => {
  const ev = await posted(async (client) => {
    client.emit('auth_failure', 'Unable to log in. Are the session details valid?');
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'logged_out', reason: 'auth_failure' },
  ]);
});

test('change_state then disconnected with the same WAState: one state event (a CONFLICT is one 440)', async () => {
  const ev = await posted(async (client) => {
    client.emit('ready');
    client.emit('change_state', WAState.CONFLICT);
    client.emit('disconnected', WAState.CONFLICT);
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'disconnected', reason: 440 },
  ]);
});

test('every WAState, through change_state and through disconnected', async () => {
  // [WAState, the event after a `ready`, the one after `disconnected(WAState)`]
  const rows = [
    [WAState.CONNECTED, { state: 'connected' }, { state: 'disconnected', reason: 'CONNECTED' }],
    [WAState.OPENING, { state: 'reconnecting' }, { state: 'disconnected', reason: 'OPENING' }],
    [WAState.PAIRING, { state: 'reconnecting' }, { state: 'disconnected', reason: 'PAIRING' }],
    [WAState.CONFLICT, { state: 'disconnected', reason: 440 }, { state: 'disconnected', reason: 440 }],
    [WAState.UNPAIRED, { state: 'logged_out', reason: 'UNPAIRED' }, { state: 'logged_out', reason: 'UNPAIRED' }],
    [WAState.UNPAIRED_IDLE, { state: 'logged_out', reason: 'UNPAIRED_IDLE' }, { state: 'logged_out', reason: 'UNPAIRED_IDLE' }],
    [WAState.TOS_BLOCK, { state: 'logged_out', reason: 'TOS_BLOCK' }, { state: 'logged_out', reason: 'TOS_BLOCK' }],
    [WAState.SMB_TOS_BLOCK, { state: 'logged_out', reason: 'SMB_TOS_BLOCK' }, { state: 'logged_out', reason: 'SMB_TOS_BLOCK' }],
    [WAState.PROXYBLOCK, { state: 'disconnected', reason: 'PROXYBLOCK' }, { state: 'disconnected', reason: 'PROXYBLOCK' }],
    [WAState.TIMEOUT, { state: 'disconnected', reason: 'TIMEOUT' }, { state: 'disconnected', reason: 'TIMEOUT' }],
    [WAState.DEPRECATED_VERSION, { state: 'disconnected', reason: 'DEPRECATED_VERSION' }, { state: 'disconnected', reason: 'DEPRECATED_VERSION' }],
    [WAState.UNLAUNCHED, { state: 'disconnected', reason: 'UNLAUNCHED' }, { state: 'disconnected', reason: 'UNLAUNCHED' }],
  ];
  assert.deepEqual(rows.map((r) => r[0]).sort(), Object.values(WAState).sort(), 'every WAState of the package has a row');
  for (const [s, onChange, onDisconnect] of rows) {
    const restriction = s === WAState.TOS_BLOCK || s === WAState.SMB_TOS_BLOCK ? [{ type: 'restriction', code: s }] : [];
    const viaChange = await posted(async (client) => {
      client.emit('ready');
      client.emit('change_state', s);
    });
    const connected = [{ type: 'state', state: 'connecting' }, { type: 'state', state: 'connected' }];
    assert.deepEqual(bare(viaChange), s === WAState.CONNECTED ? connected : [...connected, { type: 'state', ...onChange }, ...restriction], `change_state ${s}`);
    const viaDisconnect = await posted(async (client) => {
      client.emit('ready');
      client.emit('disconnected', s);
    });
    assert.deepEqual(bare(viaDisconnect), [...connected, { type: 'state', ...onDisconnect }, ...restriction], `disconnected ${s}`);
  }
});

test("disconnected('LOGOUT') → logged_out LOGOUT; any other text → disconnected with it", async () => {
  const ev = await posted(async (client) => {
    client.emit('ready');
    client.emit('disconnected', 'LOGOUT');
    client.emit('qr', 'ref');
    client.emit('disconnected', 'Max qrcode retries reached');
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'logged_out', reason: 'LOGOUT' },
    { type: 'state', state: 'qr_required' },
    { type: 'state', state: 'disconnected', reason: 'Max qrcode retries reached' },
  ]);
});

test('TOS_BLOCK: logged_out with the reason and one restriction event with the same code, through change_state and disconnected', async () => {
  const ev = await posted(async (client) => {
    client.emit('ready');
    client.emit('change_state', WAState.TOS_BLOCK);
    client.emit('disconnected', WAState.TOS_BLOCK);
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'logged_out', reason: 'TOS_BLOCK' },
    { type: 'restriction', code: 'TOS_BLOCK' },
  ]);
});

test('connected again after a ban it reported (a new Client for the session) → restriction lifted, once', async () => {
  const srv = await fakeWapulse();
  const w = createWatcher({ url: srv.url, session: 'wa-1', flushIntervalMs: 60000, keepAliveIntervalMs: 0, logger: null });
  const banned = newClient();
  w.watch(banned);
  banned.emit('ready');
  banned.emit('change_state', WAState.SMB_TOS_BLOCK);
  banned.emit('disconnected', WAState.SMB_TOS_BLOCK);
  const next = newClient();
  w.watch(next);
  next.emit('qr', 'ref');
  next.emit('authenticated');
  next.emit('ready');
  next.emit('change_state', WAState.OPENING);
  next.emit('change_state', WAState.CONNECTED);
  await w.stop(2000);
  assert.deepEqual(bare(srv.delivered()), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'logged_out', reason: 'SMB_TOS_BLOCK' },
    { type: 'restriction', code: 'SMB_TOS_BLOCK' },
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'qr_required' },
    { type: 'auth', method: 'qr_scan' },
    { type: 'state', state: 'connected' },
    { type: 'restriction', code: 'SMB_TOS_BLOCK', lifted: true },
    { type: 'state', state: 'reconnecting' },
    { type: 'state', state: 'connected' },
  ]);
  await srv.close();
});

test('OPENING / PAIRING: connecting before the session was ever connected, reconnecting after; a logout starts over', async () => {
  const ev = await posted(async (client) => {
    client.emit('change_state', WAState.OPENING); // still the first start: nothing new
    client.emit('change_state', WAState.PAIRING);
    client.emit('ready');
    client.emit('change_state', WAState.TIMEOUT);
    client.emit('change_state', WAState.OPENING);
    client.emit('change_state', WAState.PAIRING); // the same attempt
    client.emit('change_state', WAState.CONNECTED);
    client.emit('change_state', WAState.OPENING);
    client.emit('change_state', WAState.CONNECTED);
    client.emit('change_state', WAState.UNPAIRED);
    client.emit('change_state', WAState.OPENING);
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'disconnected', reason: 'TIMEOUT' },
    { type: 'state', state: 'reconnecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'reconnecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'logged_out', reason: 'UNPAIRED' },
    { type: 'state', state: 'connecting' },
  ]);
});

test('loading_screen with no ready within loadingTimeoutMs of the last one → disconnected loading_screen_stuck; ready in time → nothing', async (t) => {
  const stuck = await posted(
    async (client, w) => {
      // The loading timer runs on a mocked clock, so "299 ms after the last
      // progress" is exact rather than a race with the machine's load.
      t.mock.timers.enable({ apis: ['setTimeout'] });
      try {
        client.emit('authenticated');
        client.emit('loading_screen', 40, 'WhatsApp');
        t.mock.timers.tick(299);
        client.emit('loading_screen', 100, 'WhatsApp'); // progress: the wait starts again
        t.mock.timers.tick(299);
        assert.equal(w.stats().state, 'connecting', 'still waiting 299 ms after the last progress');
        t.mock.timers.tick(1);
        assert.equal(w.stats().state, 'disconnected', 'given up 300 ms after the last progress');
      } finally {
        t.mock.timers.reset();
      }
      client.emit('ready'); // late: the session came up after all
    },
    { loadingTimeoutMs: 300 },
  );
  assert.deepEqual(bare(stuck), [
    { type: 'state', state: 'connecting' },
    { type: 'auth', method: 'session_restore' },
    { type: 'state', state: 'disconnected', reason: 'loading_screen_stuck' },
    { type: 'state', state: 'connected' },
  ]);
  const fine = await posted(
    async (client) => {
      client.emit('loading_screen', 100, 'WhatsApp');
      client.emit('authenticated');
      client.emit('ready');
      client.emit('loading_screen', 100, 'WhatsApp'); // a resync once connected arms nothing
      await new Promise((r) => setTimeout(r, 200));
    },
    { loadingTimeoutMs: 100 },
  );
  assert.deepEqual(bare(fine), [
    { type: 'state', state: 'connecting' },
    { type: 'auth', method: 'session_restore' },
    { type: 'state', state: 'connected' },
  ]);
});

test('message (inbound) → one inbound count per flush; message_create of ours → outbound with the ids; message_create of theirs is not counted again', async () => {
  const ev = await posted(async (client) => {
    client.emit('ready');
    for (const [name, n] of [['inbound', 1], ['inbound', 2], ['inboundGroup', 3]]) {
      const m = await message(client, name, n);
      client.emit('message_create', m); // whatsapp-web.js emits both for an inbound message
      client.emit('message', m);
    }
    const sent = await message(client, 'outbound', 10);
    client.emit('message_create', sent);
    client.emit('message_create', sent); // the same id again: one message
    client.emit('message_create', await message(client, 'outbound', 11));
  });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'message', direction: 'inbound', count: 3 },
    {
      type: 'message',
      direction: 'outbound',
      count: 2,
      ids: ['true_5511988887777@c.us_3EB0F2A9C1D4E600000A', 'true_5511988887777@c.us_3EB0F2A9C1D4E600000B'],
    },
  ]);
});

test('message_ack of our messages: SERVER, DEVICE, READ → server, delivered, read (after the send, ids stable); PENDING and theirs → nothing', async () => {
  const ev = await posted(async (client) => {
    const sent = await message(client, 'outbound');
    const id = sent.id._serialized;
    client.emit('message_create', sent);
    client.emit('message_ack', sent, MessageAck.ACK_PENDING);
    client.emit('message_ack', sent, MessageAck.ACK_SERVER); // before the flush: queued right after the send
    client.emit('message_ack', sent, MessageAck.ACK_SERVER); // repeated: once
    client.emit('message_ack', sent, MessageAck.ACK_DEVICE);
    client.emit('message_ack', sent, MessageAck.ACK_READ);
    client.emit('message_ack', sent, MessageAck.ACK_PLAYED); // after read: wapulse is done with it
    client.emit('message_ack', await message(client, 'inbound'), MessageAck.ACK_READ);
    assert.equal(id, 'true_5511988887777@c.us_3EB0F2A9C1D4E6B8A733');
  });
  const id = 'true_5511988887777@c.us_3EB0F2A9C1D4E6B8A733';
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'message', direction: 'outbound', count: 1, ids: [id] },
    { type: 'ack', message: id, status: 'server' },
    { type: 'ack', message: id, status: 'delivered' },
    { type: 'ack', message: id, status: 'read' },
  ]);
  assert.deepEqual(
    ev.filter((e) => e.type === 'ack').map((e) => e.id),
    [`ack:${id}:server`, `ack:${id}:delivered`, `ack:${id}:read`],
  );
});

test('message_ack PLAYED → played; ERROR → error; an own message created with its ack (from the phone) → outbound + that ack', async () => {
  const ev = await posted(async (client) => {
    const voice = await message(client, 'outbound', 1);
    const failed = await message(client, 'outbound', 2);
    const phone = await message(client, 'outboundFromPhone');
    client.emit('message_create', voice);
    client.emit('message_create', failed);
    client.emit('message_create', phone);
  });
  const [voiceId, failedId] = ev.find((e) => e.type === 'message').ids;
  // acks after the flush: sent on their own
  const ev2 = await posted(async (client) => {
    client.emit('message_ack', await message(client, 'outbound', 1), MessageAck.ACK_PLAYED);
    client.emit('message_ack', await message(client, 'outbound', 2), MessageAck.ACK_ERROR);
  });
  const phoneId = 'true_5511955554444@c.us_3AD2E8B1C0F94A7736E1';
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'message', direction: 'outbound', count: 3, ids: [voiceId, failedId, phoneId] },
    { type: 'ack', message: phoneId, status: 'server' },
  ]);
  assert.deepEqual(bare(ev2), [
    { type: 'state', state: 'connecting' },
    { type: 'ack', message: voiceId, status: 'played' },
    { type: 'ack', message: failedId, status: 'error' },
  ]);
});

test('more than 1000 sends before a flush: events of at most 1000 ids, every message counted', async () => {
  const ev = await posted(async (client) => {
    for (let i = 0; i < 2500; i++) client.emit('message_create', await message(client, 'outbound', i));
  });
  const out = ev.filter((e) => e.type === 'message');
  assert.deepEqual(out.map((e) => [e.count, e.ids.length]), [[1000, 1000], [1000, 1000], [500, 500]]);
  assert.equal(new Set(out.flatMap((e) => e.ids)).size, 2500);
});

test('ack ids: `ack:<id>:<status>`, the sha256 form past 256 characters', () => {
  assert.equal(ackId('true_1@c.us_X', 'read'), 'ack:true_1@c.us_X:read');
  const long = `true_120363012345678901@g.us_${'A'.repeat(240)}`;
  const id = ackId(long, 'delivered');
  assert.match(id, /^ack:sha256:[A-Za-z0-9_-]{43}:delivered$/);
  assert.equal(id, ackId(long, 'delivered'));
});

test('stop({ stopped: true }) sends state stopped before flushing; plain stop() only flushes', async () => {
  const stopped = await posted(async (client) => client.emit('ready'), { stop: { stopped: true, timeoutMs: 2000 } });
  assert.deepEqual(bare(stopped), [
    { type: 'state', state: 'connecting' },
    { type: 'state', state: 'connected' },
    { type: 'state', state: 'stopped' },
  ]);
  const option = await posted(async (client) => client.emit('ready'), { reportStop: true });
  assert.equal(bare(option).at(-1).state, 'stopped');
  const plain = await posted(async (client) => client.emit('ready'));
  assert.deepEqual(bare(plain).at(-1), { type: 'state', state: 'connected' });
});

test('remote_session_saved (RemoteAuth) → credentials_written with the store option', async () => {
  const ev = await posted(async (client) => client.emit('remote_session_saved'), { store: 'mongo' });
  assert.deepEqual(bare(ev), [
    { type: 'state', state: 'connecting' },
    { type: 'credentials_written', store: 'mongo' },
  ]);
});

test('memoryGaugeName and session are checked at once', () => {
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 's', memoryGaugeName: 'bad name' }), /memoryGaugeName/);
  assert.throws(() => createWatcher({ url: 'http://127.0.0.1:1', session: 's', loadingTimeoutMs: -1 }), /loadingTimeoutMs/);
  const w = createWatcher({ url: 'http://127.0.0.1:1', logger: null });
  assert.throws(() => w.watch(newClient()), /session/);
  assert.throws(() => w.watch(newClient(), { session: 'bad id' }), /session/);
  assert.throws(() => w.watch({}), /Client/);
  return w.stop(0);
});
