import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ClientProtocol } from '../core/client-protocol.js';
import { ErrorCode, Initiator } from '../core/constants.js';
import { HandshakeError, TimeoutError } from '../core/errors.js';
import type { CloseEvent } from '../core/protocol.js';
import { connectTo } from '../io/connect.js';
import { Heartbeat } from '../io/heartbeat.js';
import { Peer, type PeerEvent } from '../io/peer.js';
import { batchingAcrossSockets, flushAll } from '../io/write-batching.js';
import { ConnectionTable } from './connection-table.js';
import { Event, type SendStatus } from './constants.js';
import { EventQueue } from './event-queue.js';
import type { ClientEvent } from './events.js';
import { type ConnectionOptions, Defaults, type ResolvedConnectionOptions, resolveConnectionOptions } from './options.js';
import { Session, type SessionHost } from './session.js';

/** Options of `Client.connect(url, options)`. */
export interface ClientOptions extends ConnectionOptions {
  /** Subprotocols to offer (Sec-WebSocket-Protocol); the server may pick one, read it from `client.protocol`. @default none */
  protocols?: readonly string[];
  /** Extra request headers (e.g. Authorization, Cookie); the WebSocket headers themselves cannot be overridden. */
  headers?: Record<string, string>;
  /** The Origin header. @default none */
  origin?: string;
  /** `connect` rejects with a TimeoutError when the server has not switched protocols by then. @default 10 000 ms */
  handshakeTimeout?: number;
  /** node:tls options for wss:// (`ca`, `cert`, `key`, `servername`, `rejectUnauthorized`, …). */
  tls?: TlsConnectionOptions;
  /** Returns the 4-byte mask key of each frame; pass a fixed one for deterministic tests. @default fresh random keys */
  maskKey?: () => Uint8Array;
}

/** The connection id on every event of a Client: it has exactly one connection. */
const CONN_ID = 1;

type ClientSession = Session<undefined, ClientProtocol>;

/** How the handshake's promise is settled. */
interface Connecting {
  resolve(client: Client): void;
  reject(err: unknown): void;
}

/**
 * One outgoing WebSocket connection with the Server's poll API: the network fills a queue of
 * `Message` and `Disconnect` events (their `connId` is always 1), the program takes them with
 * `poll()`, `drain()` or `await next()`. Exactly one Disconnect ends the queue.
 */
export class Client implements SessionHost<undefined, ClientProtocol> {
  private readonly session: ClientSession;
  private readonly table = new ConnectionTable<ClientSession>();
  private readonly queue: EventQueue<ClientEvent, ClientSession>;
  private readonly heartbeat: Heartbeat;
  private readonly handshakeTimeout: number;
  private chosenProtocol: string | undefined;
  private agreedExtensions = '';

  /**
   * Opens a connection to a ws:// or wss:// URL; resolves once the server has switched
   * protocols. Rejects with a HandshakeError when the server answers but not with a valid 101
   * (`code`: UNAUTHORIZED for 401, NO_HANDSHAKE for another status, bad headers or a subprotocol
   * not offered, HANDSHAKE_ACCEPT for a wrong key), with a TimeoutError after
   * `handshakeTimeout`, with Node's own error for network and TLS failures
   * (`err.code` e.g. ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT), and with a TypeError for a URL
   * that is not ws:// or wss://.
   */
  static connect(url: string, options: ClientOptions = {}): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
      const protocol = new ClientProtocol(url, {
        protocols: options.protocols,
        headers: options.headers,
        origin: options.origin,
        maxMessageSize: options.maxMessageSize ?? Defaults.maxMessageSize,
        compression: options.compression,
        // The program may answer earlier messages until it takes the Disconnect (see ConnectionTable).
        deferCloseReply: true,
        ...(options.maskKey ? { maskKey: options.maskKey } : {}),
      });
      new Client(protocol, options, { resolve, reject });
    });
  }

  private constructor(
    protocol: ClientProtocol,
    options: ClientOptions,
    private connecting: Connecting | undefined,
  ) {
    const connection: ResolvedConnectionOptions = resolveConnectionOptions(options);
    this.queue = new EventQueue(connection.clock, (event, session) => this.table.taken(event, session), {
      active: batchingAcrossSockets,
      afterWake: flushAll,
    });
    this.session = new Session(this, connection);
    this.session.id = CONN_ID;
    this.heartbeat = new Heartbeat(connection, () => [this.session.peer]);
    this.handshakeTimeout = options.handshakeTimeout ?? Defaults.handshakeTimeout;
    const socket = connectTo(protocol.url, options.tls);
    this.session.peer = new Peer(socket, protocol, connection, this.session, this.handshakeTimeout);
  }

  /** The subprotocol the server chose, or undefined. */
  get protocol(): string | undefined {
    return this.chosenProtocol;
  }

  /** The extensions the server agreed to (permessage-deflate with its parameters), or ''. */
  get extensions(): string {
    return this.agreedExtensions;
  }

  /** Events waiting to be polled. */
  get pending(): number {
    return this.queue.length;
  }

  /** Bytes waiting in the send buffer. */
  get bufferedAmount(): number {
    return this.session.peer.bufferedAmount;
  }

  /** The next event, or undefined at once. */
  poll(): ClientEvent | undefined {
    return this.queue.shift();
  }

  /** Up to `max` events (all by default). */
  drain(max = Infinity): ClientEvent[] {
    return this.queue.drain(max);
  }

  /** The next event, waiting for it; rejects with a TimeoutError after `timeoutMs`. */
  next(timeoutMs?: number): Promise<ClientEvent> {
    return this.queue.next(timeoutMs);
  }

  /**
   * Sends a string as a text message, bytes as a binary one. After the server's close, messages
   * that came before it may still be answered until the Disconnect is taken; then CLOSED.
   */
  send(data: string | Uint8Array): SendStatus {
    return this.session.send(data, typeof data !== 'string');
  }

  sendText(text: string): SendStatus {
    return this.session.send(text, false);
  }

  sendBinary(data: Uint8Array | string): SendStatus {
    return this.session.send(data, true);
  }

  /** Sends a ping (at most 125 bytes of payload); false once closing or closed. */
  ping(payload?: string | Uint8Array): boolean {
    return this.session.peer.ping(payload);
  }

  /** Starts the close handshake; false if it was already started or the connection is gone. */
  close(code = 1000, reason = ''): boolean {
    if (this.session.disconnected) return false;
    return this.session.peer.close(code, reason);
  }

  /** Cuts TCP at once: Disconnect 1006. False if the connection was already over. */
  drop(): boolean {
    if (this.session.disconnected) return false;
    this.session.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  // SessionHost: what the protocol says, in order.

  sessionEvent(session: ClientSession, event: PeerEvent): void {
    if (event.type === 'message') {
      session.queued(event.data);
      this.queue.push({ type: Event.Message, connId: CONN_ID, message: event.data, binary: event.binary }, session);
    } else if (event.type === 'open') {
      this.chosenProtocol = event.protocol;
      this.agreedExtensions = event.extensions;
      session.announced = true;
      this.table.add(session);
      this.heartbeat.start();
      this.connecting?.resolve(this);
      this.connecting = undefined;
    } else if (event.type === 'close') this.closed(session, event);
  }

  sessionGone(): void {}

  private closed(session: ClientSession, event: CloseEvent): void {
    this.heartbeat.stop();
    if (!session.announced) {
      this.connecting?.reject(this.handshakeFailure(event));
      this.connecting = undefined;
      session.peer.cut(event.reason, event.initiator);
      return;
    }
    session.disconnected = true;
    const { code, reason, wasClean, initiator } = event;
    this.queue.push({ type: Event.Disconnect, connId: CONN_ID, code, reason, wasClean, initiator }, session);
  }

  /** Why `connect` fails: the handshake's own error, a timeout, or the socket's error. */
  private handshakeFailure(event: CloseEvent): Error {
    const url = this.session.peer.protocol.url.href;
    if (event.initiator === Initiator.TIMEOUT) return new TimeoutError(`no handshake answer from ${url} within ${this.handshakeTimeout} ms`);
    return event.error ?? new HandshakeError(ErrorCode.NO_HANDSHAKE, 0, event.reason);
  }
}
