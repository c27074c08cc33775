import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as TlsServer } from 'node:tls';
import type { Clock, Timer } from './clock.js';
import type { HandshakeFacts } from './events.js';
import { checkUpgradeRequest, header, type Rejection, rejectionResponse, selectProtocol, type UpgradeRequest } from './handshake.js';

/** A request that passed every check and waits to be answered with 101. */
export interface Candidate {
  socket: Duplex;
  /** Bytes that arrived after the request head: the first frames. */
  head: Buffer;
  key: string;
  facts: HandshakeFacts;
}

export interface ListenerHost {
  /** A reason to refuse any new connection now (stopping → 503, full → 503), or undefined. */
  refusal(): Rejection | undefined;
  handshake(candidate: Candidate): void;
  log(line: string): void;
}

export interface ListenerOptions {
  handshakeTimeout: number;
  origins: readonly string[] | undefined;
  protocols: readonly string[];
  onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  clock: Clock;
  /** True when the HTTP server is ours (start), false when attached to the program's own. */
  owned: boolean;
}

/** How long a refused handshake's socket may stay open for the peer to read the answer and close. */
const REFUSAL_LINGER_MS = 1000;

const NO_QUERY: Record<string, string> = Object.freeze({});
/** A request target that URL would return unchanged as its pathname, e.g. "/" or "/chat/room-1". */
const PLAIN_PATH = /^\/(?:[A-Za-z0-9_~-]+\/?)*$/;

/** Headers by which a request shows it means to be a WebSocket handshake, complete or not. */
const WEBSOCKET_HINTS = ['upgrade', 'sec-websocket-key', 'sec-websocket-version'];

export function isHandshakeAttempt(headers: UpgradeRequest['headers']): boolean {
  return WEBSOCKET_HINTS.some((name) => headers[name] !== undefined);
}

/** A socket as the listener sees it: a stream with the peer's address. */
type PeerSocket = Duplex & Pick<Socket, 'remoteAddress' | 'remotePort'>;

/** Routes an http(s) server's upgrades to the host, refuses bad ones, and times out slow handshakes. */
export class Listener {
  private readonly timers = new WeakMap<Duplex, Timer>();
  private readonly handlers: [string, (...args: any[]) => void][];

  constructor(
    private readonly server: HttpServer,
    private readonly options: ListenerOptions,
    private readonly host: ListenerHost,
  ) {
    // Over TLS the socket that reaches 'upgrade' is the one 'secureConnection' announces.
    const connectionEvent = server instanceof TlsServer ? 'secureConnection' : 'connection';
    this.handlers = [
      ['upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head)],
      [connectionEvent, (socket: Socket) => this.arm(socket)],
    ];
    if (options.owned) {
      this.handlers.push(
        ['request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res)],
        ['clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket)],
      );
    }
    for (const [event, handler] of this.handlers) server.on(event, handler);
  }

  detach(): void {
    for (const [event, handler] of this.handlers) this.server.off(event, handler);
  }

  /** Answers a handshake with an HTTP error and closes the socket. */
  refuse(socket: Duplex, rejection: Rejection, who: string): void {
    this.settle(socket);
    this.host.log(`${who}: handshake refused: ${rejection.status} ${rejection.reason}`);
    if (!socket.writable) return void socket.destroy();
    socket.end(rejectionResponse(rejection));
    // end() only half-closes: a peer that never closes its side would hold the socket forever.
    // Give it a moment to read the answer (a reset could discard it), then cut.
    const linger = this.options.clock.setTimeout(() => socket.destroy(), Math.min(this.options.handshakeTimeout, REFUSAL_LINGER_MS));
    socket.once('close', () => linger.cancel());
  }

  /** Stops the handshake clock of a socket: it was answered. */
  settle(socket: Duplex): void {
    this.timers.get(socket)?.cancel();
    this.timers.delete(socket);
  }

  /** Starts the handshake clock of a socket of ours (never of an attached server's). */
  arm(socket: PeerSocket): void {
    if (!this.options.owned) return;
    this.settle(socket);
    const timer = this.options.clock.setTimeout(() => {
      this.timers.delete(socket);
      if (socket.destroyed) return; // closed on its own meanwhile
      this.host.log(`${address(socket)}: handshake timeout after ${this.options.handshakeTimeout} ms`);
      socket.destroy();
    }, this.options.handshakeTimeout);
    this.timers.set(socket, timer);
  }

  /** Screens a handshake request; passes it to the host or refuses it. */
  upgrade(req: UpgradeRequest & { url?: string | undefined }, socket: PeerSocket, head: Buffer): void {
    // A reset before we answer must not crash the process (sockets from node:http have no
    // 'error' listener here; ours from the head reader do).
    if (socket.listenerCount('error') === 0) socket.on('error', ignore);
    const checked = checkUpgradeRequest(req);
    if ('status' in checked) return this.refuse(socket, checked, address(socket));
    const { origins, protocols } = this.options;
    const origin = header(req.headers, 'origin');
    if (origins && (origin === undefined || !origins.includes(origin))) {
      return this.refuse(socket, { status: 403, reason: `origin ${origin ?? '(none)'} is not allowed` }, address(socket));
    }
    const refusal = this.host.refusal();
    if (refusal) return this.refuse(socket, refusal, address(socket));
    const target = req.url ?? '/';
    // A plain path is taken as it is; anything else (a query, dots, escapes) goes through URL.
    const url = PLAIN_PATH.test(target) ? undefined : parseTarget(target);
    if (url === null) return this.refuse(socket, { status: 400, reason: 'malformed request target' }, address(socket));
    this.host.handshake({
      socket,
      head,
      key: checked.key,
      facts: {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        path: url?.pathname ?? target,
        query: url?.search ? Object.fromEntries(url.searchParams) : NO_QUERY,
        headers: req.headers,
        protocol: selectProtocol(header(req.headers, 'sec-websocket-protocol'), protocols),
      },
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.settle(req.socket);
    if (isHandshakeAttempt(req.headers)) {
      // A handshake missing a piece (e.g. no "Connection: Upgrade"): say which (DESIGN §5).
      const checked = checkUpgradeRequest(req);
      const rejection = 'status' in checked ? checked : { status: 400, reason: 'Connection header must include "Upgrade"' };
      this.host.log(`${address(req.socket)}: handshake refused: ${rejection.status} ${rejection.reason}`);
      return reply(res, rejection);
    }
    if (this.options.onRequest) return this.options.onRequest(req, res);
    reply(res, { status: 426, reason: 'this is a WebSocket endpoint', headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } });
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const rejection: Rejection = tooLarge
      ? { status: 431, reason: 'request head too large' }
      : { status: 400, reason: `malformed request (${err.code ?? err.message})` };
    // node:https forwards TLS failures (bad ClientHello, plain HTTP on the TLS port, TLS
    // handshake timeout) here: there is no HTTP to answer with, only a line for the log.
    if (err.code?.startsWith('ERR_SSL') || err.code?.startsWith('ERR_TLS')) {
      this.settle(socket);
      this.host.log(`${address(socket as Socket)}: TLS handshake failed: ${err.code}`);
      socket.destroy();
      return;
    }
    if (err.code === 'ECONNRESET' || !socket.writable) {
      this.settle(socket);
      socket.destroy();
      return;
    }
    this.refuse(socket, rejection, address(socket as Socket));
  }
}

function reply(res: ServerResponse, rejection: Rejection): void {
  const body = `${rejection.reason}\n`;
  res.writeHead(rejection.status, {
    ...rejection.headers,
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function address(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

function ignore(): void {}

/**
 * The request target as a URL: origin-form ("/path?query", RFC 7230 §5.3.1, where "//x" is a
 * path, not a host) or absolute-form; null when it is neither.
 */
function parseTarget(target: string): URL | null {
  try {
    return new URL(target.startsWith('/') ? `ws://localhost${target}` : target);
  } catch {
    return null;
  }
}
