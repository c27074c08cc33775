import { isUtf8 } from 'node:buffer';
import { Initiator, isValidWireCloseCode, Opcode, ProtocolDefaults } from './constants.js';
import { ProtocolError } from './errors.js';
import { type CompressionOptions, type DeflateSettings, resolveCompression } from './deflate-options.js';
import type { EncodedMessage } from './encoded-message.js';
import { closePayload, RSV1 } from './frame.js';
import { MessageDeflater } from './message-deflater.js';
import { MessageInflater } from './message-inflater.js';
import { Outbox, type Output } from './outbox.js';
import type { DeflateAgreement } from './permessage-deflate.js';
import { Receiver, type ReceiverSink } from './receiver.js';

/** Where a connection is in its life (RFC 6455 §4–§7). */
export type ProtocolState = 'connecting' | 'open' | 'closing' | 'closed';

/** How a connection ended: the one `close` event of a protocol object, always its last. */
export interface CloseEvent {
  /** `'close'`. */
  type: 'close';
  /** RFC 6455 §7.1.5: the code of the peer's close frame; 1005 if it had none, 1006 if none came; the code we sent if we failed the connection. */
  code: number;
  /** The reason of the close frame (empty if none); for 1006, why the connection was lost. */
  reason: string;
  /** Both close frames were exchanged. */
  wasClean: boolean;
  /** Who ended it: 'peer', 'local', 'timeout' or 'error'. */
  initiator: Initiator;
  /** What failed the connection or the handshake (a ProtocolError, a HandshakeError, …), if anything did. */
  error?: Error;
}

/** A whole message arrived (fragments already reassembled, text already checked as UTF-8). */
export interface MessageEvent {
  /** `'message'`. */
  type: 'message';
  /** A string for a text message, a Buffer for a binary one (a view of the bytes it came in). */
  data: string | Buffer;
  /** True for a binary message (then `data` is a Buffer), false for text. */
  binary: boolean;
}

/** A ping arrived; its pong is already in `dataToSend()` (RFC 6455 §5.5.2). */
export interface PingEvent {
  /** `'ping'`. */
  type: 'ping';
  /** The ping's payload (at most 125 bytes), a copy of its own. */
  payload: Buffer;
}

/** A pong arrived (RFC 6455 §5.5.3): the answer to a ping, or an unsolicited heartbeat. */
export interface PongEvent {
  /** `'pong'`. */
  type: 'pong';
  /** The pong's payload (at most 125 bytes), a copy of its own. */
  payload: Buffer;
}

/** Events both roles yield; each role adds its handshake's. */
export type FrameEvent = MessageEvent | PingEvent | PongEvent | CloseEvent;

/** Options both roles take. */
export interface ProtocolOptions {
  /** Largest message after reassembly, in bytes; a bigger one fails the connection with 1009 from its header. @default 1 MiB */
  maxMessageSize?: number;
  /**
   * Hold the answer to a peer's close frame (and the close frame of a failure) until `close()`
   * is called, so earlier messages can still be answered first (RFC 6455 §5.5.1 allows it). @default false
   */
  deferCloseReply?: boolean;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, or options; offered by a client,
   * negotiated by a server. @default off
   */
  compression?: boolean | CompressionOptions;
}

/** A close reason must fit a control frame with its 2-byte code (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;
const EMPTY = Buffer.alloc(0);

/**
 * One WebSocket connection without I/O, in the pull style: the shell hands it the bytes it
 * read (`receiveData`, `receiveEof`), then takes its events (`eventsReceived`) and the bytes
 * it owes the peer (`dataToSend`). It never calls the shell, keeps no timers and reads no clock.
 * Bad input never throws: it fails the connection (RFC 6455 §7.1.7) with the close code it calls for.
 * This class holds what both roles share; ServerProtocol and ClientProtocol add the handshake
 * and its events (H).
 */
export abstract class Protocol<H extends { type: string }> {
  private stateValue: ProtocolState = 'connecting';
  /** The events not yet taken; made on the first (an idle connection holds no array). */
  private events: (H | FrameEvent)[] | null = null;
  protected readonly outbox = new Outbox();
  private readonly receiver: Receiver<Protocol<{ type: string }>>;
  protected readonly maxMessageSize: number;
  /** permessage-deflate as configured, or null when off. */
  protected readonly compression: DeflateSettings | null;
  /** Compresses what this side sends, once permessage-deflate is agreed. */
  private deflater: MessageDeflater | null = null;
  private readonly deferCloseReply: boolean;
  /** The close frame payload still owed to the peer (deferCloseReply), or null. */
  private closeOwed: Buffer | null = null;
  private closeSent = false;
  private closeInitiator: Initiator = Initiator.LOCAL;
  /** The close event was yielded: nothing more will be. */
  private finished = false;
  private cleanly = false;
  private eofReceived = false;

  protected constructor(
    private readonly masking: (() => Uint8Array) | undefined,
    options: ProtocolOptions,
  ) {
    this.maxMessageSize = options.maxMessageSize ?? ProtocolDefaults.maxMessageSize;
    this.deferCloseReply = options.deferCloseReply ?? false;
    this.compression = resolveCompression(options.compression, masking === undefined ? 'server' : 'client');
    this.receiver = new Receiver(masking === undefined, this.maxMessageSize, Protocol.sink, this);
  }

  /** 'connecting' until the handshake ends, 'open', 'closing' once a close frame went either way, 'closed'. */
  get state(): ProtocolState {
    return this.stateValue;
  }

  /**
   * True once the shell should expect the transport to end soon: a close frame was sent, or
   * the connection is closed. Arm a timer then, and cut the transport if it has not ended.
   */
  get closeExpected(): boolean {
    return this.closeSent || (this.finished && this.closeOwed === null);
  }

  /**
   * True once the shell should end (half-close) its side of the transport, after writing
   * `dataToSend()`. The server ends first once the WebSocket is closed (RFC 6455 §7.1.1); a client
   * whose close handshake completed waits for the server's end first (`receiveEof`).
   */
  get shouldEndTransport(): boolean {
    if (!this.finished || this.closeOwed !== null) return false;
    return this.masking === undefined || !this.cleanly || this.eofReceived;
  }

  /** Bytes waiting in `dataToSend()`. */
  get bufferedAmount(): number {
    return this.outbox.bytes;
  }

  /**
   * Bytes from the peer, in order. The protocol takes them over: a frame's payload is unmasked
   * in place. Never throws: bad input fails the connection.
   */
  receiveData(data: Uint8Array): void {
    this.read(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** receiveData for Buffers, also for bytes the handshake held back. */
  protected read(bytes: Buffer): void {
    if (this.finished || this.receiver.stopped) return;
    try {
      if (this.stateValue === 'connecting') this.receiveHandshake(bytes);
      else this.readFrames(bytes);
    } catch (err) {
      this.failWith(err);
    }
  }

  /** Frames, once the handshake is over (also the bytes that came right after it). */
  protected readFrames(bytes: Buffer): void {
    this.receiver.receive(bytes);
  }

  /**
   * The transport's input ended (TCP FIN). Before a close frame came, that ends the
   * connection: close event 1006. After it, it tells a client the server has closed.
   */
  receiveEof(): void {
    this.eofReceived = true;
    if (!this.finished) this.finish(this.eofEvent());
  }

  /**
   * The transport is gone or the shell cut it (a timeout, a drop, a socket error): the
   * connection ends without a close handshake, close event 1006, and nothing more is owed.
   * @param reason - The close event's reason. Default: 'connection aborted'.
   * @param initiator - The close event's initiator. Default: 'local'.
   * @param error - The close event's error, if a failure caused it.
   */
  abort(reason = 'connection aborted', initiator: Initiator = Initiator.LOCAL, error?: Error): void {
    this.eofReceived = true;
    this.outbox.discard();
    if (this.closeOwed !== null) {
      this.closeOwed = null;
      this.stateValue = 'closed';
    }
    if (!this.finished) this.finish({ type: 'close', code: 1006, reason, wasClean: false, initiator, ...(error ? { error } : {}) });
  }

  /**
   * Takes what this side owes the peer: handshake, frames, pongs, close frames.
   * @returns Every byte owed since the last call, as one buffer (empty when nothing).
   */
  dataToSend(): Buffer {
    const output = this.outbox.take();
    if (output === null) return EMPTY;
    if (!Array.isArray(output)) return Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    return Buffer.concat(output);
  }

  /**
   * Takes the same bytes as `dataToSend()`, as the pieces they were written in (for a shell that writes them with writev).
   * @returns One piece or an array of pieces, in order; null when nothing is owed.
   */
  takeOutput(): Output | null {
    return this.outbox.take();
  }

  /**
   * Takes the events that the bytes given since the last call produced.
   * @returns Them, oldest first; a `close` event is always the last one ever.
   */
  eventsReceived(): (H | FrameEvent)[] {
    const events = this.events;
    if (events === null) return [];
    this.events = null;
    return events;
  }

  /** True while messages may be sent: open, or a deferred close reply not yet sent. */
  get canSend(): boolean {
    return this.stateValue === 'open' || this.closeOwed !== null;
  }

  /**
   * Sends a text message (compressed when agreed and worth it).
   * @returns False once it can no longer send (closing or closed).
   */
  sendText(text: string): boolean {
    if (!this.canSend) return false;
    if (this.deflater === null || !this.sendCompressed(Opcode.TEXT, text)) this.outbox.frame(Opcode.TEXT, text, this.masking?.());
    return true;
  }

  /**
   * Sends a binary message (compressed when agreed and worth it).
   * @returns False once it can no longer send (closing or closed).
   */
  sendBinary(data: Uint8Array): boolean {
    if (!this.canSend) return false;
    if (this.deflater === null || !this.sendCompressed(Opcode.BINARY, data)) this.outbox.frame(Opcode.BINARY, data, this.masking?.());
    return true;
  }

  /**
   * Sends a message encoded once for many connections (`encodeMessage`): compressed once per set
   * of deflate parameters. Server role only: a client masks every frame with a key of its own (RFC 6455 §5.3).
   * @returns False once it can no longer send (closing or closed).
   */
  sendEncoded(message: EncodedMessage): boolean {
    if (this.masking !== undefined) throw new TypeError('a client masks every frame: use sendText or sendBinary');
    if (!this.canSend) return false;
    this.outbox.encoded(message.frameFor(this.deflater));
    return true;
  }

  /**
   * Sends a ping; the peer's pong comes as a `pong` event.
   * @param payload - At most 125 bytes. Default: empty.
   * @returns False unless open.
   */
  ping(payload: string | Uint8Array = EMPTY): boolean {
    if (this.stateValue !== 'open') return false;
    if (byteLength(payload) > 125) throw new RangeError('a ping payload is at most 125 bytes');
    this.outbox.frame(Opcode.PING, payload, this.masking?.());
    return true;
  }

  /**
   * Starts the close handshake (RFC 6455 §7.1.2) with `code` and `reason`; or, with a close reply
   * deferred, sends it (echoing the peer's code). False if neither is due. Throws a RangeError
   * for a code that may not be sent or a reason over 123 bytes.
   * @param code - 1000–1003, 1007–1014 or 3000–4999. Default: 1000.
   * @param reason - At most 123 bytes of UTF-8. Default: ''.
   * @returns False if neither a close nor a close reply is due.
   */
  close(code = 1000, reason = ''): boolean {
    checkCloseArguments(code, reason);
    const owed = this.closeOwed;
    if (owed !== null) {
      this.closeOwed = null;
      this.sendClose(owed);
      this.stateValue = 'closed';
      return true;
    }
    if (this.stateValue !== 'open') return false;
    this.sendClose(closePayload(code, reason));
    this.stateValue = 'closing';
    this.closeInitiator = Initiator.LOCAL;
    return true;
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): reads nothing more, sends a close frame with `code` (at
   * once, or when `close()` is called with deferCloseReply), and yields the close event.
   * @param code - The close code to send (1002, 1007, 1008, 1011, …).
   * @param reason - At most 123 bytes of UTF-8.
   */
  fail(code: number, reason: string): void {
    this.failConnection(code, reason);
  }

  private failConnection(code: number, reason: string, error?: Error): void {
    if (this.finished) return;
    const reply = this.stateValue === 'open' ? closePayload(code, truncateReason(reason)) : null;
    this.finish({ type: 'close', code, reason, wasClean: false, initiator: Initiator.ERROR, ...(error ? { error } : {}) }, reply);
  }

  /**
   * Where every receiver hands what it reads, with its protocol: one object for all, and private,
   * so no caller can inject a frame.
   */
  private static readonly sink: ReceiverSink<Protocol<{ type: string }>> = {
    message: (owner, data, binary) => owner.message(data, binary),
    control: (owner, opcode, payload) => owner.control(opcode, payload),
  };

  // The sink's: called by the receiver while it reads.

  private message(data: string | Buffer, binary: boolean): void {
    this.emit({ type: 'message', data, binary });
  }

  private control(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.PING) {
      // RFC 6455 §5.5.3: answer with a pong carrying the same payload, unless we already sent a close.
      if (this.stateValue === 'open') this.outbox.frame(Opcode.PONG, payload, this.masking?.());
      this.emit({ type: 'ping', payload: Buffer.from(payload) });
    } else if (opcode === Opcode.PONG) {
      this.emit({ type: 'pong', payload: Buffer.from(payload) });
    } else {
      this.receiveClose(payload);
    }
  }

  /** Queues an event for `eventsReceived()`. */
  protected emit(event: H | FrameEvent): void {
    (this.events ??= []).push(event);
  }

  /** Reads handshake bytes while connecting; the role's handshake decides what they mean. */
  protected abstract receiveHandshake(data: Buffer): void;

  /** The handshake succeeded: frames may flow, compressed as agreed (null: not at all). */
  protected open(agreement: DeflateAgreement | null): void {
    this.stateValue = 'open';
    if (agreement === null) return;
    this.deflater = new MessageDeflater(agreement, this.compression!);
    this.receiver.inflater = new MessageInflater(agreement);
  }

  /** The connection ends with `event`; `reply` is the close frame still owed to the peer, if any. */
  protected finish(event: CloseEvent, reply: Buffer | null = null): void {
    this.finished = true;
    this.cleanly = event.wasClean;
    this.receiver.stop();
    this.emit(event);
    if (reply !== null && this.deferCloseReply) {
      this.closeOwed = reply;
      this.stateValue = 'closing';
      return;
    }
    this.stateValue = 'closed';
    if (reply === null) return;
    try {
      this.sendClose(reply);
    } catch {
      // Only a client's maskKey can throw here (a program bug): the close frame is not sent.
    }
  }

  protected failWith(err: unknown): void {
    if (err instanceof ProtocolError) this.failConnection(err.closeCode, err.message, err);
    else this.failConnection(1011, 'internal error', err instanceof Error ? err : new Error(String(err)));
  }

  /** The close event of a connection that the end of its input ended. */
  protected eofEvent(): CloseEvent {
    return { type: 'close', code: 1006, reason: 'connection closed without a close frame', wasClean: false, initiator: Initiator.PEER };
  }

  /**
   * Sends a message compressed (RFC 7692 §6: RSV1 on its first frame) when it is worth it; false
   * when it is not, and the message is to go as it is (always allowed).
   */
  private sendCompressed(opcode: number, data: string | Uint8Array): boolean {
    const compressed = this.deflater!.compressMessage(data);
    if (compressed === null) return false;
    this.outbox.frame(opcode | RSV1, compressed, this.masking?.());
    return true;
  }

  private sendClose(payload: Buffer): void {
    this.closeSent = true;
    this.outbox.frame(Opcode.CLOSE, payload, this.masking?.());
  }

  private receiveClose(payload: Buffer): void {
    let code = 1005;
    let reason = '';
    if (payload.length === 1) throw new ProtocolError(1002, 'close frame with a 1-byte payload');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidWireCloseCode(code)) throw new ProtocolError(1002, `invalid close code ${code}`);
      const reasonBytes = payload.subarray(2);
      if (!isUtf8(reasonBytes)) throw new ProtocolError(1007, 'close reason is not valid UTF-8');
      reason = reasonBytes.toString('utf8');
    }
    if (this.stateValue === 'open') {
      // RFC 6455 §5.5.1: answer with a close frame, echoing the status code received.
      this.finish({ type: 'close', code, reason, wasClean: true, initiator: Initiator.PEER }, closePayload(code, ''));
    } else {
      this.finish({ type: 'close', code, reason, wasClean: true, initiator: this.closeInitiator });
    }
  }
}

function byteLength(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

function checkCloseArguments(code: number, reason: string): void {
  if (!isValidWireCloseCode(code)) throw new RangeError(`close code ${code} may not be sent (use 1000–1003, 1007–1014 or 3000–4999)`);
  if (Buffer.byteLength(reason) > MAX_REASON_BYTES) throw new RangeError(`a close reason is at most ${MAX_REASON_BYTES} bytes of UTF-8`);
}

/** Cuts an internal failure reason to what fits a close frame, on a character boundary. */
function truncateReason(reason: string): string {
  let cut = reason;
  while (Buffer.byteLength(cut) > MAX_REASON_BYTES) cut = cut.slice(0, -1);
  return cut;
}
