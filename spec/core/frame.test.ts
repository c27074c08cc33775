/**
 * lib/frame.ts: header decoding, masking, encoding, close payloads.
 * Vectors are RFC 6455 §5.7; expected bytes are written out by hand, never produced by the code under test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMask, closePayload, encodeFrame, FrameHeader, isControl, readHeader } from '../../lib/core/frame.js';
import { ProtocolError } from '../../lib/core/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = hex('37fa213d');

/** encodeFrame may return [header, payload]; the wire sees them concatenated. */
function wire(frame: Buffer | [Buffer, Uint8Array]): Buffer {
  return Array.isArray(frame) ? Buffer.concat([frame[0], frame[1]]) : frame;
}

/** The reference mask: the RFC's `j = i MOD 4` loop, on a copy. */
function naiveMask(data: Uint8Array, start: number, end: number, mask: Uint8Array, phase: number): Uint8Array {
  const out = Uint8Array.from(data);
  for (let i = start; i < end; i++) out[i] = out[i]! ^ mask[(phase + i - start) & 3]!;
  return out;
}

function throwsCode(fn: () => unknown, code: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.closeCode, code);
    return true;
  });
}

const bytes256 = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff));
const bytes64k = Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 31 + 11) & 0xff));

describe('RFC 6455 §5.7 vectors: encodeFrame', () => {
  test('unmasked "Hello" text', () => {
    assert.deepEqual(wire(encodeFrame(0x1, 'Hello')), hex('81 05 48 65 6c 6c 6f'));
  });
  test('masked "Hello" text (key 37 fa 21 3d)', () => {
    assert.deepEqual(wire(encodeFrame(0x1, 'Hello', true, KEY)), hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
  });
  test('masked "Hello" given as bytes leaves the caller\'s bytes untouched', () => {
    const payload = Buffer.from('Hello');
    assert.deepEqual(wire(encodeFrame(0x1, payload, true, KEY)), hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(payload, Buffer.from('Hello'));
  });
  test('fragmented unmasked text "Hel" + "lo"', () => {
    assert.deepEqual(wire(encodeFrame(0x1, 'Hel', false)), hex('01 03 48 65 6c'));
    assert.deepEqual(wire(encodeFrame(0x0, 'lo', true)), hex('80 02 6c 6f'));
  });
  test('unmasked ping and masked pong with "Hello"', () => {
    assert.deepEqual(wire(encodeFrame(0x9, 'Hello')), hex('89 05 48 65 6c 6c 6f'));
    assert.deepEqual(wire(encodeFrame(0xa, 'Hello', true, KEY)), hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
  });
  test('256 bytes binary: 16-bit length', () => {
    assert.deepEqual(wire(encodeFrame(0x2, bytes256)), Buffer.concat([hex('82 7e 01 00'), bytes256]));
  });
  test('64 KiB binary: 64-bit length', () => {
    assert.deepEqual(wire(encodeFrame(0x2, bytes64k)), Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), bytes64k]));
  });
  test('length boundaries 125/126/65535/65536 pick the minimal form', () => {
    assert.deepEqual(wire(encodeFrame(0x2, Buffer.alloc(125))).subarray(0, 2), hex('82 7d'));
    assert.deepEqual(wire(encodeFrame(0x2, Buffer.alloc(126))).subarray(0, 4), hex('82 7e 00 7e'));
    assert.deepEqual(wire(encodeFrame(0x2, Buffer.alloc(65535))).subarray(0, 4), hex('82 7e ff ff'));
    assert.deepEqual(wire(encodeFrame(0x2, Buffer.alloc(65536))).subarray(0, 10), hex('82 7f 00 00 00 00 00 01 00 00'));
  });
  test('a masked 64 KiB frame: header, key, then payload XOR key', () => {
    const out = wire(encodeFrame(0x2, bytes64k, true, KEY));
    assert.deepEqual(out.subarray(0, 14), hex('82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d'));
    assert.deepEqual(out.subarray(14), Buffer.from(naiveMask(bytes64k, 0, bytes64k.length, KEY, 0)));
  });
  test('a string payload with multi-byte UTF-8 is counted in bytes', () => {
    // "é€" is c3 a9 e2 82 ac: 5 bytes, 2 characters.
    assert.deepEqual(wire(encodeFrame(0x1, 'é€')), hex('81 05 c3 a9 e2 82 ac'));
    const long = 'é'.repeat(100); // 200 bytes: 16-bit length form
    assert.deepEqual(wire(encodeFrame(0x1, long)).subarray(0, 4), hex('81 7e 00 c8'));
  });
  test('empty payloads', () => {
    assert.deepEqual(wire(encodeFrame(0x8, Buffer.alloc(0))), hex('88 00'));
    assert.deepEqual(wire(encodeFrame(0x9, '', true, KEY)), hex('89 80 37 fa 21 3d'));
  });
});

describe('RFC 6455 §5.7 vectors: readHeader', () => {
  function decode(bytes: Buffer, max = Number.MAX_SAFE_INTEGER): { size: number; h: FrameHeader } {
    const h = new FrameHeader();
    return { size: readHeader(bytes, 0, bytes.length, max, h), h };
  }
  test('unmasked "Hello"', () => {
    const { size, h } = decode(hex('81 05 48 65 6c 6c 6f'));
    assert.equal(size, 2);
    assert.deepEqual([h.fin, h.opcode, h.masked, h.payloadLength], [true, 1, false, 5]);
  });
  test('masked "Hello": the key is read', () => {
    const { size, h } = decode(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.equal(size, 6);
    assert.deepEqual([h.fin, h.opcode, h.masked, h.payloadLength], [true, 1, true, 5]);
    assert.deepEqual(Buffer.from(h.mask), KEY);
  });
  test('fragments', () => {
    let { size, h } = decode(hex('01 03 48 65 6c'));
    assert.deepEqual([size, h.fin, h.opcode, h.payloadLength], [2, false, 1, 3]);
    ({ size, h } = decode(hex('80 02 6c 6f')));
    assert.deepEqual([size, h.fin, h.opcode, h.payloadLength], [2, true, 0, 2]);
  });
  test('ping and masked pong', () => {
    let { h } = decode(hex('89 05 48 65 6c 6c 6f'));
    assert.deepEqual([h.opcode, h.masked, h.payloadLength], [9, false, 5]);
    ({ h } = decode(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58')));
    assert.deepEqual([h.opcode, h.masked, h.payloadLength], [10, true, 5]);
  });
  test('256 bytes: 82 7E 0100', () => {
    const { size, h } = decode(hex('82 7e 01 00'));
    assert.deepEqual([size, h.opcode, h.payloadLength], [4, 2, 256]);
  });
  test('64 KiB: 82 7F 0000000000010000', () => {
    const { size, h } = decode(hex('82 7f 00 00 00 00 00 01 00 00'));
    assert.deepEqual([size, h.opcode, h.payloadLength], [10, 2, 65536]);
  });
  test('masked 64-bit length: 14-byte header', () => {
    const { size, h } = decode(hex('82 ff 00 00 00 00 00 01 00 00 01 02 03 04'));
    assert.deepEqual([size, h.masked, h.payloadLength, [...h.mask]], [14, true, 65536, [1, 2, 3, 4]]);
  });
  test('largest safe 64-bit length (2^53 - 1) decodes exactly', () => {
    const { h } = decode(hex('82 7f 00 1f ff ff ff ff ff ff'));
    assert.equal(h.payloadLength, Number.MAX_SAFE_INTEGER);
  });
  test('every proper prefix of a header needs more bytes (returns 0, leaves `out` alone)', () => {
    for (const full of [
      hex('81 85 37 fa 21 3d'),
      hex('82 fe 01 00 37 fa 21 3d'),
      hex('82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d'),
      hex('82 7f 00 00 00 00 00 01 00 00'),
      hex('88 80 01 02 03 04'),
    ]) {
      for (let n = 0; n < full.length; n++) {
        const h = new FrameHeader();
        assert.equal(readHeader(full, 0, n, 1 << 20, h), 0, `${full.toString('hex')} cut at ${n}`);
        assert.equal(h.payloadLength, 0);
      }
      assert.equal(readHeader(full, 0, full.length, 1 << 20, new FrameHeader()), full.length);
    }
  });
  test('reads at an offset inside a larger buffer', () => {
    const buf = Buffer.concat([hex('ff ff ff'), hex('82 7e 01 00'), hex('ee')]);
    const h = new FrameHeader();
    assert.equal(readHeader(buf, 3, buf.length, 1 << 20, h), 4);
    assert.equal(h.payloadLength, 256);
  });
});

describe('readHeader rejects (RFC 6455 §5.2, §5.5)', () => {
  const read = (bytes: Buffer, max = 1 << 20) => () => readHeader(bytes, 0, bytes.length, max, new FrameHeader());
  test('each RSV bit → 1002', () => {
    for (const rsv of [0x40, 0x20, 0x10, 0x70]) throwsCode(read(Buffer.from([0x81 | rsv, 0x00])), 1002);
  });
  test('opcodes 3–7 and 11–15 → 1002; 0, 1, 2, 8, 9, 10 pass', () => {
    for (let op = 0; op < 16; op++) {
      const bytes = Buffer.from([0x80 | op, 0x00]);
      if ([0, 1, 2, 8, 9, 10].includes(op)) assert.equal(readHeader(bytes, 0, 2, 100, new FrameHeader()), 2, `opcode ${op}`);
      else throwsCode(read(bytes), 1002);
    }
  });
  test('fragmented control frames → 1002', () => {
    for (const op of [0x8, 0x9, 0xa]) throwsCode(read(Buffer.from([op, 0x00])), 1002);
  });
  test('control frames over 125 bytes → 1002, 125 passes', () => {
    for (const op of [0x8, 0x9, 0xa]) {
      throwsCode(read(Buffer.from([0x80 | op, 0x7e, 0x00, 0x7e])), 1002);
      throwsCode(read(Buffer.from([0x80 | op, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x7e])), 1002);
      assert.equal(readHeader(Buffer.from([0x80 | op, 0x7d]), 0, 2, 0, new FrameHeader()), 2);
    }
  });
  test('a control frame with a non-minimal length form is read like a data frame (the minimal-length rule binds the sender)', () => {
    for (const op of [0x8, 0x9, 0xa]) {
      const header = new FrameHeader();
      assert.equal(readHeader(Buffer.from([0x80 | op, 0x7e, 0x00, 0x05]), 0, 4, 0, header), 4);
      assert.equal(header.payloadLength, 5);
      assert.equal(readHeader(Buffer.from([0x80 | op, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x7d]), 0, 10, 0, header), 10);
      assert.equal(header.payloadLength, 125);
    }
  });
  test('64-bit length with the top bit set → 1009, however large the limit', () => {
    throwsCode(read(hex('82 7f 80 00 00 00 00 00 00 00'), Number.MAX_SAFE_INTEGER), 1009);
    throwsCode(read(hex('82 7f ff ff ff ff ff ff ff ff'), Number.MAX_SAFE_INTEGER), 1009);
    // Masked: as soon as the whole 14-byte header is there, before any payload.
    throwsCode(read(hex('82 ff 80 00 00 00 00 00 00 00 01 02 03 04'), Number.MAX_SAFE_INTEGER), 1009);
  });
  test('a length past 2^53 → 1009 even with no limit at all (it cannot be represented exactly)', () => {
    throwsCode(read(hex('82 7f 00 20 00 00 00 00 00 00'), Infinity), 1009);
    throwsCode(read(hex('82 7f 7f ff ff ff ff ff ff ff'), Infinity), 1009);
    assert.equal(readHeader(hex('82 7f 00 1f ff ff ff ff ff ff'), 0, 10, Infinity, new FrameHeader()), 10);
  });
  test('a data frame over the limit → 1009 from the header alone, at exactly limit + 1', () => {
    throwsCode(read(hex('82 65'), 100), 1009);
    assert.equal(readHeader(hex('82 64'), 0, 2, 100, new FrameHeader()), 2);
    throwsCode(read(hex('81 7e 01 01'), 256), 1009);
    assert.equal(readHeader(hex('81 7e 01 00'), 0, 4, 256, new FrameHeader()), 4);
    throwsCode(read(hex('80 7f 00 00 00 00 00 01 00 01'), 65536), 1009);
    // A continuation is limited by what is left of the message.
    throwsCode(read(hex('80 01'), 0), 1009);
  });
  test('the limit does not apply to control frames', () => {
    assert.equal(readHeader(hex('89 7d'), 0, 2, 0, new FrameHeader()), 2);
  });
});

describe('applyMask', () => {
  const mask = hex('a1 b2 c3 d4');
  test('matches the naive loop for lengths 0..300, phases 0..3 and byte offsets 0..7', () => {
    const backing = new Uint8Array(320 + 8);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 17) & 0xff;
    for (let offset = 0; offset < 8; offset++) {
      for (let len = 0; len <= 300; len++) {
        for (let phase = 0; phase < 4; phase++) {
          const data = new Uint8Array(backing.buffer.slice(0), offset, len + 10);
          const expected = naiveMask(data, 3, 3 + len, mask, phase);
          applyMask(data, 3, 3 + len, mask, phase);
          if (!Buffer.from(data).equals(Buffer.from(expected))) {
            assert.fail(`offset ${offset} length ${len} phase ${phase}`);
          }
        }
      }
    }
  });
  test('start 0, whole buffer, inside a pooled Buffer (unaligned byteOffset)', () => {
    for (let len = 0; len <= 300; len++) {
      const data = Buffer.from(Array.from({ length: len }, (_, i) => i & 0xff)); // pooled: arbitrary byteOffset
      const expected = naiveMask(data, 0, len, mask, 0);
      applyMask(data, 0, len, mask, 0);
      assert.deepEqual(new Uint8Array(data), expected, `length ${len}`);
    }
  });
  test('bytes outside [start, end) are untouched', () => {
    const data = new Uint8Array(200).fill(0x55);
    applyMask(data, 50, 150, mask, 1);
    assert.ok(data.subarray(0, 50).every((b) => b === 0x55));
    assert.ok(data.subarray(150).every((b) => b === 0x55));
  });
  test('unmasking piecewise, carrying the phase, equals unmasking at once', () => {
    const original = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 13) & 0xff));
    const once = Buffer.from(original);
    applyMask(once, 0, once.length, mask, 0);
    for (const pieces of [[1], [3], [5, 7], [31, 33, 1], [64, 2, 100, 3]]) {
      const piecewise = Buffer.from(original);
      let pos = 0;
      let k = 0;
      while (pos < piecewise.length) {
        const n = Math.min(pieces[k++ % pieces.length]!, piecewise.length - pos);
        applyMask(piecewise, pos, pos + n, mask, pos); // the phase is the count already done
        pos += n;
      }
      assert.deepEqual(piecewise, once, `pieces ${pieces.join(',')}`);
    }
  });
  test('applying the mask twice restores the data; the RFC example unmasks to "Hello"', () => {
    const data = hex('7f 9f 4d 51 58');
    applyMask(data, 0, 5, KEY, 0);
    assert.equal(data.toString(), 'Hello');
    applyMask(data, 0, 5, KEY, 0);
    assert.deepEqual(data, hex('7f 9f 4d 51 58'));
  });
});

describe('closePayload and isControl', () => {
  test('code then UTF-8 reason', () => {
    assert.deepEqual(closePayload(1000, ''), hex('03 e8'));
    assert.deepEqual(closePayload(4000, 'bye'), hex('0f a0 62 79 65'));
    assert.deepEqual(closePayload(1001, 'é'), hex('03 e9 c3 a9'));
  });
  test('1005 means "no code": an empty payload', () => {
    assert.equal(closePayload(1005, '').length, 0);
  });
  test('isControl', () => {
    assert.deepEqual([0, 1, 2, 8, 9, 10].map(isControl), [false, false, false, true, true, true]);
  });
});
