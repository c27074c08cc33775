import type { ErrorCode } from './constants.js';

/** The peer broke RFC 6455 or a limit: the connection fails with `closeCode` (§7.1.7). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** An opening handshake failed: `code` says why, `status` is the HTTP status (0 if none came). */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A wait ran out: `next(timeoutMs)`, a client's handshake timeout. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
}
