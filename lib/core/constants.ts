/** Frame opcodes (RFC 6455 §5.2); names mirror POCO's FRAME_OP_*. */
export const Opcode = {
  /** A continuation frame: the next fragment of a message. */
  CONT: 0x0,
  /** A text frame: UTF-8. */
  TEXT: 0x1,
  /** A binary frame. */
  BINARY: 0x2,
  /** A close frame (RFC 6455 §5.5.1). */
  CLOSE: 0x8,
  /** A ping (RFC 6455 §5.5.2). */
  PING: 0x9,
  /** A pong (RFC 6455 §5.5.3). */
  PONG: 0xa,
} as const;
/** One of the values of {@link Opcode}. */
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Close status codes (RFC 6455 §7.4.1); names mirror POCO's WS_* status codes. */
export const CloseCode = {
  /** 1000: the purpose of the connection is fulfilled. */
  NORMAL_CLOSE: 1000,
  /** 1001: the endpoint goes away (a server shutting down, a page left); `stop()` sends it. */
  ENDPOINT_GOING_AWAY: 1001,
  /** 1002: the peer broke the protocol. */
  PROTOCOL_ERROR: 1002,
  /** 1003: a kind of data the endpoint cannot accept (e.g. binary where only text is). */
  PAYLOAD_NOT_ACCEPTABLE: 1003,
  /** 1004: reserved; never sent. */
  RESERVED: 1004,
  /** 1005: reported when a close frame carried no code; never sent. */
  RESERVED_NO_STATUS_CODE: 1005,
  /** 1006: reported when no close frame came (TCP lost, `drop`, a timeout); never sent. */
  RESERVED_ABNORMAL_CLOSE: 1006,
  /** 1007: data not consistent with its type (invalid UTF-8 in a text message or a close reason). */
  MALFORMED_PAYLOAD: 1007,
  /** 1008: a message that breaks the endpoint's policy. */
  POLICY_VIOLATION: 1008,
  /** 1009: a message too big to process (over `maxMessageSize`). */
  PAYLOAD_TOO_BIG: 1009,
  /** 1010: sent by a client whose required extension the server did not negotiate. */
  EXTENSION_REQUIRED: 1010,
  /** 1011: the server met a condition it did not expect. */
  UNEXPECTED_CONDITION: 1011,
  /** 1012: the service restarts. */
  SERVICE_RESTART: 1012,
  /** 1013: try again later (the server is overloaded). */
  TRY_AGAIN_LATER: 1013,
  /** 1014: a gateway got an invalid answer from upstream. */
  BAD_GATEWAY: 1014,
  /** 1015: reported when the TLS handshake failed; never sent. */
  RESERVED_TLS_FAILURE: 1015,
} as const;
/** One of the values of {@link CloseCode}. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Why a handshake or a frame was refused; names and values mirror POCO's WS_ERR_*. */
export const ErrorCode = {
  /** The answer was not a valid 101 (another status, bad `Upgrade`/`Connection`, a subprotocol not offered). */
  NO_HANDSHAKE: 1,
  /** The request had no `Sec-WebSocket-Version`. */
  HANDSHAKE_NO_VERSION: 2,
  /** The request's `Sec-WebSocket-Version` was not 13. */
  HANDSHAKE_UNSUPPORTED_VERSION: 3,
  /** The request had no valid `Sec-WebSocket-Key`. */
  HANDSHAKE_NO_KEY: 4,
  /** The 101's `Sec-WebSocket-Accept` did not match the key sent. */
  HANDSHAKE_ACCEPT: 5,
  /** The server answered 401. */
  UNAUTHORIZED: 6,
  /** A message was over the size limit. */
  PAYLOAD_TOO_BIG: 10,
  /** The connection ended inside a frame. */
  INCOMPLETE_FRAME: 11,
} as const;
/** One of the values of {@link ErrorCode}. */
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
/** One of the values of {@link Initiator}. */
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
