import { ErrorCode, Initiator, ProtocolDefaults } from './constants.js';
import { HandshakeError } from './errors.js';
import {
  acceptResponse,
  checkUpgradeRequest,
  header,
  type Rejection,
  rejectionResponse,
  type RequestTarget,
  requestTarget,
  selectProtocol,
} from './handshake.js';
import { headEnd, parseRequestHead } from './http-head.js';
import { type DeflateAgreement, negotiateAsServer } from './permessage-deflate.js';
import { type CloseEvent, type FrameEvent, Protocol, type ProtocolOptions } from './protocol.js';

/** No subprotocols: one array for every connection that has none. */
const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/** Options of `new ServerProtocol(options)`. */
export interface ServerProtocolOptions extends ProtocolOptions {
  /** Largest request head (request line and headers); more is refused with HTTP 431. @default 16 KiB */
  maxHandshakeBytes?: number;
  /** Allowed `Origin` values; another origin (or none) is refused with HTTP 403. @default any origin */
  origins?: readonly string[] | undefined;
  /** Subprotocols in the server's order of preference; the first one the client offered wins. @default none */
  protocols?: readonly string[] | undefined;
}

/** A handshake request that passed every check of RFC 6455 §4.2.1. */
export interface HandshakeRequest extends RequestTarget {
  /** Always "GET" (any other method is refused with 405). */
  method: string;
  /** The request-target as sent, e.g. "/chat?token=abc". */
  target: string;
  /** e.g. "1.1" */
  httpVersion: string;
  /** Request headers, names lower-case, repeated ones joined with ", ". */
  headers: Record<string, string>;
  /** The subprotocol `accept()` will answer with, or undefined. */
  protocol: string | undefined;
  /** The Sec-WebSocket-Extensions `accept()` will answer with (permessage-deflate as agreed), or '' for none. */
  extensions: string;
}

/** A valid handshake request arrived: answer it with `accept()` or `reject(status)`. */
export interface RequestEvent {
  /** `'request'`. */
  type: 'request';
  /** What the client asked for. */
  request: HandshakeRequest;
}

/** What a ServerProtocol's `eventsReceived()` yields: switch on `type`. */
export type ServerProtocolEvent = RequestEvent | FrameEvent;

/**
 * The server side of one connection, handshake included (RFC 6455 §4.2): reads the request
 * head, refuses what is malformed with the HTTP status it calls for, yields a `request` event
 * for a valid one and waits for `accept()` or `reject()`; then frames flow.
 */
export class ServerProtocol extends Protocol<RequestEvent> {
  private readonly maxHandshakeBytes: number;
  private readonly origins: readonly string[] | undefined;
  private readonly protocols: readonly string[];
  /** The request head received so far. */
  private head: Buffer | null = null;
  /** Once a request waits for its answer: its key, chosen subprotocol and compression. */
  private answer: { key: string; protocol: string | undefined; deflate: DeflateAgreement | null } | null = null;
  /** Bytes that came after the request head, read as frames once accepted. */
  private early: Buffer | null = null;

  /** A connection waiting for its client's request head: hand it the bytes with `receiveData`. */
  constructor(options: ServerProtocolOptions = {}) {
    super(undefined, options);
    this.maxHandshakeBytes = options.maxHandshakeBytes ?? ProtocolDefaults.maxHandshakeBytes;
    this.origins = options.origins;
    this.protocols = options.protocols ?? NO_PROTOCOLS;
  }

  /**
   * Answers the waiting request with 101 (RFC 6455 §4.2.2); frames that came with it are read now.
   * @returns False if no request waits for an answer.
   */
  accept(): boolean {
    const answer = this.answer;
    if (answer === null || this.state !== 'connecting') return false;
    this.answer = null;
    this.outbox.text(acceptResponse(answer.key, answer.protocol, answer.deflate?.header));
    this.open(answer.deflate);
    const early = this.early;
    this.early = null;
    if (early !== null) this.read(early);
    return true;
  }

  /**
   * Refuses the waiting request with an HTTP status (and extra headers); the connection closes.
   * @param status - The HTTP status, e.g. 403.
   * @param reason - The status line's text and the body. Default: 'connection refused'.
   * @param headers - Extra response headers. Default: none.
   * @returns False if no request waits for an answer.
   */
  reject(status: number, reason = 'connection refused', headers?: Record<string, string>): boolean {
    if (this.answer === null || this.state !== 'connecting') return false;
    this.refuse({ status, reason, ...(headers ? { headers } : {}) }, Initiator.LOCAL);
    return true;
  }

  protected override receiveHandshake(data: Buffer): void {
    if (this.answer !== null) {
      // A client may send frames before our answer; hold them, but not without bound.
      const early = this.early === null ? data : Buffer.concat([this.early, data]);
      if (early.length > this.maxHandshakeBytes) return this.refuse({ status: 400, reason: 'too much data before the handshake was answered' });
      this.early = early;
      return;
    }
    const received = this.head === null ? data : Buffer.concat([this.head, data]);
    const end = headEnd(received);
    if (end < 0 ? received.length > this.maxHandshakeBytes : end > this.maxHandshakeBytes) {
      return this.refuse({ status: 431, reason: 'request head too large' });
    }
    if (end < 0) {
      this.head = received;
      return;
    }
    this.head = null;
    this.readRequest(received, end);
  }

  protected override eofEvent(): CloseEvent {
    const event = super.eofEvent();
    return this.state === 'connecting' ? { ...event, reason: 'connection closed during the handshake' } : event;
  }

  private readRequest(received: Buffer, end: number): void {
    const head = parseRequestHead(received, end);
    if (typeof head === 'string') return this.refuse({ status: 400, reason: `malformed request (${head})` });
    const checked = checkUpgradeRequest(head);
    if ('status' in checked) return this.refuse(checked);
    const origin = header(head.headers, 'origin');
    if (this.origins && (origin === undefined || !this.origins.includes(origin))) {
      return this.refuse({ status: 403, reason: `origin ${origin ?? '(none)'} is not allowed` });
    }
    const target = requestTarget(head.url);
    if (target === null) return this.refuse({ status: 400, reason: 'malformed request target' });
    const protocol = selectProtocol(head.headers['sec-websocket-protocol'], this.protocols);
    const deflate = this.compression === null ? null : negotiateAsServer(head.headers['sec-websocket-extensions'], this.compression);
    this.answer = { key: checked.key, protocol, deflate };
    if (end < received.length) this.early = received.subarray(end);
    const { method, url, httpVersion, headers } = head;
    const extensions = deflate?.header ?? '';
    this.emit({ type: 'request', request: { method, target: url, httpVersion, headers, ...target, protocol, extensions } });
  }

  /** Answers with an HTTP error; the connection ends (close event 1006, with the status in its reason). */
  private refuse(rejection: Rejection, initiator: Initiator = Initiator.ERROR): void {
    this.answer = null;
    this.early = null;
    this.head = null;
    this.outbox.text(rejectionResponse(rejection));
    const reason = `${rejection.status} ${rejection.reason}`;
    const error = initiator === Initiator.ERROR ? { error: new HandshakeError(ErrorCode.NO_HANDSHAKE, rejection.status, reason) } : {};
    this.finish({ type: 'close', code: 1006, reason: `handshake refused: ${reason}`, wasClean: false, initiator, ...error });
  }
}
