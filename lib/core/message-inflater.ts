import { constants as bufferConstants } from 'node:buffer';
import { constants, inflateRawSync } from 'node:zlib';
import { DeflateWindow } from './deflate-window.js';
import { ProtocolError } from './errors.js';
import type { DeflateAgreement } from './permessage-deflate.js';

/** RFC 7692 §7.2.2: appended to a compressed message before it is inflated. */
const SYNC_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/**
 * The first guess at what a compressed message inflates to, as a multiple of its size, within
 * zlib's smallest output chunk and its default one: a small message gets a small buffer rather
 * than 16 KiB kept alive until a collection; one that inflates further takes more chunks.
 */
const EXPECTED_RATIO = 8;
/** Inputs up to this size are assembled in one shared buffer (inflating is synchronous). */
const SCRATCH_SIZE = 64 * 1024;
let scratch: Buffer | null = null;

/**
 * Decompresses the messages one side receives (RFC 7692 §7.2.2): each with one synchronous raw
 * inflate that stops as soon as the output passes the limit. Without context takeover it keeps no
 * state between messages; with it, the last window of what it inflated is the next one's dictionary.
 */
export class MessageInflater {
  private readonly window: DeflateWindow | null;

  constructor(agreement: DeflateAgreement) {
    this.window = agreement.receiveContextTakeover ? new DeflateWindow(agreement.receiveWindowBits) : null;
  }

  /**
   * Inflates the compressed payload bytes[start, end) of one message into at most `limit` bytes.
   * Throws a ProtocolError: 1009 past the limit, 1007 for data that does not inflate.
   */
  inflate(bytes: Uint8Array, start: number, end: number, limit: number): Buffer {
    const input = withSyncTail(bytes, start, end);
    const dictionary = this.window?.bytes;
    let out: Buffer;
    try {
      out = inflateRawSync(input, {
        finishFlush: constants.Z_SYNC_FLUSH,
        chunkSize: Math.max(Math.min((end - start) * EXPECTED_RATIO, constants.Z_DEFAULT_CHUNK, limit), constants.Z_MIN_CHUNK),
        maxOutputLength: Math.min(Math.max(limit, 1), bufferConstants.MAX_LENGTH),
        ...(dictionary === undefined ? {} : { dictionary }),
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new ProtocolError(1009, 'message too big once inflated');
      if (code?.startsWith('Z_')) throw new ProtocolError(1007, `compressed data does not inflate: ${(err as Error).message}`);
      throw err;
    }
    if (out.length > limit) throw new ProtocolError(1009, 'message too big once inflated');
    this.window?.append(out);
    return out;
  }
}

/** bytes[start, end) followed by the sync tail, in one buffer. */
function withSyncTail(bytes: Uint8Array, start: number, end: number): Buffer {
  const size = end - start + SYNC_TAIL.length;
  const input = size <= SCRATCH_SIZE ? (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_SIZE)) : Buffer.allocUnsafe(size);
  input.set(bytes.subarray(start, end), 0);
  input.set(SYNC_TAIL, end - start);
  return input.subarray(0, size);
}
