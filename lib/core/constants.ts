/** Frame opcodes (RFC 6455 §5.2); names mirror POCO's FRAME_OP_*. */
export const Opcode = {
  CONT: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Close status codes (RFC 6455 §7.4.1); names mirror POCO's WS_* status codes. */
export const CloseCode = {
  NORMAL_CLOSE: 1000,
  ENDPOINT_GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  PAYLOAD_NOT_ACCEPTABLE: 1003,
  RESERVED: 1004,
  RESERVED_NO_STATUS_CODE: 1005,
  RESERVED_ABNORMAL_CLOSE: 1006,
  MALFORMED_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  PAYLOAD_TOO_BIG: 1009,
  EXTENSION_REQUIRED: 1010,
  UNEXPECTED_CONDITION: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  RESERVED_TLS_FAILURE: 1015,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Why a handshake or a frame was refused; names and values mirror POCO's WS_ERR_*. */
export const ErrorCode = {
  NO_HANDSHAKE: 1,
  HANDSHAKE_NO_VERSION: 2,
  HANDSHAKE_UNSUPPORTED_VERSION: 3,
  HANDSHAKE_NO_KEY: 4,
  HANDSHAKE_ACCEPT: 5,
  UNAUTHORIZED: 6,
  PAYLOAD_TOO_BIG: 10,
  INCOMPLETE_FRAME: 11,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Who ended a connection, as reported on its `Disconnect` event. */
export const Initiator = {
  /** The peer sent a close frame or closed TCP. */
  PEER: 'peer',
  /** This program called `close`, `drop` or `stop`. */
  LOCAL: 'local',
  /** A timeout ran out (handshake, close, ping). */
  TIMEOUT: 'timeout',
  /** The peer broke the protocol or a limit, or the socket failed. */
  ERROR: 'error',
} as const;
export type Initiator = (typeof Initiator)[keyof typeof Initiator];

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Limits of the protocol objects when their options leave them out. */
export const ProtocolDefaults = {
  maxMessageSize: 1 * MiB,
  maxHandshakeBytes: 16 * KiB,
} as const;

/**
 * RFC 6455 §7.4: the codes an endpoint may put on the wire. 1004–1006 and 1015 are
 * reserved for reporting, 1016–2999 for future RFCs; 3000–4999 belong to applications.
 */
export function isValidWireCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}
