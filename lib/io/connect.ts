import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/**
 * Opens the TCP (wss://: TLS) connection to a ws:// or wss:// URL. Nagle's algorithm is off (a
 * small frame must not wait for a delayed ACK) and the socket stays half-open after the server's
 * FIN, so our close frame can still go out.
 */
export function connectTo(url: URL, tls: TlsConnectionOptions | undefined): Socket {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const socket = secure
    ? tlsConnect({ ...(isIP(host) === 0 ? { servername: host } : {}), ...tls, host, port, allowHalfOpen: true } as TlsConnectionOptions)
    : netConnect({ host, port, allowHalfOpen: true });
  socket.setNoDelay(true);
  return socket;
}
