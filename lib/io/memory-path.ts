import type { Clock } from './clock.js';

/** The end of a path that reads: a MemorySocket, seen from the path. */
export interface PathReader {
  /** Hands bytes to the reader; false once it wants no more until it asks (`MemoryPath.readerWantsMore`). */
  deliver(bytes: Buffer): boolean;
  /** The writer's FIN: nothing more will come. */
  deliverEnd(): void;
  /** Bytes the reader holds unread (its stream's buffer). */
  readonly unread: number;
}

/** What a path tells the network it belongs to. */
export interface PathHost {
  readonly clock: Clock;
  /** Something moved: the network is not idle. */
  touched(): void;
  /** Every write as its first bytes reach the reader, for the network's taps. */
  delivered(bytes: Buffer): void;
  /** Data came for a reader that is gone: its end answers with a reset. */
  deadEnd(): void;
}

/** One step of the connection's life that travels on a path, in order with the bytes. */
export type Signal = 'open' | 'refused' | 'reset';

interface Item {
  /** Bytes, the writer's FIN (null), or a signal of the connection's setup. */
  bytes: Buffer | null | Signal;
  due: number;
  /** Bytes of it already read. */
  read: number;
}

/** The most one read hands over, as node:net reads at most 64 KiB from the kernel at a time. */
const READ_BYTES = 64 * 1024;

interface HeldWrite {
  chunks: Buffer[];
  /** The chunks before this one are taken. */
  next: number;
  callback: () => void;
}

/**
 * One direction of a memory connection: what the socket at one end writes, on its way to the
 * socket at the other. A write's chunks are taken while the path holds less than `bufferBytes`
 * (its own queue plus what the reader has not read, as a kernel's buffers would); the write is
 * done once all are, and until then the writer's stream buffers the rest and reports
 * backpressure. Taken bytes arrive in order, `latencyMs` later (without latency: on the
 * microtask queue), in reads of what has arrived, up to 64 KiB, as a kernel hands them out (or
 * in pieces of `pieceBytes` when set). A stalled path holds its bytes until resumed; a cut one
 * loses them. Data for a reader that is gone is lost and answered with a reset, as TCP answers
 * data for a closed socket.
 */
export class MemoryPath {
  /** One-way delay of what is taken from now on, in ms of the network's clock. */
  latencyMs: number;
  /** Deliver in pieces of at most this many bytes (0: reads of up to 64 KiB, as a kernel's). */
  pieceBytes: number;
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private held: HeldWrite | undefined;
  private reader: PathReader | undefined;
  private readerFull = false;
  private readerGone = false;
  private resetSent = false;
  private writerReady = false;
  private stalledFlag = false;
  private cutFlag = false;
  private drainScheduled = false;

  /** @internal */
  constructor(
    private readonly host: PathHost,
    private readonly bufferBytes: number,
    latencyMs: number,
    pieceBytes: number,
    /** Handles a signal when it arrives (the network opens or refuses the connection). */
    private readonly onSignal: (signal: Signal) => void,
  ) {
    this.latencyMs = latencyMs;
    this.pieceBytes = pieceBytes;
  }

  /** True while the reader's end stops reading (the bytes wait, the writer backs up). */
  get stalled(): boolean {
    return this.stalledFlag;
  }

  /** Bytes taken from the writer and not yet read at the other end. */
  get bufferedBytes(): number {
    return this.queuedBytes + (this.readerGone ? 0 : (this.reader?.unread ?? 0));
  }

  /** The reader's end stops reading, as a program that stalls: what comes waits. */
  stall(): void {
    this.stalledFlag = true;
  }

  /** The reader's end reads again. */
  resume(): void {
    if (!this.stalledFlag) return;
    this.stalledFlag = false;
    this.scheduleDrain();
  }

  /** When the next delivery falls due, or undefined when nothing is on its way (stalled, cut, or held by a full reader). */
  get nextDue(): number | undefined {
    if (this.stalledFlag || this.cutFlag || this.readerFull || this.queue.length === 0) return undefined;
    return this.queue[0]!.due;
  }

  /**
   * Connects the reading end.
   * @internal
   */
  attachReader(reader: PathReader): void {
    this.reader = reader;
    this.scheduleDrain();
  }

  /**
   * The writing end may send data now (a client once it is connected).
   * @internal
   */
  writerConnected(): void {
    this.writerReady = true;
    this.takeHeld();
  }

  /**
   * Sends a signal of the connection's setup, in order with the bytes.
   * @internal
   */
  signal(signal: Signal): void {
    this.enqueue(signal);
  }

  /**
   * A write: its chunks are taken while there is room; the callback runs once all are.
   * @internal
   */
  write(chunks: Buffer[], callback: () => void): void {
    if (this.cutFlag) return callback();
    if (this.held !== undefined) throw new Error('a memory socket writes one batch at a time');
    this.held = { chunks, next: 0, callback };
    this.takeHeld();
  }

  /**
   * The writer's FIN, after everything it wrote.
   * @internal
   */
  end(): void {
    this.enqueue(null);
  }

  /**
   * The writer is gone: what it had not got taken is dropped (its callback still runs).
   * @internal
   */
  writerGone(): void {
    const held = this.held;
    this.held = undefined;
    held?.callback();
  }

  /**
   * The reader is gone: what arrives from now on is dropped, and data answered with a reset.
   * @internal
   */
  readerClosed(): void {
    this.readerGone = true;
    this.scheduleDrain();
  }

  /**
   * The reader wants more (its stream's buffer ran low).
   * @internal
   */
  readerWantsMore(): void {
    this.readerFull = false;
    this.scheduleDrain();
  }

  /**
   * The connection is cut: everything on the way and everything later is lost.
   * @internal
   */
  cut(): void {
    this.cutFlag = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.writerGone();
  }

  private takeHeld(): void {
    const held = this.held;
    if (held === undefined || !this.writerReady) return;
    // Copied, as a kernel copies what a socket writes: the reader owns its bytes (it unmasks
    // them in place) and the writer may reuse its own.
    while (held.next < held.chunks.length && this.bufferedBytes < this.bufferBytes) this.enqueue(Buffer.from(held.chunks[held.next++]!));
    if (held.next < held.chunks.length) return;
    this.held = undefined;
    held.callback();
  }

  private enqueue(bytes: Buffer | null | Signal): void {
    if (this.cutFlag) return;
    const latency = this.latencyMs;
    this.queue.push({ bytes, due: this.host.clock.now() + latency, read: 0 });
    if (bytes instanceof Buffer) this.queuedBytes += bytes.length;
    this.host.touched();
    if (latency > 0) this.host.clock.setTimeout(() => this.drain(), latency);
    else this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Hands over, in order, everything due by now, while the reader takes it. */
  private drain(): void {
    const now = this.host.clock.now();
    while (this.queue.length > 0 && !this.stalledFlag && !this.readerFull && this.queue[0]!.due <= now) {
      const { bytes } = this.queue[0]!;
      if (typeof bytes === 'string') {
        this.queue.shift();
        this.host.touched();
        this.onSignal(bytes);
        continue;
      }
      const reader = this.reader;
      if (reader === undefined) return;
      this.host.touched();
      if (this.readerGone) {
        this.dropHead();
        continue;
      }
      if (bytes === null) {
        this.queue.shift();
        reader.deliverEnd();
        // The reader says 'end' on the next tick: what comes after the FIN (a reset) waits for it.
        if (this.queue.length > 0) process.nextTick(() => this.drain());
        return;
      }
      const read = this.read(now);
      const piece = this.pieceBytes > 0 ? this.pieceBytes : read.length;
      for (let at = 0; at < read.length; at += piece) {
        if (!reader.deliver(piece >= read.length ? read : read.subarray(at, at + piece))) this.readerFull = true;
      }
    }
    this.takeHeld();
  }

  /** The head arrived at a reader that is gone: lost, and data is answered with a reset (once). */
  private dropHead(): void {
    const { bytes, read } = this.queue.shift()!;
    if (!(bytes instanceof Buffer)) return;
    this.queuedBytes -= bytes.length - read;
    if (this.resetSent) return;
    this.resetSent = true;
    this.host.deadEnd();
  }

  /** One read: the data due at the head of the queue, up to READ_BYTES. */
  private read(now: number): Buffer {
    const parts: Buffer[] = [];
    let length = 0;
    for (let item = this.queue[0]; item !== undefined && item.due <= now && item.bytes instanceof Buffer && length < READ_BYTES; item = this.queue[0]) {
      const bytes = item.bytes;
      if (item.read === 0) this.host.delivered(bytes);
      const part = bytes.subarray(item.read, item.read + READ_BYTES - length);
      item.read += part.length;
      if (item.read === bytes.length) this.queue.shift();
      parts.push(part);
      length += part.length;
    }
    this.queuedBytes -= length;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  }
}
