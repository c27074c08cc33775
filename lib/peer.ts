import type { Duplex } from 'node:stream';
import type { Timer } from './clock.js';
import { Initiator, Opcode, SendStatus } from './constants.js';
import { type CloseInfo, Connection, type ConnectionHandler, ReadyState, type Role } from './connection.js';
import type { TurnBatching } from './event-queue.js';
import { COPY_LIMIT, encodeFrame, headerSize, writeFrame } from './frame.js';
import type { ResolvedConnectionOptions } from './options.js';
import { readSocket, type SocketReader } from './socket-reader.js';
import { ARENA_FRAME_LIMIT, arena } from './write-arena.js';

/** What a Peer reports to the Server or Client that owns it. */
export interface PeerOwner {
  peerMessage(peer: Peer, data: string | Buffer, binary: boolean): void;
  /** The WebSocket closed; called exactly once per peer. */
  peerClosed(peer: Peer, info: CloseInfo): void;
  /** The socket is gone (after peerClosed). */
  socketClosed?(peer: Peer): void;
}

/**
 * What a queued message costs beyond its bytes (about what its event object takes): a flood of
 * empty messages fills the queue too.
 */
export const EVENT_COST = 64;

/** An encoded frame, ready for any number of sockets. */
export type EncodedFrame = ReturnType<typeof encodeFrame>;

/**
 * Binds one socket to one Connection: moves bytes both ways, coalesces the writes of one turn of
 * the event loop into one, enforces the send-side limits, runs the close timers and answers the
 * heartbeat.
 */
export class Peer implements ConnectionHandler, SocketReader {
  readonly connection: Connection;
  /** What this peer's messages waiting in the owner's event queue cost: their bytes plus EVENT_COST each. */
  queuedBytes = 0;
  private readingPaused = false;
  /** Reading stopped because pongs and close frames we owe this peer pile up unread (see receive). */
  private sendBlocked = false;
  /**
   * This tick's output, handed to the socket in one write at its end (flush). Frames are encoded
   * straight into the shared write arena: the open piece is bytes [pieceStart, pieceEnd) of
   * `piece`; `firstPiece` and `morePieces` hold what is already sealed, in order.
   */
  private piece: Buffer | null = null;
  private pieceStart = 0;
  private pieceEnd = 0;
  private firstPiece: Uint8Array | null = null;
  private morePieces: Uint8Array[] | null = null;
  private pendingBytes = 0;
  private flushScheduled = false;
  private lastHeard: number;
  /** When the unanswered ping went out, or -1. */
  private pingSentAt = -1;
  private closeTimer: Timer | undefined;
  private closedCleanly = false;
  private finished = false;

  constructor(
    readonly id: number,
    readonly socket: Duplex,
    role: Role,
    private readonly options: ResolvedConnectionOptions,
    private readonly owner: PeerOwner,
    private readonly maskKey?: () => Uint8Array,
  ) {
    this.connection = new Connection({ role, maxMessageSize: options.maxMessageSize, ...(maskKey ? { maskKey } : {}) }, this);
    this.lastHeard = options.clock.now();
    readSocket(socket, this);
    openPeers++;
  }

  /** Bytes waiting in this connection's send buffer. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  /** Closed, with nothing more to send. */
  get ended(): boolean {
    return this.connection.state === ReadyState.CLOSED && !this.connection.canSend;
  }

  get isOpen(): boolean {
    return this.connection.state === ReadyState.OPEN;
  }

  receive(chunk: Buffer): void {
    this.lastHeard = this.options.clock.now();
    this.pingSentAt = -1;
    const buffered = this.bufferedAmount;
    this.connection.receiveData(chunk);
    // Control frames are never dropped, so a peer that pings but never reads would grow our send
    // buffer without bound: once what it made us write passes maxBufferedBytes, stop reading it
    // until the buffer drains. (A silent peer is then dropped by the heartbeat.) What the socket
    // really keeps decides: flush first, as the kernel may take it all at once.
    const grown = this.bufferedAmount;
    if (grown > buffered && grown > this.options.maxBufferedBytes) {
      this.flush();
      if (this.bufferedAmount > this.options.maxBufferedBytes) this.blockReading();
    }
  }

  /**
   * Sends a message. Encodes the frame straight into this tick's output buffer (the hot path:
   * no buffer per frame); Connection.send is the same for users of the bare core.
   */
  send(data: string | Uint8Array, binary: boolean): SendStatus {
    if (!this.connection.canSend) return SendStatus.CLOSED;
    const buffered = this.bufferedAmount;
    if (!this.admit(buffered)) return SendStatus.DROPPED;
    const opcode = binary ? Opcode.BINARY : Opcode.TEXT;
    const mask = this.maskKey?.();
    if (!mask && typeof data !== 'string' && data.length >= COPY_LIMIT) {
      this.writeEncoded(encodeFrame(opcode, data));
      return this.status(this.bufferedAmount);
    }
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const size = headerSize(length, mask !== undefined) + length;
    const out = this.reserve(size);
    this.pieceEnd = writeFrame(out, this.pieceEnd, opcode, data, length, mask);
    this.pendingBytes += size;
    return this.status(buffered + size);
  }

  /** Writes a frame encoded once for many peers (broadcast, publish). */
  sendEncoded(frame: EncodedFrame): SendStatus {
    if (!this.connection.canSend) return SendStatus.CLOSED;
    if (!this.admit(this.bufferedAmount)) return SendStatus.DROPPED;
    this.writeEncoded(frame);
    return this.status(this.bufferedAmount);
  }

  private writeEncoded(frame: EncodedFrame): void {
    if (Array.isArray(frame)) {
      this.write(frame[0]);
      this.write(frame[1]);
    } else this.write(frame);
  }

  ping(payload?: string | Uint8Array): boolean {
    return this.connection.ping(payload);
  }

  /** Starts the close handshake; the peer has `closeTimeout` to answer. */
  close(code: number, reason: string, timeoutMs = this.options.closeTimeout): boolean {
    if (!this.connection.close(code, reason)) return false;
    this.closeTimer = this.options.clock.setTimeout(() => this.cut('close timeout', Initiator.TIMEOUT), timeoutMs);
    return true;
  }

  /** Ends the connection at once without a close handshake: Disconnect 1006. */
  cut(reason: string, initiator: Initiator): void {
    this.connection.terminate(reason, initiator);
    this.socket.destroy();
  }

  /** One of this peer's messages entered the owner's queue: past maxQueuedBytesPerConnection, stop reading. */
  queued(message: string | Buffer): void {
    this.queuedBytes += message.length + EVENT_COST;
    if (this.queuedBytes > this.options.maxQueuedBytesPerConnection) this.pauseReading();
  }

  /** One of this peer's messages left the owner's queue: once under the limit, read again. */
  dequeued(message: string | Buffer): void {
    this.queuedBytes -= message.length + EVENT_COST;
    if (this.queuedBytes <= this.options.maxQueuedBytesPerConnection) this.resumeReading();
  }

  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (!this.sendBlocked) this.socket.resume();
  }

  private blockReading(): void {
    // Only a socket that will say 'drain' may be paused for it.
    if (this.sendBlocked || this.socket.destroyed || !this.socket.writableNeedDrain) return;
    this.sendBlocked = true;
    this.socket.pause();
    this.socket.once('drain', () => {
      this.sendBlocked = false;
      if (!this.readingPaused) this.socket.resume();
    });
  }

  // ConnectionHandler: called by the Connection.

  write(bytes: Uint8Array): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.pendingBytes += bytes.length;
    if (bytes.length < COPY_LIMIT) {
      const out = this.reserve(bytes.length);
      out.set(bytes, this.pieceEnd);
      this.pieceEnd += bytes.length;
    } else {
      this.seal();
      this.addPiece(bytes);
      this.schedule();
    }
  }

  message(data: string | Buffer, binary: boolean): void {
    this.owner.peerMessage(this, data, binary);
  }

  pong(): void {
    // Any data counts as a sign of life (see receive); a pong needs nothing more.
  }

  closed(info: CloseInfo): void {
    this.closeTimer?.cancel();
    this.closedCleanly = info.wasClean;
    this.owner.peerClosed(this, info);
    // The owner calls finishClose once the program has taken the Disconnect; a stalled
    // program gets `closeTimeout` before the close frame goes out anyway.
    if (this.connection.canSend) {
      this.closeTimer = this.options.clock.setTimeout(() => this.finishClose(), this.options.closeTimeout);
    } else this.finishClose();
  }

  /** Sends the close frame still owed, if any, and closes TCP. */
  finishClose(): void {
    if (this.finished) return;
    this.finished = true;
    this.connection.flushClose();
    if (this.socket.destroyed) return;
    if (this.connection.role === 'server' || !this.closedCleanly) {
      // RFC 6455 §7.1.1: the server closes TCP first; flush the close frame, then FIN.
      this.endSocket();
    }
    // The client waits for the server's FIN (onEnd); neither waits forever.
    this.closeTimer?.cancel();
    this.closeTimer = this.options.clock.setTimeout(() => this.socket.destroy(), this.options.closeTimeout);
  }

  /** Hands this tick's frames to the socket: one write, or one corked batch when big frames came along. */
  flush(): void {
    this.flushScheduled = false;
    this.seal();
    const first = this.firstPiece;
    const more = this.morePieces;
    this.firstPiece = null;
    this.morePieces = null;
    this.pendingBytes = 0;
    if (first === null || this.socket.destroyed || this.socket.writableEnded) return;
    if (more === null) {
      this.socket.write(first);
      return;
    }
    this.socket.cork();
    this.socket.write(first);
    for (const piece of more) this.socket.write(piece);
    this.socket.uncork();
  }

  /** Room for `size` more bytes at `pieceEnd` of the returned buffer: the open piece grows, or a new one starts. */
  private reserve(size: number): Buffer {
    if (this.piece !== null && arena.extend(this.piece, this.pieceEnd, size)) return this.piece;
    this.seal();
    this.schedule();
    if (size > ARENA_FRAME_LIMIT) {
      this.piece = Buffer.allocUnsafe(size);
      this.pieceStart = this.pieceEnd = 0;
    } else {
      this.pieceStart = this.pieceEnd = arena.claim(size);
      this.piece = arena.buffer;
    }
    return this.piece;
  }

  /** Closes the open piece, so what follows goes after it. */
  private seal(): void {
    const piece = this.piece;
    if (piece === null) return;
    this.piece = null;
    if (this.pieceEnd > this.pieceStart) this.addPiece(piece.subarray(this.pieceStart, this.pieceEnd));
  }

  private addPiece(bytes: Uint8Array): void {
    if (this.firstPiece === null) this.firstPiece = bytes;
    else (this.morePieces ??= []).push(bytes);
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (unflushed.length === 0) {
      if (batchingAcrossSockets()) setImmediate(flushAll);
      else process.nextTick(flushAll);
    }
    unflushed.push(this);
  }

  private endSocket(): void {
    if (this.socket.writableEnded) return; // a second end() costs node an error object
    this.flush();
    this.socket.end();
  }

  /** A message is refused only once the send buffer already holds `maxBufferedBytes`. */
  private admit(buffered: number): boolean {
    if (buffered < this.options.maxBufferedBytes) return true;
    if (this.options.closeOnBackpressureLimit) this.connection.fail(1008, 'send buffer limit reached', undefined, Initiator.ERROR);
    return false;
  }

  private status(buffered: number): SendStatus {
    return buffered > this.options.sendHighWaterMark ? SendStatus.BACKPRESSURE : SendStatus.SUCCESS;
  }

  /**
   * FIN: the peer sends nothing more, but our side still works. Before the peer's close frame
   * that ends the connection (1006); after it (a close frame and FIN may come together), our
   * close reply is still owed, and finishClose ends our side once it is sent.
   */
  socketEnded(): void {
    if (this.connection.state !== ReadyState.CLOSED) {
      this.connection.terminate('connection closed without a close frame', Initiator.PEER);
    }
    if (!this.connection.canSend) this.endSocket();
  }

  socketFailed(err: Error): void {
    this.connection.terminate(`socket error: ${err.message}`, Initiator.ERROR);
  }

  socketClosed(): void {
    openPeers--;
    this.connection.terminate('connection lost', Initiator.PEER);
    this.closeTimer?.cancel();
    this.owner.socketClosed?.(this);
  }

  /**
   * The heartbeat, called by the owner's Heartbeat: ping after `pingInterval` of silence, cut
   * after `pingTimeout` without an answer.
   */
  heartbeat(now: number): void {
    if (!this.isOpen) return;
    if (this.readingPaused) {
      // We stopped reading (maxQueuedBytesPerConnection), so the peer's answers wait unread:
      // that silence is ours. Count it from when reading resumes.
      this.lastHeard = now;
      this.pingSentAt = -1;
      return;
    }
    const { pingInterval, pingTimeout } = this.options;
    if (this.pingSentAt >= 0) {
      if (now - this.pingSentAt >= pingTimeout) this.cut(`ping timeout: no answer within ${pingTimeout} ms`, Initiator.TIMEOUT);
    } else if (now - this.lastHeard >= pingInterval) {
      this.connection.ping();
      this.pingSentAt = now;
    }
  }
}

/** Peers whose socket is not closed yet, in this process. */
let openPeers = 0;

/** Batching across sockets needs several of them; alone, a socket is written (and its program woken) at once. */
function batchingAcrossSockets(): boolean {
  return openPeers > 1;
}

/**
 * How the owners' event queues wake a program awaiting `next()` (see EventQueue). With several
 * sockets open, once per turn, after every ready socket was read: the program answers them all
 * at once, and its answers are flushed right after (the flush it scheduled would come only with
 * the next turn). Alone, a socket's program is woken at once, as its writes are: batching gains
 * nothing there, and the extra hop through setImmediate doubled its latency tail.
 */
export const turnBatching: TurnBatching = {
  active: batchingAcrossSockets,
  afterWake: flushAll,
};

/**
 * Peers with output in this turn of the event loop. They are flushed together once the loop has
 * read every ready socket (setImmediate runs right after that phase): a burst of writes wakes a
 * peer process once for many sockets, where a write after each read would wake it for each. A
 * lone socket is flushed right after the current callback (process.nextTick).
 */
const unflushed: Peer[] = [];

function flushAll(): void {
  for (let i = 0; i < unflushed.length; i++) unflushed[i]!.flush();
  unflushed.length = 0;
}
