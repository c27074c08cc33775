import { COPY_LIMIT, type EncodedFrame, headerSize, writeFrame, writeHeader } from './frame.js';
import { ARENA_FRAME_LIMIT, arena } from './write-arena.js';

/** What an Outbox hands over: one piece (the common case) or several, in order. */
export type Output = Uint8Array | Uint8Array[];

/**
 * The bytes one connection owes its peer, until the shell takes them. Frames are encoded
 * straight into the shared write arena: the open piece is bytes [pieceStart, pieceEnd) of
 * `piece`, and consecutive frames extend it, so a tick's output is usually one view of the
 * arena. Large payloads are kept as pieces of their own instead of being copied.
 */
export class Outbox {
  /** Bytes waiting to be taken. */
  bytes = 0;
  private piece: Buffer | null = null;
  private pieceStart = 0;
  private pieceEnd = 0;
  private first: Uint8Array | null = null;
  private more: Uint8Array[] | null = null;

  /** Encodes one frame (masked with `mask` in the client role, RFC 6455 §5.3); `opcode` may carry RSV1. */
  frame(opcode: number, payload: string | Uint8Array, mask: Uint8Array | undefined): void {
    if (mask === undefined && typeof payload !== 'string' && payload.length >= COPY_LIMIT) {
      // A large unmasked payload goes out as it is, after its header: no copy.
      const size = headerSize(payload.length, false);
      const header = this.reserve(size);
      this.pieceEnd = writeHeader(header, this.pieceEnd, opcode, true, payload.length, undefined);
      this.bytes += size;
      this.add(payload);
      return;
    }
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const size = headerSize(length, mask !== undefined) + length;
    const out = this.reserve(size);
    this.pieceEnd = writeFrame(out, this.pieceEnd, opcode, payload, length, mask);
    this.bytes += size;
  }

  /** Appends a frame encoded once for many connections (broadcast). */
  encoded(frame: EncodedFrame): void {
    if (Array.isArray(frame)) {
      this.copy(frame[0]);
      this.add(frame[1]);
    } else this.copy(frame);
  }

  /** Appends an HTTP head (ASCII). */
  text(head: string): void {
    const out = this.reserve(head.length);
    this.pieceEnd += out.write(head, this.pieceEnd, 'latin1');
    this.bytes += head.length;
  }

  /** Hands over everything written since the last call, or null if nothing was. */
  take(): Output | null {
    this.seal();
    const first = this.first;
    const more = this.more;
    this.first = null;
    this.more = null;
    this.bytes = 0;
    if (first === null || more === null) return first;
    more.unshift(first);
    return more;
  }

  /** Forgets what was not taken: the transport is gone. */
  discard(): void {
    this.take();
  }

  private copy(bytes: Uint8Array): void {
    if (bytes.length >= COPY_LIMIT) return this.add(bytes);
    const out = this.reserve(bytes.length);
    out.set(bytes, this.pieceEnd);
    this.pieceEnd += bytes.length;
    this.bytes += bytes.length;
  }

  /** Room for `size` more bytes at `pieceEnd` of the returned buffer: the open piece grows, or a new one starts. */
  private reserve(size: number): Buffer {
    if (this.piece !== null && arena.extend(this.piece, this.pieceEnd, size)) return this.piece;
    this.seal();
    if (size > ARENA_FRAME_LIMIT) {
      this.piece = Buffer.allocUnsafe(size);
      this.pieceStart = this.pieceEnd = 0;
    } else {
      this.pieceStart = this.pieceEnd = arena.claim(size);
      this.piece = arena.buffer;
    }
    return this.piece;
  }

  /** Adds bytes as a piece of their own, after what is already there. */
  private add(bytes: Uint8Array): void {
    this.seal();
    this.bytes += bytes.length;
    if (this.first === null) this.first = bytes;
    else (this.more ??= []).push(bytes);
  }

  /** Closes the open piece, so what follows goes after it. */
  private seal(): void {
    const piece = this.piece;
    if (piece === null) return;
    this.piece = null;
    if (this.pieceEnd === this.pieceStart) return;
    const bytes = piece.subarray(this.pieceStart, this.pieceEnd);
    if (this.first === null) this.first = bytes;
    else (this.more ??= []).push(bytes);
  }
}
