import type { EventEmitter } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import { Server as TlsServer } from 'node:tls';
import { headEnd } from '../core/http-head.js';
import type { Clock, Timer } from './clock.js';
import { ignoreSocket, readSocket, type SocketReader } from './socket-reader.js';
import { address, type UpgradeHandler, type UpgradeSocket } from './upgrade.js';

export interface NetFrontOptions {
  clock: Clock;
  handshakeTimeout: number;
  /** A head longer than this is the protocol's to refuse (431): it is handed over as it is. */
  maxHandshakeBytes: number;
  log(line: string): void;
}

/** Headers by which a request shows it means to be a WebSocket handshake, complete or not. */
const HANDSHAKE_HINT = /\r\n(?:upgrade|sec-websocket-key|sec-websocket-version)[ \t]*:/i;

/** Reads one socket's request head until it can tell a handshake from a plain request. */
class HeadSniffer implements SocketReader {
  private received: Buffer | undefined;
  private readonly timer: Timer;
  private readonly arrivedAt: number;

  constructor(
    private readonly front: NetFront,
    private readonly socket: UpgradeSocket,
    private readonly options: NetFrontOptions,
  ) {
    this.arrivedAt = options.clock.now();
    front.sockets.add(socket);
    this.timer = options.clock.setTimeout(() => {
      this.stop();
      options.log(`${address(socket)}: handshake timeout after ${options.handshakeTimeout} ms`);
      socket.destroy();
    }, options.handshakeTimeout);
    readSocket(socket, this);
  }

  receive(chunk: Buffer): void {
    const data = this.received ? Buffer.concat([this.received, chunk]) : chunk;
    const end = headEnd(data);
    if (end < 0 && data.length <= this.options.maxHandshakeBytes) {
      this.received = data;
      return;
    }
    this.stop();
    // A head too long, or one with a hint, is the protocol's to judge; any other goes to node:http.
    const head = end < 0 ? '' : data.toString('latin1', 0, end);
    if (end < 0 || HANDSHAKE_HINT.test(head)) {
      this.front.onUpgrade(this.socket, data, this.options.handshakeTimeout - (this.options.clock.now() - this.arrivedAt));
    } else this.front.plain(this.socket, data);
  }

  socketEnded(): void {
    this.stop();
    this.socket.destroy();
  }

  socketFailed(): void {
    this.socketEnded();
  }

  socketClosed(): void {
    this.stop();
  }

  /** What the socket says next is for whoever takes it over. */
  private stop(): void {
    this.front.sockets.delete(this.socket);
    this.timer.cancel();
    this.received = undefined;
    readSocket(this.socket, ignoreSocket);
  }
}

/**
 * The standalone listener's front: sniffs each new socket's request head, hands handshakes to
 * the upgrade handler with the bytes read, and any other request, with its bytes, to an
 * internal node:http server (onRequest, or 426). The listener is a net or tls server, or a
 * port of a memory network: anything that announces its sockets with 'connection'.
 */
export class NetFront {
  /** Sockets whose head is being read, and those handed to node:http (keep-alive ones may idle there). */
  readonly sockets = new Set<UpgradeSocket>();

  constructor(
    server: EventEmitter,
    private readonly http: HttpServer,
    readonly onUpgrade: UpgradeHandler,
    options: NetFrontOptions,
  ) {
    // Over TLS, the decrypted socket is the one 'secureConnection' announces.
    server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: UpgradeSocket) => {
      // A peer's FIN must not end our side before our close frame is out; node:http expects the
      // same. Set here, not on the server, so a TLS handshake a client abandons with FIN closes.
      socket.allowHalfOpen = true;
      new HeadSniffer(this, socket, options);
    });
  }

  /** node:http takes the socket over; it reads later bytes from the handle, so ours go to its 'data' listener. */
  plain(socket: UpgradeSocket, data: Buffer): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.http.emit('connection', socket);
    socket.emit('data', data);
  }

  /** Destroys the sockets still reading a head and the plain HTTP ones: the server stops. */
  closeConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
