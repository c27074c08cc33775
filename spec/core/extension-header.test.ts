/** lib/core/extension-header.ts: the Sec-WebSocket-Extensions grammar of RFC 6455 §9.1. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExtensions } from '../../lib/core/extension-header.js';

describe('parseExtensions', () => {
  test('names and parameters, in order, with and without values', () => {
    assert.deepEqual(parseExtensions('permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits; server_max_window_bits=10'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true], ['server_max_window_bits', '10']] },
    ]);
  });

  test('several elements, as a browser offers them or as repeated headers are joined', () => {
    assert.deepEqual(parseExtensions('permessage-deflate; server_max_window_bits=10, permessage-deflate, x-foo'), [
      { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [] },
      { name: 'x-foo', params: [] },
    ]);
  });

  test('optional whitespace around every separator, spaces and tabs', () => {
    assert.deepEqual(parseExtensions(' \tpermessage-deflate ;client_max_window_bits = 12 ;\tserver_no_context_takeover ,x ; a=b '), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '12'], ['server_no_context_takeover', true]] },
      { name: 'x', params: [['a', 'b']] },
    ]);
  });

  test('a quoted value is unescaped, and must then be a token', () => {
    assert.deepEqual(parseExtensions('permessage-deflate; server_max_window_bits="10"'), [
      { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
    ]);
    assert.deepEqual(parseExtensions('x; a="\\1\\0"'), [{ name: 'x', params: [['a', '10']] }]);
    assert.equal(parseExtensions('x; a="1 0"'), null, 'a space is not a token character');
    assert.equal(parseExtensions('x; a=""'), null, 'an empty value is not a token');
    assert.equal(parseExtensions('x; a="10'), null, 'unclosed quote');
    assert.equal(parseExtensions('x; a="10\\'), null, 'escape at the end');
  });

  test('empty list elements are ignored (RFC 7230 §7)', () => {
    assert.deepEqual(parseExtensions(', permessage-deflate , ,x,'), [
      { name: 'permessage-deflate', params: [] },
      { name: 'x', params: [] },
    ]);
  });

  test('what breaks the grammar → null', () => {
    for (const value of ['', ' ', ',', ';', 'a;', 'a; ;b', 'a b', 'a; b c', 'a=1', 'a; b=', 'a; b=c d', 'a; =1', 'ä', 'a; b=ä', 'a; b="c"d', 'a,; b']) {
      assert.equal(parseExtensions(value), null, JSON.stringify(value));
    }
  });
});
