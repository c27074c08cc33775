/**
 * The transports the suites of spec/api run over: loopback TCP, and a MemoryNetwork (no socket,
 * no real time). A test body takes a Transport and uses it for everything that differs: starting
 * the server, connecting clients (wspoll's Client, `ws`, RawClient, plain sockets), fake servers,
 * waiting for events, and time. Over TCP time is real (or a FakeClock the test steps); on the
 * network it is the network's clock.
 *
 *   for (const transport of transports) describe(`over ${transport.name}`, () => { ... });
 */
import net from 'node:net';
import type { Writable } from 'node:stream';
import { afterEach, beforeEach } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { ClientOptions, Clock, Server } from '../../lib/index.js';
import { MemoryNetwork } from '../../lib/testing.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A clock the test steps; `advance` also lets the I/O it causes happen. */
export interface SteppedClock {
  clock: Clock;
  advance(ms: number): Promise<void>;
}

/** Where and how `start` starts a server. */
export interface StartOn {
  port?: number;
  errStream?: Writable;
}

/** A server a test writes by hand. */
export interface RawServer {
  port: number;
  close(): Promise<void>;
}

export interface Transport {
  readonly name: string;
  /** Starts `server` (on 127.0.0.1 over TCP, on every host name of the network; port 0: a free one); returns its URL, ws://127.0.0.1:PORT. */
  start(server: Server, options?: StartOn): Promise<string>;
  /** What a Client needs to connect over this transport. */
  readonly clientOptions: ClientOptions;
  /** Opens a plain socket to `port` of 127.0.0.1 (on the network, a MemorySocket standing in for a net.Socket). */
  readonly dial: (port: number, host?: string, options?: { allowHalfOpen?: boolean }) => net.Socket;
  /** A `ws` client (over the network through its `createConnection`). */
  ws(url: string, protocols?: string[], options?: WebSocket.ClientOptions): WebSocket;
  /** Listens on a free port for a server written by the test. */
  listen(onConnection: (socket: net.Socket) => void): Promise<RawServer>;
  /** The next event of `source`, or a TimeoutError once `timeoutMs` of this transport's time passed without one. */
  next<E>(source: { next(timeoutMs?: number): Promise<E> }, timeoutMs: number): Promise<E>;
  /** Lets what is on its way arrive and be answered: TCP waits `realMs`, the network settles. */
  settle(realMs: number): Promise<void>;
  /** Lets `ms` of time pass: TCP sleeps, the network's clock advances. */
  elapse(ms: number): Promise<void>;
  /** This transport's time, in ms. */
  now(): number;
  /** A clock for a Server or Client that the test steps: a FakeClock over TCP, the network's clock. */
  steppedClock(): SteppedClock;
  /** Stops a server, cutting peers that have not closed within `timeoutMs` of this transport's time. */
  stop(server: Server, timeoutMs: number): Promise<void>;
}

/** How long a FakeClock step waits for the loopback I/O it causes. */
const TCP_IO_MS = 30;

class Tcp implements Transport {
  readonly name = 'TCP';
  readonly clientOptions: ClientOptions = {};

  async start(server: Server, { port = 0, errStream }: StartOn = {}): Promise<string> {
    await server.start({ host: '127.0.0.1', port, ...(errStream ? { errStream } : {}) });
    return `ws://127.0.0.1:${server.port}`;
  }

  readonly dial = (port: number, host = '127.0.0.1', options: { allowHalfOpen?: boolean } = {}): net.Socket =>
    net.connect({ port, host, allowHalfOpen: options.allowHalfOpen ?? false });

  ws(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): WebSocket {
    return new WebSocket(url, protocols, options);
  }

  async listen(onConnection: (socket: net.Socket) => void): Promise<RawServer> {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  next<E>(source: { next(timeoutMs?: number): Promise<E> }, timeoutMs: number): Promise<E> {
    return source.next(timeoutMs);
  }

  async settle(realMs: number): Promise<void> {
    await sleep(realMs);
  }

  async elapse(ms: number): Promise<void> {
    await sleep(ms);
  }

  now(): number {
    return performance.now();
  }

  steppedClock(): SteppedClock {
    const clock = new FakeClock();
    return {
      clock,
      async advance(ms: number) {
        clock.advance(ms);
        await sleep(TCP_IO_MS);
      },
    };
  }

  stop(server: Server, timeoutMs: number): Promise<void> {
    return server.stop({ timeoutMs });
  }
}

class Memory implements Transport {
  readonly name = 'a memory network';
  /** A fresh one for every test (see `useTransport`). */
  network = new MemoryNetwork({ seed: 20 });

  get clientOptions(): ClientOptions {
    return { network: this.network };
  }

  async start(server: Server, { port = 0, errStream }: StartOn = {}): Promise<string> {
    await server.start({ network: this.network, port, ...(errStream ? { errStream } : {}) });
    return `ws://127.0.0.1:${server.port}`;
  }

  readonly dial = (port: number, host = '127.0.0.1', options: { allowHalfOpen?: boolean } = {}): net.Socket =>
    this.network.connect(port, host, options) as unknown as net.Socket;

  ws(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): WebSocket {
    const { hostname, port } = new URL(url);
    return new WebSocket(url, protocols, { ...options, createConnection: () => this.dial(Number(port || 80), hostname) });
  }

  async listen(onConnection: (socket: net.Socket) => void): Promise<RawServer> {
    const listener = this.network.listen(0);
    listener.on('connection', onConnection);
    return {
      port: listener.port,
      close: async () => listener.close(),
    };
  }

  async next<E>(source: { next(timeoutMs?: number): Promise<E> }, timeoutMs: number): Promise<E> {
    const event = source.next(timeoutMs);
    let done = false;
    event.then(
      () => (done = true),
      () => (done = true),
    );
    await this.network.settle();
    if (!done) await this.network.clock.advance(timeoutMs);
    return event;
  }

  settle(): Promise<void> {
    return this.network.settle();
  }

  elapse(ms: number): Promise<void> {
    return this.network.clock.advance(ms);
  }

  now(): number {
    return this.network.clock.now();
  }

  steppedClock(): SteppedClock {
    const { clock } = this.network;
    return { clock, advance: (ms) => clock.advance(ms) };
  }

  async stop(server: Server, timeoutMs: number): Promise<void> {
    const stopped = server.stop({ timeoutMs });
    await this.network.clock.advance(timeoutMs);
    await stopped;
  }
}

export const transports: Transport[] = [new Tcp(), new Memory()];

/**
 * Registers the hooks a suite over `transport` needs: a fresh network before each test (so one
 * test's clock and ports do not reach the next), and `cleanup` after it.
 */
export function useTransport(transport: Transport, cleanup: () => Promise<void> | void): void {
  beforeEach(() => {
    if (transport instanceof Memory) transport.network = new MemoryNetwork({ seed: 20 });
  });
  afterEach(cleanup);
}
