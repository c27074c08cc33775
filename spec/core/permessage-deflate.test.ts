/**
 * permessage-deflate (RFC 7692) in lib/core: the Sec-WebSocket-Extensions grammar (RFC 6455
 * §9.1), the negotiation of every §7 parameter on both sides, the options, and the protocol
 * objects with compression, bytes in and bytes out. Compressed
 * payloads are made and read with node:zlib directly (spec/helpers/frames.ts), never with lib/.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as zlibConstants, createInflateRaw } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { ClientProtocol, ErrorCode, HandshakeError, ServerProtocol, type CloseEvent, type CompressionOptions } from '../../lib/protocol.js';
import { type DeflateSettings, resolveCompression } from '../../lib/core/deflate-options.js';
import { parseExtensions } from '../../lib/core/extension-header.js';
import { acceptAsClient, clientOffer, type DeflateAgreement, negotiateAsServer } from '../../lib/core/permessage-deflate.js';
import { encodeMessage } from '../../lib/core/encoded-message.js';
import { MessageDeflater } from '../../lib/core/message-deflater.js';
import { MessageInflater } from '../../lib/core/message-inflater.js';
import { deflatePayload, frame, inflatePayload, OP, parseFrames, type ParsedFrame } from '../helpers/frames.js';
import { prng } from '../helpers/prng.js';

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const RSV1 = 4;

const server = (options: CompressionOptions | true = true): DeflateSettings => resolveCompression(options, 'server')!;
const client = (options: CompressionOptions | true = true): DeflateSettings => resolveCompression(options, 'client')!;

/** A client's handshake request, offering `extensions` if given. */
function requestHead(extensions?: string): Buffer {
  return Buffer.from(
    'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      '\r\n',
    'latin1',
  );
}

/** A ServerProtocol past its handshake; `answer` is its 101. */
function openServer(offer: string | undefined, compression: CompressionOptions | true = true, maxMessageSize?: number): { p: ServerProtocol; answer: string } {
  const p = new ServerProtocol({ compression, ...(maxMessageSize === undefined ? {} : { maxMessageSize }) });
  p.receiveData(requestHead(offer));
  const [request] = p.eventsReceived();
  assert.ok(request?.type === 'request', 'a request event');
  assert.ok(p.accept(), 'accept() answers it');
  return { p, answer: p.dataToSend().toString('latin1') };
}

/** The messages and the close event the protocol yielded since the last call. */
function received(p: ServerProtocol | ClientProtocol): { messages: (string | Buffer)[]; close: CloseEvent | undefined } {
  const events = p.eventsReceived();
  const messages = events.flatMap((e) => (e.type === 'message' ? [e.data] : []));
  const close = events.find((e): e is CloseEvent => e.type === 'close');
  return { messages, close };
}

function sent(p: ServerProtocol | ClientProtocol): ParsedFrame[] {
  return parseFrames(p.dataToSend());
}

function expectClose(p: ServerProtocol, code: number, reason?: RegExp): void {
  const { close } = received(p);
  assert.equal(close?.code, code, `close ${close?.code} ${close?.reason}`);
  if (reason) assert.match(close!.reason, reason);
  const frames = sent(p);
  assert.equal(frames.at(-1)?.opcode, OP.CLOSE);
  assert.equal(frames.at(-1)!.payload.readUInt16BE(0), code);
}

const DEFAULT_ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
/** What the default answer agrees: 15-bit windows, no context kept either way. */
const DEFAULT_AGREEMENT: DeflateAgreement = {
  header: DEFAULT_ANSWER,
  sendWindowBits: 15,
  sendContextTakeover: false,
  receiveWindowBits: 15,
  receiveContextTakeover: false,
};

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

describe('negotiation, server side (RFC 7692 §5, §7)', () => {
  test('no offer, no permessage-deflate offer, or an unreadable header → no compression', () => {
    assert.equal(negotiateAsServer(undefined, server()), null);
    assert.equal(negotiateAsServer('x-webkit-deflate-frame', server()), null);
    assert.equal(negotiateAsServer('permessage-deflate; =', server()), null);
    assert.equal(negotiateAsServer('permessage-deflate x', server()), null);
  });

  test("a browser's offer: accepted, and both directions asked for no context takeover (§7.1.1 allows it unasked)", () => {
    assert.deepEqual(negotiateAsServer('permessage-deflate; client_max_window_bits', server()), DEFAULT_AGREEMENT);
    assert.equal(negotiateAsServer('permessage-deflate', server())?.header, DEFAULT_ANSWER);
  });

  test('contextTakeover: contexts kept both ways in 12-bit windows, unless the client asks otherwise', () => {
    const ctx = server({ contextTakeover: true });
    assert.deepEqual(negotiateAsServer('permessage-deflate; client_max_window_bits', ctx), {
      header: 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
      sendWindowBits: 12,
      sendContextTakeover: true,
      receiveWindowBits: 12,
      receiveContextTakeover: true,
    } satisfies DeflateAgreement);
    const wide = negotiateAsServer('permessage-deflate; client_max_window_bits', server({ contextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }));
    assert.equal(wide?.header, 'permessage-deflate');
    const asked = negotiateAsServer('permessage-deflate; server_no_context_takeover; client_max_window_bits', ctx);
    assert.equal(asked?.header, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12');
    assert.deepEqual([asked?.sendContextTakeover, asked?.receiveContextTakeover], [false, true]);
    const hinted = negotiateAsServer('permessage-deflate; client_no_context_takeover; client_max_window_bits', ctx);
    assert.equal(hinted?.header, 'permessage-deflate; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12');
    assert.deepEqual([hinted?.sendContextTakeover, hinted?.receiveContextTakeover], [true, false]);
    // A client that cannot be asked for a 12-bit window (no client_max_window_bits) is asked to keep no context.
    const unbounded = negotiateAsServer('permessage-deflate', ctx);
    assert.equal(unbounded?.header, 'permessage-deflate; client_no_context_takeover; server_max_window_bits=12');
    assert.deepEqual([unbounded?.sendContextTakeover, unbounded?.receiveContextTakeover, unbounded?.receiveWindowBits], [true, false, 15]);
  });

  test('server_max_window_bits: honoured with the same or a smaller value; announced unasked when ours is smaller', () => {
    const offered = negotiateAsServer('permessage-deflate; server_max_window_bits=10', server());
    assert.equal(offered?.header, `${DEFAULT_ANSWER}; server_max_window_bits=10`);
    assert.equal(offered?.sendWindowBits, 10);
    assert.equal(negotiateAsServer('permessage-deflate; server_max_window_bits=14', server({ serverMaxWindowBits: 12 }))?.sendWindowBits, 12);
    assert.equal(negotiateAsServer('permessage-deflate; server_max_window_bits=9', server({ serverMaxWindowBits: 12 }))?.sendWindowBits, 9);
    assert.equal(negotiateAsServer('permessage-deflate', server({ serverMaxWindowBits: 12 }))?.header, `${DEFAULT_ANSWER}; server_max_window_bits=12`);
    assert.equal(negotiateAsServer('permessage-deflate; server_max_window_bits=15', server())?.header, `${DEFAULT_ANSWER}; server_max_window_bits=15`);
  });

  test('server_max_window_bits=8 (zlib cannot deflate with it) is honoured by never compressing', () => {
    const eight = negotiateAsServer('permessage-deflate; server_max_window_bits=8', server());
    assert.equal(eight?.header, `${DEFAULT_ANSWER}; server_max_window_bits=8`);
    assert.equal(eight?.sendWindowBits, 8);
  });

  test('client_max_window_bits: a value offered is echoed; ours is asked of a client that offered the parameter', () => {
    const nine = negotiateAsServer('permessage-deflate; client_max_window_bits=9', server());
    assert.equal(nine?.header, `${DEFAULT_ANSWER}; client_max_window_bits=9`);
    assert.equal(nine?.receiveWindowBits, 9);
    const ours = server({ clientMaxWindowBits: 10 });
    assert.equal(negotiateAsServer('permessage-deflate; client_max_window_bits', ours)?.header, `${DEFAULT_ANSWER}; client_max_window_bits=10`);
    assert.equal(negotiateAsServer('permessage-deflate; client_max_window_bits=12', ours)?.receiveWindowBits, 10);
    assert.equal(negotiateAsServer('permessage-deflate; client_max_window_bits=8', ours)?.receiveWindowBits, 8);
    const unasked = negotiateAsServer('permessage-deflate', ours);
    assert.equal(unasked?.header, DEFAULT_ANSWER, 'a limit cannot be asked of a client that did not offer the parameter');
    assert.equal(unasked?.receiveWindowBits, 15);
  });

  test('an offer with an unknown, repeated or invalid parameter is declined; the next one is taken', () => {
    const bad = [
      'permessage-deflate; foo',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover=true',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; server_max_window_bits=1e1',
      'permessage-deflate; client_max_window_bits=abc',
      'permessage-deflate; client_max_window_bits=0',
    ];
    for (const offer of bad) {
      assert.equal(negotiateAsServer(offer, server()), null, offer);
      assert.equal(negotiateAsServer(`${offer}, permessage-deflate; server_max_window_bits=11`, server())?.sendWindowBits, 11, offer);
    }
    assert.equal(negotiateAsServer('permessage-deflate; server_max_window_bits="10"', server())?.sendWindowBits, 10, 'a quoted token is the token');
  });

  test('the first acceptable offer wins (Autobahn 13.7: three offers in order of preference)', () => {
    const offers = 'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=9, permessage-deflate; server_no_context_takeover, permessage-deflate';
    assert.equal(negotiateAsServer(offers, server())?.sendWindowBits, 9);
  });
});

describe('negotiation, client side (RFC 7692 §5, §7)', () => {
  test('the offer: no context takeover both ways unless contextTakeover; window parameters', () => {
    assert.equal(clientOffer(client()), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits');
    assert.equal(clientOffer(client({ contextTakeover: true })), 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    assert.equal(clientOffer(client({ contextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 })), 'permessage-deflate; client_max_window_bits');
    assert.equal(
      clientOffer(client({ serverMaxWindowBits: 8, clientMaxWindowBits: 11 })),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=11',
    );
  });

  test('an answer that accepts the offer → the agreement', () => {
    assert.equal(acceptAsClient(undefined, client()), null, 'no extension: no compression');
    assert.deepEqual(acceptAsClient(DEFAULT_ANSWER, client()), DEFAULT_AGREEMENT);
    // Python websockets' server: windows of 12 bits, server_max_window_bits announced unasked (§7.1.2.1).
    const python = acceptAsClient(`${DEFAULT_ANSWER}; server_max_window_bits=12; client_max_window_bits=12`, client());
    assert.deepEqual([python?.sendWindowBits, python?.receiveWindowBits], [12, 12]);
    const kept = acceptAsClient('permessage-deflate; server_max_window_bits=12; client_max_window_bits=10', client({ contextTakeover: true }));
    assert.deepEqual([kept?.sendContextTakeover, kept?.receiveContextTakeover, kept?.sendWindowBits, kept?.receiveWindowBits], [true, true, 10, 12]);
    const eight = acceptAsClient(`${DEFAULT_ANSWER}; client_max_window_bits=8`, client());
    assert.equal(eight?.sendWindowBits, 8, 'an 8-bit window is honoured by never compressing');
    assert.equal(acceptAsClient(`${DEFAULT_ANSWER}; server_max_window_bits=9`, client({ serverMaxWindowBits: 10 }))?.receiveWindowBits, 9);
  });

  test('an answer that does not → HandshakeError NO_HANDSHAKE, status 101', () => {
    const cases: [string, DeflateSettings | null][] = [
      ['permessage-deflate', null],
      ['permessage-deflate', client()], // we asked for server_no_context_takeover
      ['x-webkit-deflate-frame', client()],
      [`${DEFAULT_ANSWER}, permessage-deflate`, client()],
      [`${DEFAULT_ANSWER}; foo`, client()],
      [`${DEFAULT_ANSWER}; server_no_context_takeover`, client()],
      [`${DEFAULT_ANSWER}; client_max_window_bits`, client()], // an answer's value is required (§7.1.2.2)
      [`${DEFAULT_ANSWER}; client_max_window_bits=16`, client()],
      [`${DEFAULT_ANSWER}; client_max_window_bits=12`, client({ clientMaxWindowBits: 10 })],
      [`${DEFAULT_ANSWER}; server_max_window_bits=12`, client({ serverMaxWindowBits: 10 })],
      [DEFAULT_ANSWER, client({ serverMaxWindowBits: 10 })], // server_max_window_bits offered, not answered
      ['permessage-deflate; server_no_context_takeover=x', client()],
      ['permessage-deflate;', client()],
    ];
    for (const [answer, settings] of cases) {
      assert.throws(
        () => acceptAsClient(answer, settings),
        (err: unknown) => err instanceof HandshakeError && err.code === ErrorCode.NO_HANDSHAKE && err.status === 101,
        answer,
      );
    }
  });
});

describe('options', () => {
  test('off unless given; true = the defaults; an object overrides some', () => {
    assert.equal(resolveCompression(undefined, 'server'), null);
    assert.equal(resolveCompression(false, 'server'), null);
    assert.deepEqual(server(), { threshold: 1024, level: 6, memLevel: 8, serverMaxWindowBits: 15, clientMaxWindowBits: 15, contextTakeover: false });
    assert.equal(server({ threshold: 0, level: undefined }).threshold, 0);
    assert.equal(server({ level: undefined }).level, 6);
  });

  test('a value out of range → RangeError, from the protocol constructors too', () => {
    const bad: [CompressionOptions, 'server' | 'client'][] = [
      [{ threshold: -1 }, 'server'],
      [{ threshold: 1.5 }, 'server'],
      [{ level: 10 }, 'server'],
      [{ memLevel: 0 }, 'client'],
      [{ serverMaxWindowBits: 8 }, 'server'], // the window the server compresses with: zlib has no 8
      [{ clientMaxWindowBits: 8 }, 'client'],
      [{ clientMaxWindowBits: 16 }, 'server'],
      [{ serverMaxWindowBits: 7 }, 'client'],
    ];
    for (const [options, role] of bad) assert.throws(() => resolveCompression(options, role), RangeError, JSON.stringify(options));
    assert.throws(() => resolveCompression({ contextTakeover: 'yes' as unknown as boolean }, 'server'), TypeError);
    assert.equal(resolveCompression({ clientMaxWindowBits: 8 }, 'server')?.clientMaxWindowBits, 8);
    assert.equal(resolveCompression({ serverMaxWindowBits: 8 }, 'client')?.serverMaxWindowBits, 8);
    assert.throws(() => new ServerProtocol({ compression: { level: 11 } }), RangeError);
    assert.throws(() => new ClientProtocol('ws://x/', { compression: { clientMaxWindowBits: 8 } }), RangeError);
  });
});

describe('ServerProtocol with compression: the handshake', () => {
  test('the 101 carries the agreement, and so does the request event', () => {
    const p = new ServerProtocol({ compression: true });
    p.receiveData(requestHead('permessage-deflate; client_max_window_bits'));
    const [request] = p.eventsReceived();
    assert.ok(request?.type === 'request', 'a request event');
    assert.equal(request.request.extensions, DEFAULT_ANSWER);
    p.accept();
    assert.equal(
      p.dataToSend().toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Extensions: ${DEFAULT_ANSWER}\r\n\r\n`,
    );
  });

  test('compression off, or nothing acceptable offered: no Sec-WebSocket-Extensions, RSV1 stays a protocol error', () => {
    for (const [offer, compression] of [['permessage-deflate', false], [undefined, true], ['permessage-deflate; foo', true]] as const) {
      const { p, answer } = openServer(offer, compression as true);
      assert.doesNotMatch(answer, /Sec-WebSocket-Extensions/i);
      p.receiveData(frame(OP.TEXT, deflatePayload('hello'), { rsv: RSV1 }));
      expectClose(p, 1002, /reserved bits/);
    }
  });
});

describe('ServerProtocol with compression: messages in (RFC 7692 §6, §7.2.2)', () => {
  test('compressed text and binary, whole or fragmented (RSV1 on the first frame only), split at every byte', () => {
    const text = 'Hällo, Wörld! '.repeat(40);
    const bytes = randomBytes(3000);
    const textPayload = deflatePayload(text);
    const input = Buffer.concat([
      frame(OP.TEXT, textPayload, { rsv: RSV1 }),
      frame(OP.BINARY, deflatePayload(bytes), { rsv: RSV1 }),
      frame(OP.TEXT, textPayload.subarray(0, 10), { rsv: RSV1, fin: false }),
      frame(OP.PING, 'mid'),
      frame(OP.CONT, textPayload.subarray(10, 11), { fin: false }),
      frame(OP.CONT, textPayload.subarray(11)),
      frame(OP.TEXT, 'plain'), // a message without RSV1 is not compressed
      frame(OP.BINARY, Buffer.from([0x00]), { rsv: RSV1 }), // an empty message, compressed (§7.2.3.6)
    ]);
    for (let cut = 0; cut <= input.length; cut += cut < 40 || input.length - cut < 40 ? 1 : 97) {
      const { p } = openServer('permessage-deflate');
      p.receiveData(Buffer.from(input.subarray(0, cut)));
      p.receiveData(Buffer.from(input.subarray(cut)));
      const { messages, close } = received(p);
      assert.equal(close, undefined, `cut ${cut}: ${close?.reason}`);
      assert.deepEqual(messages, [text, bytes, text, 'plain', Buffer.alloc(0)], `cut ${cut}`);
    }
  });

  test('a whole message per read, many messages in one read', () => {
    const { p } = openServer('permessage-deflate');
    const texts = Array.from({ length: 50 }, (_, i) => `message ${i} `.repeat(i));
    p.receiveData(Buffer.concat(texts.map((t) => frame(OP.TEXT, deflatePayload(t), { rsv: RSV1 }))));
    assert.deepEqual(received(p).messages, texts);
  });

  test('RSV1 on a continuation frame or a control frame → 1002; RSV2 and RSV3 → 1002', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.concat([frame(OP.TEXT, deflatePayload('ab'), { rsv: RSV1, fin: false }), frame(OP.CONT, '', { rsv: RSV1 })]), /continuation/],
      [frame(OP.PING, 'x', { rsv: RSV1 }), /control/],
      [frame(OP.CLOSE, Buffer.from([0x03, 0xe8]), { rsv: RSV1 }), /control/],
      [frame(OP.TEXT, deflatePayload('ab'), { rsv: 2 }), /reserved bits/],
      [frame(OP.TEXT, deflatePayload('ab'), { rsv: 1 }), /reserved bits/],
      [frame(OP.TEXT, deflatePayload('ab'), { rsv: RSV1 | 2 }), /reserved bits/],
    ];
    for (const [bytes, reason] of cases) {
      const { p } = openServer('permessage-deflate');
      p.receiveData(bytes);
      expectClose(p, 1002, reason);
    }
  });

  test('compressed data that does not inflate → 1007; compressed text that is not UTF-8 → 1007', () => {
    for (const payload of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('not deflate at all'), deflatePayload(Buffer.from([0x61, 0xc3, 0x28]))]) {
      const { p } = openServer('permessage-deflate');
      p.receiveData(frame(OP.TEXT, payload, { rsv: RSV1 }));
      expectClose(p, 1007);
    }
  });

  test('a message over maxMessageSize once inflated → 1009; exactly the limit passes', () => {
    const limit = 10_000;
    const { p } = openServer('permessage-deflate', true, limit);
    p.receiveData(frame(OP.BINARY, deflatePayload(Buffer.alloc(limit, 1)), { rsv: RSV1 }));
    assert.equal((received(p).messages[0] as Buffer).length, limit);
    p.receiveData(frame(OP.BINARY, deflatePayload(Buffer.alloc(limit + 1, 1)), { rsv: RSV1 }));
    expectClose(p, 1009, /inflated/);
    const bomb = deflatePayload(Buffer.alloc(8 << 20)); // the 64 MiB one: spec/integration/compression-probe.test.ts
    assert.ok(bomb.length < 16 * 1024, `an 8 MiB bomb is ${bomb.length} bytes`);
    const fragmented = openServer('permessage-deflate', true, 1 << 20).p;
    fragmented.receiveData(Buffer.concat([frame(OP.BINARY, bomb.subarray(0, 1000), { rsv: RSV1, fin: false }), frame(OP.CONT, bomb.subarray(1000))]));
    expectClose(fragmented, 1009, /inflated/);
  });

  test('compressed bytes: a message of maxMessageSize that did not shrink is read; past what a compressor can make of it → 1009 from the header', () => {
    const limit = 4096;
    const incompressible = randomBytes(limit);
    const stored = deflatePayload(incompressible, { windowBits: 15 });
    assert.ok(stored.length > limit, 'random bytes grow a little');
    const { p } = openServer('permessage-deflate', true, limit);
    p.receiveData(frame(OP.BINARY, stored, { rsv: RSV1 }));
    assert.deepEqual(received(p).messages, [incompressible]);
    const tooBig = openServer('permessage-deflate', true, limit).p;
    tooBig.receiveData(frame(OP.BINARY, Buffer.alloc(10), { rsv: RSV1, declaredLength: 2 * limit }));
    expectClose(tooBig, 1009, /too big/);
  });
});

describe('ServerProtocol with compression: seeded fuzz of compressed input', () => {
  test('corrupted, cut and fragmented compressed messages: never a throw; messages, then at most one close (1002, 1007 or 1009), last', () => {
    const rand = prng(0x7692);
    const int = (n: number): number => Math.floor(rand() * n);
    const codes = new Map<number, number>();
    for (let run = 0; run < 200; run++) {
      const { p } = openServer('permessage-deflate', { threshold: 0, contextTakeover: run % 2 === 1 }, 4096);
      const frames: Buffer[] = [];
      for (let m = 0, count = 1 + int(4); m < count; m++) {
        const text = Array.from({ length: int(400) }, () => 'ab✓{}"é\n'[int(9)]).join('').repeat(1 + int(20));
        const payload = Buffer.from(deflatePayload(text));
        const corruptions = rand() < 0.5 ? 0 : 1 + int(3);
        for (let c = 0; c < corruptions && payload.length > 0; c++) payload[int(payload.length)] = int(256);
        const cut = rand() < 0.2 ? payload.subarray(0, int(payload.length)) : payload;
        const pieces = rand() < 0.4 ? 1 + int(4) : 1;
        const size = Math.ceil(cut.length / pieces) || 1;
        for (let at = 0, first = true; first || at < cut.length; at += size, first = false) {
          const last = at + size >= cut.length;
          const rsv = first ? RSV1 : rand() < 0.05 ? RSV1 : 0;
          frames.push(frame(first ? (rand() < 0.5 ? OP.TEXT : OP.BINARY) : OP.CONT, cut.subarray(at, at + size), { rsv, fin: last }));
          if (rand() < 0.1) frames.push(frame(OP.PING, 'p', { rsv: rand() < 0.2 ? RSV1 : 0 }));
        }
      }
      const input = Buffer.concat(frames);
      for (let at = 0; at < input.length; ) {
        const n = 1 + int(600);
        assert.doesNotThrow(() => p.receiveData(Buffer.from(input.subarray(at, at + n))));
        at += n;
      }
      const events = p.eventsReceived();
      const closes = events.filter((e) => e.type === 'close');
      assert.ok(closes.length <= 1, `run ${run}: ${closes.length} close events`);
      if (closes.length === 1) {
        assert.equal(events.at(-1)?.type, 'close', `run ${run}: the close event is last`);
        const code = (closes[0] as CloseEvent).code;
        assert.ok([1002, 1007, 1009].includes(code), `run ${run}: close ${code} ${(closes[0] as CloseEvent).reason}`);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    assert.ok((codes.get(1007) ?? 0) > 10 && (codes.get(1002) ?? 0) > 10 && (codes.get(1009) ?? 0) > 0, JSON.stringify([...codes]));
  });
});

describe('ServerProtocol with compression: messages out (RFC 7692 §6, §7.2.1)', () => {
  test('at or above the threshold: RSV1 and a payload that inflates to the message; below it, as it is', () => {
    const { p } = openServer('permessage-deflate', { threshold: 100 });
    const long = 'abc'.repeat(40);
    p.sendText(long);
    p.sendText('a'.repeat(99));
    p.sendBinary(Buffer.alloc(100, 7));
    p.ping('p');
    const frames = sent(p);
    assert.deepEqual(frames.map((f) => [f.opcode, f.rsv]), [[OP.TEXT, RSV1], [OP.TEXT, 0], [OP.BINARY, RSV1], [OP.PING, 0]]);
    assert.equal(inflatePayload(frames[0]!.payload).toString(), long);
    assert.deepEqual(inflatePayload(frames[2]!.payload), Buffer.alloc(100, 7));
    assert.ok(frames[0]!.payload.length < 20, `120 repeated bytes compress to ${frames[0]!.payload.length}`);
  });

  test('a message that does not shrink goes as it is', () => {
    const { p } = openServer('permessage-deflate', { threshold: 0 });
    const noise = randomBytes(2000);
    p.sendBinary(noise);
    p.sendText('');
    const frames = sent(p);
    assert.deepEqual(frames.map((f) => f.rsv), [0, 0]);
    assert.deepEqual(frames[0]!.payload, noise);
  });

  test('the window the client asked for is used; with server_max_window_bits=8 nothing is compressed', () => {
    const text = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ i, name: `player ${i % 7}` })));
    const nine = openServer('permessage-deflate; server_max_window_bits=9', { threshold: 0 }).p;
    nine.sendText(text);
    const [f9] = sent(nine);
    assert.equal(f9!.rsv, RSV1);
    // A 9-bit inflater reads it: no distance reaches further back than 512 bytes.
    assert.equal(inflatePayload(f9!.payload, { windowBits: 9 }).toString(), text);
    const eight = openServer('permessage-deflate; server_max_window_bits=8', { threshold: 0 }).p;
    eight.sendText(text);
    eight.sendBinary(Buffer.alloc(5000));
    assert.deepEqual(sent(eight).map((f) => f.rsv), [0, 0]);
  });

  test('a close frame and pongs are never compressed', () => {
    const { p } = openServer('permessage-deflate', { threshold: 0 });
    p.receiveData(frame(OP.PING, 'x'.repeat(100)));
    p.close(1000, 'y'.repeat(100));
    assert.deepEqual(sent(p).map((f) => [f.opcode, f.rsv]), [[OP.PONG, 0], [OP.CLOSE, 0]]);
  });
});

describe('the examples of RFC 7692 §7.2.3, as a client receives them', () => {
  const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
  /** A ClientProtocol that agreed to permessage-deflate with context takeover both ways, fed `frames`. */
  function receive(frames: Buffer): string[] {
    const p = new ClientProtocol('ws://example.com/', {
      compression: { contextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
      handshakeKey: SAMPLE_KEY,
    });
    p.dataToSend();
    p.receiveData(
      Buffer.concat([
        Buffer.from(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
          'latin1',
        ),
        frames,
      ]),
    );
    const { messages, close } = received(p);
    assert.equal(close, undefined, close?.reason);
    return messages as string[];
  }
  test('§7.2.3.1: one compressed block, whole and in two fragments', () => {
    assert.deepEqual(receive(hex('c1 07 f2 48 cd c9 c9 07 00')), ['Hello']);
    assert.deepEqual(receive(hex('41 03 f2 48 cd  80 04 c9 c9 07 00')), ['Hello']);
  });
  test('§7.2.3.2: the second message refers back into the first (context takeover)', () => {
    assert.deepEqual(receive(hex('c1 07 f2 48 cd c9 c9 07 00  c1 05 f2 00 11 00 00')), ['Hello', 'Hello']);
  });
  test('§7.2.3.3: a block with no compression', () => {
    assert.deepEqual(receive(hex('c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00')), ['Hello']);
  });
});

describe('ClientProtocol with compression', () => {
  test('offers permessage-deflate, accepts the answer, masks compressed frames, inflates the server’s', () => {
    const key = Uint8Array.of(1, 2, 3, 4);
    const p = new ClientProtocol('ws://example.com/', { compression: { threshold: 0 }, handshakeKey: SAMPLE_KEY, maskKey: () => key });
    assert.match(p.dataToSend().toString('latin1'), /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits\r\n/);
    const text = 'compress me '.repeat(20);
    p.receiveData(
      Buffer.concat([
        Buffer.from(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Extensions: ${DEFAULT_ANSWER}; client_max_window_bits=10\r\n\r\n`,
          'latin1',
        ),
        frame(OP.TEXT, deflatePayload(text), { rsv: RSV1, mask: false }),
      ]),
    );
    const [open, message] = p.eventsReceived();
    assert.ok(open?.type === 'open', 'an open event');
    assert.equal(open.extensions, `${DEFAULT_ANSWER}; client_max_window_bits=10`);
    assert.deepEqual(message, { type: 'message', data: text, binary: false });
    p.sendText(text);
    const [out] = sent(p);
    assert.equal(out!.rsv, RSV1);
    assert.deepEqual(out!.mask, Buffer.from(key));
    assert.equal(inflatePayload(out!.payload, { windowBits: 10 }).toString(), text);
  });

  test('client_max_window_bits=8 in the answer is honoured by never compressing', () => {
    const p = new ClientProtocol('ws://example.com/', { compression: { threshold: 0 }, handshakeKey: SAMPLE_KEY });
    p.dataToSend();
    p.receiveData(
      Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Extensions: ${DEFAULT_ANSWER}; client_max_window_bits=8\r\n\r\n`,
        'latin1',
      ),
    );
    assert.equal(p.eventsReceived()[0]?.type, 'open');
    p.sendText('compress me '.repeat(50));
    p.sendBinary(Buffer.alloc(4000));
    assert.deepEqual(sent(p).map((f) => f.rsv), [0, 0]);
  });

  test('an answer it cannot accept fails the handshake: close event with a HandshakeError', () => {
    const p = new ClientProtocol('ws://example.com/', { compression: true, handshakeKey: SAMPLE_KEY });
    p.dataToSend();
    p.receiveData(
      Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
        'latin1',
      ),
    );
    const [close] = p.eventsReceived();
    assert.ok(close?.type === 'close' && close.error instanceof HandshakeError, 'a close event with a HandshakeError');
    assert.match(close.reason, /server_no_context_takeover/);
  });
});

describe('context takeover: a ClientProtocol and a ServerProtocol, both keeping contexts', () => {
  test('similar messages shrink as the context fills, arrive intact both ways, and match a streaming inflater', async () => {
    const c = new ClientProtocol('ws://example.com/', { compression: { threshold: 0, contextTakeover: true } });
    const s = new ServerProtocol({ compression: { threshold: 0, contextTakeover: true } });
    s.receiveData(c.dataToSend());
    assert.equal(s.eventsReceived()[0]?.type, 'request');
    s.accept();
    c.receiveData(s.dataToSend());
    const [open] = c.eventsReceived();
    assert.ok(open?.type === 'open', 'an open event');
    assert.equal(open.extensions, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    // A real streaming inflater keeps its window across messages: the reference for what the server sent.
    const streaming = createInflateRaw();
    const inflated: Buffer[] = [];
    streaming.on('data', (d: Buffer) => inflated.push(d));
    const messages = Array.from({ length: 60 }, (_, i) => JSON.stringify({ type: 'stream', seq: i, value: Math.sin(i).toFixed(4) }));
    const sizes: number[] = [];
    const compressed: string[] = [];
    for (const m of messages) {
      c.sendText(m);
      s.receiveData(c.dataToSend());
      assert.deepEqual(received(s).messages, [m]);
      s.sendText(m);
      const [f] = parseFrames(s.dataToSend());
      sizes.push(f!.payload.length);
      c.receiveData(frame(OP.TEXT, f!.payload, { rsv: f!.rsv, mask: false }));
      assert.deepEqual(received(c).messages, [m]);
      if (f!.rsv !== RSV1) continue; // sent as it is: not part of the compressed stream
      compressed.push(m);
      streaming.write(Buffer.concat([f!.payload, Buffer.from([0, 0, 0xff, 0xff])]));
      await new Promise<void>((resolve) => streaming.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    }
    assert.ok(compressed.length > 50, `${compressed.length} of ${messages.length} compressed`);
    assert.equal(Buffer.concat(inflated).toString(), compressed.join(''));
    const firstSize = sizes[0]!;
    const lastSize = sizes.at(-1)!;
    assert.ok(lastSize < firstSize / 2, `context takeover: ${firstSize} bytes for the first message, ${lastSize} for the last`);
  });
});

describe('a message for many connections (encodeMessage)', () => {
  const agreement = (sendWindowBits: number, sendContextTakeover = false): DeflateAgreement => ({
    header: '',
    sendWindowBits,
    sendContextTakeover,
    receiveWindowBits: 15,
    receiveContextTakeover: false,
  });
  test('compressed once per set of parameters, plain once, for connections that keep no context', () => {
    const settings = server({ threshold: 10 });
    const a = new MessageDeflater(agreement(15), settings);
    const b = new MessageDeflater(agreement(15), settings);
    const small = new MessageDeflater(agreement(10), settings);
    const message = encodeMessage('broadcast '.repeat(20));
    const fa = message.frameFor(a);
    assert.equal(message.frameFor(b), fa, 'the same frame for the same parameters');
    assert.notEqual(message.frameFor(small), fa);
    assert.equal(message.frameFor(null), message.frameFor(null));
    assert.notEqual(message.frameFor(null), fa);
    const [parsed] = parseFrames(fa as Buffer);
    assert.equal(parsed!.rsv, RSV1);
    assert.equal(inflatePayload(parsed!.payload).toString(), 'broadcast '.repeat(20));
    const tiny = encodeMessage('short');
    assert.equal(tiny.frameFor(a), tiny.frameFor(null), 'under the threshold: the plain frame');
  });
  test('a connection that keeps a context compresses for itself', () => {
    const kept = new MessageDeflater(agreement(15, true), server({ threshold: 0 }));
    const message = encodeMessage('again and again and again');
    const first = parseFrames(message.frameFor(kept) as Buffer)[0]!;
    const second = parseFrames(message.frameFor(kept) as Buffer)[0]!;
    assert.ok(second.payload.length < first.payload.length, 'the second one refers back to the first');
  });
});

describe('zlib output buffers sized to the message', () => {
  // zlib's sync calls write into 16 KiB chunks by default: a 120-byte message would keep one
  // alive until a collection, and pin it while it waits in a queue.
  const SMALL = Buffer.from('position 12,40 '.repeat(8));
  const KEPT = 1000;

  /** ArrayBuffer memory per result while KEPT results of `make` are all kept (pooled slices share a pool). */
  function heldPerResult(make: () => Buffer): number {
    const before = process.memoryUsage().arrayBuffers;
    const kept = Array.from({ length: KEPT }, make);
    const held = (process.memoryUsage().arrayBuffers - before) / KEPT;
    assert.equal(new Set(kept).size, KEPT);
    return held;
  }

  test('a small message compressed out holds about its size, not a 16 KiB chunk', () => {
    const deflater = new MessageDeflater(DEFAULT_AGREEMENT, server({ threshold: 0 }));
    const held = heldPerResult(() => deflater.compress(SMALL)!);
    assert.ok(held < 1024, `${held.toFixed(0)} bytes held per compressed ${SMALL.length}-byte message`);
    const whole = deflater.compress(randomBytes(100_000).map((b) => b & 7))!;
    assert.ok(whole.length < 100_000, 'a large message still compresses');
  });

  test('a small message inflated in holds about its size; one that inflates 1000-fold comes through whole', () => {
    const inflater = new MessageInflater(DEFAULT_AGREEMENT);
    const compressed = deflatePayload(SMALL);
    assert.deepEqual(inflater.inflate(compressed, 0, compressed.length, 1 << 20), SMALL);
    const held = heldPerResult(() => inflater.inflate(compressed, 0, compressed.length, 1 << 20));
    assert.ok(held < 1024, `${held.toFixed(0)} bytes held per inflated ${SMALL.length}-byte message`);
    const { p } = openServer('permessage-deflate');
    const zeros = Buffer.alloc(100_000);
    p.receiveData(frame(OP.BINARY, deflatePayload(zeros), { rsv: RSV1 }));
    assert.deepEqual(received(p).messages, [zeros]);
  });
});
