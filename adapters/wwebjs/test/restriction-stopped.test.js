// The two wapulse additions this adapter sends, through a real wapulse:
// the `restriction` event (a TOS_BLOCK / SMB_TOS_BLOCK ban) and the state
// `stopped` (an operator stopped the session on purpose: it pages nothing).
// A wapulse binary from before them refuses both with a 400 naming the
// field; these tests then fail, by design.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWatcher } from '../src/index.js';
import { Wapulse, TOKEN, waitFor, binaryPresent, WAPULSE_BIN } from './helpers/wapulse.js';
import { newClient, WAState } from './helpers/wwebjs.js';

let wapulse;

before(async () => {
  assert.ok(await binaryPresent(), `no wapulse binary at ${WAPULSE_BIN} (set WAPULSE_BIN)`);
  wapulse = await new Wapulse().start();
});

after(async () => {
  await wapulse?.stop();
});

function watched(session) {
  const errors = [];
  const client = newClient();
  const w = createWatcher({ url: wapulse.url, token: TOKEN, session, flushIntervalMs: 50, keepAliveIntervalMs: 0, logger: null, onError: (e) => errors.push(e) });
  w.watch(client);
  return { client, w, errors };
}

const stateList = (journal) => journal.filter((e) => e.type === 'state').map((e) => (e.reason == null ? e.state : `${e.state}:${e.reason}`));

for (const code of [WAState.TOS_BLOCK, WAState.SMB_TOS_BLOCK]) {
  test(`${code} → logged_out ${code} and a restriction ${code} that wapulse takes: ACCOUNT_RESTRICTED (ban)`, async () => {
    const session = `ww-${code.toLowerCase().replace(/_/g, '-')}`;
    const { client, w, errors } = watched(session);
    client.emit('authenticated');
    client.emit('ready');
    client.emit('change_state', code);
    client.emit('disconnected', code);
    const s = await w.stop(3000);
    assert.deepEqual(errors.map((e) => e.message), [], 'wapulse took every event');
    assert.equal(s.rejected, 0);
    const journal = await wapulse.journal(session);
    assert.deepEqual(stateList(journal), ['connecting', 'connected', `logged_out:${code}`]);
    const restrictions = journal.filter((e) => e.type === 'restriction');
    assert.equal(restrictions.length, 1);
    assert.equal(restrictions[0].code, code);
    const o = await wapulse.observe(session);
    assert.equal(o.session.state, 'logged_out');
    assert.equal(o.delivery.restriction?.kind, 'tos_block', JSON.stringify(o.delivery));
    assert.equal(o.delivery.restriction.code, code);
    const alerts = (await wapulse.alerts(session)).alerts.map((a) => a.code);
    assert.ok(alerts.includes('ACCOUNT_RESTRICTED'), JSON.stringify(alerts));
  });
}

test('connected again after the ban (a new Client, paired again) → restriction lifted: ACCOUNT_RESTRICTED ends', async () => {
  const session = 'ww-ban-lifted';
  const { client, w, errors } = watched(session);
  client.emit('ready');
  client.emit('change_state', WAState.TOS_BLOCK);
  client.emit('disconnected', WAState.TOS_BLOCK);
  await waitFor(async () => (await wapulse.alerts(session)).alerts.some((a) => a.code === 'ACCOUNT_RESTRICTED'), { what: 'ACCOUNT_RESTRICTED' });
  const next = newClient();
  w.watch(next);
  next.emit('qr', 'ref');
  next.emit('authenticated');
  next.emit('ready');
  await w.stop(3000);
  assert.deepEqual(errors.map((e) => e.message), [], 'wapulse took every event');
  const o = await wapulse.observe(session);
  assert.equal(o.session.state, 'connected');
  assert.equal(o.delivery.restriction, null, JSON.stringify(o.delivery));
  assert.ok(!(await wapulse.alerts(session)).alerts.some((a) => a.code === 'ACCOUNT_RESTRICTED'));
});

test('stop({ stopped: true }) → state stopped, sent before the flush ends: wapulse shows it and pages nothing', async () => {
  const session = 'ww-stopped';
  const { client, w, errors } = watched(session);
  client.emit('authenticated');
  client.emit('ready');
  client.emit('change_state', WAState.UNPAIRED); // LOGGED_OUT, until the operator stops the session
  await waitFor(async () => (await wapulse.alerts(session)).alerts.some((a) => a.code === 'LOGGED_OUT'), { what: 'LOGGED_OUT' });
  const s = await w.stop({ stopped: true, timeoutMs: 3000 });
  assert.equal(s.flushed, true);
  assert.deepEqual(errors.map((e) => e.message), [], 'wapulse took every event');
  const o = await wapulse.observe(session);
  assert.equal(o.session.state, 'stopped');
  assert.deepEqual((await wapulse.alerts(session)).alerts, [], 'a stopped session pages nothing');
  assert.deepEqual(stateList(await wapulse.journal(session)), ['connecting', 'connected', 'logged_out:UNPAIRED', 'stopped']);
});
