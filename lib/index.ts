/**
 * wspoll: a WebSocket (RFC 6455) server and client for Node.js with a poll API. The network
 * fills one queue of events; the program takes them with `poll()`, `drain()` or `await next()`.
 * @module wspoll
 */
export { Server } from './api/server.js';
export type { ConnectionInfo, StartOptions, StopOptions } from './api/server.js';
export { Client } from './api/client.js';
export type { ClientOptions } from './api/client.js';
export { Event, SendStatus } from './api/constants.js';
export type { EventType } from './api/constants.js';
export { CloseCode, ErrorCode, Initiator, Opcode } from './core/constants.js';
export { HandshakeError, ProtocolError, TimeoutError } from './core/errors.js';
export type {
  ClientEvent,
  ConnectionRequestEvent,
  DisconnectEvent,
  HandshakeFacts,
  MessageEvent,
  NewConnectionEvent,
  ServerEvent,
} from './api/events.js';
export type { ConnectionOptions, ServerOptions } from './api/options.js';
export type { Broker, BrokerHost } from './api/broker.js';
export type { CompressionOptions } from './core/deflate-options.js';
export type { Clock, Timer } from './io/clock.js';
