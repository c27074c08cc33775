/** The kinds of event `poll()` returns; each value equals its name. */
export const Event = {
  /** A connection is open ({@link NewConnectionEvent}). */
  NewConnection: 'NewConnection',
  /** A whole message arrived ({@link MessageEvent}). */
  Message: 'Message',
  /** A connection is over ({@link DisconnectEvent}). */
  Disconnect: 'Disconnect',
  /** With `manualAccept`: a handshake waits for `accept` or `reject` ({@link ConnectionRequestEvent}). */
  ConnectionRequest: 'ConnectionRequest',
} as const;
/** One of the values of {@link Event}: the `type` of an event. */
export type EventType = (typeof Event)[keyof typeof Event];

/** What `send` did with a message. */
export const SendStatus = {
  /** Queued for the socket. */
  SUCCESS: 'SUCCESS',
  /** Queued, but the connection's buffered bytes passed `sendHighWaterMark`: slow down. */
  BACKPRESSURE: 'BACKPRESSURE',
  /** Not queued: the connection's buffered bytes would pass `maxBufferedBytes`. */
  DROPPED: 'DROPPED',
  /** Not queued: the id is unknown, closing or closed. */
  CLOSED: 'CLOSED',
} as const;
/** One of the values of {@link SendStatus}: what `send`, `sendText` and `sendBinary` return. */
export type SendStatus = (typeof SendStatus)[keyof typeof SendStatus];

