import { checkUpgradeResponse, type ClientRequestOptions, createKey, parseWebSocketUrl, requestHead } from './client-handshake.js';
import { ErrorCode, Initiator, ProtocolDefaults } from './constants.js';
import { HandshakeError } from './errors.js';
import { header } from './handshake.js';
import { headEnd, parseResponseHead } from './http-head.js';
import { randomMaskKey } from './mask-pool.js';
import { acceptAsClient, clientOffer, type DeflateAgreement } from './permessage-deflate.js';
import { type CloseEvent, type FrameEvent, Protocol, type ProtocolOptions } from './protocol.js';

/** Options of `new ClientProtocol(url, options)`. */
export interface ClientProtocolOptions extends ProtocolOptions, ClientRequestOptions {
  /** Returns the 4-byte mask key of each frame (RFC 6455 §5.3); pass a fixed one for deterministic tests. @default fresh random keys */
  maskKey?: () => Uint8Array;
  /** The Sec-WebSocket-Key to send; pass one for deterministic tests. @default 16 fresh random bytes, base64 */
  handshakeKey?: string;
  /** Largest response head the server may send; more fails the handshake. @default 16 KiB */
  maxHandshakeBytes?: number;
}

/** The server switched protocols: frames may flow. */
export interface OpenEvent {
  /** `'open'`. */
  type: 'open';
  /** The subprotocol the server chose, or undefined. */
  protocol: string | undefined;
  /** The 101 response's headers, names lower-case. */
  headers: Record<string, string>;
  /** The extensions the server agreed to (its Sec-WebSocket-Extensions: permessage-deflate as agreed), or '' for none. */
  extensions: string;
}

/** What a ClientProtocol's `eventsReceived()` yields: switch on `type`. */
export type ClientProtocolEvent = OpenEvent | FrameEvent;

/**
 * The client side of one connection, handshake included (RFC 6455 §4.1): its request head is
 * in `dataToSend()` from the start; a valid 101 yields `open`, anything else a `close` event
 * whose `error` is a HandshakeError (`code`, and `status`: the HTTP status, 0 if none came).
 * Every frame it sends is masked with a fresh key.
 */
export class ClientProtocol extends Protocol<OpenEvent> {
  /** The URL connected to. */
  readonly url: URL;
  private readonly key: string;
  private readonly offered: readonly string[];
  private readonly maxHandshakeBytes: number;
  /** The response head received so far. */
  private head: Buffer | null = null;

  /**
   * A connection whose request head is ready in `dataToSend()`.
   * @param url - A ws:// or wss:// URL (the shell opens the TCP or TLS connection to it).
   * @throws TypeError for a URL that is not ws:// or wss://, or a bad subprotocol or header.
   */
  constructor(url: string | URL, options: ClientProtocolOptions = {}) {
    super(options.maskKey ?? randomMaskKey, options);
    this.url = parseWebSocketUrl(url);
    this.key = options.handshakeKey ?? createKey();
    this.offered = options.protocols ?? [];
    this.maxHandshakeBytes = options.maxHandshakeBytes ?? ProtocolDefaults.maxHandshakeBytes;
    this.outbox.text(requestHead(this.url, this.key, options, this.compression === null ? undefined : clientOffer(this.compression)));
  }

  protected override receiveHandshake(data: Buffer): void {
    const received = this.head === null ? data : Buffer.concat([this.head, data]);
    const end = headEnd(received);
    if (end < 0 ? received.length > this.maxHandshakeBytes : end > this.maxHandshakeBytes) {
      return this.failHandshake(new HandshakeError(ErrorCode.NO_HANDSHAKE, 0, 'response head too large'));
    }
    if (end < 0) {
      this.head = received;
      return;
    }
    this.head = null;
    const head = parseResponseHead(received, end);
    if (typeof head === 'string') return this.failHandshake(new HandshakeError(ErrorCode.NO_HANDSHAKE, 0, `malformed response (${head})`));
    let protocol: string | undefined;
    let deflate: DeflateAgreement | null;
    try {
      protocol = checkUpgradeResponse(head, this.key, this.offered);
      deflate = acceptAsClient(header(head.headers, 'sec-websocket-extensions'), this.compression);
    } catch (err) {
      return this.failHandshake(err as HandshakeError);
    }
    this.open(deflate);
    this.emit({ type: 'open', protocol, headers: head.headers, extensions: deflate?.header ?? '' });
    if (end < received.length) this.readFrames(received.subarray(end));
  }

  protected override eofEvent(): CloseEvent {
    if (this.state !== 'connecting') return super.eofEvent();
    const error = new HandshakeError(ErrorCode.NO_HANDSHAKE, 0, 'connection closed before the server answered the handshake');
    return { type: 'close', code: 1006, reason: error.message, wasClean: false, initiator: Initiator.PEER, error };
  }

  private failHandshake(error: HandshakeError): void {
    this.finish({ type: 'close', code: 1006, reason: error.message, wasClean: false, initiator: Initiator.ERROR, error });
  }
}
