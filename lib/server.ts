import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Duplex, Writable } from 'node:stream';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Timer } from './clock.js';
import { Defaults, Event, Initiator, Opcode, SendStatus } from './constants.js';
import type { CloseInfo } from './connection.js';
import { EventQueue } from './event-queue.js';
import type { HandshakeFacts, ServerEvent } from './events.js';
import { encodeFrame } from './frame.js';
import { acceptResponse, type Rejection } from './handshake.js';
import { Heartbeat } from './heartbeat.js';
import { address, type Candidate, Listener } from './listener.js';
import { NetFront } from './net-front.js';
import { type ResolvedConnectionOptions, resolveConnectionOptions, type ServerOptions } from './options.js';
import { type EncodedFrame, Peer, type PeerOwner, turnBatching } from './peer.js';

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

interface Session<T> {
  peer: Peer;
  facts: HandshakeFacts;
  data: T | undefined;
  /** Created on the first subscribe: most connections never subscribe. */
  topics: Set<string> | undefined;
}

interface PendingRequest {
  candidate: Candidate;
  timer: Timer;
}

/**
 * A WebSocket server with a poll API: the network fills one queue of events, the program
 * drains it with `poll()`, `drain()` or `await next()` whenever it likes.
 */
export class Server<T = unknown> implements PeerOwner {
  private readonly connectionOptions: ResolvedConnectionOptions;
  private readonly options: ServerOptions;
  private readonly queue: EventQueue<ServerEvent, Peer>;
  private readonly sessions = new Map<number, Session<T>>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly topics = new Map<string, Set<Session<T>>>();
  private readonly heartbeat: Heartbeat;
  private readonly sockets = new Set<Duplex>();
  private lastId = 0;
  /** The program's own server (attach), or our internal one for plain HTTP (start). */
  private httpServer: HttpServer | undefined;
  /** The listening socket server, when started with start(). */
  private netServer: NetServer | undefined;
  private front: NetFront | undefined;
  private listener: Listener | undefined;
  private errStream: Writable | undefined;
  private stopping: Promise<void> | undefined;
  private socketsClosed: (() => void) | undefined;
  /** The connection whose Disconnect was taken last: removed when the next event is taken. */
  private retired: number | undefined;

  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.connectionOptions = resolveConnectionOptions(options);
    this.queue = new EventQueue(this.connectionOptions.clock, (event, peer) => this.taken(event, peer), turnBatching);
    this.heartbeat = new Heartbeat(this.connectionOptions, () => this.peers());
  }

  /** The port listened on (after `start`). */
  get port(): number {
    const addr = (this.netServer ?? this.httpServer)?.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  /** Events waiting to be polled. */
  get pending(): number {
    return this.queue.length;
  }

  /** Listens on host:port (websocket-cpp order), or with options (TLS for wss://). */
  start(host: string, port: number, errStream?: Writable): Promise<void>;
  start(options?: StartOptions): Promise<void>;
  async start(hostOrOptions: string | StartOptions = {}, port = 0, errStream?: Writable): Promise<void> {
    if (this.httpServer) throw new Error('server already started');
    const options: StartOptions = typeof hostOrOptions === 'string' ? { host: hostOrOptions, port, ...(errStream ? { errStream } : {}) } : hostOrOptions;
    const handshakeTimeout = this.options.handshakeTimeout ?? Defaults.handshakeTimeout;
    const maxHeaderSize = this.options.maxHandshakeBytes ?? Defaults.maxHandshakeBytes;
    // Nagle off, as node:http does: over TLS a first small frame otherwise waits ~40 ms behind the session tickets.
    const server = options.tls ? createTlsServer({ noDelay: true, ...options.tls, handshakeTimeout }) : createNetServer({ noDelay: true });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // A peer hanging up mid-handshake (e.g. distrusting our certificate) is not a failure of ours.
      if (err.code !== 'ECONNRESET') this.log(`${address(socket)}: TLS handshake failed: ${err.code ?? err.message}`);
      socket.destroy(); // node leaves it open after a TLS handshake timeout
    });
    const plainHttp = createHttpServer({ maxHeaderSize });
    this.use(plainHttp, true, options.errStream);
    this.netServer = server;
    this.front = new NetFront(server, this.listener!, plainHttp, maxHeaderSize);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Serves WebSockets on the program's own http/https server (one port for pages and sockets). */
  attach(server: HttpServer, errStream?: Writable): void {
    if (this.httpServer) throw new Error('server already started');
    this.use(server, false, errStream);
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
    const session = this.sessions.get(connId);
    return session ? session.peer.send(data, typeof data !== 'string') : SendStatus.CLOSED;
  }

  sendText(connId: number, text: string): SendStatus {
    const session = this.sessions.get(connId);
    return session ? session.peer.send(text, false) : SendStatus.CLOSED;
  }

  sendBinary(connId: number, data: Uint8Array | string): SendStatus {
    const session = this.sessions.get(connId);
    return session ? session.peer.send(typeof data === 'string' ? Buffer.from(data) : data, true) : SendStatus.CLOSED;
  }

  /** Sends to every connection, or to `connIds`, encoding the frame once. Returns how many took it. */
  broadcast(data: string | Uint8Array, connIds?: Iterable<number>): number {
    const frame = encode(data);
    let delivered = 0;
    if (connIds === undefined) {
      for (const session of this.sessions.values()) delivered += accepted(session.peer.sendEncoded(frame));
    } else {
      for (const id of connIds) {
        const session = this.sessions.get(id);
        if (session) delivered += accepted(session.peer.sendEncoded(frame));
      }
    }
    return delivered;
  }

  subscribe(connId: number, topic: string): boolean {
    const session = this.sessions.get(connId);
    if (!session?.peer.isOpen) return false;
    let members = this.topics.get(topic);
    if (!members) this.topics.set(topic, (members = new Set()));
    members.add(session);
    (session.topics ??= new Set()).add(topic);
    return true;
  }

  unsubscribe(connId: number, topic: string): boolean {
    const session = this.sessions.get(connId);
    if (!session?.topics?.delete(topic)) return false;
    this.leave(session, topic);
    return true;
  }

  /** Sends to every subscriber of `topic`, encoding the frame once. Returns how many took it. */
  publish(topic: string, data: string | Uint8Array): number {
    const members = this.topics.get(topic);
    if (!members) return 0;
    const frame = encode(data);
    let delivered = 0;
    for (const session of members) delivered += accepted(session.peer.sendEncoded(frame));
    return delivered;
  }

  /** Starts the close handshake; false for an unknown, closing or closed id. */
  close(connId: number, code = 1000, reason = ''): boolean {
    return this.sessions.get(connId)?.peer.close(code, reason) ?? false;
  }

  /** Cuts TCP at once: Disconnect 1006. */
  drop(connId: number): boolean {
    const session = this.sessions.get(connId);
    if (!session || session.peer.ended) return false;
    session.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  ping(connId: number, payload?: string | Uint8Array): boolean {
    return this.sessions.get(connId)?.peer.ping(payload) ?? false;
  }

  /** With `manualAccept`: completes a requested handshake (101, then NewConnection). */
  accept(connId: number): boolean {
    const request = this.takeRequest(connId);
    if (!request) return false;
    if (this.stopping) {
      this.listener?.refuse(request.socket, { status: 503, reason: 'server is stopping' }, address(request.facts));
      return false;
    }
    this.open(connId, request);
    return true;
  }

  /** With `manualAccept`: refuses a requested handshake with an HTTP status. */
  reject(connId: number, status = 403, reason = statusReason(status)): boolean {
    const request = this.takeRequest(connId);
    if (!request) return false;
    this.listener?.refuse(request.socket, { status, reason }, address(request.facts));
    return true;
  }

  info(connId: number): ConnectionInfo | undefined {
    const session = this.sessions.get(connId);
    if (!session) return undefined;
    return { ...session.facts, bufferedAmount: session.peer.bufferedAmount, queuedBytes: session.peer.queuedBytes };
  }

  setData(connId: number, value: T): boolean {
    const session = this.sessions.get(connId);
    if (session) session.data = value;
    return session !== undefined;
  }

  getData(connId: number): T | undefined {
    return this.sessions.get(connId)?.data;
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

  private async shutDown({ code = 1001, reason = '', timeoutMs = this.connectionOptions.closeTimeout }: StopOptions): Promise<void> {
    const server = this.netServer;
    const listening = server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined;
    for (const id of [...this.requests.keys()]) this.reject(id, 503, 'server is stopping');
    for (const { peer } of this.sessions.values()) {
      // A peer's close that came before stop() owes its echo until the program polls the
      // Disconnect (§5.5.1); the program is done polling now, so answer it at once.
      if (!peer.close(code, reason, timeoutMs) && peer.connection.canSend) peer.finishClose();
    }
    await this.whenSocketsClosed(timeoutMs);
    for (const socket of this.sockets) socket.destroy();
    await this.whenSocketsClosed(); // 'close' comes a tick after destroy: then every Disconnect is queued
    this.front?.closePlainConnections();
    this.heartbeat.stop();
    this.listener?.detach();
    await listening;
  }

  private *peers(): Iterable<Peer> {
    for (const session of this.sessions.values()) yield session.peer;
  }

  private whenSocketsClosed(timeoutMs?: number): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : this.connectionOptions.clock.setTimeout(resolve, timeoutMs);
      this.socketsClosed = () => {
        timer?.cancel();
        resolve();
      };
    });
  }

  private use(server: HttpServer, owned: boolean, errStream: Writable | undefined): void {
    this.httpServer = server;
    this.errStream = errStream;
    const { clock } = this.connectionOptions;
    this.listener = new Listener(
      server,
      {
        handshakeTimeout: this.options.handshakeTimeout ?? Defaults.handshakeTimeout,
        origins: this.options.origins,
        protocols: this.options.protocols ?? [],
        onRequest: this.options.onRequest,
        clock,
        owned,
      },
      {
        refusal: () => this.refusal(),
        handshake: (candidate) => this.handshake(candidate),
        log: (line) => this.log(line),
      },
    );
  }

  private refusal(): Rejection | undefined {
    if (this.stopping) return { status: 503, reason: 'server is stopping' };
    const max = this.options.maxConnections;
    const live = this.sessions.size - (this.retired === undefined ? 0 : 1);
    if (max !== undefined && live + this.requests.size >= max) {
      return { status: 503, reason: `connection limit of ${max} reached` };
    }
    return undefined;
  }

  private handshake(candidate: Candidate): void {
    const connId = ++this.lastId;
    if (!this.options.manualAccept) return this.open(connId, candidate);
    const { clock } = this.connectionOptions;
    const timeout = this.options.handshakeTimeout ?? Defaults.handshakeTimeout;
    const timer = clock.setTimeout(() => {
      // On our own port the listener's handshake clock (armed at connect) may have fired first:
      // the socket is then destroyed and logged already ('close' comes a tick later). One line.
      if (!this.requests.delete(connId) || candidate.socket.destroyed) return;
      this.listener?.settle(candidate.socket);
      this.log(`#${connId} ${address(candidate.facts)}: handshake timeout: request not accepted within ${timeout} ms`);
      candidate.socket.destroy();
    }, timeout);
    this.requests.set(connId, { candidate, timer });
    candidate.socket.once('close', () => this.takeRequest(connId));
    // A client that gives up while we decide sends FIN; node:http sockets allow half-open
    // connections, so nothing else would notice or close it, and accept() would answer a ghost.
    candidate.socket.once('end', () => {
      if (this.takeRequest(connId)) candidate.socket.destroy();
    });
    this.queue.push({ type: Event.ConnectionRequest, connId, ...candidate.facts });
  }

  private takeRequest(connId: number): Candidate | undefined {
    const request = this.requests.get(connId);
    if (!request) return undefined;
    this.requests.delete(connId);
    request.timer.cancel();
    // A socket destroyed this tick (handshake timeout, reset) emits 'close' only later: gone already.
    return request.candidate.socket.destroyed ? undefined : request.candidate;
  }

  private open(connId: number, { socket, head, key, facts }: Candidate): void {
    this.listener!.settle(socket);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    // node:http may have set an idle timeout on a socket it hands over; a WebSocket may idle.
    const timed = socket as { timeout?: number; setTimeout?: (ms: number) => void };
    if (timed.timeout) timed.setTimeout?.(0);
    socket.write(acceptResponse(key, facts.protocol), 'latin1'); // ASCII only: the cheapest encoding
    const peer = new Peer(connId, socket, 'server', this.connectionOptions, this);
    this.sessions.set(connId, { peer, facts, data: undefined, topics: undefined });
    this.sockets.add(socket);
    this.queue.push({ type: Event.NewConnection, connId, ...facts });
    this.heartbeat.start();
    if (head.length > 0) peer.receive(head);
    if (this.stopping) peer.close(1001, '');
  }

  peerMessage(peer: Peer, message: string | Buffer, binary: boolean): void {
    peer.queued(message);
    this.queue.push({ type: Event.Message, connId: peer.id, message, binary }, peer);
  }

  peerClosed(peer: Peer, info: CloseInfo): void {
    const session = this.sessions.get(peer.id);
    if (!session) return;
    for (const topic of session.topics ?? []) this.leave(session, topic);
    session.topics = undefined;
    if (info.initiator === Initiator.ERROR || info.initiator === Initiator.TIMEOUT || (info.initiator === Initiator.PEER && info.code === 1006)) {
      this.log(`#${peer.id} ${address(session.facts)}: closed ${info.code} (${info.initiator}): ${info.reason}`);
    }
    this.queue.push({
      type: Event.Disconnect,
      connId: peer.id,
      code: info.code,
      reason: info.reason,
      wasClean: info.wasClean,
      initiator: info.initiator,
    }, peer);
  }

  socketClosed(peer: Peer): void {
    this.sockets.delete(peer.socket);
    if (this.sockets.size === 0) this.socketsClosed?.();
  }

  /**
   * Called for every event leaving the queue. A drained connection may read again. A taken
   * Disconnect sends the close frame still owed (the program could answer the messages before
   * it until now); its session stays readable (getData, info) while the program handles it,
   * and is retired when the next event is taken.
   */
  private taken(event: ServerEvent, peer: Peer | undefined): void {
    if (this.retired !== undefined) {
      this.sessions.delete(this.retired);
      this.retired = undefined;
    }
    if (event.type === Event.Message) {
      peer!.dequeued(event.message);
    } else if (event.type === Event.Disconnect) {
      peer!.finishClose();
      this.retired = event.connId;
    }
  }

  private leave(session: Session<T>, topic: string): void {
    const members = this.topics.get(topic);
    members?.delete(session);
    if (members?.size === 0) this.topics.delete(topic);
  }

  private log(line: string): void {
    this.errStream?.write(`wspoll: ${line}\n`);
  }
}

function encode(data: string | Uint8Array): EncodedFrame {
  return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, data);
}

function accepted(status: SendStatus): number {
  return status === SendStatus.SUCCESS || status === SendStatus.BACKPRESSURE ? 1 : 0;
}

function statusReason(status: number): string {
  return status === 401 ? 'unauthorized' : 'connection refused';
}
