/**
 * The one WebSocket frame builder of the tests: any frame, right or wrong, with full control over
 * every header bit (FIN, RSV, opcode, mask, length form, a forged length), and permessage-deflate
 * payloads (RFC 7692) made and read with node:zlib directly.
 *
 * It knows nothing about wspoll (no import from lib/): the tests check the library from the
 * outside, like Autobahn does, so a bug in lib/frame.ts cannot hide in the frames they send.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Everything about a frame but its opcode and payload. */
export interface FrameHeaderOptions {
  /** Default true. */
  fin?: boolean;
  /** The three RSV bits as a number 0..7: 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  rsv?: number;
  /** true (default, a client frame): a random key; false: unmasked; 4 bytes: that key. */
  mask?: boolean | Uint8Array;
  /** Force the length encoding: 7-bit, 16-bit (126) or 64-bit (127). Default: the shortest for the declared length. */
  lengthForm?: 7 | 16 | 64;
  /** Put this length in the header whatever the payload (a forged header). */
  declaredLength?: number | bigint;
}

/** One frame, described. */
export interface FrameOptions extends FrameHeaderOptions {
  opcode: number;
  payload?: Uint8Array | string;
}

/** A string as UTF-8, or a view of the bytes given (not a copy). */
function toBytes(p: Uint8Array | string | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/** XOR `data` with a 4-byte key into `out` at `at` (a new buffer by default). */
export function maskBytes(data: Uint8Array, key: Uint8Array, out: Buffer = Buffer.allocUnsafe(data.length), at = 0): Buffer {
  const n = data.length;
  const k0 = key[0]!, k1 = key[1]!, k2 = key[2]!, k3 = key[3]!;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    out[at + i] = data[i]! ^ k0;
    out[at + i + 1] = data[i + 1]! ^ k1;
    out[at + i + 2] = data[i + 2]! ^ k2;
    out[at + i + 3] = data[i + 3]! ^ k3;
  }
  for (; i < n; i++) out[at + i] = data[i]! ^ key[i & 3]!;
  return out;
}

let keyPool = randomBytes(4096);
let keyOff = 0;
function randomKey(): Buffer {
  if (keyOff + 4 > keyPool.length) {
    keyPool = randomBytes(4096);
    keyOff = 0;
  }
  keyOff += 4;
  return keyPool.subarray(keyOff - 4, keyOff);
}

/** Encode one frame exactly as described, right or wrong. The payload given is never modified. */
export function encodeFrame(o: FrameOptions): Buffer {
  const payload = toBytes(o.payload);
  const fin = o.fin ?? true;
  const rsv = o.rsv ?? 0;
  const declared = o.declaredLength ?? payload.length;
  let form = o.lengthForm;
  if (form === undefined) form = declared < 126 ? 7 : declared < 65536 ? 16 : 64;
  let key: Uint8Array | undefined;
  if (o.mask === undefined || o.mask === true) key = randomKey();
  else if (o.mask !== false) key = o.mask;
  const lenBytes = form === 7 ? 0 : form === 16 ? 2 : 8;
  const hl = 2 + lenBytes + (key ? 4 : 0);
  const out = Buffer.allocUnsafe(hl + payload.length);
  out[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (o.opcode & 0x0f);
  const m = key ? 0x80 : 0;
  if (form === 7) out[1] = m | (Number(declared) & 0x7f);
  else if (form === 16) {
    out[1] = m | 126;
    out.writeUInt16BE(Number(declared) & 0xffff, 2);
  } else {
    out[1] = m | 127;
    out.writeBigUInt64BE(BigInt.asUintN(64, BigInt(declared)), 2);
  }
  if (key) {
    out.set(key.subarray(0, 4), 2 + lenBytes);
    maskBytes(payload, key, out, hl);
  } else payload.copy(out, hl);
  return out;
}

/** The same builder, positionally: `frame(OP.TEXT, 'hi', { fin: false })`. */
export function frame(opcode: number, payload: Uint8Array | string = '', options: FrameHeaderOptions = {}): Buffer {
  return encodeFrame({ ...options, opcode, payload });
}

/** A close frame payload: a 2-byte code (if given) and a reason. */
export function closePayload(code?: number, reason: Uint8Array | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = toBytes(reason);
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code & 0xffff, 0);
  r.copy(b, 2);
  return b;
}

/** A close frame with that code and reason (none: an empty close frame). */
export function closeFrame(code?: number, reason: Uint8Array | string = '', options: FrameHeaderOptions = {}): Buffer {
  return frame(OP.CLOSE, closePayload(code, reason), options);
}

/** Split one message into data frames of `size` bytes (the last may be shorter; `size` 0 = one frame). */
export function fragment(opcode: number, payload: Uint8Array | string, size: number): FrameOptions[] {
  const data = toBytes(payload);
  if (size <= 0 || data.length <= size) return [{ opcode, payload: data }];
  const frames: FrameOptions[] = [];
  for (let off = 0; off < data.length; off += size) {
    const end = Math.min(off + size, data.length);
    frames.push({ opcode: off === 0 ? opcode : OP.CONT, payload: data.subarray(off, end), fin: end === data.length });
  }
  return frames;
}

/** RFC 7692 §7.2.1: the tail a sync flush ends with, cut from a compressed message and put back to inflate it. */
const SYNC_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * A message payload compressed as permessage-deflate sends it (RFC 7692 §7.2.1): raw deflate,
 * sync flush, the trailing 00 00 FF FF removed. `dictionary`: the sender's context (the end of
 * what it compressed before), for context takeover.
 */
export function deflatePayload(payload: Uint8Array | string, options: { windowBits?: number; dictionary?: Uint8Array } = {}): Buffer {
  const out = deflateRawSync(toBytes(payload), { finishFlush: zlibConstants.Z_SYNC_FLUSH, ...options });
  if (!out.subarray(-4).equals(SYNC_TAIL)) throw new Error('a sync flush ends with 00 00 ff ff');
  return out.subarray(0, -4);
}

/**
 * A permessage-deflate payload inflated (RFC 7692 §7.2.2): the tail appended, raw inflate. With a
 * `windowBits` smaller than the sender's, zlib fails ("invalid distance too far back").
 */
export function inflatePayload(payload: Uint8Array, options: { windowBits?: number; dictionary?: Uint8Array } = {}): Buffer {
  return inflateRawSync(Buffer.concat([payload, SYNC_TAIL]), { finishFlush: zlibConstants.Z_SYNC_FLUSH, ...options });
}

/** A frame read back from bytes a library wrote. */
export interface ParsedFrame {
  fin: boolean;
  /** The RSV bits as 0..7 (4 = RSV1). */
  rsv: number;
  opcode: number;
  /** The mask key, or null for an unmasked frame. */
  mask: Buffer | null;
  /** Unmasked. */
  payload: Buffer;
}

/**
 * Bytes a library wrote, read back as frames. The whole input must be whole frames, each with
 * the minimal length form (RFC 6455 §5.2: that rule binds the sender, which is the library here).
 */
export function parseFrames(bytes: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    assert.ok(bytes.length - pos >= 2, `truncated header at ${pos}`);
    const b0 = bytes[pos]!;
    const b1 = bytes[pos + 1]!;
    let at = pos + 2;
    let len = b1 & 0x7f;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
      assert.ok(len >= 126, 'minimal 16-bit length');
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
      assert.ok(len >= 65536, 'minimal 64-bit length');
    }
    let mask: Buffer | null = null;
    if (b1 & 0x80) {
      mask = Buffer.from(bytes.subarray(at, at + 4));
      at += 4;
    }
    assert.ok(at + len <= bytes.length, `truncated payload at ${pos}`);
    const payload = mask ? maskBytes(bytes.subarray(at, at + len), mask) : Buffer.from(bytes.subarray(at, at + len));
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, mask, payload });
    pos = at + len;
  }
  return frames;
}
