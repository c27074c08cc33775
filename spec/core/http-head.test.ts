import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headEnd, parseRequestHead } from '../../lib/core/http-head.js';

function parse(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = headEnd(buf);
  assert.ok(end > 0, 'head complete');
  return parseRequestHead(buf, end);
}

describe('request-head', () => {
  it('finds the end of the head, or says it has not arrived', () => {
    assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')), -1);
    assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\n\r\nrest')), 18);
  });

  it('parses the request line and headers: lower-case names, trimmed values, repeats joined', () => {
    const head = parse('GET /chat?room=1 HTTP/1.1\r\nHost: example\r\nSec-WebSocket-Protocol: a\r\nsec-websocket-protocol:  b \r\nX-Empty:\r\n\r\n');
    assert.deepEqual(head, {
      method: 'GET',
      url: '/chat?room=1',
      httpVersion: '1.1',
      headers: { host: 'example', 'sec-websocket-protocol': 'a, b', 'x-empty': '' },
    });
  });

  it('keeps names that look like Object properties as plain headers', () => {
    const head = parse('GET / HTTP/1.1\r\nConstructor: x\r\ntoString: y\r\n\r\n');
    assert.ok(typeof head !== 'string');
    assert.equal(head.headers.constructor, 'x');
    assert.equal(head.headers.tostring, 'y');
  });

  const malformed: [string, string, RegExp][] = [
    ['a request line without a version', 'GET /\r\nHost: a\r\n\r\n', /request line/],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\n\r\n', /request line/],
    ['a lower-case HTTP name', 'GET / http/1.1\r\n\r\n', /request line/],
    ['a header without a colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', /header line/],
    ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', /header name/],
    ['a folded (obs-fold) line', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', /header/],
    ['a control character in a value', 'GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n', /invalid characters/],
    ['a bare LF line ending', 'GET / HTTP/1.1\nHost: a\r\n\r\n', /request line/],
  ];
  for (const [what, text, reason] of malformed) {
    it(`refuses ${what}`, () => {
      const result = parse(text);
      assert.equal(typeof result, 'string');
      assert.match(result as string, reason);
    });
  }
});
