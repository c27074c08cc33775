import type { Duplex } from 'node:stream';

/** A socket as the fronts hand it over: a stream with the peer's address. */
export type UpgradeSocket = Duplex & { remoteAddress?: string | undefined; remotePort?: number | undefined };

/**
 * Takes a socket whose request looks like a WebSocket handshake, with every byte read from it
 * so far (the request head first), and the time left for the handshake to complete.
 */
export type UpgradeHandler = (socket: UpgradeSocket, received: Buffer, handshakeTimeout: number) => void;

/** "address:port" of a socket's peer, for log lines. */
export function address(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}
