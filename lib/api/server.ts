import type { Server as HttpServer } from 'node:http';
import type { Writable } from 'node:stream';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { Initiator } from '../core/constants.js';
import { resolveCompression } from '../core/deflate-options.js';
import { type EncodedMessage, encodeMessage } from '../core/encoded-message.js';
import type { CloseEvent } from '../core/protocol.js';
import { type HandshakeRequest, ServerProtocol } from '../core/server-protocol.js';
import { clockOf } from '../io/clock.js';
import { Heartbeat } from '../io/heartbeat.js';
import { attach, type FrontOptions, listen, listenInMemory, type Listening } from '../io/listening.js';
import type { MemoryNetwork } from '../io/memory-network.js';
import { Peer, type PeerEvent } from '../io/peer.js';
import { address, type UpgradeSocket } from '../io/upgrade.js';
import { batchingAcrossSockets, flushAll } from '../io/write-batching.js';
import type { Broker } from './broker.js';
import { ConnectionTable } from './connection-table.js';
import { Event, SendStatus } from './constants.js';
import { EventQueue } from './event-queue.js';
import type { HandshakeFacts, ServerEvent } from './events.js';
import { Defaults, type ResolvedConnectionOptions, resolveConnectionOptions, type ServerOptions } from './options.js';
import { Session, type SessionHost } from './session.js';
import { Topics } from './topics.js';
import { UpgradeGate } from './upgrade-gate.js';

/** Where and how `server.start(options)` listens. */
export interface StartOptions {
  /** The address to listen on ("127.0.0.1" for this machine only). @default all interfaces */
  host?: string;
  /** 0 picks a free port; read it from `server.port`. @default 0 */
  port?: number;
  /** Serve wss:// with these node:tls options (key, cert, …). @default none: ws:// */
  tls?: SecureContextOptions & TlsOptions;
  /** Where to write one line per failure (websocket-cpp's errStream). @default none: failures are not logged */
  errStream?: Writable;
  /**
   * Share the port with other processes that listen on it with `reusePort` too; the kernel
   * spreads connections over them (SO_REUSEPORT). Node 22.12 or later on Linux or a BSD;
   * elsewhere `start` rejects with an error whose code is `ERR_REUSEPORT_UNSUPPORTED`.
   * @default false
   */
  reusePort?: boolean;
  /**
   * Listen on this memory network (`wspoll/testing`) instead of TCP: no socket, no real time.
   * The server then runs on `network.clock` unless it was given a `clock`.
   * @default none: TCP
   */
  network?: MemoryNetwork;
}

/** How `server.stop(options)` closes the connections. */
export interface StopOptions {
  /** The close code sent to every connection. @default 1001 */
  code?: number;
  /** The close reason sent with it (at most 123 bytes of UTF-8). @default '' */
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
  /** The last round-trip time measured with a heartbeat ping and its pong, in ms; undefined before the first. */
  rtt: number | undefined;
}

/** How the queue's wake-ups fit the turn of the event loop: batched with the writes (see EventQueue). */
const turnBatching = { active: batchingAcrossSockets, afterWake: flushAll };

/** A connection of a Server, as the server sees it. */
type ServerSession<T> = Session<T, ServerProtocol>;

/**
 * A WebSocket server with a poll API: the network fills one queue of events, the program
 * drains it with `poll()`, `drain()` or `await next()` whenever it likes.
 */
export class Server<T = unknown> {
  private readonly options: ServerOptions;
  private readonly connectionOptions: ResolvedConnectionOptions;
  private readonly queue: EventQueue<ServerEvent, ServerSession<T>>;
  private readonly table = new ConnectionTable<ServerSession<T>>();
  private readonly topics: Topics<ServerSession<T>>;
  private readonly broker: Broker | undefined;
  private readonly gate: UpgradeGate<ServerSession<T>>;
  private readonly heartbeat: Heartbeat;
  /** Every session whose socket is not closed yet, handshakes included: stop() waits for them. */
  private readonly sessions = new Set<ServerSession<T>>();
  private lastId = 0;
  private listening: Listening | undefined;
  private errStream: Writable | undefined;
  private stopping: Promise<void> | undefined;
  private sessionsClosed: (() => void) | undefined;
  /** What the sessions report to: kept off the public type. */
  private readonly host: SessionHost<T, ServerProtocol> = {
    sessionEvent: (session, event) => this.sessionEvent(session, event),
    sessionGone: (session) => this.sessionGone(session),
  };

  /** A server that does nothing until `start` or `attach`; `T` types `setData`/`getData`. */
  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.connectionOptions = resolveConnectionOptions(options);
    resolveCompression(options.compression, 'server'); // a bad value throws here, not at the first handshake
    this.queue = new EventQueue(clockOf(this.connectionOptions), (event, session) => this.table.taken(event, session), turnBatching);
    this.gate = new UpgradeGate({ maxConnections: options.maxConnections });
    this.heartbeat = new Heartbeat(this.connectionOptions, () => this.peers());
    const broker = (this.broker = options.broker);
    this.topics = new Topics(broker && { held: (topic) => broker.hold(topic), released: (topic) => broker.release(topic) });
  }

  /** The port listened on: after `start`, or the attached server's; 0 before. */
  get port(): number {
    return this.listening?.port ?? 0;
  }

  /** Events waiting to be polled. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Listens on host:port, in websocket-cpp's order.
   * @param host - The address to listen on ("0.0.0.0" for every IPv4 interface).
   * @param port - 0 picks a free port; read it from `server.port`.
   * @param errStream - Where to write one line per failure.
   * @returns Resolves once listening; rejects with Node's error (e.g. `EADDRINUSE`).
   */
  start(host: string, port: number, errStream?: Writable): Promise<void>;
  /**
   * Listens with options: `tls` serves wss://, `network` a memory network (`wspoll/testing`), `reusePort` shares the port.
   * @returns Resolves once listening; rejects with Node's error (e.g. `EADDRINUSE`).
   */
  start(options?: StartOptions): Promise<void>;
  async start(hostOrOptions: string | StartOptions = {}, port = 0, errStream?: Writable): Promise<void> {
    if (this.listening) throw new Error('server already started');
    const options: StartOptions = typeof hostOrOptions === 'string' ? { host: hostOrOptions, port, ...(errStream ? { errStream } : {}) } : hostOrOptions;
    this.errStream = options.errStream;
    this.openBroker();
    const { network } = options;
    if (network !== undefined) {
      if (this.options.clock === undefined) this.connectionOptions.clock = network.clock;
      this.listening = listenInMemory(network, options, this.frontOptions(), this.upgrade);
      return;
    }
    try {
      this.listening = await listen(options, this.frontOptions(), this.upgrade);
    } catch (err) {
      await this.broker?.close();
      throw err;
    }
  }

  /**
   * Serves WebSockets on the program's own http/https server (one port for pages and sockets):
   * wspoll takes its upgrade requests; its plain requests stay the program's.
   * @param server - A `node:http` or `node:https` server (Express's and Fastify's expose theirs).
   * @param errStream - Where to write one line per failure.
   */
  attach(server: HttpServer, errStream?: Writable): void {
    if (this.listening) throw new Error('server already started');
    this.errStream = errStream;
    this.openBroker();
    this.listening = attach(server, this.frontOptions(), this.upgrade);
  }

  /**
   * Takes the next event without waiting.
   * @returns The oldest queued event, or undefined when the queue is empty.
   */
  poll(): ServerEvent | undefined {
    return this.queue.shift();
  }

  /**
   * Takes up to `max` queued events at once: a per-tick budget.
   * @param max - How many at most. Default: Infinity.
   * @returns The events, oldest first (empty when none are queued).
   */
  drain(max = Infinity): ServerEvent[] {
    return this.queue.drain(max);
  }

  /**
   * Waits for the next event.
   * @param timeoutMs - Give up after this long. Default: no limit.
   * @returns The oldest queued event, at once if there is one; rejects with a TimeoutError after `timeoutMs`.
   */
  next(timeoutMs?: number): Promise<ServerEvent> {
    return this.queue.next(timeoutMs);
  }

  /**
   * Sends a string as a text message, bytes as a binary one. Never throws for a gone peer.
   * @returns `SUCCESS`; `BACKPRESSURE` (queued, but the send buffer passed `sendHighWaterMark`:
   * slow down); `DROPPED` (not queued: the buffer holds `maxBufferedBytes`); `CLOSED` (unknown,
   * closing or closed id).
   */
  send(connId: number, data: string | Uint8Array): SendStatus {
    return this.table.get(connId)?.send(data, typeof data !== 'string') ?? SendStatus.CLOSED;
  }

  /**
   * Sends a text message.
   * @returns `SUCCESS`, `BACKPRESSURE`, `DROPPED` or `CLOSED`, as {@link Server.send}.
   */
  sendText(connId: number, text: string): SendStatus {
    return this.table.get(connId)?.send(text, false) ?? SendStatus.CLOSED;
  }

  /**
   * Sends a binary message (a string goes as its UTF-8 bytes).
   * @returns `SUCCESS`, `BACKPRESSURE`, `DROPPED` or `CLOSED`, as {@link Server.send}.
   */
  sendBinary(connId: number, data: Uint8Array | string): SendStatus {
    return this.table.get(connId)?.send(data, true) ?? SendStatus.CLOSED;
  }

  /**
   * Sends to every open connection of this server, or to `connIds`, encoding the message once
   * (compressed: once per set of negotiated parameters).
   * @returns How many connections took it (`SUCCESS` or `BACKPRESSURE`).
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

  /**
   * Adds a connection to a topic's subscribers (subscribing twice is fine).
   * @returns False for an unknown or closing connection.
   */
  subscribe(connId: number, topic: string): boolean {
    const session = this.table.get(connId);
    if (session?.peer.protocol.state !== 'open') return false;
    this.topics.subscribe(session, topic);
    return true;
  }

  /**
   * Removes a connection from a topic's subscribers (a Disconnect does it for every topic).
   * @returns False if it was not subscribed.
   */
  unsubscribe(connId: number, topic: string): boolean {
    const session = this.table.get(connId);
    return session !== undefined && this.topics.unsubscribe(session, topic);
  }

  /**
   * Sends to every subscriber of `topic`, encoding the message once (as broadcast does); with a
   * broker, to its subscribers on every server sharing it too.
   * @returns How many of this server's subscribers took it (`SUCCESS` or `BACKPRESSURE`).
   */
  publish(topic: string, data: string | Uint8Array): number {
    this.broker?.publish(topic, data);
    const members = this.topics.subscribers(topic);
    if (!members) return 0;
    return deliver(members, encodeMessage(data));
  }

  /**
   * Resolves once what other servers publish to `topic` from now on reaches this server's
   * subscribers: with a broker, once it confirmed the subscription (at once while it cannot
   * reach its peers); without one, or for a topic nobody here holds, at once.
   */
  whenSubscribed(topic: string): Promise<void> {
    return this.broker?.subscribed(topic) ?? Promise.resolve();
  }

  /**
   * Starts the close handshake: the Disconnect comes once the peer answers, or after `closeTimeout`.
   * @param code - 1000–1003, 1007–1014 or 3000–4999; another throws a RangeError. Default: 1000.
   * @param reason - At most 123 bytes of UTF-8. Default: ''.
   * @returns False for an unknown, closing or closed id.
   */
  close(connId: number, code = 1000, reason = ''): boolean {
    const session = this.table.get(connId);
    if (!session || session.disconnected) return false;
    return session.peer.close(code, reason);
  }

  /**
   * Cuts TCP at once, without a close frame: Disconnect 1006.
   * @returns False for an unknown or closed id.
   */
  drop(connId: number): boolean {
    const session = this.table.get(connId);
    if (!session || session.peer.protocol.state === 'closed') return false;
    session.peer.cut('dropped', Initiator.LOCAL);
    return true;
  }

  /**
   * Sends a ping; the peer's pong is automatic (and keeps the heartbeat from dropping it).
   * @param payload - At most 125 bytes. Default: empty.
   * @returns False for an unknown, closing or closed id.
   */
  ping(connId: number, payload?: string | Uint8Array): boolean {
    return this.table.get(connId)?.peer.ping(payload) ?? false;
  }

  /**
   * With `manualAccept`: completes a requested handshake (101, then a NewConnection with the same id).
   * @returns False if the request is unknown, already answered, or its client has left (or the server is stopping: 503).
   */
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

  /**
   * With `manualAccept`: refuses a requested handshake with an HTTP status.
   * @param status - The HTTP status. Default: 403.
   * @param reason - The status line's text. Default: the status's standard text.
   * @returns False if the request is unknown or already answered.
   */
  reject(connId: number, status = 403, reason = statusReason(status)): boolean {
    const session = this.gate.take(connId);
    return session !== undefined && session.peer.reject(status, reason);
  }

  /**
   * What is known of a live connection.
   * @returns Its handshake facts, `bufferedAmount` and `queuedBytes`; undefined for an unknown id or once its Disconnect is taken.
   */
  info(connId: number): ConnectionInfo | undefined {
    const session = this.table.get(connId);
    if (!session) return undefined;
    const { peer, queuedBytes } = session;
    return { ...session.facts!, bufferedAmount: peer.bufferedAmount, queuedBytes, rtt: peer.rtt };
  }

  /**
   * Stores the program's value for a connection (`new Server<Player>()` types it).
   * @returns False for an unknown id.
   */
  setData(connId: number, value: T): boolean {
    const session = this.table.get(connId);
    if (session) session.data = value;
    return session !== undefined;
  }

  /**
   * The value stored with `setData`.
   * @returns It, or undefined for an unknown id or none stored.
   */
  getData(connId: number): T | undefined {
    return this.table.get(connId)?.data;
  }

  /**
   * Stops accepting, answers waiting handshakes with 503, sends `code` (1001) to every
   * connection, waits for their close frames up to `timeoutMs`, then cuts the rest.
   * All Disconnect events stay pollable. An attached http server keeps listening: close it yourself.
   * @returns Resolves once every connection is closed; calling it again returns the same promise.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= this.shutDown(options);
    return this.stopping;
  }

  // SessionHost: what the sessions' protocols say, in order.

  private sessionEvent(session: ServerSession<T>, event: PeerEvent): void {
    if (event.type === 'message') {
      session.queued(event.data);
      this.queue.push({ type: Event.Message, connId: session.id, message: event.data, binary: event.binary }, session);
    } else if (event.type === 'request') this.request(session, event.request);
    else if (event.type === 'close') this.closed(session, event);
  }

  private sessionGone(session: ServerSession<T>): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) this.sessionsClosed?.();
  }

  /** A socket whose request looks like a handshake: its session reads it from the start. */
  private readonly upgrade = (socket: UpgradeSocket, received: Buffer, handshakeTimeout: number): void => {
    const session: ServerSession<T> = new Session(this.host, this.connectionOptions);
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
    // Disconnect (RFC 6455 §5.5.1); the program is done polling now, so close() answers it at once.
    for (const session of this.table.values()) session.peer.close(code, reason);
    await this.whenSessionsClosed(timeoutMs);
    for (const session of this.sessions) session.peer.cut('close timeout', Initiator.TIMEOUT);
    await this.whenSessionsClosed(); // 'close' comes a tick after destroy: then every Disconnect is queued
    this.heartbeat.stop();
    this.listening?.detach();
    await listenerClosed;
    await this.broker?.close();
  }

  /** The broker starts with the server: from now on its messages have somewhere to go, its failures a log. */
  private openBroker(): void {
    this.broker?.open({
      deliver: (topic, payload, binary) => {
        const members = this.topics.subscribers(topic);
        if (members) deliver(members, encodeMessage(payload, binary));
      },
      log: (line) => this.log(line),
    });
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

/** Sends one encoded frame to each session; returns how many took it. */
function deliver(sessions: Iterable<Session<unknown, ServerProtocol>>, message: EncodedMessage): number {
  let delivered = 0;
  for (const session of sessions) delivered += accepted(session.sendEncoded(message));
  return delivered;
}

function accepted(status: SendStatus): number {
  return status === SendStatus.SUCCESS || status === SendStatus.BACKPRESSURE ? 1 : 0;
}

function statusReason(status: number): string {
  return status === 401 ? 'unauthorized' : 'connection refused';
}
