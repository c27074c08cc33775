export { Server } from './server.js';
export type { ConnectionInfo, StartOptions, StopOptions } from './server.js';
export { Client } from './client.js';
export type { ClientOptions } from './client.js';
export { CloseCode, ErrorCode, Event, Initiator, Opcode, SendStatus } from './constants.js';
export type { EventType } from './constants.js';
export { HandshakeError, ProtocolError, TimeoutError } from './errors.js';
export type {
  ConnectionRequestEvent,
  DisconnectEvent,
  HandshakeFacts,
  MessageEvent,
  NewConnectionEvent,
  ServerEvent,
} from './events.js';
export type { ClientEvent } from './events.js';
export type { ConnectionOptions, ServerOptions } from './options.js';
export type { Clock, Timer } from './clock.js';
