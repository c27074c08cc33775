import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ClientProtocol } from '../core/client-protocol.js';
import { ErrorCode, Initiator } from '../core/constants.js';
import { HandshakeError, TimeoutError } from '../core/errors.js';
import type { CloseEvent } from '../core/protocol.js';
import { connectTo } from '../io/connect.js';
import { Heartbeat } from '../io/heartbeat.js';
import type { MemoryNetwork } from '../io/memory-network.js';
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
  /** Extra request headers (e.g. Authorization, Cookie); the WebSocket headers themselves cannot be overridden. @default none */
  headers?: Record<string, string>;
  /** The Origin header. @default none */
  origin?: string;
  /** `connect` rejects with a TimeoutError when the server has not switched protocols by then. @default 10 000 ms */
  handshakeTimeout?: number;
  /** node:tls options for wss:// (`ca`, `cert`, `key`, `servername`, `rejectUnauthorized`, …). @default Node's: the system's trusted CAs */
  tls?: TlsConnectionOptions;
  /** Returns the 4-byte mask key of each frame; pass a fixed one for deterministic tests. @default fresh random keys (on a memory network: drawn from its seed) */
  maskKey?: () => Uint8Array;
  /**
   * Connect through this memory network (`wspoll/testing`) instead of TCP (ws:// only). The
   * client then runs on `network.clock` unless it was given a `clock`, and its keys come from
   * the network's seed.
   * @default none: TCP
   */
  network?: MemoryNetwork;
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
export class Client {
  private readonly session: ClientSession;
  private readonly table = new ConnectionTable<ClientSession>();
  private readonly queue: EventQueue<ClientEvent, ClientSession>;
  private readonly heartbeat: Heartbeat;
  private readonly handshakeTimeout: number;
  private chosenProtocol: string | undefined;
  /** What the session reports to: kept off the public type. */
  private readonly host: SessionHost<undefined, ClientProtocol> = {
    sessionEvent: (session, event) => this.sessionEvent(session, event),
    sessionGone: () => {},
  };
  private agreedExtensions = '';

  /**
   * Opens a connection to a ws:// or wss:// URL; resolves once the server has switched
   * protocols. Rejects with a HandshakeError when the server answers but not with a valid 101
   * (`code`: UNAUTHORIZED for 401, NO_HANDSHAKE for another status, bad headers or a subprotocol
   * not offered, HANDSHAKE_ACCEPT for a wrong key), with a TimeoutError after
   * `handshakeTimeout`, with Node's own error for network and TLS failures
   * (`err.code` e.g. ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT), and with a TypeError for a URL
   * that is not ws:// or wss://.
   * @param url - A ws:// or wss:// URL; its path and query go in the request.
   * @returns The open client, with the server's queue API for its one connection.
   */
  static connect(url: string, options: ClientOptions = {}): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
      // On a memory network the keys follow from its seed, so every run sends the same bytes.
      const seeded = options.network?.random();
      const maskKey = options.maskKey ?? (seeded && (() => seeded.bytes(4)));
      const protocol = new ClientProtocol(url, {
        protocols: options.protocols,
        headers: options.headers,
        origin: options.origin,
        maxMessageSize: options.maxMessageSize ?? Defaults.maxMessageSize,
        compression: options.compression,
        // The program may answer earlier messages until it takes the Disconnect (see ConnectionTable).
        deferCloseReply: true,
        ...(maskKey ? { maskKey } : {}),
        ...(seeded ? { handshakeKey: seeded.bytes(16).toString('base64') } : {}),
      });
      new Client(protocol, options, { resolve, reject });
    });
  }

  private constructor(
    protocol: ClientProtocol,
    options: ClientOptions,
    private connecting: Connecting | undefined,
  ) {
    const connection: ResolvedConnectionOptions = resolveConnectionOptions({ ...options, clock: options.clock ?? options.network?.clock });
    this.queue = new EventQueue(connection.clock, (event, session) => this.table.taken(event, session), {
      active: batchingAcrossSockets,
      afterWake: flushAll,
    });
    this.session = new Session(this.host, connection);
    this.session.id = CONN_ID;
    this.heartbeat = new Heartbeat(connection, () => [this.session.peer]);
    this.handshakeTimeout = options.handshakeTimeout ?? Defaults.handshakeTimeout;
    const socket = connectTo(protocol.url, options);
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

  /**
   * The last round-trip time measured with a heartbeat ping and its pong.
   * @returns Milliseconds, or undefined before the first pong.
   */
  get rtt(): number | undefined {
    return this.session.peer.rtt;
  }

  /**
   * Takes the next event without waiting.
   * @returns The oldest queued event, or undefined when the queue is empty.
   */
  poll(): ClientEvent | undefined {
    return this.queue.shift();
  }

  /**
   * Takes up to `max` queued events at once.
   * @param max - How many at most. Default: Infinity.
   * @returns The events, oldest first (empty when none are queued).
   */
  drain(max = Infinity): ClientEvent[] {
    return this.queue.drain(max);
  }

  /**
   * Waits for the next event.
   * @param timeoutMs - Give up after this long. Default: no limit.
   * @returns The oldest queued event, at once if there is one; rejects with a TimeoutError after `timeoutMs`.
   */
  next(timeoutMs?: number): Promise<ClientEvent> {
    return this.queue.next(timeoutMs);
  }

  /**
   * Sends a string as a text message, bytes as a binary one. After the server's close, messages
   * that came before it may still be answered until the Disconnect is taken; then CLOSED.
   * @returns `SUCCESS`; `BACKPRESSURE` (queued, but the send buffer passed `sendHighWaterMark`:
   * slow down); `DROPPED` (not queued: the buffer holds `maxBufferedBytes`); `CLOSED` (closing
   * or closed).
   */
  send(data: string | Uint8Array): SendStatus {
    return this.session.send(data, typeof data !== 'string');
  }

  /**
   * Sends a text message.
   * @returns `SUCCESS`, `BACKPRESSURE`, `DROPPED` or `CLOSED`, as {@link Client.send}.
   */
  sendText(text: string): SendStatus {
    return this.session.send(text, false);
  }

  /**
   * Sends a binary message (a string goes as its UTF-8 bytes).
   * @returns `SUCCESS`, `BACKPRESSURE`, `DROPPED` or `CLOSED`, as {@link Client.send}.
   */
  sendBinary(data: Uint8Array | string): SendStatus {
    return this.session.send(data, true);
  }

  /**
   * Sends a ping; the server's pong is automatic.
   * @param payload - At most 125 bytes. Default: empty.
   * @returns False once closing or closed.
   */
  ping(payload?: string | Uint8Array): boolean {
    return this.session.peer.ping(payload);
  }

  /**
   * Starts the close handshake: the Disconnect comes once the server answers, or after `closeTimeout`.
   * @param code - 1000–1003, 1007–1014 or 3000–4999; another throws a RangeError. Default: 1000.
   * @param reason - At most 123 bytes of UTF-8. Default: ''.
   * @returns False if it was already started or the connection is gone.
   */
  close(code = 1000, reason = ''): boolean {
    if (this.session.disconnected) return false;
    return this.session.peer.close(code, reason);
  }

  /**
   * Cuts TCP at once, without a close frame: Disconnect 1006.
   * @returns False if the connection was already over.
   */
  drop(): boolean {
    if (this.session.disconnected) return false;
    this.session.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  // SessionHost: what the protocol says, in order.

  private sessionEvent(session: ClientSession, event: PeerEvent): void {
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
