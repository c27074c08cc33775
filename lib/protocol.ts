/**
 * wspoll/protocol: RFC 6455 without I/O. `ServerProtocol` and `ClientProtocol` take the bytes
 * read and give events and the bytes to write; they never call back, keep no timers, read no clock.
 * @module wspoll/protocol
 */
export { ServerProtocol } from './core/server-protocol.js';
export type { HandshakeRequest, RequestEvent, ServerProtocolEvent, ServerProtocolOptions } from './core/server-protocol.js';
export { ClientProtocol } from './core/client-protocol.js';
export type { ClientProtocolEvent, ClientProtocolOptions, OpenEvent } from './core/client-protocol.js';
export type { CloseEvent, FrameEvent, MessageEvent, PingEvent, PongEvent, ProtocolOptions, ProtocolState } from './core/protocol.js';
export { encodeMessage } from './core/encoded-message.js';
export type { EncodedMessage } from './core/encoded-message.js';
export type { CompressionOptions } from './core/deflate-options.js';
export type { Output } from './core/outbox.js';
export { CloseCode, ErrorCode, Initiator, Opcode } from './core/constants.js';
export { HandshakeError, ProtocolError } from './core/errors.js';
