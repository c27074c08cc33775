/**
 * Shared memory for outgoing frames. Peers encode their frames here one after the other and
 * hand their socket a view of exactly what they wrote: one cheap view per flush, instead of a
 * buffer per tick and peer (allocating a Buffer costs more than encoding a small frame).
 * A write the socket cannot finish at once keeps its view, and so its arena, alive; the next
 * frames simply go to a fresh arena. Nothing is ever reused, so nothing can be overwritten.
 */
const ARENA_SIZE = 256 * 1024;
/**
 * Frames larger than this get a buffer of their own instead of a slice of the arena. It holds a
 * 64 KiB message with its header: a fresh 64 KiB buffer per message costs more than its
 * encoding, as the allocator hands the freed ones back to the system and every new one faults
 * its pages in again (~2× the time per 64 KiB text echo, measured).
 */
export const ARENA_FRAME_LIMIT = 65 * 1024;

class WriteArena {
  buffer: Buffer = Buffer.allocUnsafeSlow(ARENA_SIZE);
  /** Bytes of `buffer` already claimed. */
  used = 0;

  /**
   * Claims `size` bytes (at most ARENA_FRAME_LIMIT); returns where they start in `buffer`. A
   * claim leaves room to extend it by ARENA_FRAME_LIMIT, so a tick's output rarely straddles two
   * arenas (that would cost a second piece and a writev).
   */
  claim(size: number): number {
    if (this.used + size + ARENA_FRAME_LIMIT > this.buffer.length) {
      this.buffer = Buffer.allocUnsafeSlow(ARENA_SIZE);
      this.used = 0;
    }
    const at = this.used;
    this.used += size;
    return at;
  }

  /** Claims `size` more bytes right after a claim that ended at `end` of `buffer`, if nothing was claimed since. */
  extend(buffer: Buffer, end: number, size: number): boolean {
    if (buffer !== this.buffer || end !== this.used || end + size > buffer.length) return false;
    this.used = end + size;
    return true;
  }
}

export const arena = new WriteArena();
