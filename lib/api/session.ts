import type { EncodedMessage } from '../core/encoded-message.js';
import type { AnyProtocol, Peer, PeerEvent, PeerOwner } from '../io/peer.js';
import { SendStatus } from './constants.js';
import type { HandshakeFacts } from './events.js';
import type { ResolvedConnectionOptions } from './options.js';

/** Who hears what happens to a session: its Server or its Client. */
export interface SessionHost<T, P extends AnyProtocol> {
  /** One event of the session's protocol, in order; the close event exactly once, last. */
  sessionEvent(session: Session<T, P>, event: PeerEvent): void;
  /** The session's socket is closed. */
  sessionGone(session: Session<T, P>): void;
}

/**
 * What a queued message costs beyond its bytes (about what its event object takes): a flood of
 * empty messages fills the queue too.
 */
const EVENT_COST = 64;

/**
 * One connection as the program sees it: its id, handshake facts, data slot and topics, what
 * its undrained messages cost, and the send-side limits (SendStatus).
 */
export class Session<T = unknown, P extends AnyProtocol = AnyProtocol> implements PeerOwner {
  /** The connection id, given when its handshake request is taken up (0 before). */
  id = 0;
  peer!: Peer<P>;
  facts: HandshakeFacts | undefined;
  data: T | undefined;
  /** Created on the first subscribe: most connections never subscribe. */
  topics: Set<string> | undefined;
  /** What this session's messages waiting in the queue cost: their bytes plus EVENT_COST each. */
  queuedBytes = 0;
  /** The program was told of it (NewConnection, or the Client's open). */
  announced = false;
  /** Its Disconnect is queued: nothing more of it reaches the program. */
  disconnected = false;

  constructor(
    private readonly host: SessionHost<T, P>,
    private readonly options: ResolvedConnectionOptions,
  ) {}

  peerEvent(event: PeerEvent): void {
    this.host.sessionEvent(this, event);
  }

  peerGone(): void {
    this.host.sessionGone(this);
  }

  /** Sends a message, within the send-side limits. */
  send(data: string | Uint8Array, binary: boolean): SendStatus {
    if (!this.admit()) return this.peer.protocol.canSend ? SendStatus.DROPPED : SendStatus.CLOSED;
    if (binary) this.peer.sendBinary(typeof data === 'string' ? Buffer.from(data) : data);
    else this.peer.sendText(data as string);
    return this.status();
  }

  /** Sends a message encoded once for many sessions. */
  sendEncoded(message: EncodedMessage): SendStatus {
    if (!this.admit()) return this.peer.protocol.canSend ? SendStatus.DROPPED : SendStatus.CLOSED;
    this.peer.sendEncoded(message);
    return this.status();
  }

  /** One of this session's messages entered the queue: past maxQueuedBytesPerConnection, stop reading. */
  queued(message: string | Buffer): void {
    this.queuedBytes += message.length + EVENT_COST;
    if (this.queuedBytes > this.options.maxQueuedBytesPerConnection) this.peer.pauseReading();
  }

  /** One of this session's messages left the queue: once under the limit, read again. */
  dequeued(message: string | Buffer): void {
    this.queuedBytes -= message.length + EVENT_COST;
    if (this.queuedBytes <= this.options.maxQueuedBytesPerConnection) this.peer.resumeReading();
  }

  /**
   * False when the message may not be sent: the connection cannot send, or its send buffer
   * already holds maxBufferedBytes (then, with closeOnBackpressureLimit, it fails with 1008).
   */
  private admit(): boolean {
    if (!this.peer.protocol.canSend) return false;
    if (this.peer.bufferedAmount < this.options.maxBufferedBytes) return true;
    if (this.options.closeOnBackpressureLimit) this.peer.fail(1008, 'send buffer limit reached');
    return false;
  }

  private status(): SendStatus {
    return this.peer.bufferedAmount > this.options.sendHighWaterMark ? SendStatus.BACKPRESSURE : SendStatus.SUCCESS;
  }
}
