import { Opcode } from './constants.js';
import { type EncodedFrame, encodeFrame, RSV1 } from './frame.js';
import type { MessageDeflater } from './message-deflater.js';

/**
 * One message for many connections (broadcast, publish), encoded at most once per form: once
 * uncompressed, and once compressed per set of negotiated deflate parameters (RFC 7692), each
 * only when a connection needs it. A connection that keeps its own compression context
 * compresses it for itself.
 */
export class EncodedMessage {
  /** TEXT or BINARY (RFC 6455 §5.2). */
  readonly opcode: number;
  private plainFrame: EncodedFrame | undefined;
  private utf8: Uint8Array | undefined;
  private lengthValue = -1;
  /** Compressed frames by deflater key; null: compressing did not make it smaller. */
  private compressedFrames: Map<string, EncodedFrame | null> | undefined;

  /** `data`: a string goes as text, bytes as binary unless `binary` is false (UTF-8 text given as bytes). */
  constructor(
    /** The message as given. */
    readonly data: string | Uint8Array,
    binary = typeof data !== 'string',
  ) {
    this.opcode = binary ? Opcode.BINARY : Opcode.TEXT;
  }

  /** Bytes of the payload (UTF-8 for a string). */
  get byteLength(): number {
    if (this.lengthValue < 0) this.lengthValue = typeof this.data === 'string' ? Buffer.byteLength(this.data) : this.data.length;
    return this.lengthValue;
  }

  /**
   * The frame as a server sends it to a connection whose deflater is `deflater` (null: no compression).
   * @internal
   */
  frameFor(deflater: MessageDeflater | null): EncodedFrame {
    if (deflater === null || !deflater.wants(this.byteLength)) return this.plain();
    const key = deflater.sharedKey;
    if (key === null) return this.compressedWith(deflater) ?? this.plain();
    const frames = (this.compressedFrames ??= new Map());
    let frame = frames.get(key);
    if (frame === undefined) {
      frame = this.compressedWith(deflater);
      frames.set(key, frame);
    }
    return frame ?? this.plain();
  }

  /**
   * The uncompressed frame.
   * @internal
   */
  plain(): EncodedFrame {
    return (this.plainFrame ??= encodeFrame(this.opcode, this.data));
  }

  private compressedWith(deflater: MessageDeflater): EncodedFrame | null {
    const payload = deflater.compress(this.bytes());
    return payload === null ? null : encodeFrame(this.opcode | RSV1, payload);
  }

  private bytes(): Uint8Array {
    return (this.utf8 ??= typeof this.data === 'string' ? Buffer.from(this.data) : this.data);
  }
}

/**
 * A whole message as the server role sends it to many connections, for `sendEncoded`.
 * @param data - A string goes as text, bytes as binary.
 * @param binary - False sends bytes as a text message (they must be UTF-8).
 * @returns The message, encoded on first use, once per form.
 */
export function encodeMessage(data: string | Uint8Array, binary = typeof data !== 'string'): EncodedMessage {
  return new EncodedMessage(data, binary);
}
