/** lib/handshake.ts: the opening handshake checks of both sides (RFC 6455 §4), DESIGN §5. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acceptKey,
  acceptResponse,
  checkUpgradeRequest,
  rejectionResponse,
  selectProtocol,
  type Rejection,
  type UpgradeRequest,
} from '../../lib/core/handshake.js';
import { checkUpgradeResponse, createKey } from '../../lib/core/client-handshake.js';
import { acceptAsClient } from '../../lib/core/permessage-deflate.js';
import { ErrorCode } from '../../lib/core/constants.js';
import { HandshakeError } from '../../lib/core/errors.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // RFC 6455 §1.3
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='; // its accept value, §1.3

function request(headers: Record<string, string | string[] | undefined> = {}, method = 'GET', httpVersion = '1.1'): UpgradeRequest {
  const base: Record<string, string | string[] | undefined> = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
  };
  return { method, httpVersion, headers: { ...base, ...headers } };
}

function rejected(req: UpgradeRequest): Rejection {
  const result = checkUpgradeRequest(req);
  assert.ok(!('key' in result), `expected a rejection, got ${JSON.stringify(result)}`);
  return result;
}

describe('acceptKey and createKey', () => {
  test('RFC 6455 §1.3 example', () => {
    assert.equal(acceptKey(KEY), ACCEPT);
  });
  test('createKey gives 16 random bytes in base64, different each time', () => {
    const a = createKey();
    const b = createKey();
    assert.equal(Buffer.from(a, 'base64').length, 16);
    assert.match(a, /^[A-Za-z0-9+/]{22}==$/);
    assert.notEqual(a, b);
    assert.ok('key' in checkUpgradeRequest(request({ 'sec-websocket-key': a })));
  });
});

describe('checkUpgradeRequest accepts', () => {
  test('the RFC example request returns its key', () => {
    assert.deepEqual(checkUpgradeRequest(request()), { key: KEY });
  });
  test('tokens are case-insensitive and may sit in lists', () => {
    for (const [upgrade, connection] of [
      ['WebSocket', 'upgrade'],
      ['WEBSOCKET', 'UPGRADE'],
      ['websocket', 'keep-alive, Upgrade'],
      ['websocket', 'Upgrade, keep-alive'],
      ['websocket', 'keep-alive,Upgrade'],
      ['websocket', ' keep-alive ,  upgrade '],
    ]) {
      assert.deepEqual(checkUpgradeRequest(request({ upgrade, connection })), { key: KEY }, `${upgrade} / ${connection}`);
    }
  });
  test('surrounding white space on the key and version is ignored', () => {
    assert.deepEqual(checkUpgradeRequest(request({ 'sec-websocket-key': ` ${KEY} `, 'sec-websocket-version': ' 13 ' })), { key: KEY });
  });
  test('a later HTTP version is fine', () => {
    assert.deepEqual(checkUpgradeRequest(request({}, 'GET', '1.2')), { key: KEY });
  });
});

describe('checkUpgradeRequest rejects (DESIGN §5)', () => {
  test('a method other than GET → 405 with Allow: GET', () => {
    for (const method of ['POST', 'PUT', 'HEAD', 'get']) {
      const r = rejected(request({}, method));
      assert.equal(r.status, 405, method);
      assert.deepEqual(r.headers, { Allow: 'GET' });
    }
  });
  test('no method at all → 405', () => {
    const r = rejected({ ...request(), method: undefined });
    assert.equal(r.status, 405);
    assert.deepEqual(r.headers, { Allow: 'GET' });
  });
  test('missing or empty Host → 400 naming Host (§4.2.1 item 2)', () => {
    for (const host of [undefined, '']) {
      const r = rejected(request({ host }));
      assert.equal(r.status, 400);
      assert.match(r.reason, /Host/);
    }
  });
  test('HTTP/1.0 → 400; another major version → 505; 1.1 and later 1.x pass', () => {
    assert.equal(rejected(request({}, 'GET', '1.0')).status, 400);
    assert.equal(rejected(request({}, 'GET', '0.9')).status, 505);
    assert.equal(rejected(request({}, 'GET', '1')).status, 505);
    assert.equal(rejected(request({}, 'GET', '2.0')).status, 505);
    for (const version of ['1.1', '1.2']) assert.deepEqual(checkUpgradeRequest(request({}, 'GET', version)), { key: KEY });
  });
  test('missing or invalid Upgrade → 400 naming Upgrade', () => {
    for (const upgrade of [undefined, '', 'websockets', 'h2c', 'web socket']) {
      const r = rejected(request({ upgrade }));
      assert.equal(r.status, 400, String(upgrade));
      assert.match(r.reason, /Upgrade/);
    }
  });
  test('missing or invalid Connection → 400 naming Connection', () => {
    for (const connection of [undefined, '', 'keep-alive', 'close', 'upgrades']) {
      const r = rejected(request({ connection }));
      assert.equal(r.status, 400, String(connection));
      assert.match(r.reason, /Connection/);
    }
  });
  test('missing Sec-WebSocket-Key → 400', () => {
    const r = rejected(request({ 'sec-websocket-key': undefined }));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Sec-WebSocket-Key/);
  });
  test('a key that is not 16 bytes of base64 → 400 (15 and 17 bytes included)', () => {
    const k15 = Buffer.alloc(15, 7).toString('base64');
    const k17 = Buffer.alloc(17, 7).toString('base64');
    assert.equal(Buffer.from(k15, 'base64').length, 15);
    assert.equal(Buffer.from(k17, 'base64').length, 17);
    for (const key of [k15, k17, '', 'not base64 at all!!!!!!!', KEY.slice(0, -2), `${KEY}==`, KEY.replace('d', '*')]) {
      const r = rejected(request({ 'sec-websocket-key': key }));
      assert.equal(r.status, 400, JSON.stringify(key));
      assert.match(r.reason, /Sec-WebSocket-Key/);
    }
  });
  test('missing version or version 8 → 426 with Sec-WebSocket-Version: 13', () => {
    for (const version of [undefined, '8', '12', '14', '', '13, 8']) {
      const r = rejected(request({ 'sec-websocket-version': version }));
      assert.equal(r.status, 426, String(version));
      assert.deepEqual(r.headers, { 'Sec-WebSocket-Version': '13' });
    }
  });
});

describe('selectProtocol', () => {
  test('the server\'s first preference that the client offered wins', () => {
    assert.equal(selectProtocol('chat, superchat', ['superchat', 'chat']), 'superchat');
    assert.equal(selectProtocol('chat, superchat', ['chat', 'superchat']), 'chat');
    assert.equal(selectProtocol('a,b ,  c', ['x', 'c', 'b']), 'c');
  });
  test('no overlap, no offer or no support → undefined', () => {
    assert.equal(selectProtocol('chat', ['mqtt']), undefined);
    assert.equal(selectProtocol(undefined, ['mqtt']), undefined);
    assert.equal(selectProtocol('', ['mqtt']), undefined);
    assert.equal(selectProtocol('chat', []), undefined);
  });
  test('names must match exactly (subprotocol names are case-sensitive)', () => {
    assert.equal(selectProtocol('Chat', ['chat']), undefined);
  });
});

describe('responses', () => {
  test('acceptResponse: the RFC 101 answer, with and without a subprotocol', () => {
    assert.equal(
      acceptResponse(KEY, undefined),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
    );
    assert.equal(
      acceptResponse(KEY, 'chat'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
    );
  });
  test('rejectionResponse: status line, extra headers, a body with the reason and its length', () => {
    const text = rejectionResponse({ status: 426, reason: 'Sec-WebSocket-Version missing', headers: { 'Sec-WebSocket-Version': '13' } });
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 426 Upgrade Required');
    assert.ok(lines.includes('Sec-WebSocket-Version: 13'));
    assert.ok(lines.includes('Connection: close'));
    assert.equal(body, 'Sec-WebSocket-Version missing\n');
    assert.ok(lines.includes(`Content-Length: ${Buffer.byteLength(body)}`));
    const r405 = rejectionResponse({ status: 405, reason: 'method must be GET', headers: { Allow: 'GET' } });
    assert.match(r405, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.match(r405, /\r\nAllow: GET\r\n/);
  });
  test('rejectionResponse counts the body in bytes, not characters', () => {
    const text = rejectionResponse({ status: 400, reason: 'clé' });
    assert.match(text, /\r\nContent-Length: 5\r\n/); // "clé\n" is 5 bytes
  });
});

describe('checkUpgradeResponse', () => {
  const good = (extra: Record<string, string | undefined> = {}) => ({
    status: 101,
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': ACCEPT, ...extra },
  });
  function code(fn: () => unknown, expected: number, status: number): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof HandshakeError, String(err));
      assert.equal(err.code, expected);
      assert.equal(err.status, status);
      return true;
    });
  }
  test('a good 101 returns the chosen subprotocol, or undefined', () => {
    assert.equal(checkUpgradeResponse(good(), KEY, []), undefined);
    assert.equal(checkUpgradeResponse(good(), KEY, ['chat']), undefined);
    assert.equal(checkUpgradeResponse(good({ 'sec-websocket-protocol': 'chat' }), KEY, ['superchat', 'chat']), 'chat');
    assert.equal(checkUpgradeResponse(good({ upgrade: 'WebSocket', connection: 'keep-alive, upgrade' }), KEY, []), undefined);
  });
  test('401 → UNAUTHORIZED', () => {
    code(() => checkUpgradeResponse({ status: 401, headers: {} }, KEY, []), ErrorCode.UNAUTHORIZED, 401);
  });
  test('200 or any other non-101 → NO_HANDSHAKE with that status', () => {
    for (const status of [200, 301, 400, 403, 404, 426, 500, 503]) {
      code(() => checkUpgradeResponse({ ...good(), status }, KEY, []), ErrorCode.NO_HANDSHAKE, status);
    }
  });
  test('101 without Upgrade: websocket or Connection: Upgrade → NO_HANDSHAKE', () => {
    code(() => checkUpgradeResponse(good({ upgrade: undefined }), KEY, []), ErrorCode.NO_HANDSHAKE, 101);
    code(() => checkUpgradeResponse(good({ upgrade: 'h2c' }), KEY, []), ErrorCode.NO_HANDSHAKE, 101);
    code(() => checkUpgradeResponse(good({ connection: 'keep-alive' }), KEY, []), ErrorCode.NO_HANDSHAKE, 101);
  });
  test('a wrong or missing accept key → HANDSHAKE_ACCEPT', () => {
    code(() => checkUpgradeResponse(good({ 'sec-websocket-accept': acceptKey('AAAAAAAAAAAAAAAAAAAAAA==') }), KEY, []), ErrorCode.HANDSHAKE_ACCEPT, 101);
    code(() => checkUpgradeResponse(good({ 'sec-websocket-accept': undefined }), KEY, []), ErrorCode.HANDSHAKE_ACCEPT, 101);
    code(() => checkUpgradeResponse(good(), 'AAAAAAAAAAAAAAAAAAAAAA==', []), ErrorCode.HANDSHAKE_ACCEPT, 101);
  });
  test('a subprotocol we did not offer → NO_HANDSHAKE', () => {
    code(() => checkUpgradeResponse(good({ 'sec-websocket-protocol': 'mqtt' }), KEY, ['chat']), ErrorCode.NO_HANDSHAKE, 101);
    code(() => checkUpgradeResponse(good({ 'sec-websocket-protocol': 'chat' }), KEY, []), ErrorCode.NO_HANDSHAKE, 101);
    code(() => checkUpgradeResponse(good({ 'sec-websocket-protocol': 'chat, superchat' }), KEY, ['chat', 'superchat']), ErrorCode.NO_HANDSHAKE, 101);
  });
  test('an extension when we offered none → NO_HANDSHAKE', () => {
    code(() => acceptAsClient('permessage-deflate', null), ErrorCode.NO_HANDSHAKE, 101);
    code(() => acceptAsClient('x-webkit-deflate-frame', null), ErrorCode.NO_HANDSHAKE, 101);
  });
});
