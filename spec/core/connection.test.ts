/**
 * lib/connection.ts, the sans-I/O state machine: bytes in through receiveData, events and bytes out
 * through the handler. No sockets, no timers. Frames from the peer are built by
 * spec/helpers/frames.ts, independently of lib/frame.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { Connection, ReadyState, type CloseInfo, type ConnectionOptions } from '../../lib/connection.js';
import { frame as buildFrame, type FrameHeaderOptions } from '../helpers/frames.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = hex('37fa213d');

// ---------------------------------------------------------------------------------------------
// Helpers

/** One frame as a peer would send it; client frames (masked with KEY) by default. */
const frame = (opcode: number, payload: string | Uint8Array = '', o: FrameHeaderOptions = {}): Buffer => buildFrame(opcode, payload, { mask: KEY, ...o });
/** A frame as a server sends it: unmasked. */
const sframe = (opcode: number, payload: string | Uint8Array = '', o: FrameHeaderOptions = {}): Buffer => buildFrame(opcode, payload, { ...o, mask: false });
const code2 = (code: number) => Buffer.from([code >> 8, code & 0xff]);
const closeBody = (code: number, reason = '') => Buffer.concat([code2(code), Buffer.from(reason)]);

type Ev =
  | { t: 'write'; hex: string }
  | { t: 'message'; data: string; binary: boolean }
  | { t: 'pong'; hex: string }
  | { t: 'closed'; code: number; reason: string; wasClean: boolean; initiator: string; error?: string };

interface Rec {
  conn: Connection;
  events: Ev[];
  /** Everything written, concatenated. */
  out(): Buffer;
  closes(): Ev[];
  feed(...chunks: Buffer[]): Rec;
}

/**
 * A connection whose handler records every call as plain data (binary messages as hex, copied
 * at once). Unless `manualFlush`, the handler sends the close frame still owed as soon as
 * `closed` is reported (as an I/O layer with nothing left to send would): [closed, write].
 */
function open(options: Partial<ConnectionOptions> = {}, manualFlush = false): Rec {
  const events: Ev[] = [];
  const conn = new Connection(
    { role: 'server', maxMessageSize: 1 << 20, ...options },
    {
      write: (bytes) => events.push({ t: 'write', hex: Buffer.from(bytes).toString('hex') }),
      message: (data, binary) => {
        assert.equal(typeof data === 'string', !binary, 'text arrives as a string, binary as a Buffer');
        events.push({ t: 'message', data: binary ? Buffer.from(data as Buffer).toString('hex') : (data as string), binary });
      },
      pong: (payload) => events.push({ t: 'pong', hex: payload.toString('hex') }),
      closed: (info: CloseInfo) => {
        const { code, reason, wasClean, initiator, error } = info;
        events.push({ t: 'closed', code, reason, wasClean, initiator, ...(error ? { error: error.message } : {}) });
        if (!manualFlush) conn.flushClose();
      },
    },
  );
  const rec: Rec = {
    conn,
    events,
    out: () => Buffer.concat(events.filter((e) => e.t === 'write').map((e) => hex((e as { hex: string }).hex))),
    closes: () => events.filter((e) => e.t === 'closed'),
    feed(...chunks) {
      for (const c of chunks) conn.receiveData(Buffer.from(c)); // a copy: the connection unmasks in place
      return rec;
    },
  };
  return rec;
}

const text = (data: string): Ev => ({ t: 'message', data, binary: false });
const binary = (bytes: Uint8Array): Ev => ({ t: 'message', data: Buffer.from(bytes).toString('hex'), binary: true });
const write = (bytes: Buffer): Ev => ({ t: 'write', hex: bytes.toString('hex') });

/**
 * Asserts the connection failed with `code`: the last two events are one `closed` with wasClean
 * false and initiator 'error', then our close frame (exactly 88, length, code, reason); then
 * more valid input produces nothing and calls are refused.
 */
function assertFailed(rec: Rec, code: number): void {
  const { events } = rec;
  const closes = rec.closes();
  assert.equal(closes.length, 1, `closed called once, got ${JSON.stringify(events)}`);
  const info = events.at(-2) as Extract<Ev, { t: 'closed' }>;
  assert.equal(info.t, 'closed', JSON.stringify(events));
  assert.equal(info.code, code, `close code (${info.reason})`);
  assert.equal(info.wasClean, false);
  assert.equal(info.initiator, 'error');
  const reason = Buffer.from(info.reason);
  assert.ok(reason.length <= 123);
  assert.deepEqual(events.at(-1), write(Buffer.concat([Buffer.from([0x88, 2 + reason.length]), code2(code), reason])));
  assert.equal(rec.conn.state, ReadyState.CLOSED);
  assert.equal(rec.conn.canSend, false);
  const n = events.length;
  rec.feed(frame(0x9, 'after'), frame(0x1, 'after'), frame(0x8, closeBody(1000)));
  assert.equal(rec.conn.send('x', false), false);
  assert.equal(rec.conn.ping(), false);
  assert.equal(rec.conn.close(), false);
  rec.conn.terminate('gone', 'peer');
  rec.conn.flushClose();
  assert.equal(events.length, n, `nothing after the failure: ${JSON.stringify(events.slice(n))}`);
}

/** Feeds `input` to a fresh server connection and asserts it fails with `code`, emitting only `before` first. */
function expectFail(input: Buffer | Buffer[], code: number, options: Partial<ConnectionOptions> = {}, before: Ev[] = []): Rec {
  const rec = open(options).feed(...(Array.isArray(input) ? input : [input]));
  assert.deepEqual(rec.events.slice(0, -2), before);
  assertFailed(rec, code);
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
  test('masked ping "Hello" → unmasked pong 8a 05 "Hello"', () => {
    const rec = open().feed(frame(0x9, 'Hello'));
    assert.deepEqual(rec.events, [write(hex('8a 05 48 65 6c 6c 6f'))]);
  });
  test('masked pong → pong event with the payload', () => {
    const rec = open().feed(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(rec.events, [{ t: 'pong', hex: Buffer.from('Hello').toString('hex') }]);
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
  test('server output: send() writes the unmasked RFC frames', () => {
    const rec = open();
    assert.equal(rec.conn.send('Hello', false), true);
    assert.equal(rec.conn.send(pattern(256), true), true);
    assert.equal(rec.conn.send(pattern(65536), true), true);
    assert.equal(rec.conn.ping('Hello'), true);
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
  });
  test('empty text and binary messages, empty ping', () => {
    const rec = open().feed(frame(0x1, ''), frame(0x2, ''), frame(0x9, ''), frame(0x1, '', { fin: false }), frame(0x0, ''));
    assert.deepEqual(rec.events, [text(''), binary(Buffer.alloc(0)), write(hex('8a 00')), text('')]);
  });
  test('a 125-byte ping is answered with the same 125 bytes', () => {
    const rec = open().feed(frame(0x9, pattern(125)));
    assert.deepEqual(rec.events, [write(Buffer.concat([hex('8a 7d'), pattern(125)]))]);
  });
  test('several frames in one chunk, control frames between fragments', () => {
    const rec = open().feed(
      Buffer.concat([frame(0x1, 'a', { fin: false }), frame(0x9, 'p'), frame(0x0, 'b', { fin: false }), frame(0xa, 'q'), frame(0x0, 'c'), frame(0x2, 'd')]),
    );
    assert.deepEqual(rec.events, [write(hex('8a 01 70')), { t: 'pong', hex: '71' }, text('abc'), binary(Buffer.from('d'))]);
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
});

describe('client role', () => {
  test('frames it sends are masked with the injected key (RFC masked "Hello")', () => {
    const rec = open({ role: 'client', maskKey: () => KEY });
    rec.conn.send('Hello', false);
    assert.deepEqual(rec.out(), hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
  });
  test('a fresh key is asked for every frame: data, ping, pong and close', () => {
    let n = 0;
    const keys = [hex('01020304'), hex('a0b0c0d0'), hex('11223344'), hex('deadbeef')];
    const rec = open({ role: 'client', maskKey: () => keys[n++]! });
    rec.conn.send(Buffer.from([0, 0, 0, 0, 0]), true);
    rec.conn.ping('hi');
    rec.feed(sframe(0x9, 'yo'));
    rec.conn.close(1000, '');
    assert.equal(n, 4);
    assert.deepEqual(rec.events.map((e) => (e as { hex: string }).hex), [
      '8285' + '01020304' + '0102030401',
      '8982' + 'a0b0c0d0' + Buffer.from([0x68 ^ 0xa0, 0x69 ^ 0xb0]).toString('hex'),
      '8a82' + '11223344' + Buffer.from([0x79 ^ 0x11, 0x6f ^ 0x22]).toString('hex'),
      '8882' + 'deadbeef' + Buffer.from([0x03 ^ 0xde, 0xe8 ^ 0xad]).toString('hex'),
    ]);
  });
  test('receives the unmasked RFC vectors; a ping is answered with the RFC masked pong', () => {
    const rec = open({ role: 'client', maskKey: () => KEY });
    rec.feed(hex('81 05 48 65 6c 6c 6f'), hex('01 03 48 65 6c'), hex('80 02 6c 6f'), hex('89 05 48 65 6c 6c 6f'));
    assert.deepEqual(rec.events, [text('Hello'), text('Hello'), write(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'))]);
  });
  test('a masked frame from the server → 1002, with our close frame masked', () => {
    const rec = open({ role: 'client', maskKey: () => KEY }).feed(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(rec.events.length, 2);
    const closed = rec.events[0] as Extract<Ev, { t: 'closed' }>;
    assert.deepEqual([closed.t, closed.code, closed.wasClean, closed.initiator], ['closed', 1002, false, 'error']);
    const reason = Buffer.from(closed.reason);
    const body = Buffer.concat([code2(1002), reason]);
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ KEY[i & 3]!;
    assert.deepEqual(rec.events[1], write(Buffer.concat([Buffer.from([0x88, 0x80 | (2 + reason.length)]), KEY, body])));
  });
  test('a client connection without maskKey is refused', () => {
    assert.throws(() => open({ role: 'client' }), TypeError);
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
      expectFail(frame(op, pattern(126)).subarray(0, 2), 1002); // from the first two bytes
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
        { t: 'closed', code, reason: 'bye', wasClean: true, initiator: 'peer' },
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
    assert.deepEqual(rec.events, [write(hex('8a 00')), text('a€')]);
  });
  test('invalid UTF-8 in a close reason → 1007', () => {
    expectFail(frame(0x8, Buffer.concat([code2(1000), hex('ff')])), 1007);
    expectFail(frame(0x8, Buffer.concat([code2(1000), hex('6f 6b ed a0 80')])), 1007);
  });
  test('message over maxMessageSize → 1009 as soon as its header arrives (no payload sent)', () => {
    const opts = { maxMessageSize: 100 };
    expectFail(frame(0x1, '', { declaredLength: 101 }), 1009, opts); // the 6-byte header only
    expectFail(frame(0x1, '', { declaredLength: 101 }).subarray(0, 2), 1009, opts); // 7-bit length: two bytes suffice
    expectFail(frame(0x2, '', { declaredLength: 300 }), 1009, opts);
    expectFail(frame(0x2, '', { declaredLength: 70000 }), 1009, opts);
    // Exactly the limit passes.
    assert.deepEqual(open(opts).feed(frame(0x2, pattern(100))).events, [binary(pattern(100))]);
  });
  test('fragments whose sum passes maxMessageSize → 1009 at the header of the one that passes it', () => {
    const opts = { maxMessageSize: 100 };
    expectFail([frame(0x2, pattern(60), { fin: false }), frame(0x0, '', { declaredLength: 41 })], 1009, opts);
    expectFail([frame(0x1, 'x'.repeat(50), { fin: false }), frame(0x9, 'p'), frame(0x0, 'y'.repeat(50), { fin: false }), frame(0x0, '', { declaredLength: 1 })], 1009, opts, [
      write(hex('8a 01 70')),
    ]);
    // Exactly the limit in fragments passes; the count starts afresh for the next message.
    const rec = open(opts).feed(frame(0x1, 'x'.repeat(60), { fin: false }), frame(0x0, 'y'.repeat(40)), frame(0x1, 'z'.repeat(100)));
    assert.deepEqual(rec.events, [text('x'.repeat(60) + 'y'.repeat(40)), text('z'.repeat(100))]);
  });
  test('64-bit length with the top bit set → 1009', () => {
    expectFail(frame(0x2, '', { declaredLength: 1n << 63n }), 1009);
    expectFail(frame(0x2, '', { declaredLength: (1n << 64n) - 1n }), 1009, { maxMessageSize: Number.MAX_SAFE_INTEGER });
  });
  test('control frames do not count towards the message size', () => {
    const rec = open({ maxMessageSize: 10 }).feed(frame(0x1, 'x'.repeat(10), { fin: false }), frame(0x9, pattern(125)), frame(0x0, ''));
    assert.deepEqual(rec.events, [write(Buffer.concat([hex('8a 7d'), pattern(125)])), text('x'.repeat(10))]);
  });
  test('frames before the bad one are processed, frames after it are not', () => {
    expectFail(Buffer.concat([frame(0x1, 'one'), frame(0x9, 'p'), frame(0x3, 'bad'), frame(0x1, 'two')]), 1002, {}, [
      text('one'),
      write(hex('8a 01 70')),
    ]);
  });
});

describe('close handshake', () => {
  test('peer-initiated close: echo the code, report it clean, initiator peer', () => {
    const rec = open().feed(frame(0x8, closeBody(1001, 'going away')));
    assert.deepEqual(rec.events, [{ t: 'closed', code: 1001, reason: 'going away', wasClean: true, initiator: 'peer' }, write(hex('88 02 03 e9'))]);
    assert.equal(rec.conn.state, ReadyState.CLOSED);
  });
  test('a close with no code: echo an empty close, report 1005', () => {
    const rec = open().feed(frame(0x8, ''));
    assert.deepEqual(rec.events, [{ t: 'closed', code: 1005, reason: '', wasClean: true, initiator: 'peer' }, write(hex('88 00'))]);
  });
  test('local close(4000, "bye"), then the peer\'s reply: clean, initiator local', () => {
    const rec = open();
    assert.equal(rec.conn.close(4000, 'bye'), true);
    assert.deepEqual(rec.events, [write(hex('88 05 0f a0 62 79 65'))]);
    assert.equal(rec.conn.state, ReadyState.CLOSING);
    assert.equal(rec.conn.close(1000), false, 'a second close is refused');
    rec.feed(frame(0x8, closeBody(4000)));
    assert.deepEqual(rec.events.slice(1), [{ t: 'closed', code: 4000, reason: '', wasClean: true, initiator: 'local' }]);
    assert.equal(rec.conn.state, ReadyState.CLOSED);
  });
  test('local close answered by an empty close reports 1005', () => {
    const rec = open();
    rec.conn.close();
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8'))]);
    rec.feed(frame(0x8, ''));
    assert.deepEqual(rec.events.slice(1), [{ t: 'closed', code: 1005, reason: '', wasClean: true, initiator: 'local' }]);
  });
  test('the initiator given to close() is reported', () => {
    const rec = open();
    rec.conn.close(1001, '', 'timeout');
    rec.feed(frame(0x8, closeBody(1001)));
    assert.equal((rec.events.at(-1) as Extract<Ev, { t: 'closed' }>).initiator, 'timeout');
  });
  test('while closing: messages and pongs still arrive, pings get no pong, nothing can be sent', () => {
    const rec = open();
    rec.conn.close(1000, '');
    rec.feed(frame(0x1, 'late'), frame(0x9, 'ping'), frame(0xa, 'pong'));
    assert.equal(rec.conn.send('x', false), false);
    assert.equal(rec.conn.send(Buffer.from('x'), true), false);
    assert.equal(rec.conn.ping('p'), false);
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), text('late'), { t: 'pong', hex: Buffer.from('pong').toString('hex') }]);
  });
  test('an invalid close while closing fails without a second close frame', () => {
    const rec = open();
    rec.conn.close(1000, '');
    rec.feed(frame(0x8, closeBody(1005)));
    assert.equal(rec.events.length, 2, JSON.stringify(rec.events));
    assert.deepEqual(rec.events[0], write(hex('88 02 03 e8')));
    const { t, code, wasClean, initiator } = rec.events[1] as Extract<Ev, { t: 'closed' }>;
    assert.deepEqual({ t, code, wasClean, initiator }, { t: 'closed', code: 1002, wasClean: false, initiator: 'error' });
  });
  test('after the peer\'s close nothing is processed or sent', () => {
    const rec = open().feed(Buffer.concat([frame(0x8, closeBody(1000)), frame(0x1, 'after'), frame(0x9, 'p')]));
    assert.equal(rec.events.length, 2);
    rec.feed(frame(0x1, 'more'));
    assert.equal(rec.conn.send('x', false), false);
    assert.equal(rec.conn.ping(), false);
    assert.equal(rec.conn.close(), false);
    rec.conn.terminate('tcp closed', 'peer');
    rec.conn.fail(1011, 'late');
    assert.equal(rec.events.length, 2);
  });
  test('the close frame owed after the peer\'s close waits for flushClose; replies may go before it', () => {
    const rec = open({}, true).feed(frame(0x1, 'last words'), frame(0x8, closeBody(1000)));
    assert.deepEqual(rec.events, [text('last words'), { t: 'closed', code: 1000, reason: '', wasClean: true, initiator: 'peer' }]);
    assert.equal(rec.conn.state, ReadyState.CLOSED);
    assert.equal(rec.conn.canSend, true);
    assert.equal(rec.conn.send('reply', false), true);
    assert.equal(rec.conn.ping(), false, 'no ping after the peer\'s close');
    rec.conn.flushClose();
    assert.deepEqual(rec.events.slice(2), [write(hex('81 05 72 65 70 6c 79')), write(hex('88 02 03 e8'))]);
    assert.equal(rec.conn.canSend, false);
    assert.equal(rec.conn.send('too late', false), false);
    rec.conn.flushClose();
    rec.feed(frame(0x1, 'ignored'));
    assert.equal(rec.events.length, 4, 'one close frame, nothing after it');
  });
  test('the close frame owed after a failure waits for flushClose too', () => {
    const rec = open({}, true).feed(frame(0x1, 'ok'), frame(0x3, 'bad'));
    assert.deepEqual(rec.events.map((e) => e.t), ['message', 'closed']);
    const { code, reason } = rec.events[1] as Extract<Ev, { t: 'closed' }>;
    assert.equal(code, 1002);
    rec.conn.flushClose();
    assert.deepEqual(rec.events[2], write(Buffer.concat([Buffer.from([0x88, 2 + Buffer.byteLength(reason)]), code2(1002), Buffer.from(reason)])));
    assert.equal(rec.conn.canSend, false);
  });
  test('nothing is owed when we had sent our close first', () => {
    const rec = open({}, true);
    rec.conn.close(1000, '');
    rec.feed(frame(0x8, closeBody(1000)));
    assert.equal(rec.conn.canSend, false);
    rec.conn.flushClose();
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), { t: 'closed', code: 1000, reason: '', wasClean: true, initiator: 'local' }]);
  });
  test('the transport gone while a close frame is owed: nothing can be sent any more', () => {
    const rec = open({}, true).feed(frame(0x8, closeBody(1000)));
    assert.equal(rec.conn.canSend, true);
    rec.conn.terminate('connection lost', 'peer');
    assert.equal(rec.conn.canSend, false);
    assert.equal(rec.conn.send('x', false), false);
    rec.conn.flushClose();
    assert.deepEqual(rec.events, [{ t: 'closed', code: 1000, reason: '', wasClean: true, initiator: 'peer' }], 'closed once, nothing written');
  });
  test('terminate before the handshake → 1006, not clean; once', () => {
    const rec = open();
    rec.conn.terminate('connection reset', 'peer');
    rec.conn.terminate('again', 'peer');
    assert.deepEqual(rec.events, [{ t: 'closed', code: 1006, reason: 'connection reset', wasClean: false, initiator: 'peer' }]);
  });
  test('terminate while closing (close timeout) → 1006, no frame', () => {
    const rec = open();
    rec.conn.close(1000, '');
    rec.conn.terminate('close timeout', 'timeout');
    assert.deepEqual(rec.events, [write(hex('88 02 03 e8')), { t: 'closed', code: 1006, reason: 'close timeout', wasClean: false, initiator: 'timeout' }]);
  });
  test('fail() sends a close with the code and reports it; reasons are cut to fit a control frame', () => {
    const rec = open();
    rec.conn.fail(1011, 'é'.repeat(100));
    assert.deepEqual(rec.events.map((e) => e.t), ['closed', 'write']);
    const frameHex = (rec.events[1] as { hex: string }).hex;
    const bytes = hex(frameHex);
    assert.equal(bytes[0], 0x88);
    assert.ok(bytes[1]! <= 125);
    assert.deepEqual(bytes.subarray(2, 4), code2(1011));
    assert.equal(bytes.subarray(4).toString(), 'é'.repeat(61)); // 122 bytes: a whole character less than 123
    assert.equal(rec.closes().length, 1);
  });
  test('invalid close arguments throw RangeError and send nothing', () => {
    const rec = open();
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.throws(() => rec.conn.close(code), RangeError, String(code));
    assert.throws(() => rec.conn.close(1000, 'x'.repeat(124)), RangeError);
    assert.throws(() => rec.conn.close(1000, 'é'.repeat(62)), RangeError); // 124 bytes
    assert.throws(() => rec.conn.ping(pattern(126)), RangeError);
    assert.deepEqual(rec.events, []);
    assert.equal(rec.conn.state, ReadyState.OPEN);
    assert.equal(rec.conn.close(1000, 'x'.repeat(123)), true);
    // Still a RangeError (a programming error) once closing or closed, not a quiet false.
    assert.throws(() => rec.conn.close(999), RangeError);
    rec.feed(frame(0x8, ''));
    assert.equal(rec.conn.state, ReadyState.CLOSED);
    assert.throws(() => rec.conn.close(1005), RangeError);
  });
  test('DESIGN §5: something unexpected while handling input → 1011, receiveData does not throw', () => {
    const events: string[] = [];
    const conn = new Connection(
      { role: 'server', maxMessageSize: 1 << 20 },
      {
        write: (b) => void events.push(`write ${Buffer.from(b).subarray(0, 4).toString('hex')}`),
        message: () => {
          throw new Error('boom');
        },
        pong() {},
        closed: (info) => {
          events.push(`closed ${info.code} ${info.wasClean} ${info.initiator} ${info.error?.message}`);
          conn.flushClose();
        },
      },
    );
    assert.doesNotThrow(() => conn.receiveData(Buffer.concat([frame(0x1, 'x'), frame(0x1, 'never')])));
    assert.deepEqual(events, ['closed 1011 false error boom', 'write 88' + Buffer.from([2 + 'internal error'.length]).toString('hex') + '03f3']);
  });
});

// ---------------------------------------------------------------------------------------------

/** Feeds `input` in the given pieces to a fresh connection and returns its events. */
function run(input: Buffer, cuts: number[], options: Partial<ConnectionOptions> = {}): Ev[] {
  const rec = open(options);
  let pos = 0;
  for (const cut of [...cuts, input.length]) {
    rec.conn.receiveData(Buffer.from(input.subarray(pos, cut)));
    pos = cut;
  }
  return rec.events;
}

describe('every input split at every byte gives the same events', () => {
  const streams: [string, Buffer[], Partial<ConnectionOptions>][] = [
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
    ['client role: unmasked frames from a server', [sframe(0x1, 'Hello'), sframe(0x2, pattern(70000)), sframe(0x9, 'p'), sframe(0x1, 'a', { fin: false }), sframe(0x0, 'b'), sframe(0x8, closeBody(1000))], { role: 'client', maskKey: () => KEY }],
  ];
  for (const [name, frames, options] of streams) {
    test(`${name}: two pieces at every split point, and byte by byte`, () => {
      const input = Buffer.concat(frames);
      const expected = run(input, [], options);
      assert.ok(expected.length > 1);
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
        const got = run(input, [cut], options);
        if (!isDeepStrictEqual(got, expected)) assert.deepEqual(got, expected, `split at ${cut}`);
      }
      const bytewise = Array.from({ length: input.length }, (_, i) => i);
      assert.deepEqual(run(input, bytewise, options), expected, 'byte by byte');
    });
  }
  test('three pieces at every pair of split points of a fragmented stream', () => {
    const input = Buffer.concat([frame(0x1, 'ab', { fin: false }), frame(0x9, 'p'), frame(0x0, 'cd')]);
    const expected = run(input, []);
    for (let a = 0; a <= input.length; a++) for (let b = a; b <= input.length; b++) assert.deepEqual(run(input, [a, b]), expected, `${a}/${b}`);
  });
});

describe('reassembly', () => {
  test('65536 one-byte fragments arrive as one message with the right content, in bounded memory', () => {
    const n = 65536;
    const content = pattern(n, 13);
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(frame(i === 0 ? 0x2 : 0x0, content.subarray(i, i + 1), { fin: i === n - 1 }));
    let got: Buffer | undefined;
    const conn = new Connection(
      { role: 'server', maxMessageSize: 1 << 20 },
      { write: () => assert.fail('no writes'), message: (d) => ((got = d as Buffer), undefined), pong: () => assert.fail(), closed: () => assert.fail('closed') },
    );
    const input = Buffer.concat(parts);
    // Count reassembly (re)allocations: geometric growth needs O(log n), not one per fragment.
    const allocUnsafe = Buffer.allocUnsafe;
    let allocations = 0;
    Buffer.allocUnsafe = (size: number) => (allocations++, allocUnsafe(size));
    try {
      conn.receiveData(input);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
    assert.ok(allocations <= 40, `${allocations} allocations for ${n} fragments`);
    assert.ok(got);
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
    const got: Buffer[] = [];
    const conn = new Connection({ role: 'server', maxMessageSize: 1 << 20 }, { write() {}, message: (d) => void got.push(d as Buffer), pong() {}, closed() {} });
    conn.receiveData(Buffer.concat([frame(0x2, Buffer.alloc(10, 1), { fin: false }), frame(0x0, Buffer.alloc(10, 2))]));
    conn.receiveData(Buffer.concat([frame(0x2, Buffer.alloc(10, 3), { fin: false }), frame(0x0, Buffer.alloc(10, 4))]));
    conn.receiveData(frame(0x1, 'x', { fin: false }));
    conn.receiveData(frame(0x0, 'y'.repeat(30)));
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
      const key = rand() < 0.9 ? Buffer.from([int(256), int(256), int(256), int(256)]) : false;
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
      const options: Partial<ConnectionOptions> = rand() < 0.2 ? { role: 'client', maskKey: () => KEY, maxMessageSize: 200 } : { maxMessageSize: pick([50, 200, 1 << 20]) };
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
      assert.deepEqual(pieces, whole, `iteration ${iteration}: split ${cuts.join(',')} of ${stream.toString('hex')}`);
      const closes = whole.filter((e) => e.t === 'closed') as Extract<Ev, { t: 'closed' }>[];
      assert.ok(closes.length <= 1, `iteration ${iteration}: closed ${closes.length} times`);
      if (closes.length === 1) {
        const c = closes[0]!;
        // closed is the last event but for the close frame owed (none if we had sent ours: never here).
        assert.equal(whole.at(-2), c, 'closed, then only the close frame');
        assert.match((whole.at(-1) as { hex: string }).hex, /^88/);
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
  test(`seed 0x${FUZZ_SEED.toString(16)}: 300 generated valid conversations give exactly the expected events, in random pieces`, () => {
    const rand = prng(FUZZ_SEED ^ 0x1234);
    const int = (n: number) => Math.floor(rand() * n);
    const sizes = [0, 1, 3, 4, 5, 125, 126, 127, 1000, 65535, 65536, 65537];
    const chars = ['a', 'é', '€', '𝄞', '\u0000', '\ufeff'];
    for (let conversation = 0; conversation < 300; conversation++) {
      const frames: Buffer[] = [];
      const expected: Ev[] = [];
      const key = () => Buffer.from([int(256), int(256), int(256), int(256)]);
      const control = () => {
        const payload = pattern(int(126), 1 + int(3));
        if (rand() < 0.5) {
          frames.push(frame(0x9, payload, { mask: key() }));
          expected.push(write(Buffer.concat([Buffer.from([0x8a, payload.length]), payload])));
        } else {
          frames.push(frame(0xa, payload, { mask: key() }));
          expected.push({ t: 'pong', hex: payload.toString('hex') });
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
        expected.push({ t: 'closed', code, reason: 'bye', wasClean: true, initiator: 'peer' }, write(Buffer.concat([hex('88 02'), code2(code)])));
      }
      const input = Buffer.concat(frames);
      const cuts: number[] = [];
      for (let pos = int(50); pos < input.length; pos += 1 + int(rand() < 0.5 ? 10 : 5000)) cuts.push(pos);
      const got = run(input, cuts);
      if (!isDeepStrictEqual(got, expected)) assert.deepEqual(got, expected, `conversation ${conversation}, cuts ${cuts.join(',')}`);
    }
  });
});
