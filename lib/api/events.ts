import type { Initiator } from '../core/constants.js';
import type { Event } from './constants.js';

/** What the opening handshake told us about a connection. */
export interface HandshakeFacts {
  /** The peer's IP address, e.g. "127.0.0.1" or "::1". */
  remoteAddress: string;
  /** The peer's TCP port. */
  remotePort: number;
  /** The request path without the query, e.g. "/chat". */
  path: string;
  /** The query parameters, e.g. { token: "abc" } for "/chat?token=abc" (last value wins). */
  query: Record<string, string>;
  /** Request headers, names lower-case. */
  headers: Record<string, string | string[] | undefined>;
  /** The negotiated subprotocol, or undefined. */
  protocol: string | undefined;
  /** The negotiated extensions as the server answered them (e.g. "permessage-deflate; server_no_context_takeover"), or ''. */
  extensions: string;
}

/** A connection is open: the first event of every connection, with its handshake facts. */
export interface NewConnectionEvent extends HandshakeFacts {
  /** `Event.NewConnection`. */
  type: typeof Event.NewConnection;
  /** The connection's id: counts up from 1 per server, never reused. */
  connId: number;
}

/** Only with `manualAccept`: answer with `accept(connId)` or `reject(connId, status)`. */
export interface ConnectionRequestEvent extends HandshakeFacts {
  /** `Event.ConnectionRequest`. */
  type: typeof Event.ConnectionRequest;
  /** The id the connection keeps once accepted (its NewConnection carries the same). */
  connId: number;
}

/** A whole message from a connection (fragments already reassembled). */
export interface MessageEvent {
  /** `Event.Message`. */
  type: typeof Event.Message;
  /** The connection it came from (always 1 on a Client). */
  connId: number;
  /** A string for a text message, a Buffer (yours to keep; a view of the read it came in) for a binary one. */
  message: string | Buffer;
  /** True for a binary message (then `message` is a Buffer), false for text. */
  binary: boolean;
}

/** A connection is over: the last event of every connection, exactly once. */
export interface DisconnectEvent {
  /** `Event.Disconnect`. */
  type: typeof Event.Disconnect;
  /** The connection that ended (always 1 on a Client). */
  connId: number;
  /** The peer's close code; 1005 if its close frame had none; 1006 if none came; the code we sent if we failed the connection. */
  code: number;
  /** The reason of the close frame (empty if none); for 1006, why the connection was lost. */
  reason: string;
  /** Both close frames were exchanged. */
  wasClean: boolean;
  /** Who ended it: 'peer', 'local', 'timeout' or 'error'. */
  initiator: Initiator;
}

/** What a Server's `poll()`, `drain()` and `next()` return: switch on `type`. */
export type ServerEvent = NewConnectionEvent | ConnectionRequestEvent | MessageEvent | DisconnectEvent;
/** What a Client's `poll()`, `drain()` and `next()` return: switch on `type`. */
export type ClientEvent = MessageEvent | DisconnectEvent;
