import { type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Defaults, ErrorCode, Event, Initiator, SendStatus } from './constants.js';
import type { CloseInfo } from './connection.js';
import { HandshakeError, TimeoutError } from './errors.js';
import { EventQueue } from './event-queue.js';
import type { ClientEvent } from './events.js';
import { checkUpgradeResponse, createKey } from './handshake.js';
import { randomMaskKey } from './mask-pool.js';
import { type ConnectionOptions, type ResolvedConnectionOptions, resolveConnectionOptions } from './options.js';
import { Heartbeat } from './heartbeat.js';
import { Peer, type PeerOwner, turnBatching } from './peer.js';

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

/** RFC 7230 token characters: what a subprotocol name may contain (RFC 6455 §4.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * One outgoing WebSocket connection with the Server's poll API: the network fills a queue of
 * `Message` and `Disconnect` events (their `connId` is always 1), the program takes them with
 * `poll()`, `drain()` or `await next()`. Exactly one Disconnect ends the queue.
 */
export class Client implements PeerOwner {
  private readonly peer: Peer;
  private readonly queue: EventQueue<ClientEvent>;
  private readonly heartbeat: Heartbeat;
  private disconnected = false;

  /**
   * Opens a connection to a ws:// or wss:// URL; resolves once the server has switched
   * protocols. Rejects with a HandshakeError when the server answers but not with a valid 101
   * (`code`: UNAUTHORIZED for 401, NO_HANDSHAKE for another status, bad headers or a subprotocol
   * not offered, HANDSHAKE_ACCEPT for a wrong key), with a TimeoutError after
   * `handshakeTimeout`, and with Node's own error for network and TLS failures
   * (`err.code` e.g. ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT).
   */
  static connect(url: string, options: ClientOptions = {}): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
      const protocols = options.protocols ?? [];
      const key = createKey();
      const connection = resolveConnectionOptions(options);
      const timeoutMs = options.handshakeTimeout ?? Defaults.handshakeTimeout;
      const { secure, request: requestOptions } = upgradeRequest(url, key, protocols, options);
      const req = (secure ? httpsRequest : httpRequest)(requestOptions);
      const timer = connection.clock.setTimeout(() => {
        reject(new TimeoutError(`no handshake answer from ${url} within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on('error', (err) => {
        timer.cancel();
        reject(err);
      });
      req.on('response', (res) => {
        timer.cancel();
        reject(refusal(res, key, protocols));
        req.destroy();
      });
      req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        timer.cancel();
        let protocol: string | undefined;
        try {
          protocol = checkUpgradeResponse(answer(res), key, protocols);
        } catch (err) {
          socket.destroy();
          return reject(err);
        }
        resolve(new Client(socket, head, protocol, connection, options.maskKey ?? randomMaskKey));
      });
      req.end();
    });
  }

  private constructor(
    socket: Socket,
    head: Buffer,
    /** The subprotocol the server chose, or undefined. */
    readonly protocol: string | undefined,
    options: ResolvedConnectionOptions,
    maskKey: () => Uint8Array,
  ) {
    socket.setTimeout(0);
    socket.setNoDelay(true);
    this.queue = new EventQueue(options.clock, (event) => this.taken(event), turnBatching);
    this.peer = new Peer(CONN_ID, socket, 'client', options, this, maskKey);
    this.heartbeat = new Heartbeat(options, () => [this.peer]);
    this.heartbeat.start();
    if (head.length > 0) this.peer.receive(head);
  }

  /** Events waiting to be polled. */
  get pending(): number {
    return this.queue.length;
  }

  /** Bytes waiting in the send buffer. */
  get bufferedAmount(): number {
    return this.peer.bufferedAmount;
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
    return this.peer.send(data, typeof data !== 'string');
  }

  sendText(text: string): SendStatus {
    return this.peer.send(text, false);
  }

  sendBinary(data: Uint8Array | string): SendStatus {
    return this.peer.send(typeof data === 'string' ? Buffer.from(data) : data, true);
  }

  /** Sends a ping (at most 125 bytes of payload); false once closing or closed. */
  ping(payload?: string | Uint8Array): boolean {
    return this.peer.ping(payload);
  }

  /** Starts the close handshake; false if it was already started or the connection is gone. */
  close(code = 1000, reason = ''): boolean {
    return this.peer.close(code, reason);
  }

  /** Cuts TCP at once: Disconnect 1006. False if the connection was already over. */
  drop(): boolean {
    if (this.disconnected) return false;
    this.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  peerMessage(peer: Peer, message: string | Buffer, binary: boolean): void {
    peer.queued(message);
    this.queue.push({ type: Event.Message, connId: CONN_ID, message, binary });
  }

  peerClosed(_peer: Peer, info: CloseInfo): void {
    this.disconnected = true;
    this.heartbeat.stop();
    this.queue.push({
      type: Event.Disconnect,
      connId: CONN_ID,
      code: info.code,
      reason: info.reason,
      wasClean: info.wasClean,
      initiator: info.initiator,
    });
  }

  /**
   * Called for every event leaving the queue. A drained connection may read again; a taken
   * Disconnect sends the close frame still owed, so the program could first answer the
   * messages that came before it (as the Server does).
   */
  private taken(event: ClientEvent): void {
    if (event.type === Event.Disconnect) return this.peer.finishClose();
    this.peer.dequeued(event.message);
  }
}

/** The HTTP request of the opening handshake (RFC 6455 §4.1) for a ws:// or wss:// URL. */
function upgradeRequest(url: string, key: string, protocols: readonly string[], options: ClientOptions): { secure: boolean; request: RequestOptions } {
  const target = new URL(url);
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') throw new TypeError(`not a ws:// or wss:// URL: ${url}`);
  for (const protocol of protocols) if (!TOKEN.test(protocol)) throw new TypeError(`invalid subprotocol name "${protocol}"`);
  if (new Set(protocols).size !== protocols.length) throw new TypeError('subprotocols must be unique');
  const secure = target.protocol === 'wss:';
  const headers: Record<string, string> = {
    ...options.headers,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
  if (options.origin !== undefined) headers.Origin = options.origin;
  const request: RequestOptions = {
    ...(secure ? options.tls : undefined),
    agent: false,
    method: 'GET',
    host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: target.port === '' ? (secure ? 443 : 80) : Number(target.port),
    path: target.pathname + target.search,
    headers,
  };
  if (target.username || target.password) {
    request.auth = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
  }
  return { secure, request };
}

function answer(res: IncomingMessage): { status: number; headers: IncomingMessage['headers'] } {
  return { status: res.statusCode ?? 0, headers: res.headers };
}

/** Why an answer that Node did not treat as an upgrade refuses the handshake. */
function refusal(res: IncomingMessage, key: string, protocols: readonly string[]): unknown {
  try {
    checkUpgradeResponse(answer(res), key, protocols);
  } catch (err) {
    return err;
  }
  return new HandshakeError(ErrorCode.NO_HANDSHAKE, res.statusCode ?? 0, 'server did not switch protocols');
}
