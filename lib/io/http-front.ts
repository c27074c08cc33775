import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkUpgradeRequest, type Rejection, rejectionResponse } from '../core/handshake.js';
import type { Clock } from './clock.js';
import { address, type UpgradeHandler } from './upgrade.js';

export interface HttpFrontOptions {
  /** True for our own internal server (plain requests on start()'s port), false for a program's attached one. */
  owned: boolean;
  clock: Clock;
  handshakeTimeout: number;
  /** Plain requests on our own server; by default they get 426. */
  onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  log(line: string): void;
}

/** How long a refused request's socket may stay open for the peer to read the answer and close. */
const REFUSAL_LINGER_MS = 1000;

/** Headers by which a request shows it means to be a WebSocket handshake, complete or not. */
const WEBSOCKET_HINTS = ['upgrade', 'sec-websocket-key', 'sec-websocket-version'];

/**
 * Serves WebSockets on a node:http(s) server: its upgrades go to the upgrade handler (as the
 * bytes of their request head, so the protocol reads them as it reads any other); on our own
 * server, it also answers plain requests and the ones node:http cannot parse. Returns a
 * function that detaches it.
 */
export function attachHttpFront(server: HttpServer, options: HttpFrontOptions, onUpgrade: UpgradeHandler): () => void {
  const handlers: [string, (...args: any[]) => void][] = [
    [
      'upgrade',
      (req: IncomingMessage, socket: Socket, head: Buffer) => {
        // A reset before the handshake is answered must not crash the process.
        if (socket.listenerCount('error') === 0) socket.on('error', ignore);
        onUpgrade(socket, Buffer.concat([requestHeadBytes(req), head]), options.handshakeTimeout);
      },
    ],
  ];
  if (options.owned) {
    handlers.push(
      ['request', (req: IncomingMessage, res: ServerResponse) => answerPlainRequest(req, res, options)],
      ['clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, options)],
    );
  }
  for (const [event, handler] of handlers) server.on(event, handler);
  return () => {
    for (const [event, handler] of handlers) server.off(event, handler);
  };
}

/** The request head node:http parsed, as the bytes it came in (header values are latin1 strings). */
function requestHeadBytes(req: IncomingMessage): Buffer {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

function answerPlainRequest(req: IncomingMessage, res: ServerResponse, options: HttpFrontOptions): void {
  if (WEBSOCKET_HINTS.some((name) => req.headers[name] !== undefined)) {
    // A handshake missing a piece (node:http saw no "Connection: Upgrade"): say which.
    const checked = checkUpgradeRequest(req);
    const rejection = 'status' in checked ? checked : { status: 400, reason: 'Connection header must include "Upgrade"' };
    options.log(`${address(req.socket)}: handshake refused: ${rejection.status} ${rejection.reason}`);
    return reply(res, rejection);
  }
  if (options.onRequest) return options.onRequest(req, res);
  reply(res, { status: 426, reason: 'this is a WebSocket endpoint', headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } });
}

function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, options: HttpFrontOptions): void {
  // node:https forwards TLS failures (bad ClientHello, plain HTTP on the TLS port, TLS
  // handshake timeout) here: there is no HTTP to answer with, only a line for the log.
  if (err.code?.startsWith('ERR_SSL') || err.code?.startsWith('ERR_TLS')) {
    options.log(`${address(socket as Socket)}: TLS handshake failed: ${err.code}`);
    return void socket.destroy();
  }
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const rejection: Rejection =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? { status: 431, reason: 'request head too large' }
      : { status: 400, reason: `malformed request (${err.code ?? err.message})` };
  options.log(`${address(socket as Socket)}: request refused: ${rejection.status} ${rejection.reason}`);
  socket.end(rejectionResponse(rejection));
  // end() only half-closes: a peer that never closes its side would hold the socket forever.
  const linger = options.clock.setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  socket.once('close', () => linger.cancel());
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

function ignore(): void {}
