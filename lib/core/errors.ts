import type { ErrorCode } from './constants.js';

/** The peer broke RFC 6455 or a limit: the connection fails with `closeCode` (RFC 6455 §7.1.7). */
export class ProtocolError extends Error {
  /** Always `'ProtocolError'`. */
  override readonly name = 'ProtocolError';
  /**
   * @param closeCode - The close code the connection fails with (1002, 1007, 1009, …).
   * @param message - What was wrong, for the error log.
   */
  constructor(
    /** The close code the connection fails with (1002, 1007, 1009, …). */
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** An opening handshake failed: `code` says why, `status` is the HTTP status (0 if none came). */
export class HandshakeError extends Error {
  /** Always `'HandshakeError'`. */
  override readonly name = 'HandshakeError';
  /**
   * @param code - Why it failed.
   * @param status - The HTTP status of the answer; 0 if none came.
   * @param message - What was wrong, in words.
   */
  constructor(
    /** Why it failed: `UNAUTHORIZED` (401), `NO_HANDSHAKE` (another answer), `HANDSHAKE_ACCEPT` (a wrong accept key), …. */
    readonly code: ErrorCode,
    /** The HTTP status of the answer; 0 if none came. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A wait ran out: `next(timeoutMs)`, a client's handshake timeout. */
export class TimeoutError extends Error {
  /** Always `'TimeoutError'`. */
  override readonly name = 'TimeoutError';
  /** Always `'ETIMEDOUT'`, like Node's own timeouts. */
  readonly code = 'ETIMEDOUT';
}
