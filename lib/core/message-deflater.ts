import { constants, deflateRawSync, type ZlibOptions } from 'node:zlib';
import type { DeflateSettings } from './deflate-options.js';
import { DeflateWindow } from './deflate-window.js';
import type { DeflateAgreement } from './permessage-deflate.js';

/** RFC 7692 §7.2.1: the 00 00 FF FF that a sync flush ends with, removed from every compressed message. */
const SYNC_TAIL = 4;
/** The most a sync flush adds after the compressed data: an empty stored block and its byte alignment. */
const SYNC_FLUSH_BOUND = 8;

/**
 * Compresses the messages one side sends (RFC 7692 §7.2.1): each with one synchronous raw deflate
 * ending in a sync flush, whose last four bytes are cut. Without context takeover it keeps no state
 * between messages; with it, the last window of what it sent compressed is the next one's dictionary.
 */
export class MessageDeflater {
  /**
   * Compressing a message gives the same bytes on every connection whose deflater has this key
   * (a broadcast compresses once per key); null when this one keeps a context of its own.
   */
  readonly sharedKey: string | null;
  private readonly threshold: number;
  /** False when the peer asked for an 8-bit window, which zlib cannot produce: nothing is compressed. */
  private readonly enabled: boolean;
  private readonly options: ZlibOptions;
  private readonly window: DeflateWindow | null;

  constructor(agreement: DeflateAgreement, settings: DeflateSettings) {
    const windowBits = agreement.sendWindowBits;
    this.threshold = settings.threshold;
    this.enabled = windowBits >= 9;
    this.options = { finishFlush: constants.Z_SYNC_FLUSH, level: settings.level, memLevel: settings.memLevel, windowBits };
    this.window = agreement.sendContextTakeover ? new DeflateWindow(windowBits) : null;
    this.sharedKey = this.window === null ? `${windowBits}/${settings.level}/${settings.memLevel}` : null;
  }

  /** True when a message of `byteLength` bytes is to be compressed: compression is possible and it reaches the threshold. */
  wants(byteLength: number): boolean {
    return this.enabled && byteLength >= this.threshold;
  }

  /**
   * The compressed payload of a message (to be sent with RSV1), or null when it goes as it is:
   * under the threshold, or not smaller compressed.
   */
  compressMessage(data: string | Uint8Array): Buffer | null {
    if (!this.enabled) return null;
    if (typeof data === 'string') {
      if (data.length * 3 < this.threshold) return null;
      data = Buffer.from(data);
    }
    return data.length < this.threshold ? null : this.compress(data);
  }

  /**
   * Compresses `data` whatever its size. Without a kept context, null when the result is not
   * smaller: the message is better sent as it is. With one, the result is always used: only
   * compressed messages pass through the peer's decompression (RFC 7692 §6.2), so a small
   * message that does not shrink on its own is what lets the next ones refer back to it.
   */
  compress(data: Uint8Array): Buffer | null {
    const window = this.window;
    const dictionary = window?.bytes;
    // One output buffer of the size the result can reach: zlib's default is a 16 KiB chunk per
    // call, which a small message would keep alive (and a queued one pin) until a collection.
    const chunkSize = Math.max(compressedBound(data.length) + SYNC_FLUSH_BOUND, constants.Z_MIN_CHUNK);
    const out = deflateRawSync(data, { ...this.options, chunkSize, ...(dictionary === undefined ? {} : { dictionary }) });
    const length = out.length - SYNC_TAIL;
    if (window === null) return length < data.length ? out.subarray(0, length) : null;
    window.append(data);
    return out.subarray(0, length);
  }
}

/**
 * The most a sender's compressor may make of a message of `size` bytes: zlib's deflateBound for
 * any window and memLevel. A compressed message is refused from its frame headers only past this,
 * so that a message of maxMessageSize bytes that did not shrink still gets through.
 */
export function compressedBound(size: number): number {
  return size + Math.floor(size / 32) + Math.floor(size / 128) + Math.floor(size / 2048) + 13;
}
