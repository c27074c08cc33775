import type { Server as HttpServer } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { address, isHandshakeAttempt, type Listener } from './listener.js';
import { headEnd, parseRequestHead } from './request-head.js';
import { ignoreSocket, readSocket, type SocketReader } from './socket-reader.js';

/** Reads one socket's request head, then hands the socket on (and its events with it). */
class HeadReader implements SocketReader {
  private received: Buffer | undefined;

  constructor(
    private readonly front: NetFront,
    private readonly socket: Socket,
  ) {}

  receive(chunk: Buffer): void {
    this.received = this.front.headData(this.socket, this.received, chunk);
  }

  socketEnded(): void {
    this.front.headGone(this.socket);
  }

  socketFailed(): void {
    this.front.headGone(this.socket);
  }

  socketClosed(): void {}
}

/** Ends the head reading: what the socket says next is for whoever takes it over. */
function stopReading(socket: Socket): void {
  readSocket(socket, ignoreSocket);
}

/**
 * The standalone listener's fast path: reads each new socket's request head itself, sends
 * handshakes straight to the Listener, and hands any other request, with the bytes already
 * read, to an internal node:http server (onRequest, or 426).
 */
export class NetFront {
  /** Sockets handed to node:http (keep-alive ones may idle there); stop() closes them. */
  private readonly plain = new Set<Socket>();

  constructor(
    server: NetServer,
    private readonly listener: Listener,
    private readonly http: HttpServer,
    private readonly maxHeadBytes: number,
  ) {
    // Over TLS, the decrypted socket is the one 'secureConnection' announces.
    server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => this.read(socket));
  }

  private read(socket: Socket): void {
    // A peer's FIN must not end our side before our close frame is out (see Peer); node:http
    // expects the same. Set here, not on the server, so a TLS handshake a client abandons with
    // FIN still closes.
    socket.allowHalfOpen = true;
    this.listener.arm(socket);
    readSocket(socket, new HeadReader(this, socket));
  }

  /** More bytes of a request head: answer once it is complete, refuse it once it is too long. */
  headData(socket: Socket, received: Buffer | undefined, chunk: Buffer): Buffer | undefined {
    const data = received ? Buffer.concat([received, chunk]) : chunk;
    const end = headEnd(data);
    if (end < 0 ? data.length > this.maxHeadBytes : end > this.maxHeadBytes) {
      stopReading(socket);
      this.listener.refuse(socket, { status: 431, reason: 'request head too large' }, address(socket));
      return undefined;
    }
    if (end < 0) return data;
    stopReading(socket);
    this.dispatch(socket, data, end);
    return undefined;
  }

  headGone(socket: Socket): void {
    stopReading(socket);
    this.listener.settle(socket);
    socket.destroy();
  }

  private dispatch(socket: Socket, data: Buffer, end: number): void {
    const head = parseRequestHead(data, end);
    if (typeof head === 'string') {
      return this.listener.refuse(socket, { status: 400, reason: `malformed request (${head})` }, address(socket));
    }
    if (isHandshakeAttempt(head.headers)) return this.listener.upgrade(head, socket, data.subarray(end));
    // Plain HTTP: node:http takes the socket over and serves any keep-alive follow-ups. It reads
    // later bytes straight from the handle, so the ones we read go to its 'data' listener.
    this.plain.add(socket);
    socket.once('close', () => this.plain.delete(socket));
    this.http.emit('connection', socket);
    socket.emit('data', data);
  }

  closePlainConnections(): void {
    for (const socket of this.plain) socket.destroy();
  }
}
