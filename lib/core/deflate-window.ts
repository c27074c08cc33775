/**
 * The last 2^windowBits bytes of a stream of messages: the LZ77 window that a compression context
 * carries over to the next message (RFC 7692 §7.1.1). Given as the preset dictionary of the next
 * message's raw deflate or inflate, it lets a one-shot zlib call continue the stream. Its memory
 * is taken at the first message.
 */
export class DeflateWindow {
  private buffer: Buffer | null = null;
  private length = 0;
  private readonly capacity: number;

  constructor(windowBits: number) {
    this.capacity = 1 << windowBits;
  }

  /** The window's bytes, oldest first; undefined while nothing was added. */
  get bytes(): Buffer | undefined {
    return this.length === 0 ? undefined : this.buffer!.subarray(0, this.length);
  }

  /** Adds a message's uncompressed bytes, keeping only the last `capacity` bytes of the stream. */
  append(data: Uint8Array): void {
    const capacity = this.capacity;
    const buffer = (this.buffer ??= Buffer.allocUnsafe(capacity));
    if (data.length >= capacity) {
      buffer.set(data.subarray(data.length - capacity));
      this.length = capacity;
      return;
    }
    const kept = Math.min(this.length, capacity - data.length);
    buffer.copyWithin(0, this.length - kept, this.length);
    buffer.set(data, kept);
    this.length = kept + data.length;
  }
}
