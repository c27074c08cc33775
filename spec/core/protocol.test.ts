/**
 * lib/core (ServerProtocol, ClientProtocol): the sans-I/O protocol objects in the pull style.
 * Bytes go in through receiveData / receiveEof / abort; events come out of eventsReceived(),
 * bytes for the peer out of dataToSend(). No sockets, no timers. Frames from the peer are built
 * here by hand (`frame()`), independently of lib/core/frame.ts, and our output is parsed by
 * the helpers' `parseFrames()`.
 *
 * This is the port of the old spec/connection.test.ts (the push-style Connection) plus the
 * opening handshake of both roles, which Connection did not have.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import {
  ClientProtocol,
  ErrorCode,
  HandshakeError,
  ProtocolError,
  ServerProtocol,
  type ClientProtocolEvent,
  type CloseEvent,
  type ProtocolOptions,
  type ServerProtocolEvent,
} from '../../lib/protocol.js';
import { frame as buildFrame, parseFrames } from '../helpers/frames.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = hex('37fa213d');
/** RFC 6455 §1.3: the sample Sec-WebSocket-Key and the Sec-WebSocket-Accept it calls for. */
const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

// ---------------------------------------------------------------------------------------------
// Helpers

interface FrameOpts {
  fin?: boolean;
  /** The RSV bits as 0..7 (4 = RSV1). */
  rsv?: number;
  /** A 4-byte key (default KEY), or null for an unmasked frame. */
  mask?: Uint8Array | null;
  /** Announce this length instead of the payload's. */
  len?: number | bigint;
}

/** One frame as a peer would send it (the helpers' builder); client frames (masked with KEY) by default. */
function frame(opcode: number, payload: string | Uint8Array = '', o: FrameOpts = {}): Buffer {
  return buildFrame(opcode, payload, {
    ...(o.fin === undefined ? {} : { fin: o.fin }),
    ...(o.rsv === undefined ? {} : { rsv: o.rsv }),
    ...(o.len === undefined ? {} : { declaredLength: o.len }),
    mask: o.mask === undefined ? KEY : o.mask === null ? false : o.mask,
  });
}
/** A frame as a server sends it: unmasked. */
const sframe = (opcode: number, payload: string | Uint8Array = '', o: FrameOpts = {}) => frame(opcode, payload, { ...o, mask: null });
const code2 = (code: number) => Buffer.from([code >> 8, code & 0xff]);
const closeBody = (code: number, reason = '') => Buffer.concat([code2(code), Buffer.from(reason)]);
/** `bytes` XORed with `key` (a copy). */
const masked = (bytes: Uint8Array, key: Uint8Array) => Buffer.from(bytes).map((b, i) => b ^ key[i & 3]!) as Buffer;

type Ev =
  | { t: 'write'; hex: string }
  | { t: 'message'; data: string; binary: boolean }
  | { t: 'ping'; hex: string }
  | { t: 'pong'; hex: string }
  | { t: 'close'; code: number; reason: string; wasClean: boolean; initiator: string; error?: string }
  | { t: 'request' | 'open'; json: string };
type CloseEv = Extract<Ev, { t: 'close' }>;

type AnyProtocol = ServerProtocol | ClientProtocol;
type AnyEvent = ServerProtocolEvent | ClientProtocolEvent;

/** Options of open(): a server unless `client`, which takes the ClientProtocol options used here. */
interface Opts extends ProtocolOptions {
  client?: boolean;
  maskKey?: () => Uint8Array;
}

interface Rec {
  p: AnyProtocol;
  /** Every event and write so far, as plain data. */
  events: Ev[];
  /** The close event as yielded (with its error object), once it came. */
  closeEvent: CloseEvent | undefined;
  /** Everything written, concatenated. */
  out(): Buffer;
  closes(): CloseEv[];
  /** Feeds each chunk (a copy: the protocol unmasks in place), then records as flush() does. */
  feed(...chunks: Buffer[]): Rec;
  /** Records the events since the last call, then the bytes owed (one `write` entry if any). */
  flush(): Rec;
}

/** An event as plain data; binary data and payloads are copied (as hex) at once. */
function plain(e: AnyEvent): Ev {
  switch (e.type) {
    case 'message':
      assert.equal(typeof e.data === 'string', !e.binary, 'text arrives as a string, binary as a Buffer');
      if (e.binary) assert.ok(Buffer.isBuffer(e.data));
      return { t: 'message', data: e.binary ? Buffer.from(e.data as Buffer).toString('hex') : (e.data as string), binary: e.binary };
    case 'ping':
    case 'pong':
      assert.ok(Buffer.isBuffer(e.payload));
      return { t: e.type, hex: e.payload.toString('hex') };
    case 'close': {
      const { code, reason, wasClean, initiator, error } = e;
      return { t: 'close', code, reason, wasClean, initiator, ...(error ? { error: error.message } : {}) };
    }
    case 'request':
      return { t: 'request', json: JSON.stringify(e.request) };
    case 'open':
      return { t: 'open', json: JSON.stringify({ protocol: e.protocol, headers: e.headers, extensions: e.extensions }) };
  }
}

/**
 * Wraps a protocol object in a recorder. Besides recording, it checks the contract on every
 * call: at most one close event, and it is the last event ever yielded.
 */
function recorder(p: AnyProtocol): Rec {
  const events: Ev[] = [];
  const rec: Rec = {
    p,
    events,
    closeEvent: undefined,
    out: () => Buffer.concat(events.filter((e) => e.t === 'write').map((e) => hex((e as { hex: string }).hex))),
    closes: () => events.filter((e) => e.t === 'close') as CloseEv[],
    feed(...chunks) {
      for (const c of chunks) {
        p.receiveData(Buffer.from(c)); // a copy: the protocol unmasks in place
        rec.flush();
      }
      return rec;
    },
    flush() {
      for (const e of p.eventsReceived() as AnyEvent[]) {
        assert.equal(rec.closeEvent, undefined, `an event after the close event: ${e.type}`);
        if (e.type === 'close') rec.closeEvent = e;
        events.push(plain(e));
      }
      const bytes = p.dataToSend();
      assert.ok(Buffer.isBuffer(bytes));
      if (bytes.length > 0) events.push({ t: 'write', hex: bytes.toString('hex') }); // hex: a copy at once
      return rec;
    },
  };
  return rec;
}

/** A valid handshake request with `headers` changed (a header given undefined is left out). */
function requestHead(requestLine = 'GET /chat HTTP/1.1', headers: Record<string, string | undefined> = {}): Buffer {
  const all: Record<string, string | undefined> = {
    Host: 'server.example.com',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': SAMPLE_KEY,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let head = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(all)) if (value !== undefined) head += `${name}: ${value}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** The 101 a server answers SAMPLE_KEY with, plus any extra header lines. */
const response101 = (extra = '', accept = SAMPLE_ACCEPT) =>
  Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`, 'latin1');

const CLIENT_URL = 'ws://server.example.com/chat';

/**
 * A protocol object already past its opening handshake, wrapped in a recorder: a ServerProtocol
 * that read a valid request and accepted it, or (with `client`) a ClientProtocol that read a
 * valid 101. The handshake's events and bytes are checked and discarded.
 */
function open(options: Opts = {}): Rec {
  const { client, maskKey, ...rest } = options;
  if (client) {
    const p = new ClientProtocol(CLIENT_URL, { maxMessageSize: 1 << 20, handshakeKey: SAMPLE_KEY, ...(maskKey ? { maskKey } : {}), ...rest });
    assert.equal(p.state, 'connecting');
    assert.match(p.dataToSend().toString('latin1'), /^GET \/chat HTTP\/1\.1\r\n/);
    p.receiveData(response101());
    assert.deepEqual(p.eventsReceived().map((e) => e.type), ['open']);
    assert.equal(p.dataToSend().length, 0);
    assert.equal(p.state, 'open');
    return recorder(p);
  }
  const p = new ServerProtocol({ maxMessageSize: 1 << 20, ...rest });
  assert.equal(p.state, 'connecting');
  p.receiveData(requestHead());
  assert.deepEqual(p.eventsReceived().map((e) => e.type), ['request']);
  assert.equal(p.accept(), true);
  assert.match(p.dataToSend().toString('latin1'), /^HTTP\/1\.1 101 /);
  assert.equal(p.state, 'open');
  return recorder(p);
}

const text = (data: string): Ev => ({ t: 'message', data, binary: false });
const binary = (bytes: Uint8Array): Ev => ({ t: 'message', data: Buffer.from(bytes).toString('hex'), binary: true });
const write = (bytes: Buffer): Ev => ({ t: 'write', hex: bytes.toString('hex') });
const ping = (payload: string | Uint8Array): Ev => ({ t: 'ping', hex: Buffer.from(payload).toString('hex') });
const pong = (payload: string | Uint8Array): Ev => ({ t: 'pong', hex: Buffer.from(payload).toString('hex') });

/**
 * Asserts the server connection failed with `code`: the last two entries are the one `close`
 * event (wasClean false, initiator 'error', a ProtocolError with that code), then a write that
 * ends with our close frame (exactly 88, length, code, reason), after only `owedBefore` (bytes
 * the same chunk owed first, e.g. a pong); then more valid input produces nothing and calls
 * are refused.
 */
function assertFailed(rec: Rec, code: number, owedBefore: Buffer = Buffer.alloc(0)): void {
  const { events, p } = rec;
  const closes = rec.closes();
  assert.equal(closes.length, 1, `one close event, got ${JSON.stringify(events)}`);
  const info = events.at(-2) as CloseEv;
  assert.equal(info.t, 'close', JSON.stringify(events));
  assert.equal(info.code, code, `close code (${info.reason})`);
  assert.equal(info.wasClean, false);
  assert.equal(info.initiator, 'error');
  assert.ok(rec.closeEvent?.error instanceof ProtocolError, 'the error is a ProtocolError');
  assert.equal((rec.closeEvent.error as ProtocolError).closeCode, code);
  const reason = Buffer.from(info.reason);
  assert.ok(reason.length <= 123);
  assert.deepEqual(events.at(-1), write(Buffer.concat([owedBefore, Buffer.from([0x88, 2 + reason.length]), code2(code), reason])));
  assert.equal(p.state, 'closed');
  assert.equal(p.canSend, false);
  assert.equal(p.closeExpected, true);
  assert.equal(p.shouldEndTransport, true);
  const n = events.length;
  rec.feed(frame(0x9, 'after'), frame(0x1, 'after'), frame(0x8, closeBody(1000)));
  assert.equal(p.sendText('x'), false);
  assert.equal(p.sendBinary(Buffer.from('x')), false);
  assert.equal(p.ping(), false);
  assert.equal(p.close(), false);
  p.fail(1011, 'again');
  p.abort('gone', 'peer');
  p.receiveEof();
  rec.flush();
  assert.equal(events.length, n, `nothing after the failure: ${JSON.stringify(events.slice(n))}`);
  assert.equal(p.state, 'closed');
}

/** Feeds `input` to a fresh server connection and asserts it fails with `code`, yielding only `before` first. */
function expectFail(input: Buffer | Buffer[], code: number, options: Opts = {}, before: Ev[] = [], owedBefore?: Buffer): Rec {
  const rec = open(options).feed(...(Array.isArray(input) ? input : [input]));
  assert.deepEqual(rec.events.slice(0, -2), before);
  assertFailed(rec, code, owedBefore);
  return rec;
}

const pattern = (n: number, k = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * k + (i >> 8)) & 0xff));

// ---------------------------------------------------------------------------------------------

describe('RFC 6455 §5.7 vectors, server role (masked input)', () => {
  test('masked "Hello" → text message', () => {
    const rec = open().feed(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(rec.events, [text('Hello')]);
  });
  test('fragmented "Hel" + "lo" → one message', () => {
    const rec = open().feed(frame(0x1, 'Hel', { fin: false }));
    assert.deepEqual(rec.events, []);
    rec.feed(frame(0x0, 'lo'));
    assert.deepEqual(rec.events, [text('Hello')]);
  });
  test('masked ping "Hello" → a ping event, and the unmasked pong 8a 05 "Hello" in dataToSend', () => {
    const rec = open().feed(frame(0x9, 'Hello'));
    assert.deepEqual(rec.events, [ping('Hello'), write(hex('8a 05 48 65 6c 6c 6f'))]);
  });
  test('masked pong → pong event with the payload', () => {
    const rec = open().feed(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(rec.events, [pong('Hello')]);
  });
  test('256 bytes binary (82 FE 0100 + key)', () => {
    const input = frame(0x2, pattern(256));
    assert.deepEqual(input.subarray(0, 8), hex('82 fe 01 00 37 fa 21 3d'));
    assert.deepEqual(open().feed(input).events, [binary(pattern(256))]);
  });
  test('64 KiB binary (82 FF 0000000000010000 + key)', () => {
    const input = frame(0x2, pattern(65536, 7));
    assert.deepEqual(input.subarray(0, 14), hex('82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d'));
    assert.deepEqual(open().feed(input).events, [binary(pattern(65536, 7))]);
  });
  test('server output: sendText/sendBinary/ping put the unmasked RFC frames in dataToSend', () => {
    const rec = open();
    assert.equal(rec.p.sendText('Hello'), true);
    assert.equal(rec.p.sendBinary(pattern(256)), true);
    assert.equal(rec.p.sendBinary(pattern(65536)), true);
    assert.equal(rec.p.ping('Hello'), true);
    rec.flush();
    assert.equal(rec.events.length, 1, 'one dataToSend() holds everything owed');
    assert.deepEqual(
      rec.out(),
      Buffer.concat([
        hex('81 05 48 65 6c 6c 6f'),
        hex('82 7e 01 00'),
        pattern(256),
        hex('82 7f 00 00 00 00 00 01 00 00'),
        pattern(65536),
        hex('89 05 48 65 6c 6c 6f'),
      ]),
    );
    assert.equal(rec.p.dataToSend().length, 0, 'taken once');
  });
  test('bytes taken from dataToSend() stay as they were while more output is produced (here and elsewhere)', () => {
    const a = open();
    const b = open();
    a.p.sendText('first');
    const taken = a.p.dataToSend();
    const copy = Buffer.from(taken);
    for (let i = 0; i < 2000; i++) {
      a.p.sendText(`more ${i}`);
      b.p.sendBinary(pattern(300, i));
      if (i % 7 === 0) a.p.dataToSend();
      if (i % 5 === 0) b.p.dataToSend();
    }
    assert.deepEqual(taken, copy);
    assert.deepEqual(copy, hex('81 05 66 69 72 73 74'));
  });
  test('empty text and binary messages, empty ping', () => {
    const rec = open().feed(frame(0x1, ''), frame(0x2, ''), frame(0x9, ''), frame(0x1, '', { fin: false }), frame(0x0, ''));
    assert.deepEqual(rec.events, [text(''), binary(Buffer.alloc(0)), ping(''), write(hex('8a 00')), text('')]);
  });
  test('a 125-byte ping is answered with the same 125 bytes', () => {
    const rec = open().feed(frame(0x9, pattern(125)));
    assert.deepEqual(rec.events, [ping(pattern(125)), write(Buffer.concat([hex('8a 7d'), pattern(125)]))]);
  });
  test('several frames in one chunk, control frames between fragments', () => {
    const rec = open().feed(
      Buffer.concat([frame(0x1, 'a', { fin: false }), frame(0x9, 'p'), frame(0x0, 'b', { fin: false }), frame(0xa, 'q'), frame(0x0, 'c'), frame(0x2, 'd')]),
    );
    // One chunk: its events in order, then the one write of the bytes it owed (the pong).
    assert.deepEqual(rec.events, [ping('p'), pong('q'), text('abc'), binary(Buffer.from('d')), write(hex('8a 01 70'))]);
  });
  test('a leading BOM (U+FEFF) is part of the message, whole or fragmented', () => {
    const rec = open().feed(frame(0x1, hex('ef bb bf 41')), frame(0x1, hex('ef bb'), { fin: false }), frame(0x0, hex('bf 42')));
    assert.deepEqual(rec.events, [text('\ufeffA'), text('\ufeffB')]);
  });
  test('multi-byte characters split across fragments are reassembled', () => {
    const bytes = Buffer.from('κόσμε €𝄞');
    const rec = open();
    for (let i = 0; i < bytes.length; i++) rec.feed(frame(i === 0 ? 0x1 : 0x0, bytes.subarray(i, i + 1), { fin: i === bytes.length - 1 }));
    assert.deepEqual(rec.events, [text('κόσμε €𝄞')]);
  });
  test('a non-minimal length form is accepted, on control frames as on data frames (behaviour change)', () => {
    // Deliberate change from the old Connection: RFC 6455 §5.2 says the *minimal* number of
    // bytes MUST be used to encode the length; that binds the sender, and the receiver's rules
    // (§5.5: a control frame's payload is at most 125 bytes) are still met by a 5-byte payload
    // announced in the 16- or 64-bit form. So such a ping is answered, not failed with 1002.
    const body = masked(Buffer.from('Hello'), KEY);
    const ping16 = Buffer.concat([hex('89 fe 00 05'), KEY, body]);
    const ping64 = Buffer.concat([hex('89 ff 00 00 00 00 00 00 00 05'), KEY, body]);
    const pong16 = Buffer.concat([hex('8a fe 00 05'), KEY, body]);
    const close16 = Buffer.concat([hex('88 fe 00 02'), KEY, masked(code2(1000), KEY)]);
    const text16 = Buffer.concat([hex('81 fe 00 05'), KEY, body]);
    const binary64 = Buffer.concat([hex('82 ff 00 00 00 00 00 00 00 05'), KEY, body]);
    const rec = open().feed(ping16, ping64, pong16, text16, binary64, close16);
    assert.deepEqual(rec.events, [
      ping('Hello'),
      write(hex('8a 05 48 65 6c 6c 6f')),
      ping('Hello'),
      write(hex('8a 05 48 65 6c 6c 6f')),
      pong('Hello'),
      text('Hello'),
      binary(Buffer.from('Hello')),
      { t: 'close', code: 1000, reason: '', wasClean: true, initiator: 'peer' },
      write(hex('88 02 03 e8')),
    ]);
  });
});

describe('client role', () => {
  test('frames it sends are masked with the injected key (RFC masked "Hello")', () => {
    const rec = open({ client: true, maskKey: () => KEY });
    rec.p.sendText('Hello');
    rec.flush();
    assert.deepEqual(rec.out(), hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
  });
  test('a fresh key is asked for every frame: data, ping, pong and close', () => {
    let n = 0;
    const keys = [hex('01020304'), hex('a0b0c0d0'), hex('11223344'), hex('deadbeef')];
    const rec = open({ client: true, maskKey: () => keys[n++]! });
    assert.equal(n, 0, 'no key for the handshake');
    rec.p.sendBinary(Buffer.from([0, 0, 0, 0, 0]));
    rec.flush();
    rec.p.ping('hi');
    rec.flush();
    rec.feed(sframe(0x9, 'yo'));
    rec.p.close(1000, '');
    rec.flush();
    assert.equal(n, 4);
    assert.deepEqual(rec.events.filter((e) => e.t !== 'write'), [ping('yo')]);
    assert.deepEqual(rec.events.filter((e) => e.t === 'write').map((e) => (e as { hex: string }).hex), [
      '8285' + '01020304' + '0102030401',
      '8982' + 'a0b0c0d0' + Buffer.from([0x68 ^ 0xa0, 0x69 ^ 0xb0]).toString('hex'),
      '8a82' + '11223344' + Buffer.from([0x79 ^ 0x11, 0x6f ^ 0x22]).toString('hex'),
      '8882' + 'deadbeef' + Buffer.from([0x03 ^ 0xde, 0xe8 ^ 0xad]).toString('hex'),
    ]);
  });
  test('receives the unmasked RFC vectors; a ping is answered with the RFC masked pong', () => {
    const rec = open({ client: true, maskKey: () => KEY });
    rec.feed(hex('81 05 48 65 6c 6c 6f'), hex('01 03 48 65 6c'), hex('80 02 6c 6f'), hex('89 05 48 65 6c 6c 6f'));
    assert.deepEqual(rec.events, [text('Hello'), text('Hello'), ping('Hello'), write(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'))]);
  });
  test('a masked frame from the server → 1002, with our close frame masked', () => {
    const rec = open({ client: true, maskKey: () => KEY }).feed(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(rec.events.length, 2);
    const closed = rec.events[0] as CloseEv;
    assert.deepEqual([closed.t, closed.code, closed.wasClean, closed.initiator], ['close', 1002, false, 'error']);
    const reason = Buffer.from(closed.reason);
    const body = masked(Buffer.concat([code2(1002), reason]), KEY);
    assert.deepEqual(rec.events[1], write(Buffer.concat([Buffer.from([0x88, 0x80 | (2 + reason.length)]), KEY, body])));
    assert.equal(rec.p.state, 'closed');
  });
  test('without maskKey, every frame gets a different random key (the old client without maskKey was refused)', () => {
    // The old Connection threw a TypeError for a client without maskKey; ClientProtocol draws
    // fresh random keys instead (§5.3: "a fresh masking key ... unpredictable").
    const rec = open({ client: true });
    rec.p.sendText('Hello');
    rec.p.sendText('Hello');
    rec.p.sendBinary(pattern(200));
    rec.p.ping('Hello');
    rec.feed(sframe(0x9, 'yo'));
    rec.p.close(1000, 'bye');
    rec.flush();
    const frames = parseFrames(rec.out());
    assert.deepEqual(frames.map((f) => f.opcode), [0x1, 0x1, 0x2, 0x9, 0xa, 0x8]);
    for (const f of frames) {
      assert.ok(f.mask, 'every client frame is masked');
      assert.equal(f.fin, true);
      assert.equal(f.rsv, 0);
    }
    assert.deepEqual(frames.map((f) => f.payload), [Buffer.from('Hello'), Buffer.from('Hello'), pattern(200), Buffer.from('Hello'), Buffer.from('yo'), closeBody(1000, 'bye')]);
    const keys = frames.map((f) => f.mask!.toString('hex'));
    assert.equal(new Set(keys).size, keys.length, `distinct keys: ${keys.join(' ')}`);
    // The two identical "Hello" frames differ on the wire.
    assert.notDeepEqual(rec.out().subarray(0, 11), rec.out().subarray(11, 22));
  });
});

describe('DESIGN §5: bad frames fail the connection (server role)', () => {
  test('unmasked client frame → 1002', () => {
    expectFail(hex('81 05 48 65 6c 6c 6f'), 1002);
    expectFail(sframe(0x9, 'x'), 1002);
    expectFail(sframe(0x8, closeBody(1000)), 1002);
  });
  for (const [bit, name] of [[4, 'RSV1'], [2, 'RSV2'], [1, 'RSV3']] as const) {
    test(`${name} set → 1002`, () => {
      expectFail(frame(0x1, 'Hello', { rsv: bit }), 1002);
      expectFail(frame(0x9, '', { rsv: bit }), 1002);
    });
  }
  test('reserved opcodes 3–7 and 11–15 → 1002', () => {
    for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) expectFail(frame(op, 'x'), 1002);
  });
  test('fragmented control frame → 1002', () => {
    for (const op of [0x8, 0x9, 0xa]) expectFail(frame(op, '', { fin: false }), 1002);
  });
  test('control frame over 125 bytes → 1002', () => {
    for (const op of [0x8, 0x9, 0xa]) {
      expectFail(frame(op, pattern(126)), 1002);
      // Behaviour change: the old Connection failed from the first two bytes (a 16-bit length
      // form on a control frame). A non-minimal length form is now accepted (RFC 6455 §5.2:
      // the minimal-length rule binds the sender), so 2 bytes could still begin a valid ping
      // of ≤125 bytes; it fails from its header (length and mask key), before any payload.
      assert.deepEqual(open().feed(frame(op, pattern(126)).subarray(0, 2)).events, [], 'the 16-bit form alone could still announce ≤125');
      expectFail(frame(op, pattern(126)).subarray(0, 8), 1002); // the 16-bit form's 8-byte header
      expectFail(frame(op, '', { len: 65536 }), 1002); // the 64-bit form's 14-byte header
      expectFail(frame(op, '', { len: 1n << 63n }), 1002); // ... with the top bit set: still 1002 on a control frame
    }
  });
  test('continuation without a message → 1002', () => {
    expectFail(frame(0x0, 'x'), 1002);
    expectFail(frame(0x0, 'x', { fin: false }), 1002);
    // ... also right after a complete message
    expectFail([frame(0x1, 'a'), frame(0x0, 'b')], 1002, {}, [text('a')]);
  });
  test('new data frame during a fragmented message → 1002', () => {
    expectFail([frame(0x1, 'a', { fin: false }), frame(0x1, 'b')], 1002);
    expectFail([frame(0x2, 'a', { fin: false }), frame(0x0, 'b', { fin: false }), frame(0x1, 'c', { fin: false })], 1002);
  });
  test('1-byte close payload → 1002', () => {
    expectFail(frame(0x8, hex('03')), 1002);
  });
  test('invalid close codes → 1002', () => {
    for (const code of [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      expectFail(frame(0x8, closeBody(code)), 1002);
      expectFail(frame(0x8, closeBody(code, 'why')), 1002);
    }
  });
  test('valid close codes are echoed (code only) and reported', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      const rec = open().feed(frame(0x8, closeBody(code, 'bye')));
      assert.deepEqual(rec.events, [
        { t: 'close', code, reason: 'bye', wasClean: true, initiator: 'peer' },
        write(Buffer.concat([hex('88 02'), code2(code)])),
      ]);
    }
  });
  test('invalid UTF-8 in a text message → 1007', () => {
    expectFail(frame(0x1, hex('ff')), 1007);
    expectFail(frame(0x1, hex('48 65 ed a0 80')), 1007); // a surrogate
    expectFail(frame(0x1, hex('c0 af')), 1007); // an overlong "/"
    expectFail(frame(0x1, hex('61 62 ce')), 1007); // ends inside a sequence
    expectFail([frame(0x1, hex('61 ce'), { fin: false }), frame(0x0, '')], 1007); // ... after fragments
    expectFail([frame(0x1, 'ok'), frame(0x1, hex('f5 80 80 80'))], 1007, {}, [text('ok')]);
  });
  test('invalid UTF-8: fail fast inside a frame whose rest never arrives', () => {
    // A 100-byte text frame: "abc", then 0xff; the other 96 bytes never come.
    const whole = frame(0x1, Buffer.concat([Buffer.from('abc'), hex('ff'), Buffer.alloc(96, 0x61)]));
    const header = 6; // 7-bit length + mask key
    expectFail(whole.subarray(0, header + 4), 1007);
    // Same with the bytes arriving one at a time: nothing until the bad byte, the close right then.
    const rec = open();
    for (let i = 0; i < header + 3; i++) rec.feed(whole.subarray(i, i + 1));
    assert.deepEqual(rec.events, []);
    rec.feed(whole.subarray(header + 3, header + 4));
    assertFailed(rec, 1007);
    // A sequence that can never complete: E0 then 80 (overlong), inside a long frame (16-bit length).
    const long = frame(0x1, Buffer.concat([hex('e0 80'), Buffer.alloc(300, 0x61)]));
    expectFail(long.subarray(0, 8 + 2), 1007);
    assert.deepEqual(open().feed(long.subarray(0, 8 + 1)).events, [], 'E0 alone could still become valid');
  });
  test('invalid UTF-8 across fragments fails at the bad byte, before the message ends', () => {
    // "é" is c3 a9: c3 ends the first fragment; the second starts with 41, not a continuation.
    expectFail([frame(0x1, hex('61 c3'), { fin: false }), frame(0x0, hex('41 62'), { fin: false })], 1007);
    // Same, with the second fragment's rest never arriving.
    expectFail([frame(0x1, hex('61 c3'), { fin: false }), frame(0x0, Buffer.concat([hex('41'), Buffer.alloc(20)]), { fin: false }).subarray(0, 7)], 1007);
    // A good sequence split over fragments, with a ping between, is fine.
    const rec = open().feed(frame(0x1, hex('61 e2 82'), { fin: false }), frame(0x9, ''), frame(0x0, hex('ac')));
    assert.deepEqual(rec.events, [ping(''), write(hex('8a 00')), text('a€')]);
  });
  test('invalid UTF-8 in a close reason → 1007', () => {
    expectFail(frame(0x8, Buffer.concat([code2(1000), hex('ff')])), 1007);
    expectFail(frame(0x8, Buffer.concat([code2(1000), hex('6f 6b ed a0 80')])), 1007);
  });
  test('message over maxMessageSize → 1009 as soon as its header arrives (no payload sent)', () => {
    const opts = { maxMessageSize: 100 };
    expectFail(frame(0x1, '', { len: 101 }), 1009, opts); // the 6-byte header only
    expectFail(frame(0x1, '', { len: 101 }).subarray(0, 2), 1009, opts); // 7-bit length: two bytes suffice
    expectFail(frame(0x2, '', { len: 300 }), 1009, opts);
    expectFail(frame(0x2, '', { len: 70000 }), 1009, opts);
    // Exactly the limit passes.
    assert.deepEqual(open(opts).feed(frame(0x2, pattern(100))).events, [binary(pattern(100))]);
  });
  test('fragments whose sum passes maxMessageSize → 1009 at the header of the one that passes it', () => {
    const opts = { maxMessageSize: 100 };
    expectFail([frame(0x2, pattern(60), { fin: false }), frame(0x0, '', { len: 41 })], 1009, opts);
    expectFail([frame(0x1, 'x'.repeat(50), { fin: false }), frame(0x9, 'p'), frame(0x0, 'y'.repeat(50), { fin: false }), frame(0x0, '', { len: 1 })], 1009, opts, [
      ping('p'),
      write(hex('8a 01 70')),
    ]);
    // Exactly the limit in fragments passes; the count starts afresh for the next message.
    const rec = open(opts).feed(frame(0x1, 'x'.repeat(60), { fin: false }), frame(0x0, 'y'.repeat(40)), frame(0x1, 'z'.repeat(100)));
    assert.deepEqual(rec.events, [text('x'.repeat(60) + 'y'.repeat(40)), text('z'.repeat(100))]);
  });
  test('64-bit length with the top bit set → 1009', () => {
    expectFail(frame(0x2, '', { len: 1n << 63n }), 1009);
    expectFail(frame(0x2, '', { len: (1n << 64n) - 1n }), 1009, { maxMessageSize: Number.MAX_SAFE_INTEGER });
  });
  test('control frames do not count towards the message size', () => {
    const rec = open({ maxMessageSize: 10 }).feed(frame(0x1, 'x'.repeat(10), { fin: false }), frame(0x9, pattern(125)), frame(0x0, ''));
    assert.deepEqual(rec.events, [ping(pattern(125)), write(Buffer.concat([hex('8a 7d'), pattern(125)])), text('x'.repeat(10))]);
  });
  test('frames before the bad one are processed, frames after it are not', () => {
    // One chunk: its events, then one write with the pong owed before the failure, then our close.
    expectFail(Buffer.concat([frame(0x1, 'one'), frame(0x9, 'p'), frame(0x3, 'bad'), frame(0x1, 'two')]), 1002, {}, [text('one'), ping('p')], hex('8a 01 70'));
  });
});

describe('close handshake', () => {
  test('peer-initiated close: echo the code, report it clean, initiator peer', () => {
    const rec = open().feed(frame(0x8, closeBody(1001, 'going away')));
    assert.deepEqual(rec.events, [{ t: 'close', code: 1001, reason: 'going away', wasClean: true, initiator: 'peer' }, write(hex('88 02 03 e9'))]);
    assert.equal(rec.p.state, 'closed');
    assert.equal(rec.p.closeExpected, true);
    assert.equal(rec.p.shouldEndTransport, true, 'the server ends TCP first (§7.1.1)');
  });
  test('a close with no code: echo an empty close, report 1005', () => {
    const rec = open().feed(frame(0x8, ''));
    assert.deepEqual(rec.events, [{ t: 'close', code: 1005, reason: '', wasClean: true, initiator: 'peer' }, write(hex('88 00'))]);
  });
  test('local close(4000, "bye"), then the peer\'s reply: clean, initiator local', () => {
    const rec = open();
    assert.equal(rec.p.close(4000, 'bye'), true);
    rec.flush();
    assert.deepEqual(rec.events, [write(hex('88 05 0f a0 62 79 65'))]);
    assert.equal(rec.p.state, 'closing');
    assert.equal(rec.p.closeExpected, true);
    assert.equal(rec.p.close(1000), false, 'a second close is refused');
    rec.feed(frame(0x8, closeBody(4000)));
    assert.deepEqual(rec.events.slice(1), [{ t: 'close', code: 4000, reason: '', wasClean: true, initiator: 'local' }]);
    assert.equal(rec.p.state, 'closed');
  });
  test('local close answered by an empty close reports 1005', () => {
    const rec = open();
    rec.p.close();
    rec.flush();
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8'))]);
    rec.feed(frame(0x8, ''));
    assert.deepEqual(rec.events.slice(1), [{ t: 'close', code: 1005, reason: '', wasClean: true, initiator: 'local' }]);
  });
  test('the initiator of a local close is reported (close() takes no initiator any more: timeouts use abort)', () => {
    // The old close(code, reason, initiator) let the shell report a close it started on a
    // timeout as 'timeout'; close() now always reports 'local', and a timeout is abort(…, 'timeout').
    const rec = open();
    rec.p.close(1001, '');
    rec.flush();
    rec.feed(frame(0x8, closeBody(1001)));
    assert.deepEqual(rec.events, [write(hex('88 02 03 e9')), { t: 'close', code: 1001, reason: '', wasClean: true, initiator: 'local' }]);
    const timedOut = open();
    timedOut.p.abort('ping timeout', 'timeout');
    timedOut.flush();
    assert.deepEqual(timedOut.events, [{ t: 'close', code: 1006, reason: 'ping timeout', wasClean: false, initiator: 'timeout' }]);
  });
  test('while closing: messages and pongs still arrive, pings get no pong, nothing can be sent', () => {
    const rec = open();
    rec.p.close(1000, '');
    rec.flush();
    rec.feed(frame(0x1, 'late'), frame(0x9, 'ping'), frame(0xa, 'pong'));
    assert.equal(rec.p.sendText('x'), false);
    assert.equal(rec.p.sendBinary(Buffer.from('x')), false);
    assert.equal(rec.p.ping('p'), false);
    rec.flush();
    // The ping is still reported (an event), but §5.5.3's pong is not owed after our close.
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), text('late'), ping('ping'), pong('pong')]);
  });
  test('an invalid close while closing fails without a second close frame', () => {
    const rec = open();
    rec.p.close(1000, '');
    rec.flush();
    rec.feed(frame(0x8, closeBody(1005)));
    assert.equal(rec.events.length, 2, JSON.stringify(rec.events));
    assert.deepEqual(rec.events[0], write(hex('88 02 03 e8')));
    const { t, code, wasClean, initiator } = rec.events[1] as CloseEv;
    assert.deepEqual({ t, code, wasClean, initiator }, { t: 'close', code: 1002, wasClean: false, initiator: 'error' });
    assert.equal(rec.p.state, 'closed');
  });
  test('after the peer\'s close nothing is processed or sent', () => {
    const rec = open().feed(Buffer.concat([frame(0x8, closeBody(1000)), frame(0x1, 'after'), frame(0x9, 'p')]));
    assert.equal(rec.events.length, 2);
    rec.feed(frame(0x1, 'more'));
    assert.equal(rec.p.sendText('x'), false);
    assert.equal(rec.p.ping(), false);
    assert.equal(rec.p.close(), false);
    rec.p.abort('tcp closed', 'peer');
    rec.p.fail(1011, 'late');
    rec.p.receiveEof();
    rec.flush();
    assert.equal(rec.events.length, 2);
  });
  test('with deferCloseReply the close frame owed after the peer\'s close waits for close(); replies may go before it', () => {
    const rec = open({ deferCloseReply: true }).feed(frame(0x1, 'last words'), frame(0x8, closeBody(1000)));
    assert.deepEqual(rec.events, [text('last words'), { t: 'close', code: 1000, reason: '', wasClean: true, initiator: 'peer' }]);
    // The close handshake is under way (the peer's close came, ours is owed): 'closing', where
    // the old Connection said CLOSED; 'closed' once our close frame is out.
    assert.equal(rec.p.state, 'closing');
    assert.equal(rec.p.canSend, true);
    assert.equal(rec.p.closeExpected, false, 'nothing to wait for while our close is owed');
    assert.equal(rec.p.shouldEndTransport, false, 'not before the owed close frame is out');
    assert.equal(rec.p.sendText('reply'), true);
    assert.equal(rec.p.ping(), false, 'no ping after the peer\'s close');
    rec.flush();
    assert.equal(rec.p.close(), true);
    rec.flush();
    assert.deepEqual(rec.events.slice(2), [write(hex('81 05 72 65 70 6c 79')), write(hex('88 02 03 e8'))]);
    assert.equal(rec.p.state, 'closed');
    assert.equal(rec.p.canSend, false);
    assert.equal(rec.p.shouldEndTransport, true);
    assert.equal(rec.p.sendText('too late'), false);
    assert.equal(rec.p.close(), false);
    rec.feed(frame(0x1, 'ignored'));
    assert.equal(rec.events.length, 4, 'one close frame, nothing after it');
  });
  test('with deferCloseReply, close() sends the owed reply echoing the peer\'s code, whatever its arguments', () => {
    const rec = open({ deferCloseReply: true }).feed(frame(0x8, closeBody(4001, 'x')));
    assert.equal(rec.p.close(1000, 'ignored'), true);
    rec.flush();
    assert.deepEqual(rec.events, [{ t: 'close', code: 4001, reason: 'x', wasClean: true, initiator: 'peer' }, write(hex('88 02 0f a1'))]);
  });
  test('with deferCloseReply the close frame owed after a failure waits for close() too', () => {
    const rec = open({ deferCloseReply: true }).feed(frame(0x1, 'ok'), frame(0x3, 'bad'));
    assert.deepEqual(rec.events.map((e) => e.t), ['message', 'close']);
    const { code, reason } = rec.events[1] as CloseEv;
    assert.equal(code, 1002);
    assert.equal(rec.p.close(), true);
    rec.flush();
    assert.deepEqual(rec.events[2], write(Buffer.concat([Buffer.from([0x88, 2 + Buffer.byteLength(reason)]), code2(1002), Buffer.from(reason)])));
    assert.equal(rec.events.length, 3);
    assert.equal(rec.p.canSend, false);
    assert.equal(rec.p.state, 'closed');
  });
  test('nothing is owed when we had sent our close first', () => {
    const rec = open({ deferCloseReply: true });
    rec.p.close(1000, '');
    rec.flush();
    rec.feed(frame(0x8, closeBody(1000)));
    assert.equal(rec.p.canSend, false);
    assert.equal(rec.p.close(), false);
    rec.flush();
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), { t: 'close', code: 1000, reason: '', wasClean: true, initiator: 'local' }]);
    assert.equal(rec.p.state, 'closed');
  });
  test('the transport gone while a close frame is owed: nothing can be sent any more', () => {
    const rec = open({ deferCloseReply: true }).feed(frame(0x8, closeBody(1000)));
    assert.equal(rec.p.canSend, true);
    rec.p.abort('connection lost', 'peer');
    assert.equal(rec.p.canSend, false);
    assert.equal(rec.p.sendText('x'), false);
    assert.equal(rec.p.close(), false);
    rec.flush();
    assert.deepEqual(rec.events, [{ t: 'close', code: 1000, reason: '', wasClean: true, initiator: 'peer' }], 'closed once, nothing written');
    assert.equal(rec.p.shouldEndTransport, true);
  });
  test(
    'the transport gone while a close frame is owed: the state ends \'closed\'',
    () => {
      const rec = open({ deferCloseReply: true }).feed(frame(0x8, closeBody(1000)));
      assert.equal(rec.p.state, 'closing');
      rec.p.abort('connection lost', 'peer');
      assert.equal(rec.p.state, 'closed');
    },
  );
  test('abort on an open connection → 1006, not clean; once', () => {
    const rec = open();
    rec.p.abort('connection reset', 'peer');
    rec.p.abort('again', 'peer');
    rec.flush();
    assert.deepEqual(rec.events, [{ t: 'close', code: 1006, reason: 'connection reset', wasClean: false, initiator: 'peer' }]);
    assert.equal(rec.p.state, 'closed');
    assert.equal(rec.p.canSend, false);
  });
  test('abort discards output not yet taken', () => {
    const rec = open();
    rec.p.sendText('never sent');
    rec.p.abort('connection reset', 'peer');
    rec.flush();
    assert.deepEqual(rec.events, [{ t: 'close', code: 1006, reason: 'connection reset', wasClean: false, initiator: 'peer' }]);
  });
  test('EOF on an open connection → 1006, initiator peer', () => {
    const rec = open();
    rec.p.receiveEof();
    rec.p.receiveEof();
    rec.flush();
    assert.deepEqual(rec.events.map((e) => [e.t, (e as CloseEv).code, (e as CloseEv).wasClean, (e as CloseEv).initiator]), [['close', 1006, false, 'peer']]);
    assert.equal(rec.p.state, 'closed');
  });
  test('abort while closing (close timeout) → 1006, no frame', () => {
    const rec = open();
    rec.p.close(1000, '');
    rec.flush();
    rec.p.abort('close timeout', 'timeout');
    rec.flush();
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), { t: 'close', code: 1006, reason: 'close timeout', wasClean: false, initiator: 'timeout' }]);
    assert.equal(rec.p.state, 'closed');
  });
  test('fail() sends a close with the code and reports it; reasons are cut to fit a control frame', () => {
    const rec = open();
    rec.p.fail(1011, 'é'.repeat(100));
    rec.flush();
    assert.deepEqual(rec.events.map((e) => e.t), ['close', 'write']);
    const bytes = hex((rec.events[1] as { hex: string }).hex);
    assert.equal(bytes[0], 0x88);
    assert.ok(bytes[1]! <= 125);
    assert.deepEqual(bytes.subarray(2, 4), code2(1011));
    assert.equal(bytes.subarray(4).toString(), 'é'.repeat(61)); // 122 bytes: a whole character less than 123
    assert.equal(bytes.length, 4 + 122);
    assert.equal(rec.closes().length, 1);
    assert.equal((rec.events[0] as CloseEv).code, 1011);
    assert.equal(rec.p.state, 'closed');
  });
  test('invalid close arguments throw RangeError and send nothing', () => {
    const rec = open();
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.throws(() => rec.p.close(code), RangeError, String(code));
    assert.throws(() => rec.p.close(1000, 'x'.repeat(124)), RangeError);
    assert.throws(() => rec.p.close(1000, 'é'.repeat(62)), RangeError); // 124 bytes
    assert.throws(() => rec.p.ping(pattern(126)), RangeError);
    rec.flush();
    assert.deepEqual(rec.events, []);
    assert.equal(rec.p.state, 'open');
    assert.equal(rec.p.close(1000, 'x'.repeat(123)), true);
    // Still a RangeError (a programming error) once closing or closed, not a quiet false.
    assert.throws(() => rec.p.close(999), RangeError);
    rec.feed(frame(0x8, ''));
    assert.equal(rec.p.state, 'closed');
    assert.throws(() => rec.p.close(1005), RangeError);
  });
  test('DESIGN §5: something unexpected while handling input → 1011, receiveData does not throw', () => {
    // The old test threw from the message handler; a pull-style object calls nothing of the
    // program while reading, except (client role) maskKey: it throws once, on the pong's key.
    let calls = 0;
    const rec = open({
      client: true,
      maskKey: () => {
        if (calls++ === 0) throw new Error('boom');
        return KEY;
      },
    });
    assert.doesNotThrow(() => rec.p.receiveData(Buffer.concat([sframe(0x9, 'x'), sframe(0x1, 'never')])));
    rec.flush();
    const reason = Buffer.from('internal error');
    assert.deepEqual(rec.events, [
      { t: 'close', code: 1011, reason: 'internal error', wasClean: false, initiator: 'error', error: 'boom' },
      write(Buffer.concat([Buffer.from([0x88, 0x80 | (2 + reason.length)]), KEY, masked(Buffer.concat([code2(1011), reason]), KEY)])),
    ]);
  });
  test(
    'receiveData does not throw even when maskKey keeps throwing',
    () => {
      const rec = open({
        client: true,
        maskKey: () => {
          throw new Error('boom');
        },
      });
      assert.doesNotThrow(() => rec.p.receiveData(sframe(0x9, 'x')));
      rec.flush();
      assert.deepEqual(rec.closes().map((c) => [c.code, c.initiator, c.error]), [[1011, 'error', 'boom']]);
      assert.equal(rec.p.state, 'closed');
      assert.equal(rec.p.canSend, false);
    },
  );
});

// ---------------------------------------------------------------------------------------------

/** Feeds `input` in the given pieces to a fresh connection and returns everything recorded. */
function run(input: Buffer, cuts: number[], options: Opts = {}): Ev[] {
  const rec = open(options);
  let pos = 0;
  for (const cut of [...cuts, input.length]) {
    rec.feed(input.subarray(pos, cut));
    pos = cut;
  }
  return rec.events;
}

/**
 * What no split may change: the events in order, and the bytes written in order. (Where the
 * writes fall among the events does depend on the pieces: a write follows each piece's events.)
 */
function outcome(entries: Ev[]): { events: Ev[]; out: string } {
  return { events: entries.filter((e) => e.t !== 'write'), out: entries.map((e) => (e.t === 'write' ? e.hex : '')).join('') };
}

describe('every input split at every byte gives the same events and the same bytes out', () => {
  const streams: [string, Buffer[], Opts][] = [
    ['text, binary, 126 and 65536 lengths, close', [frame(0x1, 'Hello'), frame(0x2, pattern(300)), frame(0x2, pattern(65536, 3)), frame(0x1, 'κόσμε'), frame(0x8, closeBody(1000, 'done'))], {}],
    [
      'fragmented text and binary with interleaved ping and pong',
      [
        frame(0x1, 'frag', { fin: false }),
        frame(0x9, 'ping!'),
        frame(0x0, 'ment', { fin: false }),
        frame(0xa, ''),
        frame(0x0, 'ed €'),
        frame(0x2, pattern(130), { fin: false }),
        frame(0x9, pattern(125)),
        frame(0x0, pattern(7)),
        frame(0x8, ''),
      ],
      {},
    ],
    ['fails 1002 after messages', [frame(0x1, 'ok'), frame(0x2, pattern(200)), frame(0x1, 'x', { rsv: 4 }), frame(0x1, 'never')], {}],
    ['fails 1007 inside a frame', [frame(0x1, 'fine'), frame(0x1, Buffer.concat([Buffer.from('é'.repeat(40)), hex('ed a0 80'), Buffer.from('tail')]))], {}],
    ['fails 1007 across fragments', [frame(0x1, hex('61 e2'), { fin: false }), frame(0x9, ''), frame(0x0, hex('82 41'))], {}],
    ['fails 1009', [frame(0x1, 'a'.repeat(150), { fin: false }), frame(0x0, 'b'.repeat(150))], { maxMessageSize: 200 }],
    ['message then peer close with a reason', [frame(0x1, 'x'), frame(0x8, closeBody(4000, 'bye'))], {}],
    ['client role: unmasked frames from a server', [sframe(0x1, 'Hello'), sframe(0x2, pattern(70000)), sframe(0x9, 'p'), sframe(0x1, 'a', { fin: false }), sframe(0x0, 'b'), sframe(0x8, closeBody(1000))], { client: true, maskKey: () => KEY }],
  ];
  for (const [name, frames, options] of streams) {
    test(`${name}: two pieces at every split point, and byte by byte`, () => {
      const input = Buffer.concat(frames);
      const expected = outcome(run(input, [], options));
      assert.ok(expected.events.length >= 1 && expected.events.length + (expected.out ? 1 : 0) > 1);
      assert.ok(expected.out.length > 0, 'every stream ends with our close frame');
      // Every split point of small streams; of large ones, every point within 40 bytes of a
      // frame boundary (headers, first and last payload bytes) and every 1009th in between.
      const boundaries: number[] = [];
      frames.reduce((at, f) => (boundaries.push(at), at + f.length), 0);
      boundaries.push(input.length);
      const points: number[] = [];
      for (let cut = 0; cut <= input.length; cut++) {
        if (input.length < 3000 || cut % 1009 === 0 || boundaries.some((b) => Math.abs(cut - b) <= 40)) points.push(cut);
      }
      for (const cut of points) {
        const got = outcome(run(input, [cut], options));
        if (!isDeepStrictEqual(got, expected)) assert.deepEqual(got, expected, `split at ${cut}`);
      }
      const bytewise = Array.from({ length: input.length }, (_, i) => i);
      assert.deepEqual(outcome(run(input, bytewise, options)), expected, 'byte by byte');
    });
  }
  test('byte by byte, each pong is written right after the piece that completes its ping', () => {
    const input = Buffer.concat([frame(0x1, 'ab', { fin: false }), frame(0x9, 'p'), frame(0x0, 'cd'), frame(0x9, 'q')]);
    const got = run(input, Array.from({ length: input.length }, (_, i) => i));
    assert.deepEqual(got, [ping('p'), write(hex('8a 01 70')), text('abcd'), ping('q'), write(hex('8a 01 71'))]);
  });
  test('three pieces at every pair of split points of a fragmented stream', () => {
    const input = Buffer.concat([frame(0x1, 'ab', { fin: false }), frame(0x9, 'p'), frame(0x0, 'cd')]);
    const expected = outcome(run(input, []));
    assert.deepEqual(expected, { events: [ping('p'), text('abcd')], out: '8a0170' });
    for (let a = 0; a <= input.length; a++) for (let b = a; b <= input.length; b++) assert.deepEqual(outcome(run(input, [a, b])), expected, `${a}/${b}`);
  });
});

describe('reassembly', () => {
  test('65536 one-byte fragments arrive as one message with the right content, in bounded memory', () => {
    const n = 65536;
    const content = pattern(n, 13);
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(frame(i === 0 ? 0x2 : 0x0, content.subarray(i, i + 1), { fin: i === n - 1 }));
    const { p } = open();
    const input = Buffer.concat(parts);
    // Count reassembly (re)allocations: geometric growth needs O(log n), not one per fragment.
    const allocUnsafe = Buffer.allocUnsafe;
    let allocations = 0;
    Buffer.allocUnsafe = (size: number) => (allocations++, allocUnsafe(size));
    try {
      p.receiveData(input);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
    assert.ok(allocations <= 40, `${allocations} allocations for ${n} fragments`);
    const events = p.eventsReceived();
    assert.equal(events.length, 1, 'one message, no close');
    assert.equal(p.dataToSend().length, 0, 'no writes');
    const event = events[0]!;
    assert.ok(event.type === 'message' && event.binary);
    const got = event.data as Buffer;
    assert.ok(got.equals(content));
    // Geometric growth: the buffer behind the message is not far above its size.
    assert.ok(got.buffer.byteLength <= 2 * n, `backing store ${got.buffer.byteLength}`);
  });
  test('a text message of one-byte fragments, multi-byte characters split everywhere', () => {
    const message = '€𝄞é'.repeat(2000);
    const bytes = Buffer.from(message);
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) parts.push(frame(i === 0 ? 0x1 : 0x0, bytes.subarray(i, i + 1), { fin: i === bytes.length - 1 }));
    const rec = open().feed(Buffer.concat(parts));
    assert.deepEqual(rec.events, [text(message)]);
  });
  test('one-byte fragments whose total passes the limit → 1009 at the first byte too many', () => {
    const n = 65536;
    const parts: Buffer[] = [];
    for (let i = 0; i <= n; i++) parts.push(frame(i === 0 ? 0x2 : 0x0, 'x', { fin: false }));
    expectFail(Buffer.concat(parts), 1009, { maxMessageSize: n });
  });
  test('messages after a large fragmented one are unaffected (buffers reused or released correctly)', () => {
    const rec = open();
    const big = 'y'.repeat(70000);
    rec.feed(frame(0x1, 'a'.repeat(1000), { fin: false }), frame(0x0, 'b'.repeat(1000)));
    const first = (rec.events[0] as { data: string }).data;
    rec.feed(frame(0x1, 'c', { fin: false }), frame(0x0, 'd'));
    rec.feed(frame(0x2, pattern(10), { fin: false }), frame(0x0, pattern(5)));
    rec.feed(frame(0x1, big.slice(0, 35000), { fin: false }), frame(0x0, big.slice(35000)));
    rec.feed(frame(0x1, 'e', { fin: false }), frame(0x0, 'f'));
    assert.equal(first, 'a'.repeat(1000) + 'b'.repeat(1000));
    assert.deepEqual(rec.events, [text('a'.repeat(1000) + 'b'.repeat(1000)), text('cd'), binary(Buffer.concat([pattern(10), pattern(5)])), text(big), text('ef')]);
  });
  test('a binary message delivered earlier is not overwritten by later ones', () => {
    // The Buffers as yielded, not copies: a later message must not reuse their memory.
    const { p } = open();
    const got: Buffer[] = [];
    const take = () => {
      for (const e of p.eventsReceived()) if (e.type === 'message' && e.binary) got.push(e.data as Buffer);
    };
    p.receiveData(Buffer.concat([frame(0x2, Buffer.alloc(10, 1), { fin: false }), frame(0x0, Buffer.alloc(10, 2))]));
    take();
    p.receiveData(Buffer.concat([frame(0x2, Buffer.alloc(10, 3), { fin: false }), frame(0x0, Buffer.alloc(10, 4))]));
    take();
    p.receiveData(frame(0x1, 'x', { fin: false }));
    p.receiveData(frame(0x0, 'y'.repeat(30)));
    take();
    assert.equal(got.length, 2);
    assert.deepEqual(got[0], Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(10, 2)]));
    assert.deepEqual(got[1], Buffer.concat([Buffer.alloc(10, 3), Buffer.alloc(10, 4)]));
  });
});

// ---------------------------------------------------------------------------------------------

const FUZZ_SEED = 0x00c0ffee;

describe(`seeded fuzz (mulberry32, seed 0x${FUZZ_SEED.toString(16)})`, () => {
  test(`seed 0x${FUZZ_SEED.toString(16)}: 3000 random and mutated frame streams: never throws, closed at most once, failures are 1002/1007/1009, splits do not matter`, () => {
    const rand = prng(FUZZ_SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const texts = ['', 'Hello', 'κόσμε', '€𝄞', 'x'.repeat(130)];

    function randomFrame(): Buffer {
      const r = rand();
      const key = rand() < 0.9 ? Buffer.from([int(256), int(256), int(256), int(256)]) : null;
      if (r < 0.3) return frame(pick([0x1, 0x2]), rand() < 0.5 ? pick(texts) : pattern(int(300), 1 + int(5)), { mask: key, fin: rand() < 0.8 });
      if (r < 0.45) return frame(0x0, pick(texts), { mask: key, fin: rand() < 0.6 });
      if (r < 0.65) return frame(pick([0x9, 0xa]), pattern(int(126)), { mask: key });
      if (r < 0.75) return frame(0x8, rand() < 0.2 ? '' : closeBody(pick([1000, 1001, 1005, 1015, 3000, 4999, 999, int(65536)]), pick(['', 'bye', '\u00e9'])), { mask: key });
      if (r < 0.85) return frame(int(16), pattern(int(20)), { mask: key, rsv: rand() < 0.3 ? int(8) : 0, fin: rand() < 0.7 });
      // random bytes
      return Buffer.from(Array.from({ length: int(40) }, () => int(256)));
    }

    function mutate(stream: Buffer): Buffer {
      const out = Buffer.from(stream);
      const flips = int(4);
      for (let i = 0; i < flips && out.length > 0; i++) out[int(out.length)] ^= 1 << int(8);
      if (rand() < 0.2) return out.subarray(0, int(out.length + 1));
      return out;
    }

    const failureCodes = new Set<number>();
    let failures = 0;
    let clean = 0;
    const start = Date.now();
    for (let iteration = 0; iteration < 3000; iteration++) {
      let stream: Buffer = Buffer.concat(Array.from({ length: 1 + int(8) }, randomFrame));
      if (rand() < 0.7) stream = mutate(stream);
      const options: Opts = rand() < 0.2 ? { client: true, maskKey: () => KEY, maxMessageSize: 200 } : { maxMessageSize: pick([50, 200, 1 << 20]) };
      const cuts: number[] = [];
      for (let pos = int(20); pos < stream.length; pos += 1 + int(30)) cuts.push(pos);
      let whole: Ev[] = [];
      let pieces: Ev[] = [];
      try {
        whole = run(stream, [], options);
        pieces = run(stream, cuts, options);
      } catch (err) {
        assert.fail(`iteration ${iteration} threw ${String(err)} on ${stream.toString('hex')}`);
      }
      assert.deepEqual(outcome(pieces), outcome(whole), `iteration ${iteration}: split ${cuts.join(',')} of ${stream.toString('hex')}`);
      // Our output is always whole, well-formed frames, masked exactly in the client role.
      const sent = parseFrames(Buffer.from(outcome(whole).out, 'hex'));
      for (const f of sent) {
        assert.equal(f.mask !== null, options.client === true);
        assert.ok([0x8, 0xa].includes(f.opcode), 'only pongs and a close frame are sent');
      }
      const closes = whole.filter((e) => e.t === 'close') as CloseEv[];
      assert.ok(closes.length <= 1, `iteration ${iteration}: closed ${closes.length} times`);
      assert.ok(sent.filter((f) => f.opcode === 0x8).length === closes.length, 'one close frame per close event');
      if (closes.length === 1) {
        const c = closes[0]!;
        // The close event is the last event; then only the write carrying the close frame owed
        // (none if we had sent ours: never here), which ends our output.
        assert.equal(whole.at(-2), c, 'the close event, then only the write');
        assert.equal(whole.at(-1)!.t, 'write');
        const last = sent.at(-1)!;
        assert.equal(last.opcode, 0x8);
        if (c.wasClean && c.code === 1005) assert.equal(last.payload.length, 0);
        else assert.deepEqual(last.payload.subarray(0, 2), code2(c.code), 'our close frame carries the code reported');
        if (!c.wasClean) {
          failures++;
          failureCodes.add(c.code);
          assert.ok([1002, 1007, 1009].includes(c.code), `iteration ${iteration}: failed with ${c.code} (${c.reason}) on ${stream.toString('hex')}`);
          assert.equal(c.initiator, 'error');
        } else clean++;
      }
    }
    // The fuzz reached every failure kind and clean closes too.
    assert.deepEqual([...failureCodes].sort(), [1002, 1007, 1009]);
    assert.ok(failures > 500 && clean > 50, `failures ${failures}, clean ${clean}`);
    assert.ok(Date.now() - start < 8000);
  });
  test(`seed 0x${FUZZ_SEED.toString(16)}: 300 generated valid conversations give exactly the expected events and bytes, in random pieces`, () => {
    const rand = prng(FUZZ_SEED ^ 0x1234);
    const int = (n: number) => Math.floor(rand() * n);
    const sizes = [0, 1, 3, 4, 5, 125, 126, 127, 1000, 65535, 65536, 65537];
    const chars = ['a', 'é', '€', '𝄞', '\u0000', '\ufeff'];
    for (let conversation = 0; conversation < 300; conversation++) {
      const frames: Buffer[] = [];
      const expected: Ev[] = [];
      const owed: Buffer[] = [];
      const key = () => Buffer.from([int(256), int(256), int(256), int(256)]);
      const control = () => {
        const payload = pattern(int(126), 1 + int(3));
        if (rand() < 0.5) {
          frames.push(frame(0x9, payload, { mask: key() }));
          expected.push(ping(payload));
          owed.push(Buffer.concat([Buffer.from([0x8a, payload.length]), payload]));
        } else {
          frames.push(frame(0xa, payload, { mask: key() }));
          expected.push(pong(payload));
        }
      };
      for (let m = int(6); m >= 0; m--) {
        const isText = rand() < 0.5;
        const size = conversation % 10 === 0 ? sizes[int(sizes.length)]! : int(300);
        let bytes: Buffer;
        if (isText) {
          const picked: string[] = [];
          for (let n = 0; n < size; ) {
            const c = chars[int(chars.length)]!;
            picked.push(c);
            n += Buffer.byteLength(c);
          }
          const str = picked.join('');
          bytes = Buffer.from(str);
          expected.push(text(str));
        } else {
          bytes = pattern(size, 1 + int(7));
          expected.push(binary(bytes));
        }
        const message = expected.pop()!;
        // Cut the message into 1..5 fragments anywhere (through characters too), controls between.
        const cuts = [...new Set(Array.from({ length: int(5) }, () => int(bytes.length + 1)))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, bytes.length];
        for (let f = 0; f + 1 < bounds.length; f++) {
          frames.push(frame(f === 0 ? (isText ? 0x1 : 0x2) : 0x0, bytes.subarray(bounds[f]!, bounds[f + 1]!), { fin: f + 2 === bounds.length, mask: key() }));
          if (f + 2 < bounds.length && rand() < 0.3) control(); // between fragments only
        }
        expected.push(message);
        if (rand() < 0.2) control();
      }
      if (rand() < 0.5) {
        const code = [1000, 1001, 3000, 4999][int(4)]!;
        frames.push(frame(0x8, closeBody(code, 'bye'), { mask: key() }));
        expected.push({ t: 'close', code, reason: 'bye', wasClean: true, initiator: 'peer' });
        owed.push(Buffer.concat([hex('88 02'), code2(code)]));
      }
      const input = Buffer.concat(frames);
      const cuts: number[] = [];
      for (let pos = int(50); pos < input.length; pos += 1 + int(rand() < 0.5 ? 10 : 5000)) cuts.push(pos);
      const got = outcome(run(input, cuts));
      const want = { events: expected, out: Buffer.concat(owed).toString('hex') };
      if (!isDeepStrictEqual(got, want)) assert.deepEqual(got, want, `conversation ${conversation}, cuts ${cuts.join(',')}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The opening handshake (new: the old Connection started open).

/** Asserts `p` refused the handshake with HTTP `status`: the response, then one close event. */
function assertRefused(p: ServerProtocol, status: number, statusText: string): { response: string; close: CloseEvent } {
  const response = p.dataToSend().toString('latin1');
  assert.ok(response.startsWith(`HTTP/1.1 ${status} ${statusText}\r\n`), response);
  assert.match(response, /\r\nConnection: close\r\n/i);
  const head = response.slice(0, response.indexOf('\r\n\r\n') + 4);
  const body = response.slice(head.length);
  const length = /\r\nContent-Length: (\d+)\r\n/i.exec(head);
  assert.ok(length, 'a Content-Length');
  assert.equal(Number(length[1]), Buffer.byteLength(body, 'latin1'));
  const events = p.eventsReceived();
  assert.equal(events.length, 1, JSON.stringify(events.map((e) => e.type)));
  const close = events[0] as CloseEvent;
  assert.equal(close.type, 'close');
  assert.equal(close.code, 1006);
  assert.equal(close.wasClean, false);
  assert.equal(p.state, 'closed');
  assert.equal(p.canSend, false);
  assert.equal(p.sendText('x'), false);
  assert.equal(p.accept(), false);
  assert.equal(p.shouldEndTransport, true);
  // Nothing more is read.
  p.receiveData(requestHead());
  assert.deepEqual(p.eventsReceived(), []);
  assert.equal(p.dataToSend().length, 0);
  return { response, close };
}

/** Asserts a refusal by the checks of the protocol object: initiator 'error', a HandshakeError with the status. */
function assertRefusedByCheck(p: ServerProtocol, status: number, statusText: string): string {
  const { response, close } = assertRefused(p, status, statusText);
  assert.equal(close.initiator, 'error');
  assert.ok(close.error instanceof HandshakeError, String(close.error));
  assert.equal(close.error.status, status);
  return response;
}

describe('server handshake (RFC 6455 §4.2)', () => {
  test('a valid request → one request event with method, target, path, query, headers, protocol; nothing sent yet', () => {
    const p = new ServerProtocol({ protocols: ['superchat', 'chat'] });
    p.receiveData(
      requestHead('GET /chat?room=1&x=a%20b HTTP/1.1', { 'Sec-WebSocket-Protocol': 'chat, superchat', Origin: 'http://example.com', 'X-Repeat': 'one' }),
    );
    assert.equal(p.state, 'connecting');
    assert.equal(p.dataToSend().length, 0, 'no answer before accept() or reject()');
    const events = p.eventsReceived();
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.ok(event.type === 'request');
    assert.deepEqual(
      { ...event.request, headers: { ...event.request.headers }, query: { ...event.request.query } },
      {
        method: 'GET',
        target: '/chat?room=1&x=a%20b',
        httpVersion: '1.1',
        path: '/chat',
        query: { room: '1', x: 'a b' },
        headers: {
          host: 'server.example.com',
          upgrade: 'websocket',
          connection: 'Upgrade',
          'sec-websocket-key': SAMPLE_KEY,
          'sec-websocket-version': '13',
          'sec-websocket-protocol': 'chat, superchat',
          origin: 'http://example.com',
          'x-repeat': 'one',
        },
        protocol: 'superchat', // the server's first preference that the client offered
        extensions: '', // compression is off: an offer would not be looked at
      },
    );
    assert.equal(p.canSend, false);
    assert.equal(p.sendText('early'), false, 'nothing can be sent before accept()');
  });
  test('accept() → exactly the 101 of RFC 6455 §1.3 (sample key → s3pPLMBiTxaQ9kYGzzhZRbK+xOo=)', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead());
    assert.equal(p.eventsReceived()[0]?.type, 'request');
    assert.equal(p.accept(), true);
    assert.equal(
      p.dataToSend().toString('latin1'),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`,
    );
    assert.equal(p.state, 'open');
    assert.equal(p.canSend, true);
    assert.equal(p.accept(), false, 'once');
    assert.equal(p.reject(400), false, 'too late to reject');
    assert.deepEqual(p.eventsReceived(), []);
    // With a subprotocol chosen, the 101 names it.
    const q = new ServerProtocol({ protocols: ['chat'] });
    q.receiveData(requestHead('GET / HTTP/1.1', { 'Sec-WebSocket-Protocol': 'superchat, chat' }));
    q.eventsReceived();
    q.accept();
    assert.equal(
      q.dataToSend().toString('latin1'),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
    );
  });
  test('the request head split at every byte, and byte by byte: one request event, only once it is whole', () => {
    const head = requestHead('GET /chat?room=1 HTTP/1.1', { Origin: 'http://example.com' });
    const reference = new ServerProtocol();
    reference.receiveData(Buffer.from(head));
    const expected = reference.eventsReceived();
    assert.equal(expected.length, 1);
    for (let cut = 0; cut <= head.length; cut++) {
      const p = new ServerProtocol();
      p.receiveData(Buffer.from(head.subarray(0, cut)));
      assert.deepEqual(p.eventsReceived(), cut < head.length ? [] : expected, `split at ${cut}, first piece`);
      p.receiveData(Buffer.from(head.subarray(cut)));
      assert.deepEqual(p.eventsReceived(), cut < head.length ? expected : [], `split at ${cut}, second piece`);
      assert.equal(p.dataToSend().length, 0);
      assert.equal(p.accept(), true);
      assert.match(p.dataToSend().toString('latin1'), /^HTTP\/1\.1 101 /);
    }
    const p = new ServerProtocol();
    const got: ServerProtocolEvent[] = [];
    for (let i = 0; i < head.length; i++) {
      p.receiveData(Buffer.from(head.subarray(i, i + 1)));
      got.push(...p.eventsReceived());
      assert.equal(got.length, i === head.length - 1 ? 1 : 0, `byte ${i}`);
    }
    assert.deepEqual(got, expected);
  });
  test('a request head over maxHandshakeBytes → 431 and a close event', () => {
    // Default limit 16 KiB: a head that never ends, and a whole head that is too long.
    const endless = Buffer.from(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(17 * 1024)}`, 'latin1');
    const p = new ServerProtocol();
    p.receiveData(endless.subarray(0, 10 * 1024));
    assert.deepEqual(p.eventsReceived(), [], 'still under the limit');
    p.receiveData(endless.subarray(10 * 1024));
    assertRefusedByCheck(p, 431, 'Request Header Fields Too Large');
    const q = new ServerProtocol();
    q.receiveData(requestHead('GET / HTTP/1.1', { 'X-Big': 'a'.repeat(17 * 1024) }));
    assertRefusedByCheck(q, 431, 'Request Header Fields Too Large');
    // The option sets the limit.
    const r = new ServerProtocol({ maxHandshakeBytes: 100 });
    r.receiveData(requestHead());
    assertRefusedByCheck(r, 431, 'Request Header Fields Too Large');
  });
  test('HTTP/1.0 → 400', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead('GET /chat HTTP/1.0'));
    assertRefusedByCheck(p, 400, 'Bad Request');
  });
  test('no Sec-WebSocket-Key → 400', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead('GET /chat HTTP/1.1', { 'Sec-WebSocket-Key': undefined }));
    assertRefusedByCheck(p, 400, 'Bad Request');
  });
  test('Sec-WebSocket-Version 8 → 426 with Sec-WebSocket-Version: 13 (§4.2.2)', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead('GET /chat HTTP/1.1', { 'Sec-WebSocket-Version': '8' }));
    const response = assertRefusedByCheck(p, 426, 'Upgrade Required');
    assert.match(response, /\r\nSec-WebSocket-Version: 13\r\n/);
  });
  test('POST → 405', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead('POST /chat HTTP/1.1'));
    const response = assertRefusedByCheck(p, 405, 'Method Not Allowed');
    assert.match(response, /\r\nAllow: GET\r\n/);
  });
  test('with origins, a disallowed or missing Origin → 403; an allowed one → request', () => {
    const origins = ['https://good.example'];
    const p = new ServerProtocol({ origins });
    p.receiveData(requestHead('GET / HTTP/1.1', { Origin: 'https://evil.example' }));
    assertRefusedByCheck(p, 403, 'Forbidden');
    const q = new ServerProtocol({ origins });
    q.receiveData(requestHead());
    assertRefusedByCheck(q, 403, 'Forbidden');
    const r = new ServerProtocol({ origins });
    r.receiveData(requestHead('GET / HTTP/1.1', { Origin: 'https://good.example' }));
    assert.deepEqual(r.eventsReceived().map((e) => e.type), ['request']);
  });
  test('reject(401) → a 401 response with its headers, and a close event (initiator local)', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead());
    assert.equal(p.eventsReceived()[0]?.type, 'request');
    assert.equal(p.reject(401, 'login first', { 'WWW-Authenticate': 'Basic realm="chat"' }), true);
    const { response, close } = assertRefused(p, 401, 'Unauthorized');
    assert.match(response, /\r\nWWW-Authenticate: Basic realm="chat"\r\n/);
    assert.ok(response.endsWith('\r\n\r\nlogin first\n'), response);
    assert.equal(close.initiator, 'local');
    assert.equal(p.reject(401), false, 'once');
  });
  test('accept() and reject() before a request came are refused', () => {
    const p = new ServerProtocol();
    assert.equal(p.accept(), false);
    assert.equal(p.reject(400), false);
    p.receiveData(requestHead().subarray(0, 20));
    assert.equal(p.accept(), false);
    assert.equal(p.state, 'connecting');
    assert.equal(p.dataToSend().length, 0);
  });
  test('EOF or abort during the handshake → one close event 1006, nothing sent', () => {
    const p = new ServerProtocol();
    p.receiveData(requestHead().subarray(0, 20));
    p.receiveEof();
    const [close, ...rest] = p.eventsReceived();
    assert.deepEqual(rest, []);
    assert.ok(close?.type === 'close');
    assert.deepEqual([close.code, close.wasClean, close.initiator], [1006, false, 'peer']);
    assert.equal(p.dataToSend().length, 0);
    assert.equal(p.state, 'closed');
    const q = new ServerProtocol();
    q.receiveData(requestHead());
    q.abort('handshake timeout', 'timeout');
    assert.deepEqual(
      q.eventsReceived().map((e) => e.type === 'close' ? [e.type, e.code, e.reason, e.initiator] : [e.type]),
      [['request'], ['close', 1006, 'handshake timeout', 'timeout']],
    );
    assert.equal(q.accept(), false);
    assert.equal(q.dataToSend().length, 0);
  });
  test('frames in the same chunk as the request head are held, then delivered after accept()', () => {
    const head = requestHead();
    const frames = Buffer.concat([frame(0x1, 'early'), frame(0x9, 'p'), frame(0x2, pattern(200), { fin: false }), frame(0x0, pattern(3))]);
    const input = Buffer.concat([head, frames]);
    const expectedAfter: Ev[] = [text('early'), ping('p'), binary(Buffer.concat([pattern(200), pattern(3)]))];
    const response = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`;
    // One chunk: the request event only; accept() → the 101, then the pong, and the frames' events.
    const p = new ServerProtocol();
    p.receiveData(Buffer.from(input));
    assert.deepEqual(p.eventsReceived().map((e) => e.type), ['request']);
    assert.equal(p.dataToSend().length, 0);
    assert.equal(p.accept(), true);
    assert.deepEqual(p.dataToSend(), Buffer.concat([Buffer.from(response, 'latin1'), hex('8a 01 70')]));
    assert.deepEqual((p.eventsReceived() as AnyEvent[]).map(plain), expectedAfter);
    // Split at every byte, accepting as soon as the request event comes: same events, same bytes.
    for (let cut = 0; cut <= input.length; cut++) {
      const q = new ServerProtocol();
      const events: Ev[] = [];
      let out = '';
      for (const piece of [input.subarray(0, cut), input.subarray(cut)]) {
        q.receiveData(Buffer.from(piece));
        for (const e of q.eventsReceived() as AnyEvent[]) {
          if (e.type === 'request') assert.equal(q.accept(), true);
          else events.push(plain(e));
        }
        for (const e of q.eventsReceived() as AnyEvent[]) events.push(plain(e)); // those accept() read
        out += q.dataToSend().toString('latin1');
      }
      assert.deepEqual(events, expectedAfter, `split at ${cut}`);
      assert.equal(out, response + hex('8a 01 70').toString('latin1'), `split at ${cut}`);
    }
  });
});

describe('client handshake (RFC 6455 §4.1)', () => {
  test('the request head, byte for byte, with a fixed handshakeKey', () => {
    const p = new ClientProtocol('ws://server.example.com/chat?x=1', { handshakeKey: SAMPLE_KEY });
    assert.equal(p.state, 'connecting');
    assert.equal(
      p.dataToSend().toString('latin1'),
      'GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    assert.equal(p.dataToSend().length, 0, 'taken once');
    assert.equal(p.canSend, false);
    assert.equal(p.sendText('early'), false);
    // Port, subprotocols and origin.
    const q = new ClientProtocol('ws://server.example.com:8080/', { handshakeKey: SAMPLE_KEY, protocols: ['chat', 'superchat'], origin: 'http://example.com' });
    assert.equal(
      q.dataToSend().toString('latin1'),
      'GET / HTTP/1.1\r\nHost: server.example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\nOrigin: http://example.com\r\n\r\n`,
    );
  });
  test('without handshakeKey, a fresh 16-byte base64 key each time', () => {
    const key = (p: ClientProtocol) => /\r\nSec-WebSocket-Key: ([^\r]*)\r\n/.exec(p.dataToSend().toString('latin1'))?.[1];
    const a = key(new ClientProtocol(CLIENT_URL));
    const b = key(new ClientProtocol(CLIENT_URL));
    assert.match(a ?? '', /^[A-Za-z0-9+/]{22}==$/);
    assert.match(b ?? '', /^[A-Za-z0-9+/]{22}==$/);
    assert.notEqual(a, b);
  });
  test('a 101 split at every byte → one open event; frames after it in the same bytes are read', () => {
    const input = Buffer.concat([response101('Sec-WebSocket-Protocol: chat\r\n'), sframe(0x1, 'hi'), sframe(0x9, 'p')]);
    const expected: Ev[] = [
      {
        t: 'open',
        json: JSON.stringify({
          protocol: 'chat',
          headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': SAMPLE_ACCEPT, 'sec-websocket-protocol': 'chat' },
          extensions: '',
        }),
      },
      text('hi'),
      ping('p'),
    ];
    const pongOut = Buffer.concat([hex('8a 81'), KEY, masked(Buffer.from('p'), KEY)]).toString('hex');
    const cuts: number[][] = [];
    for (let cut = 0; cut <= input.length; cut++) cuts.push([cut]);
    cuts.push(Array.from({ length: input.length }, (_, i) => i));
    for (const points of cuts) {
      const p = new ClientProtocol(CLIENT_URL, { handshakeKey: SAMPLE_KEY, protocols: ['chat'], maskKey: () => KEY });
      p.dataToSend();
      const rec = recorder(p);
      let pos = 0;
      for (const cut of [...points, input.length]) {
        rec.feed(input.subarray(pos, cut));
        if (p.state === 'connecting') assert.equal(cut < response101('Sec-WebSocket-Protocol: chat\r\n').length, true);
        pos = cut;
      }
      assert.deepEqual(outcome(rec.events), { events: expected, out: pongOut }, `cuts ${points.length > 1 ? 'byte by byte' : points[0]}`);
      assert.equal(p.state, 'open');
    }
  });
  test('a wrong Sec-WebSocket-Accept → close event with HandshakeError HANDSHAKE_ACCEPT', () => {
    const p = new ClientProtocol(CLIENT_URL, { handshakeKey: SAMPLE_KEY });
    p.dataToSend();
    p.receiveData(response101('', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    const events = p.eventsReceived();
    assert.equal(events.length, 1);
    const close = events[0]!;
    assert.ok(close.type === 'close');
    assert.deepEqual([close.code, close.wasClean, close.initiator], [1006, false, 'error']);
    assert.ok(close.error instanceof HandshakeError);
    assert.equal(close.error.code, ErrorCode.HANDSHAKE_ACCEPT);
    assert.equal(close.error.status, 101);
    assert.equal(p.state, 'closed');
    assert.equal(p.dataToSend().length, 0, 'no close frame: the WebSocket never opened');
    assert.equal(p.shouldEndTransport, true);
    assert.equal(p.sendText('x'), false);
  });
  test('401 → close event with HandshakeError UNAUTHORIZED, status 401', () => {
    const p = new ClientProtocol(CLIENT_URL, { handshakeKey: SAMPLE_KEY });
    p.dataToSend();
    p.receiveData(Buffer.from('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n', 'latin1'));
    const [close, ...rest] = p.eventsReceived();
    assert.deepEqual(rest, []);
    assert.ok(close?.type === 'close');
    assert.deepEqual([close.code, close.wasClean], [1006, false]);
    assert.ok(close.error instanceof HandshakeError);
    assert.equal(close.error.code, ErrorCode.UNAUTHORIZED);
    assert.equal(close.error.status, 401);
    assert.equal(p.state, 'closed');
  });
  test('EOF before the answer → close event with a HandshakeError, status 0', () => {
    for (const partial of ['', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n']) {
      const p = new ClientProtocol(CLIENT_URL, { handshakeKey: SAMPLE_KEY });
      p.dataToSend();
      p.receiveData(Buffer.from(partial, 'latin1'));
      assert.deepEqual(p.eventsReceived(), []);
      p.receiveEof();
      const [close, ...rest] = p.eventsReceived();
      assert.deepEqual(rest, []);
      assert.ok(close?.type === 'close');
      assert.deepEqual([close.code, close.wasClean, close.initiator], [1006, false, 'peer']);
      assert.ok(close.error instanceof HandshakeError);
      assert.equal(close.error.code, ErrorCode.NO_HANDSHAKE);
      assert.equal(close.error.status, 0);
      assert.equal(p.state, 'closed');
      assert.equal(p.dataToSend().length, 0);
    }
  });
  test('a clean close: the client waits for the server to end TCP first (§7.1.1)', () => {
    const rec = open({ client: true, maskKey: () => KEY });
    rec.feed(sframe(0x8, closeBody(1000)));
    assert.deepEqual(rec.events, [
      { t: 'close', code: 1000, reason: '', wasClean: true, initiator: 'peer' },
      write(Buffer.concat([hex('88 82'), KEY, masked(code2(1000), KEY)])),
    ]);
    assert.equal(rec.p.state, 'closed');
    assert.equal(rec.p.closeExpected, true);
    assert.equal(rec.p.shouldEndTransport, false);
    rec.p.receiveEof();
    assert.equal(rec.p.shouldEndTransport, true);
    rec.flush();
    assert.equal(rec.events.length, 2);
  });
});
