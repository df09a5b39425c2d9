// The adapter never imports whatsapp-web.js; its copies of the package's
// constants, and what it assumes of the Client, are checked here against
// the installed package (pinned in package-lock.json).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WAState, ACK_STATUS, FOLLOWED_EVENTS } from '../src/index.js';
import { Client, Events, WAState as PkgWAState, MessageAck, WWEBJS_VERSION, newClient } from './helpers/wwebjs.js';

test('whatsapp-web.js 1.34 is the package under test', () => {
  assert.match(WWEBJS_VERSION, /^1\.34\./);
});

test('WAState: the same names and values as the package', () => {
  assert.deepEqual({ ...WAState }, { ...PkgWAState });
});

test('every followed event is one of the package Events, under the same name', () => {
  for (const [key, name] of Object.entries(FOLLOWED_EVENTS)) assert.equal(Events[key], name, key);
});

test('ACK values: every MessageAck but PENDING has a status', () => {
  assert.deepEqual(MessageAck, { ACK_ERROR: -1, ACK_PENDING: 0, ACK_SERVER: 1, ACK_DEVICE: 2, ACK_READ: 3, ACK_PLAYED: 4 });
  assert.deepEqual(
    Object.fromEntries(Object.entries(MessageAck).map(([k, v]) => [k, ACK_STATUS[v]])),
    { ACK_ERROR: 'error', ACK_PENDING: undefined, ACK_SERVER: 'server', ACK_DEVICE: 'delivered', ACK_READ: 'read', ACK_PLAYED: 'played' },
  );
});

test("Client.getState() evaluates WhatsApp Web's socket state in the page (what the test page stands in for)", () => {
  const src = Client.prototype.getState.toString();
  assert.match(src, /this\.pupPage\.evaluate/);
  assert.match(src, /window\.require\('WAWebSocketModel'\)\.Socket\.state/);
});

test('a new Client has pupBrowser and pupPage as plain null properties, set by initialize()', () => {
  const c = newClient();
  for (const p of ['pupBrowser', 'pupPage']) {
    const d = Object.getOwnPropertyDescriptor(c, p);
    assert.equal(d.value, null, p);
    assert.equal(d.configurable && d.writable, true, p);
  }
  const init = Client.prototype.initialize.toString();
  assert.match(init, /this\.pupBrowser = browser;\s*this\.pupPage = page;/);
});

test('whatsapp-web.js destroys the Client after a disconnected(state), for every state but CONNECTED, OPENING, PAIRING, TIMEOUT', () => {
  // the adapter then says nothing more when the browser closes
  const src = Client.prototype.attachEventListeners.toString();
  assert.match(src, /ACCEPTED_STATES = \[\s*WAState\.CONNECTED,\s*WAState\.OPENING,\s*WAState\.PAIRING,\s*WAState\.TIMEOUT,?\s*\]/);
  assert.match(src, /this\.emit\(Events\.DISCONNECTED, state\);\s*this\.destroy\(\);/);
});
