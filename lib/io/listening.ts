import type { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { createServer as createTlsServer } from 'node:tls';
import type { Clock } from './clock.js';
import { attachHttpFront } from './http-front.js';
import type { MemoryNetwork } from './memory-network.js';
import { NetFront } from './net-front.js';
import { address, type UpgradeHandler } from './upgrade.js';

/** Where and how to listen. */
export interface ListenOptions {
  host?: string | undefined;
  port?: number | undefined;
  /** Serve wss:// with these node:tls options (key, cert, …). */
  tls?: (SecureContextOptions & TlsOptions) | undefined;
  /** SO_REUSEPORT: several processes listen on one port (Node 22.12+, Linux and the BSDs). */
  reusePort?: boolean | undefined;
}

/** Node took `reusePort` in `listen()` in 22.12 and 23.1; older versions ignore it without a word. */
export function reusePortSupported(version = process.versions.node, platform = process.platform): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const node = major >= 23 || (major === 22 && minor >= 12);
  return node && ['linux', 'freebsd', 'openbsd', 'netbsd', 'darwin', 'dragonfly', 'sunos', 'aix'].includes(platform);
}

/** What every front needs: the clock, the handshake limits, plain requests, the log. */
export interface FrontOptions {
  clock: Clock;
  handshakeTimeout: number;
  maxHandshakeBytes: number;
  onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  log(line: string): void;
}

/** A port being served, on our own listener or on a program's http server. */
export interface Listening {
  /** The port listened on (0 until listening). */
  readonly port: number;
  /** Stops taking connections; resolves once the listener is closed (attached: at once). */
  close(): Promise<void>;
  /** Stops serving handshakes (an attached server's are answered with 503 until then). */
  detach(): void;
}

/**
 * Listens on host:port with our own listener: WebSocket handshakes go to `onUpgrade`, plain
 * requests to an internal node:http server (onRequest, or 426).
 */
export async function listen(options: ListenOptions, front: FrontOptions, onUpgrade: UpgradeHandler): Promise<Listening> {
  if (options.reusePort && !reusePortSupported()) {
    const err: NodeJS.ErrnoException = new Error(`reusePort needs Node 22.12 or later on Linux or a BSD (this is Node ${process.versions.node} on ${process.platform})`);
    err.code = 'ERR_REUSEPORT_UNSUPPORTED';
    throw err;
  }
  const { handshakeTimeout } = front;
  // Nagle off, as node:http does: over TLS a first small frame otherwise waits ~40 ms behind the session tickets.
  const server = options.tls ? createTlsServer({ noDelay: true, ...options.tls, handshakeTimeout }) : createNetServer({ noDelay: true });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A peer hanging up mid-handshake (e.g. distrusting our certificate) is not a failure of ours.
    if (err.code !== 'ECONNRESET') front.log(`${address(socket)}: TLS handshake failed: ${err.code ?? err.message}`);
    socket.destroy(); // node leaves it open after a TLS handshake timeout
  });
  const netFront = serveOn(server, front, onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const where = { port: options.port ?? 0, host: options.host, ...(options.reusePort ? { reusePort: true } : {}) };
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      netFront.closeConnections();
      return closed;
    },
    detach: () => {},
  };
}

/**
 * Listens on a port of a memory network, with the same front as a TCP listener: only the
 * sockets differ. Throws an error with code EADDRINUSE when the port is taken.
 */
export function listenInMemory(network: MemoryNetwork, options: ListenOptions, front: FrontOptions, onUpgrade: UpgradeHandler): Listening {
  if (options.tls) throw new TypeError('the memory network carries ws:// only: no tls');
  const listener = network.listen(options.port ?? 0, options.host);
  const netFront = serveOn(listener, front, onUpgrade);
  return {
    port: listener.port,
    close: () => {
      listener.close();
      netFront.closeConnections();
      return Promise.resolve();
    },
    detach: () => {},
  };
}

/** The front of our own listener: handshakes to `onUpgrade`, plain requests to an internal node:http server. */
function serveOn(listener: EventEmitter, front: FrontOptions, onUpgrade: UpgradeHandler): NetFront {
  const plainHttp = createHttpServer({ maxHeaderSize: front.maxHandshakeBytes });
  attachHttpFront(plainHttp, { ...front, owned: true }, onUpgrade);
  return new NetFront(listener, plainHttp, onUpgrade, front);
}

/** Serves WebSockets on a program's own http(s) server (one port for pages and sockets). */
export function attach(server: HttpServer, front: FrontOptions, onUpgrade: UpgradeHandler): Listening {
  const detach = attachHttpFront(server, { ...front, owned: false }, onUpgrade);
  return {
    get port() {
      const addr = server.address();
      return addr && typeof addr === 'object' ? addr.port : 0;
    },
    close: () => Promise.resolve(),
    detach,
  };
}
