import { EventEmitter } from 'node:events';
import { TimeoutError } from '../core/errors.js';
import { MemoryPath, type PathHost, type Signal } from './memory-path.js';
import { MemorySocket } from './memory-socket.js';
import { SeededRandom } from './seeded-random.js';
import { VirtualClock } from './virtual-clock.js';

/** Options of `new MemoryNetwork(options)`. */
export interface MemoryNetworkOptions {
  /** Seeds the mask keys and handshake keys of every Client on the network. @default 1 */
  seed?: number;
  /** One-way delay of each new connection, both directions, in ms of `network.clock`. @default 0 */
  latencyMs?: number;
  /** Deliver in pieces of at most this many bytes on each new connection. @default 0: reads of up to 64 KiB, as from a kernel */
  pieceBytes?: number;
  /** What each direction of a connection holds between its two sockets before the writer backs up. @default 64 KiB */
  bufferBytes?: number;
}

/** Which way bytes travel on a connection. */
export type Direction = 'toServer' | 'toClient';

/** One write, as its bytes reach the reader: what `tap` reports. */
export interface Delivery {
  /** The connection the bytes travelled on. */
  connection: MemoryConnection;
  /** Which way: to the server or to the client. */
  direction: Direction;
  /** `network.clock.now()` when they arrived. */
  at: number;
  /** A copy of what was written. */
  bytes: Buffer;
}

/** The address every client socket on the network has; its port counts up from FIRST_PORT. */
const CLIENT_ADDRESS = '127.0.0.1';
/** Ports handed out for port 0 and to client sockets: the IANA dynamic range. */
const FIRST_PORT = 49152;
/** Turns of the event loop without a byte moving after which the network counts as idle. */
const QUIET_TURNS = 3;
const DEFAULT_BUFFER_BYTES = 64 * 1024;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What the connections and listeners of a network reach of it. */
interface Wiring {
  readonly clock: VirtualClock;
  readonly defaults: Required<Omit<MemoryNetworkOptions, 'seed'>>;
  /** Something moved: the network is not idle. */
  touched(): void;
  delivered(connection: MemoryConnection, direction: Direction, bytes: Buffer): void;
  listenerFor(host: string, port: number): MemoryListener | undefined;
  unlisten(listener: MemoryListener): void;
  closed(connection: MemoryConnection): void;
}

/**
 * A port being listened on: emits 'connection' with the server's end (a MemorySocket) of each
 * connection that reaches it, as a net.Server does.
 */
export class MemoryListener extends EventEmitter {
  /** @internal */
  constructor(
    private readonly wiring: Wiring,
    /** undefined: every host name reaches it. */
    readonly host: string | undefined,
    /** The port listened on. */
    readonly port: number,
  ) {
    super();
  }

  /** Stops taking connections (those open stay open). */
  close(): void {
    this.wiring.unlisten(this);
  }
}

/**
 * One connection between a client socket and a server socket: two paths, each with its own
 * latency, piece size and stall, and a cut that silences both.
 */
export class MemoryConnection {
  /** Bytes from the client to the server. */
  readonly toServer: MemoryPath;
  /** Bytes from the server to the client. */
  readonly toClient: MemoryPath;
  /** The client's end. */
  readonly client: MemorySocket;
  private serverEnd: MemorySocket | undefined;
  /** The client's connection request has not reached the server's side yet. */
  private opening = true;
  private openSockets = 0;

  /** @internal */
  constructor(
    private readonly wiring: Wiring,
    /** Counts up from 1 in the order connections were opened. */
    readonly id: number,
    /** The host name the client connected to. */
    readonly host: string,
    /** The port the client connected to. */
    readonly port: number,
    /** The client socket's port: `remotePort` on the server's side. */
    readonly clientPort: number,
    allowHalfOpen: boolean,
  ) {
    const { bufferBytes, latencyMs, pieceBytes } = wiring.defaults;
    const pathHost = (direction: Direction): PathHost => ({
      clock: wiring.clock,
      touched: () => wiring.touched(),
      delivered: (bytes) => wiring.delivered(this, direction, bytes),
      deadEnd: () => (direction === 'toServer' ? this.toClient : this.toServer).signal('reset'),
    });
    this.toServer = new MemoryPath(pathHost('toServer'), bufferBytes, latencyMs, pieceBytes, (signal) => this.arrived(signal));
    this.toClient = new MemoryPath(pathHost('toClient'), bufferBytes, latencyMs, pieceBytes, (signal) => this.answered(signal));
    this.client = new MemorySocket(
      this.toServer,
      this.toClient,
      { localAddress: CLIENT_ADDRESS, localPort: clientPort, remoteAddress: host, remotePort: port },
      wiring.clock,
      { allowHalfOpen, connecting: true },
    );
    this.track(this.client);
    this.toServer.signal('open');
  }

  /** The server's end, once the connection reached a listener. */
  get server(): MemorySocket | undefined {
    return this.serverEnd;
  }

  /**
   * Cuts the connection without a close, as a pulled cable: what is on its way is lost, and so
   * is everything either side writes later. Both sockets stay open and hear nothing more; only
   * their own timeouts (heartbeat, close timeout) end them.
   */
  cut(): void {
    this.opening = false;
    this.toServer.cut();
    this.toClient.cut();
  }

  /** The client's connection request, or its reset, reached the server's side. */
  private arrived(signal: Signal): void {
    if (signal === 'reset') return void this.serverEnd?.destroy(connectionError('ECONNRESET', 'read', this.host, this.port));
    if (signal !== 'open') return;
    this.opening = false;
    const listener = this.wiring.listenerFor(this.host, this.port);
    if (listener === undefined) {
      this.toClient.signal('refused');
      this.closedIfDone();
      return;
    }
    const socket = new MemorySocket(
      this.toClient,
      this.toServer,
      { localAddress: this.host, localPort: this.port, remoteAddress: CLIENT_ADDRESS, remotePort: this.clientPort },
      this.wiring.clock,
      { allowHalfOpen: false, connecting: false },
    );
    this.serverEnd = socket;
    this.track(socket);
    this.toClient.signal('open');
    this.toClient.writerConnected();
    listener.emit('connection', socket);
  }

  /** The server's answer to the connection request, or its reset, reached the client. */
  private answered(signal: Signal): void {
    const client = this.client;
    if (client.destroyed) return;
    if (signal === 'open') return client.connected();
    client.destroy(signal === 'refused' ? connectionError('ECONNREFUSED', 'connect', this.host, this.port) : connectionError('ECONNRESET', 'read', this.host, this.port));
  }

  private track(socket: MemorySocket): void {
    this.openSockets++;
    socket.once('close', () => {
      this.openSockets--;
      this.closedIfDone();
    });
  }

  private closedIfDone(): void {
    if (!this.opening && this.openSockets === 0) this.wiring.closed(this);
  }
}

/**
 * A network in one process: Servers and Clients (and raw sockets) connect through it with no
 * file descriptor and no real time. `clock` is the time of everything on it; bytes without
 * latency arrive on the microtask queue after the writer's synchronous code, with latency when
 * the clock passes their due time. The same script with the same seed moves the same bytes.
 */
export class MemoryNetwork {
  /** The time of everything on the network: timers and deliveries run when it is advanced. */
  readonly clock: VirtualClock;
  private readonly wiring: Wiring;
  private readonly keys: SeededRandom;
  private readonly listeners = new Map<string, MemoryListener>();
  private readonly open = new Set<MemoryConnection>();
  private readonly taps = new Set<(delivery: Delivery) => void>();
  private lastConnection = 0;
  private lastPort = FIRST_PORT - 1;
  /** Counts everything that moves: idle means a few turns of the event loop without a change. */
  private activity = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.keys = new SeededRandom(options.seed ?? 1);
    this.clock = new VirtualClock(0, () => this.idle());
    const defaults = {
      latencyMs: options.latencyMs ?? 0,
      pieceBytes: options.pieceBytes ?? 0,
      bufferBytes: options.bufferBytes ?? DEFAULT_BUFFER_BYTES,
    };
    this.wiring = {
      clock: this.clock,
      defaults,
      touched: () => void this.activity++,
      delivered: (connection, direction, bytes) => this.delivered(connection, direction, bytes),
      listenerFor: (host, port) => this.listeners.get(key(host, port)) ?? this.listeners.get(key(undefined, port)),
      unlisten: (listener) => {
        if (this.listeners.get(key(listener.host, listener.port)) === listener) this.listeners.delete(key(listener.host, listener.port));
      },
      closed: (connection) => this.open.delete(connection),
    };
  }

  /** The connections not closed yet, oldest first. */
  get connections(): MemoryConnection[] {
    return [...this.open];
  }

  /**
   * Listens on `port` of `host` (every host name when undefined); port 0 picks a free one.
   * Throws an error with code EADDRINUSE when the port is taken.
   */
  listen(port: number, host?: string): MemoryListener {
    if (port === 0) port = this.freePort();
    for (const other of this.listeners.values()) {
      if (other.port === port && (other.host === undefined || host === undefined || other.host === host)) {
        throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${host ?? '*'}:${port}`), { code: 'EADDRINUSE', port });
      }
    }
    const listener = new MemoryListener(this.wiring, host, port);
    this.listeners.set(key(host, port), listener);
    this.activity++;
    return listener;
  }

  /**
   * Opens a connection to `host:port`, as net.connect does: the socket emits 'connect' once the
   * server's side took it, or 'error' (code ECONNREFUSED) when nothing listens there.
   */
  connect(port: number, host = 'localhost', options: { allowHalfOpen?: boolean } = {}): MemorySocket {
    const connection = new MemoryConnection(this.wiring, ++this.lastConnection, host, port, this.freePort(), options.allowHalfOpen ?? false);
    this.open.add(connection);
    return connection.client;
  }

  /**
   * Resolves once nothing is in flight and the programs on the network have reacted: bytes due
   * now are delivered on the spot; bytes with latency, by moving the clock to their due time
   * (timers falling due on the way run too). Bytes a stalled path holds do not count. Rejects
   * with a TimeoutError when the network is still busy after `maxMs` of its time (a program that
   * keeps sending on a timer: advance the clock instead).
   */
  async settle(maxMs = 60_000): Promise<void> {
    const limit = this.clock.now() + maxMs;
    for (;;) {
      await this.idle();
      const due = this.nextDelivery();
      if (due === undefined) return;
      if (due > limit) throw new TimeoutError(`the network is still busy after ${maxMs} ms of its time`);
      await this.clock.advanceTo(due);
    }
  }

  /** Calls `listener` with every write as it reaches its reader, in order; returns a function that stops it. */
  tap(listener: (delivery: Delivery) => void): () => void {
    this.taps.add(listener);
    return () => this.taps.delete(listener);
  }

  /**
   * A stream of seeded random bytes for one client's keys: each connection draws from its own.
   * @internal
   */
  random(): SeededRandom {
    return this.keys.fork();
  }

  private delivered(connection: MemoryConnection, direction: Direction, bytes: Buffer): void {
    if (this.taps.size === 0 || bytes.length === 0) return;
    const delivery = { connection, direction, at: this.clock.now(), bytes: Buffer.from(bytes) };
    for (const tap of this.taps) tap(delivery);
  }

  /** Waits until a few turns of the event loop pass with nothing moving. */
  private async idle(): Promise<void> {
    for (let calm = 0; calm < QUIET_TURNS; ) {
      const seen = this.activity;
      await turn();
      calm = this.activity === seen ? calm + 1 : 0;
    }
  }

  private nextDelivery(): number | undefined {
    let next: number | undefined;
    for (const connection of this.open) {
      for (const due of [connection.toServer.nextDue, connection.toClient.nextDue]) {
        if (due !== undefined && (next === undefined || due < next)) next = due;
      }
    }
    return next;
  }

  private freePort(): number {
    const used = new Set([...this.listeners.values()].map((l) => l.port));
    do this.lastPort = this.lastPort >= 65535 ? FIRST_PORT : this.lastPort + 1;
    while (used.has(this.lastPort));
    return this.lastPort;
  }
}

/** An error as node:net makes it for a refused or reset connection. */
function connectionError(code: 'ECONNREFUSED' | 'ECONNRESET', syscall: string, host: string, port: number): Error {
  const message = code === 'ECONNREFUSED' ? `connect ECONNREFUSED ${host}:${port}` : 'read ECONNRESET';
  return Object.assign(new Error(message), { code, syscall, address: host, port });
}

function key(host: string | undefined, port: number): string {
  return `${host ?? '*'}:${port}`;
}
