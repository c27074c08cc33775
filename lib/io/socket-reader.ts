import type { Duplex } from 'node:stream';

/** What receives a socket's events: its Peer, or the request-head reader before the upgrade. */
export interface SocketReader {
  receive(chunk: Buffer): void;
  /** FIN from the other side. */
  socketEnded(): void;
  socketClosed(): void;
  socketFailed(err: Error): void;
}

const kReader = Symbol('wspoll.reader');
type ReadSocket = Duplex & { [kReader]: SocketReader };

/** Takes a socket's events and ignores them (a refused socket, one handed to node:http). */
export const ignoreSocket: SocketReader = {
  receive() {},
  socketEnded() {},
  socketClosed() {},
  socketFailed() {},
};

/**
 * Makes `reader` the receiver of the socket's events. One set of listener functions serves every
 * socket, installed once per socket: handing a socket from its head reader to its Peer changes
 * no listener. (Removing an event's last listener turns the socket's listener table into a
 * dictionary of about half a kilobyte; a second listener per event costs an array each.)
 */
export function readSocket(socket: Duplex, reader: SocketReader): void {
  const s = socket as ReadSocket;
  const listening = s[kReader] !== undefined;
  s[kReader] = reader;
  if (listening) return;
  socket.on('data', onSocketData);
  socket.on('end', onSocketEnd);
  socket.on('close', onSocketClose);
  socket.on('error', onSocketError);
}

function onSocketData(this: ReadSocket, chunk: Buffer): void {
  this[kReader].receive(chunk);
}
function onSocketEnd(this: ReadSocket): void {
  this[kReader].socketEnded();
}
function onSocketClose(this: ReadSocket): void {
  this[kReader].socketClosed();
}
function onSocketError(this: ReadSocket, err: Error): void {
  this[kReader].socketFailed(err);
}
