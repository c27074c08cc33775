import type { Server as HttpServer } from 'node:http';
import type { Writable } from 'node:stream';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { Initiator } from '../core/constants.js';
import { resolveCompression } from '../core/deflate-options.js';
import { encodeMessage } from '../core/encoded-message.js';
import type { CloseEvent } from '../core/protocol.js';
import { type HandshakeRequest, ServerProtocol } from '../core/server-protocol.js';
import { Heartbeat } from '../io/heartbeat.js';
import { attach, type FrontOptions, listen, type Listening } from '../io/listening.js';
import { Peer, type PeerEvent } from '../io/peer.js';
import { address, type UpgradeSocket } from '../io/upgrade.js';
import { batchingAcrossSockets, flushAll } from '../io/write-batching.js';
import { ConnectionTable } from './connection-table.js';
import { Event, SendStatus } from './constants.js';
import { EventQueue } from './event-queue.js';
import type { HandshakeFacts, ServerEvent } from './events.js';
import { Defaults, type ResolvedConnectionOptions, resolveConnectionOptions, type ServerOptions } from './options.js';
import { Session, type SessionHost } from './session.js';
import { Topics } from './topics.js';
import { UpgradeGate } from './upgrade-gate.js';

export interface StartOptions {
  /** @default all interfaces */
  host?: string;
  /** 0 picks a free port; read it from `server.port`. @default 0 */
  port?: number;
  /** Serve wss:// with these node:tls options (key, cert, …). */
  tls?: SecureContextOptions & TlsOptions;
  /** Where to write one line per failure (websocket-cpp's errStream). */
  errStream?: Writable;
}

export interface StopOptions {
  /** The close code sent to every connection. @default 1001 */
  code?: number;
  reason?: string;
  /** How long to wait for the peers' close frames before cutting TCP. @default closeTimeout */
  timeoutMs?: number;
}

/** Facts about a live connection. */
export interface ConnectionInfo extends HandshakeFacts {
  /** Bytes waiting in the send buffer. */
  bufferedAmount: number;
  /** Bytes of this connection's messages waiting to be polled. */
  queuedBytes: number;
}

/** How the queue's wake-ups fit the turn of the event loop: batched with the writes (see EventQueue). */
const turnBatching = { active: batchingAcrossSockets, afterWake: flushAll };

/**
 * A WebSocket server with a poll API: the network fills one queue of events, the program
 * drains it with `poll()`, `drain()` or `await next()` whenever it likes.
 */
/** A connection of a Server, as the server sees it. */
type ServerSession<T> = Session<T, ServerProtocol>;

export class Server<T = unknown> implements SessionHost<T, ServerProtocol> {
  private readonly options: ServerOptions;
  private readonly connectionOptions: ResolvedConnectionOptions;
  private readonly queue: EventQueue<ServerEvent, ServerSession<T>>;
  private readonly table = new ConnectionTable<ServerSession<T>>();
  private readonly topics = new Topics<ServerSession<T>>();
  private readonly gate: UpgradeGate<ServerSession<T>>;
  private readonly heartbeat: Heartbeat;
  /** Every session whose socket is not closed yet, handshakes included: stop() waits for them. */
  private readonly sessions = new Set<ServerSession<T>>();
  private lastId = 0;
  private listening: Listening | undefined;
  private errStream: Writable | undefined;
  private stopping: Promise<void> | undefined;
  private sessionsClosed: (() => void) | undefined;

  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.connectionOptions = resolveConnectionOptions(options);
    resolveCompression(options.compression, 'server'); // a bad value throws here, not at the first handshake
    this.queue = new EventQueue(this.connectionOptions.clock, (event, session) => this.table.taken(event, session), turnBatching);
    this.gate = new UpgradeGate({ maxConnections: options.maxConnections });
    this.heartbeat = new Heartbeat(this.connectionOptions, () => this.peers());
  }

  /** The port listened on (after `start`). */
  get port(): number {
    return this.listening?.port ?? 0;
  }

  /** Events waiting to be polled. */
  get pending(): number {
    return this.queue.length;
  }

  /** Listens on host:port (websocket-cpp order), or with options (TLS for wss://). */
  start(host: string, port: number, errStream?: Writable): Promise<void>;
  start(options?: StartOptions): Promise<void>;
  async start(hostOrOptions: string | StartOptions = {}, port = 0, errStream?: Writable): Promise<void> {
    if (this.listening) throw new Error('server already started');
    const options: StartOptions = typeof hostOrOptions === 'string' ? { host: hostOrOptions, port, ...(errStream ? { errStream } : {}) } : hostOrOptions;
    this.errStream = options.errStream;
    this.listening = await listen(options, this.frontOptions(), this.upgrade);
  }

  /** Serves WebSockets on the program's own http/https server (one port for pages and sockets). */
  attach(server: HttpServer, errStream?: Writable): void {
    if (this.listening) throw new Error('server already started');
    this.errStream = errStream;
    this.listening = attach(server, this.frontOptions(), this.upgrade);
  }

  /** The next event, or undefined at once. */
  poll(): ServerEvent | undefined {
    return this.queue.shift();
  }

  /** Up to `max` events (all by default): a per-tick budget. */
  drain(max = Infinity): ServerEvent[] {
    return this.queue.drain(max);
  }

  /** The next event, waiting for it; rejects with a TimeoutError after `timeoutMs`. */
  next(timeoutMs?: number): Promise<ServerEvent> {
    return this.queue.next(timeoutMs);
  }

  /** Sends a string as a text message, bytes as a binary one. */
  send(connId: number, data: string | Uint8Array): SendStatus {
    return this.table.get(connId)?.send(data, typeof data !== 'string') ?? SendStatus.CLOSED;
  }

  sendText(connId: number, text: string): SendStatus {
    return this.table.get(connId)?.send(text, false) ?? SendStatus.CLOSED;
  }

  sendBinary(connId: number, data: Uint8Array | string): SendStatus {
    return this.table.get(connId)?.send(data, true) ?? SendStatus.CLOSED;
  }

  /**
   * Sends to every connection, or to `connIds`, encoding the frame once (compressed: once per set
   * of negotiated parameters). Returns how many took it.
   */
  broadcast(data: string | Uint8Array, connIds?: Iterable<number>): number {
    const message = encodeMessage(data);
    let delivered = 0;
    if (connIds === undefined) {
      for (const session of this.table.values()) delivered += accepted(session.sendEncoded(message));
    } else {
      for (const id of connIds) {
        const session = this.table.get(id);
        if (session) delivered += accepted(session.sendEncoded(message));
      }
    }
    return delivered;
  }

  subscribe(connId: number, topic: string): boolean {
    const session = this.table.get(connId);
    if (session?.peer.protocol.state !== 'open') return false;
    this.topics.subscribe(session, topic);
    return true;
  }

  unsubscribe(connId: number, topic: string): boolean {
    const session = this.table.get(connId);
    return session !== undefined && this.topics.unsubscribe(session, topic);
  }

  /** Sends to every subscriber of `topic`, encoding the frame once (as broadcast does). Returns how many took it. */
  publish(topic: string, data: string | Uint8Array): number {
    const members = this.topics.subscribers(topic);
    if (!members) return 0;
    const message = encodeMessage(data);
    let delivered = 0;
    for (const session of members) delivered += accepted(session.sendEncoded(message));
    return delivered;
  }

  /** Starts the close handshake; false for an unknown, closing or closed id. */
  close(connId: number, code = 1000, reason = ''): boolean {
    const session = this.table.get(connId);
    if (!session || session.disconnected) return false;
    return session.peer.close(code, reason);
  }

  /** Cuts TCP at once: Disconnect 1006. */
  drop(connId: number): boolean {
    const session = this.table.get(connId);
    if (!session || session.peer.protocol.state === 'closed') return false;
    session.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  ping(connId: number, payload?: string | Uint8Array): boolean {
    return this.table.get(connId)?.peer.ping(payload) ?? false;
  }

  /** With `manualAccept`: completes a requested handshake (101, then NewConnection). */
  accept(connId: number): boolean {
    const session = this.gate.take(connId);
    if (!session) return false;
    if (this.gate.stopping) {
      session.peer.reject(503, 'server is stopping');
      return false;
    }
    this.open(session);
    return true;
  }

  /** With `manualAccept`: refuses a requested handshake with an HTTP status. */
  reject(connId: number, status = 403, reason = statusReason(status)): boolean {
    const session = this.gate.take(connId);
    return session !== undefined && session.peer.reject(status, reason);
  }

  info(connId: number): ConnectionInfo | undefined {
    const session = this.table.get(connId);
    if (!session) return undefined;
    return { ...session.facts!, bufferedAmount: session.peer.bufferedAmount, queuedBytes: session.queuedBytes };
  }

  setData(connId: number, value: T): boolean {
    const session = this.table.get(connId);
    if (session) session.data = value;
    return session !== undefined;
  }

  getData(connId: number): T | undefined {
    return this.table.get(connId)?.data;
  }

  /**
   * Stops accepting, answers waiting handshakes with 503, sends `code` (1001) to every
   * connection, waits for their close frames up to `timeoutMs`, then cuts the rest.
   * All Disconnect events stay pollable.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= this.shutDown(options);
    return this.stopping;
  }

  // SessionHost: what the sessions' protocols say, in order.

  sessionEvent(session: ServerSession<T>, event: PeerEvent): void {
    if (event.type === 'message') {
      session.queued(event.data);
      this.queue.push({ type: Event.Message, connId: session.id, message: event.data, binary: event.binary }, session);
    } else if (event.type === 'request') this.request(session, event.request);
    else if (event.type === 'close') this.closed(session, event);
  }

  sessionGone(session: ServerSession<T>): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) this.sessionsClosed?.();
  }

  /** A socket whose request looks like a handshake: its session reads it from the start. */
  private readonly upgrade = (socket: UpgradeSocket, received: Buffer, handshakeTimeout: number): void => {
    const session: ServerSession<T> = new Session(this, this.connectionOptions);
    const protocol = new ServerProtocol({
      maxMessageSize: this.connectionOptions.maxMessageSize,
      maxHandshakeBytes: this.options.maxHandshakeBytes ?? Defaults.maxHandshakeBytes,
      origins: this.options.origins,
      protocols: this.options.protocols,
      compression: this.options.compression,
      // The program may answer earlier messages until it takes the Disconnect (see ConnectionTable).
      deferCloseReply: true,
    });
    session.peer = new Peer(socket, protocol, this.connectionOptions, session, handshakeTimeout);
    this.sessions.add(session);
    session.peer.receive(received);
  };

  /** A valid handshake request: refused (stopping, full), held for the program (manualAccept) or opened. */
  private request(session: ServerSession<T>, request: HandshakeRequest): void {
    const peer = session.peer;
    const refusal = this.gate.refusal(this.table.live);
    if (refusal) return void peer.reject(refusal.status, refusal.reason);
    session.id = ++this.lastId;
    session.facts = handshakeFacts(peer.socket as UpgradeSocket, request);
    if (!this.options.manualAccept) return this.open(session);
    this.gate.hold(session);
    this.queue.push({ type: Event.ConnectionRequest, connId: session.id, ...session.facts });
  }

  /** Completes the handshake. NewConnection goes first: the frames that came with the request follow it. */
  private open(session: ServerSession<T>): void {
    session.announced = true;
    this.table.add(session);
    this.queue.push({ type: Event.NewConnection, connId: session.id, ...session.facts! });
    this.heartbeat.start();
    session.peer.accept();
    if (this.gate.stopping) session.peer.close(1001, '');
  }

  private closed(session: ServerSession<T>, event: CloseEvent): void {
    const who = `${session.id > 0 ? `#${session.id} ` : ''}${address(session.peer.socket as UpgradeSocket)}`;
    if (!session.announced) {
      // A handshake that did not complete: no event, a line unless the client just left.
      this.gate.forget(session);
      if (event.initiator !== Initiator.PEER) this.log(`${who}: ${event.reason}`);
      return;
    }
    this.topics.leaveAll(session);
    if (event.initiator === Initiator.ERROR || event.initiator === Initiator.TIMEOUT || (event.initiator === Initiator.PEER && event.code === 1006)) {
      this.log(`${who}: closed ${event.code} (${event.initiator}): ${event.reason}`);
    }
    session.disconnected = true;
    const { code, reason, wasClean, initiator } = event;
    this.queue.push({ type: Event.Disconnect, connId: session.id, code, reason, wasClean, initiator }, session);
  }

  private async shutDown({ code = 1001, reason = '', timeoutMs = this.connectionOptions.closeTimeout }: StopOptions): Promise<void> {
    this.gate.stopping = true;
    const listenerClosed = this.listening?.close();
    for (const id of this.gate.waitingIds()) this.reject(id, 503, 'server is stopping');
    // A peer's close that came before stop() owes its answer until the program polls the
    // Disconnect (§5.5.1); the program is done polling now, so close() answers it at once.
    for (const session of this.table.values()) session.peer.close(code, reason);
    await this.whenSessionsClosed(timeoutMs);
    for (const session of this.sessions) session.peer.cut('close timeout', Initiator.TIMEOUT);
    await this.whenSessionsClosed(); // 'close' comes a tick after destroy: then every Disconnect is queued
    this.heartbeat.stop();
    this.listening?.detach();
    await listenerClosed;
  }

  private *peers(): Iterable<Peer> {
    for (const session of this.table.values()) yield session.peer;
  }

  private whenSessionsClosed(timeoutMs?: number): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : this.connectionOptions.clock.setTimeout(resolve, timeoutMs);
      this.sessionsClosed = () => {
        timer?.cancel();
        resolve();
      };
    });
  }

  private frontOptions(): FrontOptions {
    return {
      clock: this.connectionOptions.clock,
      handshakeTimeout: this.options.handshakeTimeout ?? Defaults.handshakeTimeout,
      maxHandshakeBytes: this.options.maxHandshakeBytes ?? Defaults.maxHandshakeBytes,
      onRequest: this.options.onRequest,
      log: (line) => this.log(line),
    };
  }

  private log(line: string): void {
    this.errStream?.write(`wspoll: ${line}\n`);
  }
}

/** What the program learns of a connection: its handshake request and the socket's peer. */
function handshakeFacts(socket: UpgradeSocket, request: HandshakeRequest): HandshakeFacts {
  return {
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    path: request.path,
    query: request.query,
    headers: request.headers,
    protocol: request.protocol,
    extensions: request.extensions,
  };
}

function accepted(status: SendStatus): number {
  return status === SendStatus.SUCCESS || status === SendStatus.BACKPRESSURE ? 1 : 0;
}

function statusReason(status: number): string {
  return status === 401 ? 'unauthorized' : 'connection refused';
}
