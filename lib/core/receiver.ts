import { isUtf8 } from 'node:buffer';
import { Opcode } from './constants.js';
import { ProtocolError } from './errors.js';
import { applyMask, FrameHeader, isControl, readHeader } from './frame.js';
import { bufferView } from './memory-view.js';
import { compressedBound } from './message-deflater.js';
import type { MessageInflater } from './message-inflater.js';
import { Utf8Validator } from './utf8.js';

/** What a Receiver hands its protocol: whole messages and control frames, in arrival order. */
export interface ReceiverSink<O> {
  /** A complete message: a string for text, a Buffer (owned by the receiver of it) for binary. */
  message(owner: O, data: string | Buffer, binary: boolean): void;
  /** A control frame; `payload` is a view valid only during the call. */
  control(owner: O, opcode: number, payload: Buffer): void;
}

/** Reassembly buffers up to this size are kept for the next message instead of reallocated. */
const REUSE_LIMIT = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** Scratch space shared by all receivers: headers are decoded, and masks applied, one at a time. */
const decoded = new FrameHeader();
const maskBytes = new Uint8Array(4);

/**
 * Turns a byte stream of frames into messages and control frames (RFC 6455 §5): decodes
 * headers, unmasks in place, reassembles fragments, validates text as it arrives, inflates
 * compressed messages once whole (RFC 7692, once `inflater` is set). Throws a ProtocolError with
 * the close code for anything the RFCs or the size limit forbid.
 */
export class Receiver<O> {
  /** Set once the protocol reads no more (a close frame came, or the connection failed). */
  stopped = false;
  /** True on the server: the peer is a client, which masks every frame (RFC 6455 §5.1). */
  private readonly peerMasks: boolean;
  private readonly maxMessageSize: number;
  /** The most compressed bytes a message may have: maxMessageSize once inflated, at most. */
  private readonly maxCompressedSize: number;
  /** Set once permessage-deflate is agreed: RSV1 is allowed and compressed messages are inflated. */
  inflater: MessageInflater | null = null;

  /** The current frame's header fields (a shared FrameHeader only decodes them). */
  private fin = false;
  private opcode = 0;
  private maskWord = 0;
  private payloadLength = 0;
  /** The current frame has RSV1. */
  private compressed = false;
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
  /** The current message is compressed: its bytes are inflated once it is whole. */
  private messageCompressed = false;
  /** Only while a text message arrives in pieces (most messages are checked whole). */
  private utf8: Utf8Validator | null = null;

  private controlBuffer: Buffer | null = null;
  private controlLength = 0;

  /**
   * `sink` gets what is read, with `owner` (one sink object serves every receiver: nothing per
   * connection but these two references).
   */
  constructor(
    peerMasks: boolean,
    maxMessageSize: number,
    private readonly sink: ReceiverSink<O>,
    private readonly owner: O,
  ) {
    this.peerMasks = peerMasks;
    this.maxMessageSize = maxMessageSize;
    this.maxCompressedSize = compressedBound(maxMessageSize);
  }

  /** Reads frames from `chunk` (unmasking it in place) until it is used up or the sink stops it. */
  receive(chunk: Buffer): void {
    let data = chunk;
    if (this.stash !== null) {
      data = Buffer.concat([this.stash, chunk]);
      this.stash = null;
    }
    const end = data.length;
    let pos = 0;
    while (pos < end && !this.stopped) {
      if (this.inFrame) {
        const n = Math.min(end - pos, this.frameRemaining);
        if (isControl(this.opcode)) this.controlPayload(data, pos, n);
        else this.dataPayload(data, pos, n);
        pos += n;
        continue;
      }
      const limit = this.messageCompressed ? this.maxCompressedSize : this.maxMessageSize;
      const size = readHeader(data, pos, end, limit - this.messageBytes, decoded, this.inflater !== null, this.maxCompressedSize);
      if (size === 0) {
        this.stash = Buffer.from(data.subarray(pos));
        return;
      }
      pos += size;
      // RFC 6455 §5.1: clients MUST mask every frame, servers MUST NOT.
      if (decoded.masked !== this.peerMasks) {
        throw new ProtocolError(1002, this.peerMasks ? 'client frame not masked' : 'server frame masked');
      }
      const opcode = decoded.opcode;
      const length = decoded.payloadLength;
      if (decoded.fin && (opcode === Opcode.TEXT || opcode === Opcode.BINARY) && this.messageOpcode === 0 && end - pos >= length) {
        // The hot path: a whole unfragmented message inside this read, delivered straight from
        // the header, without the per-frame state of the general path.
        if (this.peerMasks) applyMask(data, pos, pos + length, decoded.mask, 0);
        if (decoded.compressed) this.deliverInflated(data, pos, pos + length, opcode === Opcode.TEXT);
        else this.deliverWhole(data, pos, length, opcode === Opcode.TEXT);
        pos += length;
        continue;
      }
      this.takeHeader();
      this.startFrame();
    }
  }

  /** Stops reading and lets go of every buffer. */
  stop(): void {
    this.stopped = true;
    this.messageBuffer = null;
    this.controlBuffer = null;
    this.stash = null;
    this.utf8 = null;
    this.inflater = null;
  }

  /** Copies the decoded header into this receiver: it stays per connection only as a few numbers. */
  private takeHeader(): void {
    this.fin = decoded.fin;
    this.opcode = decoded.opcode;
    this.payloadLength = decoded.payloadLength;
    this.compressed = decoded.compressed;
    const m = decoded.mask;
    this.maskWord = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
  }

  private startFrame(): void {
    if (this.opcode === Opcode.CONT) {
      if (this.messageOpcode === 0) throw new ProtocolError(1002, 'continuation frame without a message to continue');
    } else if (!isControl(this.opcode)) {
      if (this.messageOpcode !== 0) throw new ProtocolError(1002, 'new message before the previous one ended');
      this.messageOpcode = this.opcode;
      this.messageCompressed = this.compressed;
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
    this.sink.control(this.owner, this.opcode, payload);
  }

  private dataPayload(data: Buffer, pos: number, n: number): void {
    const text = this.messageOpcode === Opcode.TEXT;
    const compressed = this.messageCompressed;
    this.unmask(data, pos, n);
    // RFC 6455 §8.1: fail as soon as the text cannot be valid UTF-8, even mid-frame (compressed text: once inflated).
    if (text && !compressed && !(this.utf8 ??= new Utf8Validator()).write(data, pos, pos + n)) {
      throw new ProtocolError(1007, 'text message is not valid UTF-8');
    }
    this.append(data, pos, n);
    if (this.inFrame || !this.fin) return;
    const buffer = this.messageBuffer ?? EMPTY;
    const length = this.messageLength;
    this.messageOpcode = 0;
    this.messageBytes = 0;
    this.messageLength = 0;
    this.messageCompressed = false;
    if (compressed) {
      // The reassembled bytes are only the inflater's input: the buffer may serve the next message.
      if (buffer.length > REUSE_LIMIT) this.messageBuffer = null;
      this.deliverInflated(buffer, 0, length, text);
    } else if (text) {
      if (this.utf8 !== null && !this.utf8.complete) throw new ProtocolError(1007, 'text message ends inside a UTF-8 sequence');
      this.utf8 = null;
      if (buffer.length > REUSE_LIMIT) this.messageBuffer = null;
      this.sink.message(this.owner, buffer.toString('utf8', 0, length), false);
    } else {
      this.messageBuffer = null;
      this.sink.message(this.owner, buffer.subarray(0, length), true);
    }
  }

  /**
   * A whole message inside one read, delivered without copying: a binary one is a view of the
   * read's memory (as the read's other messages are).
   */
  private deliverWhole(data: Buffer, pos: number, n: number, text: boolean): void {
    if (!text) return this.sink.message(this.owner, bufferView(data, pos, n), true);
    if (!isAscii(data, pos, pos + n) && !isUtf8(bufferView(data, pos, n))) {
      throw new ProtocolError(1007, 'text message is not valid UTF-8');
    }
    this.sink.message(this.owner, data.toString('utf8', pos, pos + n), false);
  }

  /** Inflates a compressed message's bytes data[start, end) and delivers it (text checked as UTF-8). */
  private deliverInflated(data: Buffer, start: number, end: number, text: boolean): void {
    const message = this.inflater!.inflate(data, start, end, this.maxMessageSize);
    if (!text) return this.sink.message(this.owner, ownMemory(message), true);
    if (!isUtf8(message)) throw new ProtocolError(1007, 'text message is not valid UTF-8');
    this.sink.message(this.owner, message.toString('utf8'), false);
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

/**
 * An inflated message with memory of its own size: zlib's output for a small message is a view of
 * a 16 KiB chunk, which a kept message would hold on to.
 */
function ownMemory(message: Buffer): Buffer {
  return message.buffer.byteLength > 2 * message.length + 1024 ? Buffer.from(message) : message;
}

/** Short texts are checked here: cheaper than making a view for isUtf8. */
const ASCII_SCAN_LIMIT = 256;

function isAscii(data: Buffer, start: number, end: number): boolean {
  if (end - start > ASCII_SCAN_LIMIT) return false;
  for (let i = start; i < end; i++) if (data[i]! >= 0x80) return false;
  return true;
}
