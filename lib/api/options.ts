import type { IncomingMessage, ServerResponse } from 'node:http';
import { KiB, MiB, ProtocolDefaults } from '../core/constants.js';
import type { CompressionOptions } from '../core/deflate-options.js';
import { type Clock, systemClock } from '../io/clock.js';
import type { Broker } from './broker.js';

/** Limits and timers of one connection; the Server and the Client share them. */
export interface ConnectionOptions {
  /** Largest message after reassembly, in bytes; a bigger one is closed with 1009 from its header. @default 1 MiB */
  maxMessageSize?: number;
  /** After sending a close frame, how long to wait for the peer's before cutting TCP (Disconnect 1006). @default 10 000 ms */
  closeTimeout?: number;
  /** Send a ping after this long without hearing from the peer (time its reading is paused by `maxQueuedBytesPerConnection` does not count); 0 disables the heartbeat. @default 30 000 ms */
  pingInterval?: number;
  /**
   * Drop a peer that has not answered a ping within this long (Disconnect 1006, reason "ping
   * timeout"). One timer checks all connections every quarter of min(pingInterval, pingTimeout),
   * so a ping or a cut may come up to that much late. @default 30 000 ms
   */
  pingTimeout?: number;
  /** `send` returns BACKPRESSURE once this many bytes wait in the connection's send buffer. @default 64 KiB */
  sendHighWaterMark?: number;
  /** `send` refuses (DROPPED) messages while the send buffer holds this many bytes or more. Pongs and close frames are never dropped: a peer whose pings push the buffer past this is not read until it drains. @default 4 MiB */
  maxBufferedBytes?: number;
  /** Instead of DROPPED, fail the connection with 1008 when `maxBufferedBytes` would be passed. @default false */
  closeOnBackpressureLimit?: boolean;
  /** Stop reading from a connection while this many bytes of its messages wait to be polled (each message counts 64 bytes more for its event, so empty ones count too). @default 1 MiB */
  maxQueuedBytesPerConnection?: number;
  /** The time source; tests pass a fake clock and step it. @default the system clock */
  clock?: Clock;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults or an object of options; a Client
   * offers it, a Server accepts a client's offer. @default off
   */
  compression?: boolean | CompressionOptions;
}

/** Options of `new Server(options)`. */
export interface ServerOptions extends ConnectionOptions {
  /** Largest request head (request line and headers) of a handshake; more gets HTTP 431. @default 16 KiB */
  maxHandshakeBytes?: number;
  /** A TCP connection that has not completed its handshake by then is destroyed; a refused one is closed at most 1 s after its HTTP error. @default 10 000 ms */
  handshakeTimeout?: number;
  /** More simultaneous connections get HTTP 503. @default unlimited */
  maxConnections?: number;
  /** Allowed `Origin` values; another origin (or none) gets HTTP 403. @default any origin */
  origins?: readonly string[];
  /** Subprotocols in the server's order of preference; the first one the client offered wins. @default none */
  protocols?: readonly string[];
  /** Queue a ConnectionRequest event and wait for `accept(connId)` / `reject(connId, status)`. @default false */
  manualAccept?: boolean;
  /** Handles plain HTTP requests on the server's own port. @default answer 426 Upgrade Required */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Shares topics with other servers: `publish` reaches their subscribers too, and theirs reach
   * this server's (`redisBroker` from `wspoll/redis`). `broadcast` and `send` stay local.
   * @default none: topics end at this server
   */
  broker?: Broker;
}

/** Defaults of every option (the README's table). */
export const Defaults = {
  ...ProtocolDefaults,
  handshakeTimeout: 10_000,
  closeTimeout: 10_000,
  pingInterval: 30_000,
  pingTimeout: 30_000,
  sendHighWaterMark: 64 * KiB,
  maxBufferedBytes: 4 * MiB,
  maxQueuedBytesPerConnection: 1 * MiB,
} as const;

/** The connection options the shell itself uses (compression is the protocol objects' alone). */
export type ResolvedConnectionOptions = Required<Omit<ConnectionOptions, 'compression'>>;

export function resolveConnectionOptions(options: ConnectionOptions): ResolvedConnectionOptions {
  return {
    maxMessageSize: options.maxMessageSize ?? Defaults.maxMessageSize,
    closeTimeout: options.closeTimeout ?? Defaults.closeTimeout,
    pingInterval: options.pingInterval ?? Defaults.pingInterval,
    pingTimeout: options.pingTimeout ?? Defaults.pingTimeout,
    sendHighWaterMark: options.sendHighWaterMark ?? Defaults.sendHighWaterMark,
    maxBufferedBytes: options.maxBufferedBytes ?? Defaults.maxBufferedBytes,
    closeOnBackpressureLimit: options.closeOnBackpressureLimit ?? false,
    maxQueuedBytesPerConnection: options.maxQueuedBytesPerConnection ?? Defaults.maxQueuedBytesPerConnection,
    clock: options.clock ?? systemClock,
  };
}
