import type { Initiator } from '../core/constants.js';
import type { Event } from './constants.js';

/** What the opening handshake told us about a connection. */
export interface HandshakeFacts {
  remoteAddress: string;
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

export interface NewConnectionEvent extends HandshakeFacts {
  type: typeof Event.NewConnection;
  connId: number;
}

/** Only with `manualAccept`: answer with `accept(connId)` or `reject(connId, status)`. */
export interface ConnectionRequestEvent extends HandshakeFacts {
  type: typeof Event.ConnectionRequest;
  connId: number;
}

export interface MessageEvent {
  type: typeof Event.Message;
  connId: number;
  /** A string for a text message, a Buffer (yours to keep; a view of the read it came in) for a binary one. */
  message: string | Buffer;
  binary: boolean;
}

export interface DisconnectEvent {
  type: typeof Event.Disconnect;
  connId: number;
  /** The peer's close code; 1005 if its close frame had none; 1006 if none came; the code we sent if we failed the connection. */
  code: number;
  reason: string;
  /** Both close frames were exchanged. */
  wasClean: boolean;
  /** Who ended it: 'peer', 'local', 'timeout' or 'error'. */
  initiator: Initiator;
}

export type ServerEvent = NewConnectionEvent | ConnectionRequestEvent | MessageEvent | DisconnectEvent;
export type ClientEvent = MessageEvent | DisconnectEvent;
