/** The kinds of event `poll()` returns; each value equals its name. */
export const Event = {
  NewConnection: 'NewConnection',
  Message: 'Message',
  Disconnect: 'Disconnect',
  ConnectionRequest: 'ConnectionRequest',
} as const;
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
export type SendStatus = (typeof SendStatus)[keyof typeof SendStatus];

