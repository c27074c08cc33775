import type { Duplex } from 'node:stream';
import type { ClientProtocol, ClientProtocolEvent } from '../core/client-protocol.js';
import { Initiator } from '../core/constants.js';
import type { EncodedMessage } from '../core/encoded-message.js';
import type { ServerProtocol, ServerProtocolEvent } from '../core/server-protocol.js';
import type { Clock, Timer } from './clock.js';
import { readSocket, type SocketReader } from './socket-reader.js';
import { socketClosed, socketOpened, writeThisTurn } from './write-batching.js';

/** Any event of either role. */
export type PeerEvent = ServerProtocolEvent | ClientProtocolEvent;

/** A protocol object of either role. */
export type AnyProtocol = ServerProtocol | ClientProtocol;

/** Who a Peer hands its protocol's events to: the session above it. */
export interface PeerOwner {
  /** One event of the protocol, in order; the close event exactly once, last. */
  peerEvent(event: PeerEvent): void;
  /** The socket is closed: the peer is done. */
  peerGone(): void;
}

/** The timers of a Peer and what bounds its send buffer. */
export interface PeerOptions {
  clock: Clock;
  /** After sending a close frame (or ending TCP), how long the peer has before the socket is destroyed. */
  closeTimeout: number;
  /** Stop reading a peer whose unread pongs and close frames push our send buffer past this. */
  maxBufferedBytes: number;
}

/** How long a refused handshake's socket may stay open for the peer to read the answer and close. */
const REFUSAL_LINGER_MS = 1000;

/**
 * Binds one socket to one protocol object: hands it what the socket reads, passes its events to
 * the owner, writes what it owes (batched per turn of the event loop), ends and destroys the
 * socket when the protocol says so, and runs the timers the protocol leaves to its shell.
 * Knows no RFC rule.
 */
export class Peer<P extends AnyProtocol = AnyProtocol> implements SocketReader {
  private readingPaused = false;
  /** Reading stopped because pongs and close frames we owe this peer pile up unread (see receive). */
  private sendBlocked = false;
  private flushScheduled = false;
  private dispatching = false;
  private ended = false;
  /** The socket is closed: no more timers, nothing more to write. */
  private gone = false;
  private lastHeard: number;
  /** When the unanswered ping went out, or -1. */
  private pingSentAt = -1;
  /** The heartbeat's last ping, until its pong comes: its payload and when it went out. */
  private probe: { payload: Buffer; sentAt: number } | undefined;
  private probesSent = 0;
  /** The last round-trip time measured with a heartbeat ping and its pong, in ms of the clock. */
  rtt: number | undefined;
  /** The timer of the current stage: the handshake deadline, the close reply owed, the close. */
  private timer: Timer | undefined;
  private stage: 'handshake' | 'open' | 'reply owed' | 'closing' = 'handshake';
  /** The handshake completed: a close timer is closeTimeout, not the short linger of a refusal. */
  private opened = false;

  constructor(
    readonly socket: Duplex,
    readonly protocol: P,
    private readonly options: PeerOptions,
    private readonly owner: PeerOwner,
    handshakeTimeout: number,
  ) {
    this.lastHeard = options.clock.now();
    this.timer = options.clock.setTimeout(() => this.cut(`handshake timeout after ${handshakeTimeout} ms`, Initiator.TIMEOUT), handshakeTimeout);
    readSocket(socket, this);
    socketOpened();
    this.scheduleFlush(); // a client's request head
  }

  /** Bytes waiting to be written: in the socket's buffer and in the protocol's. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.protocol.bufferedAmount;
  }

  receive(chunk: Buffer): void {
    this.lastHeard = this.options.clock.now();
    this.pingSentAt = -1;
    const buffered = this.bufferedAmount;
    this.protocol.receiveData(chunk);
    this.afterCall(true);
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

  sendText(text: string): boolean {
    const sent = this.protocol.sendText(text);
    this.scheduleFlush();
    return sent;
  }

  sendBinary(data: Uint8Array): boolean {
    const sent = this.protocol.sendBinary(data);
    this.scheduleFlush();
    return sent;
  }

  sendEncoded(message: EncodedMessage): boolean {
    const sent = this.protocol.sendEncoded(message);
    this.scheduleFlush();
    return sent;
  }

  ping(payload?: string | Uint8Array): boolean {
    const sent = this.protocol.ping(payload);
    this.scheduleFlush();
    return sent;
  }

  /** Starts the close handshake, or sends the close reply the protocol holds back. */
  close(code?: number, reason?: string): boolean {
    const started = this.protocol.close(code, reason);
    this.afterCall(false);
    return started;
  }

  /** Fails the connection with `code` (a limit of the shell's own, e.g. 1008). */
  fail(code: number, reason: string): void {
    this.protocol.fail(code, reason);
    this.afterCall(true);
  }

  /** Answers a waiting handshake request (server role). */
  accept(this: Peer<ServerProtocol>): boolean {
    const accepted = this.protocol.accept();
    this.opened ||= accepted;
    this.afterCall(true);
    return accepted;
  }

  /** Refuses a waiting handshake request with an HTTP status (server role). */
  reject(this: Peer<ServerProtocol>, status: number, reason: string): boolean {
    const rejected = this.protocol.reject(status, reason);
    this.afterCall(true);
    return rejected;
  }

  /** Ends the connection at once without a close handshake: close event 1006. */
  cut(reason: string, initiator: Initiator, error?: Error): void {
    this.protocol.abort(reason, initiator, error);
    this.socket.destroy();
    this.afterCall(true);
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

  /**
   * The heartbeat: ping after `pingInterval` of silence, cut after `pingTimeout` without an
   * answer. Any data counts as an answer.
   */
  heartbeat(now: number, pingInterval: number, pingTimeout: number): void {
    if (this.protocol.state !== 'open') return;
    if (this.readingPaused) {
      // We stopped reading (maxQueuedBytesPerConnection), so the peer's answers wait unread:
      // that silence is ours. Count it from when reading resumes.
      this.lastHeard = now;
      this.pingSentAt = -1;
      return;
    }
    if (this.pingSentAt >= 0) {
      if (now - this.pingSentAt >= pingTimeout) this.cut(`ping timeout: no answer within ${pingTimeout} ms`, Initiator.TIMEOUT);
    } else if (now - this.lastHeard >= pingInterval) {
      this.sendProbe(now);
      this.pingSentAt = now;
    }
  }

  /** Hands what the protocol owes to the socket: one write, or one corked batch of pieces. */
  flush(): void {
    this.flushScheduled = false;
    const output = this.protocol.takeOutput();
    if (output === null || this.socket.destroyed || this.socket.writableEnded) return;
    if (!Array.isArray(output)) {
      this.socket.write(output);
      return;
    }
    this.socket.cork();
    for (const piece of output) this.socket.write(piece);
    this.socket.uncork();
  }

  // SocketReader: the socket's events.

  /** FIN: the peer sends nothing more, but our side still works until the protocol says so. */
  socketEnded(): void {
    this.protocol.receiveEof();
    this.afterCall(true);
  }

  socketFailed(err: Error): void {
    this.protocol.abort(`socket error: ${err.message}`, Initiator.ERROR, err);
    this.afterCall(true);
  }

  socketClosed(): void {
    socketClosed();
    this.gone = true;
    this.timer?.cancel();
    this.protocol.abort('connection lost', Initiator.PEER);
    this.dispatch();
    this.owner.peerGone();
  }

  /**
   * A heartbeat ping. Its payload (a count) tells its pong from the answers to the program's own
   * pings and from unsolicited pongs (RFC 6455 §5.5.3), so the round trip is measured with it.
   */
  private sendProbe(now: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(++this.probesSent >>> 0);
    if (this.ping(payload)) this.probe = { payload, sentAt: now };
  }

  private pongReceived(payload: Buffer): void {
    const probe = this.probe;
    if (probe === undefined || !payload.equals(probe.payload)) return;
    this.probe = undefined;
    this.rtt = this.options.clock.now() - probe.sentAt;
  }

  /** After every call into the protocol: pass on its events, schedule its output, act on its closing. */
  private afterCall(eventsPossible: boolean): void {
    if (eventsPossible) this.dispatch();
    if (this.gone) return;
    this.scheduleFlush();
    const protocol = this.protocol;
    if (!this.ended && protocol.shouldEndTransport) this.endSocket();
    const stage = protocol.closeExpected
      ? 'closing'
      : protocol.state === 'connecting'
        ? 'handshake'
        : protocol.state === 'closing' && protocol.canSend
          ? 'reply owed'
          : 'open';
    if (stage !== this.stage) this.enter(stage);
  }

  /**
   * Moves to the next stage and its timer: none while open; `closeTimeout` for the program to
   * let the close reply out (then it goes anyway); `closeTimeout` (a refused handshake: a short
   * linger) for the peer to end the transport (then it is cut).
   */
  private enter(stage: Peer<P>['stage']): void {
    this.stage = stage;
    this.timer?.cancel();
    this.timer = undefined;
    const { clock, closeTimeout } = this.options;
    if (stage === 'reply owed') this.timer = clock.setTimeout(() => this.close(), closeTimeout);
    if (stage === 'closing') {
      const ms = this.opened ? closeTimeout : Math.min(closeTimeout, REFUSAL_LINGER_MS);
      this.timer = clock.setTimeout(() => this.cut('close timeout', Initiator.TIMEOUT), ms);
    }
  }

  /**
   * Hands the protocol's events to the owner, in order. An owner that calls back in (accept,
   * send, close) may make new events: they are handed over after the current ones, by this loop.
   */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let events = this.protocol.eventsReceived(); events.length > 0; events = this.protocol.eventsReceived()) {
        for (const event of events) {
          if (event.type === 'open') this.opened = true;
          else if (event.type === 'pong') this.pongReceived(event.payload);
          this.owner.peerEvent(event);
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.protocol.bufferedAmount === 0) return;
    this.flushScheduled = true;
    writeThisTurn(this);
  }

  private endSocket(): void {
    this.ended = true;
    if (this.socket.writableEnded || this.socket.destroyed) return; // a second end() costs node an error object
    this.flush();
    this.socket.end();
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
}
