import { isUtf8 } from 'node:buffer';
import { Initiator, isValidWireCloseCode, Opcode } from './constants.js';
import { ProtocolError } from './errors.js';
import { applyMask, closePayload, encodeFrame, FrameHeader, isControl, readHeader } from './frame.js';
import { bufferView } from './memory-view.js';
import { Utf8Validator } from './utf8.js';

export type Role = 'server' | 'client';

/** How a WebSocket connection ended. */
export interface CloseInfo {
  /** RFC 6455 §7.1.5: the code of the first close frame received; 1005 if it had none, 1006 if none came. When we failed the connection, the code we sent. */
  code: number;
  reason: string;
  /** True when both close frames were exchanged. */
  wasClean: boolean;
  initiator: Initiator;
  /** The protocol or internal error that failed the connection, for the error log. */
  error?: Error;
}

/** Where a Connection sends its output; the I/O layer implements it, tests record it. */
export interface ConnectionHandler {
  /** Bytes for the peer, in order. */
  write(bytes: Uint8Array): void;
  /** A complete message: a string for text, a Buffer (owned by the receiver) for binary. */
  message(data: string | Buffer, binary: boolean): void;
  /** A pong arrived. */
  pong(payload: Buffer): void;
  /**
   * The WebSocket is closed (handshake done or connection failed); nothing more is read.
   * Called once. A close frame may still be owed: call `flushClose()`, then close TCP.
   */
  closed(info: CloseInfo): void;
}

export interface ConnectionOptions {
  role: Role;
  /** Largest message, in bytes, after reassembly. */
  maxMessageSize: number;
  /** Client role: returns the 4-byte mask key of each frame (§5.3: fresh and unpredictable). */
  maskKey?: () => Uint8Array;
}

export const ReadyState = { OPEN: 0, CLOSING: 1, CLOSED: 2 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

/** Reassembly buffers up to this size are kept for the next message instead of reallocated. */
const REUSE_LIMIT = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** Scratch space shared by all connections: headers are decoded, and masks applied, one at a time. */
const decoded = new FrameHeader();
const maskBytes = new Uint8Array(4);

/**
 * One WebSocket connection without I/O: bytes in through `receiveData`, messages and bytes
 * out through the handler. Enforces RFC 6455 strictly and fails the connection (§7.1.7) with
 * the close code the error calls for.
 */
export class Connection {
  state: ReadyState = ReadyState.OPEN;
  readonly role: Role;
  /** True on the server: the peer is a client, which masks every frame. */
  private readonly peerMasks: boolean;
  private readonly maxMessageSize: number;
  private readonly maskKey: (() => Uint8Array) | undefined;
  private readonly handler: ConnectionHandler;

  /** The current frame's header fields (a shared FrameHeader only decodes them). */
  private fin = false;
  private opcode = 0;
  private maskWord = 0;
  private payloadLength = 0;
  /** Bytes of a header split across reads. */
  private stash: Buffer | null = null;
  private inFrame = false;
  private frameRemaining = 0;
  /** Payload bytes of the current frame already unmasked: the mask phase of the next one. */
  private frameDone = 0;

  /** TEXT or BINARY while a message is being received, else 0. */
  private messageOpcode = 0;
  /** Payload bytes of the current message announced by headers so far. */
  private messageBytes = 0;
  private messageBuffer: Buffer | null = null;
  private messageLength = 0;
  /** Only while a text message arrives in pieces (most messages are checked whole). */
  private utf8: Utf8Validator | null = null;

  private controlBuffer: Buffer | null = null;
  private controlLength = 0;
  private closeInitiator: Initiator = Initiator.LOCAL;
  /** The close frame payload still owed to the peer after its close or our failure (see flushClose). */
  private pendingClose: Buffer | null = null;

  constructor(options: ConnectionOptions, handler: ConnectionHandler) {
    this.role = options.role;
    this.peerMasks = options.role === 'server';
    this.maxMessageSize = options.maxMessageSize;
    this.maskKey = options.maskKey;
    this.handler = handler;
    if (this.role === 'client' && !this.maskKey) throw new TypeError('a client connection needs maskKey');
  }

  /** Feeds bytes from the peer. Never throws: bad input fails the connection instead. */
  receiveData(chunk: Buffer): void {
    if (this.state === ReadyState.CLOSED) return;
    let data = chunk;
    if (this.stash !== null) {
      data = Buffer.concat([this.stash, chunk]);
      this.stash = null;
    }
    try {
      this.parse(data);
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err.closeCode, err.message, err);
      else this.fail(1011, 'internal error', err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** True while data may still be sent: open, or closed with the close frame not yet flushed. */
  get canSend(): boolean {
    return this.state === ReadyState.OPEN || this.pendingClose !== null;
  }

  /** Sends a message; false if the connection can no longer send. */
  send(data: string | Uint8Array, binary: boolean): boolean {
    if (!this.canSend) return false;
    this.writeFrame(binary ? Opcode.BINARY : Opcode.TEXT, data);
    return true;
  }

  ping(payload: string | Uint8Array = EMPTY): boolean {
    if (this.state !== ReadyState.OPEN) return false;
    if (byteLength(payload) > 125) throw new RangeError('a ping payload is at most 125 bytes');
    this.writeFrame(Opcode.PING, payload);
    return true;
  }

  /** Starts the close handshake (§7.1.2); false if it was already started or over. */
  close(code = 1000, reason = '', initiator: Initiator = Initiator.LOCAL): boolean {
    checkCloseArguments(code, reason);
    if (this.state !== ReadyState.OPEN) return false;
    this.writeFrame(Opcode.CLOSE, closePayload(code, reason));
    this.state = ReadyState.CLOSING;
    this.closeInitiator = initiator;
    return true;
  }

  /**
   * Fails the connection (§7.1.7): closed at once, nothing more is read; the close frame is
   * owed (flushClose) if none was sent yet.
   */
  fail(code: number, reason: string, error?: Error, initiator: Initiator = Initiator.ERROR): void {
    if (this.state === ReadyState.CLOSED) return;
    const reply = this.state === ReadyState.OPEN ? closePayload(code, truncateReason(reason)) : null;
    this.finish({ code, reason, wasClean: false, initiator, ...(error ? { error } : {}) }, reply);
  }

  /**
   * Sends the close frame owed since `closed` was reported. It waits for this call so the
   * program can still answer the messages that arrived before the close or the failure (an
   * echo server answers them all, then closes); §5.5.1 lets an endpoint delay its close frame
   * until its current messages are sent.
   */
  flushClose(): void {
    const payload = this.pendingClose;
    if (payload === null) return;
    this.pendingClose = null;
    this.writeFrame(Opcode.CLOSE, payload);
  }

  /** The transport is gone (TCP closed, dropped, timed out) before the close handshake ended: 1006. */
  terminate(reason: string, initiator: Initiator): void {
    // No transport, no close frame: drop one still owed (closed already reported), so
    // `canSend` turns false and nothing more is written to a dead socket.
    this.pendingClose = null;
    if (this.state === ReadyState.CLOSED) return;
    this.finish({ code: 1006, reason, wasClean: false, initiator });
  }

  private finish(info: CloseInfo, reply: Buffer | null = null): void {
    this.state = ReadyState.CLOSED;
    this.pendingClose = reply;
    this.messageBuffer = null;
    this.controlBuffer = null;
    this.stash = null;
    this.handler.closed(info);
  }

  private writeFrame(opcode: number, payload: string | Uint8Array): void {
    const frame = encodeFrame(opcode, payload, true, this.maskKey?.());
    if (Array.isArray(frame)) {
      this.handler.write(frame[0]);
      this.handler.write(frame[1]);
    } else this.handler.write(frame);
  }

  private parse(data: Buffer): void {
    const end = data.length;
    let pos = 0;
    while (pos < end && this.state !== ReadyState.CLOSED) {
      if (this.inFrame) {
        const n = Math.min(end - pos, this.frameRemaining);
        if (isControl(this.opcode)) this.controlPayload(data, pos, n);
        else this.dataPayload(data, pos, n);
        pos += n;
        continue;
      }
      const size = readHeader(data, pos, end, this.maxMessageSize - this.messageBytes, decoded);
      if (size === 0) {
        this.stash = Buffer.from(data.subarray(pos));
        return;
      }
      pos += size;
      // §5.1: clients MUST mask every frame, servers MUST NOT.
      if (decoded.masked !== this.peerMasks) {
        throw new ProtocolError(1002, this.peerMasks ? 'client frame not masked' : 'server frame masked');
      }
      const opcode = decoded.opcode;
      const length = decoded.payloadLength;
      if (decoded.fin && (opcode === Opcode.TEXT || opcode === Opcode.BINARY) && this.messageOpcode === 0 && end - pos >= length) {
        // The hot path: a whole unfragmented message inside this read, delivered straight from
        // the header, without the per-frame state of the general path.
        if (this.peerMasks) applyMask(data, pos, pos + length, decoded.mask, 0);
        this.deliverWhole(data, pos, length, opcode === Opcode.TEXT);
        pos += length;
        continue;
      }
      this.takeHeader();
      this.startFrame();
    }
  }

  /**
   * A whole message inside one read, delivered without copying: a binary one is a view of the
   * read's memory (as the read's other messages are).
   */
  private deliverWhole(data: Buffer, pos: number, n: number, text: boolean): void {
    if (!text) {
      this.handler.message(bufferView(data, pos, n), true);
      return;
    }
    if (!isAscii(data, pos, pos + n) && !isUtf8(data.subarray(pos, pos + n))) {
      throw new ProtocolError(1007, 'text message is not valid UTF-8');
    }
    this.handler.message(data.toString('utf8', pos, pos + n), false);
  }

  /** Copies the decoded header into this connection: it stays per connection only as a few numbers. */
  private takeHeader(): void {
    this.fin = decoded.fin;
    this.opcode = decoded.opcode;
    this.payloadLength = decoded.payloadLength;
    const m = decoded.mask;
    this.maskWord = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
  }

  private startFrame(): void {
    if (this.opcode === Opcode.CONT) {
      if (this.messageOpcode === 0) throw new ProtocolError(1002, 'continuation frame without a message to continue');
    } else if (!isControl(this.opcode)) {
      if (this.messageOpcode !== 0) throw new ProtocolError(1002, 'new message before the previous one ended');
      this.messageOpcode = this.opcode;
    }
    if (!isControl(this.opcode)) this.messageBytes += this.payloadLength;
    this.inFrame = true;
    this.frameRemaining = this.payloadLength;
    this.frameDone = 0;
    if (this.payloadLength === 0) {
      if (isControl(this.opcode)) this.controlPayload(EMPTY, 0, 0);
      else this.dataPayload(EMPTY, 0, 0);
    }
  }

  private unmask(data: Buffer, pos: number, n: number): void {
    if (this.peerMasks) {
      const word = this.maskWord;
      maskBytes[0] = word >>> 24;
      maskBytes[1] = (word >>> 16) & 0xff;
      maskBytes[2] = (word >>> 8) & 0xff;
      maskBytes[3] = word & 0xff;
      applyMask(data, pos, pos + n, maskBytes, this.frameDone);
    }
    this.frameDone += n;
    this.frameRemaining -= n;
    if (this.frameRemaining === 0) this.inFrame = false;
  }

  private controlPayload(data: Buffer, pos: number, n: number): void {
    const whole = this.frameDone === 0 && n === this.frameRemaining;
    this.unmask(data, pos, n);
    let payload: Buffer;
    if (whole) payload = data.subarray(pos, pos + n);
    else {
      if (this.controlBuffer === null) {
        this.controlBuffer = Buffer.allocUnsafe(this.payloadLength);
        this.controlLength = 0;
      }
      data.copy(this.controlBuffer, this.controlLength, pos, pos + n);
      this.controlLength += n;
      if (this.inFrame) return;
      payload = this.controlBuffer;
      this.controlBuffer = null;
    }
    this.control(this.opcode, payload);
  }

  private control(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.PING) {
      // §5.5.3: answer with a pong carrying the same payload, unless we already sent a close.
      if (this.state === ReadyState.OPEN) this.writeFrame(Opcode.PONG, payload);
    } else if (opcode === Opcode.PONG) {
      this.handler.pong(Buffer.from(payload));
    } else {
      this.receiveClose(payload);
    }
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
    if (this.state === ReadyState.OPEN) {
      // §5.5.1: answer with a close frame, echoing the status code received (see flushClose).
      this.finish({ code, reason, wasClean: true, initiator: Initiator.PEER }, closePayload(code, ''));
    } else {
      this.finish({ code, reason, wasClean: true, initiator: this.closeInitiator });
    }
  }

  private dataPayload(data: Buffer, pos: number, n: number): void {
    const text = this.messageOpcode === Opcode.TEXT;
    this.unmask(data, pos, n);
    // §8.1: fail as soon as the text cannot be valid UTF-8, even mid-frame.
    if (text && !(this.utf8 ??= new Utf8Validator()).write(data, pos, pos + n)) {
      throw new ProtocolError(1007, 'text message is not valid UTF-8');
    }
    this.append(data, pos, n);
    if (this.inFrame || !this.fin) return;
    const buffer = this.messageBuffer ?? EMPTY;
    const length = this.messageLength;
    this.messageOpcode = 0;
    this.messageBytes = 0;
    this.messageLength = 0;
    if (text) {
      if (this.utf8 !== null && !this.utf8.complete) throw new ProtocolError(1007, 'text message ends inside a UTF-8 sequence');
      this.utf8 = null;
      if (buffer.length > REUSE_LIMIT) this.messageBuffer = null;
      this.handler.message(buffer.toString('utf8', 0, length), false);
    } else {
      this.messageBuffer = null;
      this.handler.message(buffer.subarray(0, length), true);
    }
  }

  /** Appends to the reassembly buffer, growing it geometrically up to what the headers announced. */
  private append(data: Buffer, pos: number, n: number): void {
    if (n === 0) return;
    const needed = this.messageLength + n;
    let buffer = this.messageBuffer;
    if (buffer === null || buffer.length < needed) {
      const grown = Math.max(this.messageBytes, Math.min((buffer?.length ?? 0) * 2, this.maxMessageSize));
      const next = Buffer.allocUnsafe(Math.max(grown, needed));
      if (buffer !== null) buffer.copy(next, 0, 0, this.messageLength);
      this.messageBuffer = buffer = next;
    }
    data.copy(buffer, this.messageLength, pos, pos + n);
    this.messageLength = needed;
  }
}

/** Short texts are checked here: cheaper than making a view for isUtf8. */
const ASCII_SCAN_LIMIT = 256;

function isAscii(data: Buffer, start: number, end: number): boolean {
  if (end - start > ASCII_SCAN_LIMIT) return false;
  for (let i = start; i < end; i++) if (data[i]! >= 0x80) return false;
  return true;
}

function byteLength(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/** A close reason must fit a control frame with its 2-byte code (§5.5). */
const MAX_REASON_BYTES = 123;

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
