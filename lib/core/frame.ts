import { Opcode } from './constants.js';
import { ProtocolError } from './errors.js';
import { wordView, wordViewOffset } from './memory-view.js';

/** The decoded fixed part of a frame (RFC 6455 §5.2); one instance is reused per connection. */
export class FrameHeader {
  fin = false;
  opcode = 0;
  masked = false;
  /** The four mask bytes (meaningful when `masked`). */
  readonly mask = new Uint8Array(4);
  payloadLength = 0;
  /** RSV1: the message this frame starts is compressed (RFC 7692 §6). */
  compressed = false;
}

/** The RSV1 bit of a frame's first byte: set on the first frame of a compressed message (RFC 7692 §6). */
export const RSV1 = 0x40;

export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/**
 * Decodes a frame header from buf[pos, end) into `out`.
 * Returns the header length, or 0 when more bytes are needed.
 * Throws ProtocolError for what is wrong whatever the connection state: RSV bits (RSV1 is allowed
 * with `compression`, on the first frame of a data message), reserved opcodes, control-frame
 * rules, a 64-bit length with the top bit set, a data frame longer than `maxPayload` (what is
 * left of the message size limit; `maxCompressedPayload` for a frame with RSV1).
 */
export function readHeader(
  buf: Uint8Array,
  pos: number,
  end: number,
  maxPayload: number,
  out: FrameHeader,
  compression = false,
  maxCompressedPayload = maxPayload,
): number {
  if (end - pos < 2) return 0;
  const b0 = buf[pos]!;
  const b1 = buf[pos + 1]!;
  const opcode = b0 & 0x0f;
  const compressed = (b0 & RSV1) !== 0;
  // RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them. permessage-deflate defines RSV1 for
  // the first frame of a data message only (RFC 7692 §6).
  if ((b0 & 0x70) !== 0) {
    if ((b0 & 0x70) !== RSV1 || !compression) throw new ProtocolError(1002, 'reserved bits set');
    if (isControl(opcode)) throw new ProtocolError(1002, 'RSV1 set on a control frame');
    if (opcode === Opcode.CONT) throw new ProtocolError(1002, 'RSV1 set on a continuation frame');
  }
  if ((opcode > 2 && opcode < 8) || opcode > 10) throw new ProtocolError(1002, `reserved opcode ${opcode}`);
  const fin = (b0 & 0x80) !== 0;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let size = 2 + (masked ? 4 : 0);
  // RFC 6455 §5.5: control frames are never fragmented.
  if (!fin && isControl(opcode)) throw new ProtocolError(1002, 'fragmented control frame');
  if (length === 126) {
    size += 2;
    if (end - pos < size) return 0;
    length = (buf[pos + 2]! << 8) | buf[pos + 3]!;
  } else if (length === 127) {
    size += 8;
    if (end - pos < size) return 0;
    const high = ((buf[pos + 2]! << 24) | (buf[pos + 3]! << 16) | (buf[pos + 4]! << 8) | buf[pos + 5]!) >>> 0;
    // RFC 6455 §5.2: the most significant bit MUST be 0. Anything past 2^53 is over any limit too.
    if (high > 0x1fffff) {
      throw isControl(opcode) ? new ProtocolError(1002, 'control frame payload over 125 bytes') : new ProtocolError(1009, 'frame length out of range');
    }
    const low = ((buf[pos + 6]! << 24) | (buf[pos + 7]! << 16) | (buf[pos + 8]! << 8) | buf[pos + 9]!) >>> 0;
    length = high * 0x1_0000_0000 + low;
  }
  // RFC 6455 §5.5: a control frame carries at most 125 bytes. The minimal-length rule of RFC 6455 §5.2 binds the
  // sender, so a longer length form announcing 125 or less is accepted, as on data frames.
  if (isControl(opcode)) {
    if (length > 125) throw new ProtocolError(1002, 'control frame payload over 125 bytes');
  } else if (length > (compressed ? maxCompressedPayload : maxPayload)) {
    // Checked from the header, before any payload is buffered.
    throw new ProtocolError(1009, 'message too big');
  }
  if (end - pos < size) return 0;
  if (masked) {
    const at = pos + size - 4;
    out.mask[0] = buf[at]!;
    out.mask[1] = buf[at + 1]!;
    out.mask[2] = buf[at + 2]!;
    out.mask[3] = buf[at + 3]!;
  }
  out.fin = fin;
  out.opcode = opcode;
  out.masked = masked;
  out.payloadLength = length;
  out.compressed = compressed;
  return size;
}

/**
 * Below this many bytes a plain byte loop beats the word loop's setup, which on the first frame
 * of a read includes making the read's word view (a small echo message comes alone in its read).
 */
const WORD_LOOP_MIN = 64;

/** The mask twice over, in memory order, read back as one 64-bit word. */
const maskWord = new BigInt64Array(1);
const maskHalves = new Int32Array(maskWord.buffer);
const maskWordBytes = new Uint8Array(maskWord.buffer);

/**
 * XORs data[start, end) in place with `mask`, starting at mask byte `phase` (so a payload can
 * be unmasked piece by piece as it arrives). Works eight bytes at a time once aligned.
 */
export function applyMask(data: Uint8Array, start: number, end: number, mask: Uint8Array, phase: number): void {
  let i = start;
  let p = phase & 3;
  if (end - start >= WORD_LOOP_MIN) {
    // Eight bytes per step is twice as fast as four: V8 compiles BigInt64Array loads, XORs and
    // stores to plain 64-bit operations.
    const view = wordView(data);
    const offset = wordViewOffset(data);
    for (const aligned = start + ((8 - ((offset + start) & 7)) & 7); i < aligned; i++) {
      data[i]! ^= mask[p]!;
      p = (p + 1) & 3;
    }
    maskWordBytes[0] = mask[p]!;
    maskWordBytes[1] = mask[(p + 1) & 3]!;
    maskWordBytes[2] = mask[(p + 2) & 3]!;
    maskWordBytes[3] = mask[(p + 3) & 3]!;
    maskHalves[1] = maskHalves[0]!;
    const word = maskWord[0]!;
    const words = (end - i) >>> 3;
    let w = (offset + i) >>> 3;
    const last = w + words;
    // Four words per step: V8 does not unroll loops, and the step's own cost is half the work.
    for (const last4 = last - 3; w < last4; w += 4) {
      view[w]! ^= word;
      view[w + 1]! ^= word;
      view[w + 2]! ^= word;
      view[w + 3]! ^= word;
    }
    for (; w < last; w++) view[w]! ^= word;
    i += words << 3;
  }
  for (; i < end; i++) {
    data[i]! ^= mask[p]!;
    p = (p + 1) & 3;
  }
}

/** Bytes of the header of a frame with a payload of `length`. */
export function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/** Writes a frame header at out[at]; `opcode` may carry RSV1 (a compressed message). Returns where the payload goes. */
export function writeHeader(out: Uint8Array, at: number, opcode: number, fin: boolean, length: number, mask: Uint8Array | undefined): number {
  out[at] = (fin ? 0x80 : 0) | opcode;
  const maskBit = mask ? 0x80 : 0;
  let pos: number;
  if (length < 126) {
    out[at + 1] = maskBit | length;
    pos = at + 2;
  } else if (length < 0x10000) {
    out[at + 1] = maskBit | 126;
    out[at + 2] = length >>> 8;
    out[at + 3] = length & 0xff;
    pos = at + 4;
  } else {
    out[at + 1] = maskBit | 127;
    const high = Math.floor(length / 0x1_0000_0000);
    out[at + 2] = high >>> 24;
    out[at + 3] = (high >>> 16) & 0xff;
    out[at + 4] = (high >>> 8) & 0xff;
    out[at + 5] = high & 0xff;
    out[at + 6] = length >>> 24;
    out[at + 7] = (length >>> 16) & 0xff;
    out[at + 8] = (length >>> 8) & 0xff;
    out[at + 9] = length & 0xff;
    pos = at + 10;
  }
  if (mask) {
    out[pos] = mask[0]!;
    out[pos + 1] = mask[1]!;
    out[pos + 2] = mask[2]!;
    out[pos + 3] = mask[3]!;
    pos += 4;
  }
  return pos;
}

/**
 * Writes a whole frame into out[at, …): header, then the payload (UTF-8 for a string, whose
 * byte length the caller measured), masked in place with `mask` (client role, RFC 6455 §5.3). Returns
 * the offset after it. The caller's data is never touched.
 */
export function writeFrame(
  out: Buffer,
  at: number,
  opcode: number,
  payload: string | Uint8Array,
  length: number,
  mask: Uint8Array | undefined,
  fin = true,
): number {
  const start = writeHeader(out, at, opcode, fin, length, mask);
  if (typeof payload === 'string') out.write(payload, start, length, 'utf8');
  else out.set(payload, start);
  if (mask) applyMask(out, start, start + length, mask, 0);
  return start + length;
}

/** Payloads at least this large are written after their header instead of copied behind it. */
export const COPY_LIMIT = 16 * 1024;

/** An encoded frame, ready for any number of connections. */
export type EncodedFrame = Buffer | [Buffer, Uint8Array];

/**
 * Encodes one frame. Returns one buffer (header and payload together) or, for a large unmasked
 * binary payload, [header, payload] so the payload is not copied. A string is written as UTF-8.
 * With `mask` (client role, RFC 6455 §5.3) the payload is copied and masked; the caller's data is untouched.
 */
export function encodeFrame(
  opcode: number,
  payload: string | Uint8Array,
  fin = true,
  mask?: Uint8Array,
): EncodedFrame {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (!mask && typeof payload !== 'string' && length >= COPY_LIMIT) {
    const header = Buffer.allocUnsafe(headerSize(length, false));
    writeHeader(header, 0, opcode, fin, length, undefined);
    return [header, payload];
  }
  const frame = Buffer.allocUnsafe(headerSize(length, mask !== undefined) + length);
  writeFrame(frame, 0, opcode, payload, length, mask, fin);
  return frame;
}

/** The payload of a close frame (RFC 6455 §5.5.1): a 2-byte code then a UTF-8 reason; none for 1005. */
export function closePayload(code: number, reason: string): Buffer {
  if (code === 1005) return Buffer.alloc(0);
  const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, 'utf8');
  return payload;
}
