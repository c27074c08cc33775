import { connect as netConnect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { MemoryNetwork } from './memory-network.js';

/** How a client reaches its server: TLS options for wss://, or a memory network instead of TCP. */
export interface ConnectOptions {
  tls?: TlsConnectionOptions | undefined;
  network?: MemoryNetwork | undefined;
}

/**
 * Opens the TCP (wss://: TLS) connection to a ws:// or wss:// URL, or the connection through a
 * memory network. Nagle's algorithm is off (a small frame must not wait for a delayed ACK) and
 * the socket stays half-open after the server's FIN, so our close frame can still go out.
 */
export function connectTo(url: URL, { tls, network }: ConnectOptions): Duplex {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  if (network) {
    if (secure) throw new TypeError(`the memory network carries ws:// only: ${url.href}`);
    return network.connect(port, host, { allowHalfOpen: true });
  }
  const socket = secure
    ? tlsConnect({ ...(isIP(host) === 0 ? { servername: host } : {}), ...tls, host, port, allowHalfOpen: true } as TlsConnectionOptions)
    : netConnect({ host, port, allowHalfOpen: true });
  socket.setNoDelay(true);
  return socket;
}
