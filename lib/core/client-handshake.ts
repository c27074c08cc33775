import { randomBytes } from 'node:crypto';
import { ErrorCode } from './constants.js';
import { HandshakeError } from './errors.js';
import { acceptKey, header, LISTS_UPGRADE, LISTS_WEBSOCKET, lists } from './handshake.js';

/** What a client puts in its opening handshake besides the WebSocket fields. */
export interface ClientRequestOptions {
  /** Subprotocols to offer (Sec-WebSocket-Protocol), in order of preference. @default none */
  protocols?: readonly string[] | undefined;
  /** Extra request headers (e.g. Authorization, Cookie); the WebSocket fields cannot be overridden. @default none */
  headers?: Record<string, string> | undefined;
  /** The Origin header. @default none */
  origin?: string | undefined;
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
export function createKey(): string {
  return randomBytes(16).toString('base64');
}

/** RFC 7230 token characters: what a header name or a subprotocol may contain (RFC 6455 §4.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value a request may carry: no control characters, so no CR or LF (RFC 9110 §5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** The fields the handshake itself sets. */
const OWN_FIELDS = new Set([
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'origin',
]);

/**
 * The parts of a ws:// or wss:// URL a connection needs; throws a TypeError for another
 * scheme or a fragment (RFC 6455 §3: "Fragment identifiers ... MUST NOT be used").
 */
export function parseWebSocketUrl(url: string | URL): URL {
  const target = new URL(url);
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') throw new TypeError(`not a ws:// or wss:// URL: ${String(url)}`);
  if (target.hash !== '') throw new TypeError(`a WebSocket URL has no fragment: ${String(url)}`);
  return target;
}

/**
 * The opening handshake request (RFC 6455 §4.1) for `url` with `key`, offering `extensions` if given.
 * Throws a TypeError for a bad subprotocol name, a repeated one, or a header that is not a token
 * with a plain value.
 */
export function requestHead(url: URL, key: string, options: ClientRequestOptions, extensions?: string): string {
  const protocols = options.protocols ?? [];
  for (const protocol of protocols) if (!TOKEN.test(protocol)) throw new TypeError(`invalid subprotocol name "${protocol}"`);
  if (new Set(protocols).size !== protocols.length) throw new TypeError('subprotocols must be unique');
  let head =
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (protocols.length > 0) head += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  if (extensions) head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  if (options.origin !== undefined) head += field('Origin', options.origin);
  if (url.username || url.password) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    head += `Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (!OWN_FIELDS.has(name.toLowerCase())) head += field(name, value);
  }
  return `${head}\r\n`;
}

function field(name: string, value: string): string {
  if (!TOKEN.test(name)) throw new TypeError(`invalid header name "${name}"`);
  if (!FIELD_VALUE.test(value)) throw new TypeError(`invalid value for header ${name}`);
  return `${name}: ${value}\r\n`;
}

/** What a client checks in the server's answer (RFC 6455 §4.1, the client's requirements). */
export interface UpgradeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Validates a server's answer to our handshake; returns the chosen subprotocol or throws a
 * HandshakeError: UNAUTHORIZED for 401, NO_HANDSHAKE for any other non-101 or missing
 * Upgrade/Connection, HANDSHAKE_ACCEPT for a wrong key, NO_HANDSHAKE for a protocol not offered.
 * Extensions are checked apart (permessage-deflate.ts: acceptAsClient).
 */
export function checkUpgradeResponse(res: UpgradeResponse, key: string, offered: readonly string[]): string | undefined {
  const { status, headers } = res;
  if (status === 401) throw new HandshakeError(ErrorCode.UNAUTHORIZED, status, 'server answered 401 Unauthorized');
  if (status !== 101) throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, `server answered ${status}, not 101`);
  if (!lists(LISTS_WEBSOCKET, header(headers, 'upgrade'))) {
    throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, 'Upgrade header is not "websocket"');
  }
  if (!lists(LISTS_UPGRADE, header(headers, 'connection'))) {
    throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, 'Connection header lacks "Upgrade"');
  }
  if (header(headers, 'sec-websocket-accept') !== acceptKey(key)) {
    throw new HandshakeError(ErrorCode.HANDSHAKE_ACCEPT, status, 'Sec-WebSocket-Accept is missing or wrong');
  }
  const protocol = header(headers, 'sec-websocket-protocol');
  if (protocol !== undefined && !offered.includes(protocol)) {
    throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, `server chose subprotocol "${protocol}", which was not offered`);
  }
  return protocol;
}
