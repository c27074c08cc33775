import { createHash, randomBytes } from 'node:crypto';
import { ErrorCode, GUID } from './constants.js';
import { HandshakeError } from './errors.js';

/** The parts of an HTTP request a WebSocket server looks at; header names lower-case. */
export interface UpgradeRequest {
  method?: string | undefined;
  /** e.g. "1.1" */
  httpVersion: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A handshake refused with an HTTP status, the reason in the body, and any extra headers. */
export interface Rejection {
  status: number;
  reason: string;
  headers?: Record<string, string>;
}

/** RFC 6455 §4.2.2 step 5.4: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (§4.1). */
export function createKey(): string {
  return randomBytes(16).toString('base64');
}

/** One header's value; a repeated header (an array from node:http) joined with ", ". */
export function header(headers: UpgradeRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The comma-separated tokens of a header (§4.1 lists are case-insensitive where tokens are). */
function tokens(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

/** Matches a comma-separated list (any case, optional whitespace around items) that holds `token`. */
function listHolding(token: string): RegExp {
  return new RegExp(`(?:^|,)[ \\t]*${token}[ \\t]*(?:,|$)`, 'i');
}
/** For the Upgrade header. */
const LISTS_WEBSOCKET = listHolding('websocket');
/** For the Connection header. */
const LISTS_UPGRADE = listHolding('upgrade');

function lists(pattern: RegExp, value: string | undefined): boolean {
  return value !== undefined && pattern.test(value);
}

/** HTTP/1.1 or later, from a version such as "1.1" (node:http and our parser give "major.minor"). */
function isHttp11OrLater(version: string): boolean {
  const dot = version.indexOf('.');
  const major = Number(version.slice(0, dot));
  const minor = Number(version.slice(dot + 1));
  return major > 1 || (major === 1 && minor >= 1);
}

/** A key is 16 bytes in base64: exactly 22 characters of the alphabet then "==" (§4.1 step 7). */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Checks an opening handshake request (§4.2.1). Returns the client's key, or the Rejection to
 * answer with: 405 for a method other than GET, 505 below HTTP/1.1, 400 naming the missing or
 * invalid header, 426 (with `Sec-WebSocket-Version: 13`) for a missing or other version.
 */
export function checkUpgradeRequest(req: UpgradeRequest): { key: string } | Rejection {
  if (req.method !== 'GET') return { status: 405, reason: 'method must be GET', headers: { Allow: 'GET' } };
  if (!isHttp11OrLater(req.httpVersion)) return { status: 505, reason: 'HTTP/1.1 or later required' };
  const h = req.headers;
  if (!header(h, 'host')) return { status: 400, reason: 'Host header missing' };
  if (!lists(LISTS_WEBSOCKET, header(h, 'upgrade'))) return { status: 400, reason: 'Upgrade header must be "websocket"' };
  if (!lists(LISTS_UPGRADE, header(h, 'connection'))) return { status: 400, reason: 'Connection header must include "Upgrade"' };
  const version = header(h, 'sec-websocket-version');
  if (version === undefined || version.trim() !== '13') {
    return {
      status: 426,
      reason: version === undefined ? 'Sec-WebSocket-Version missing' : `unsupported Sec-WebSocket-Version: ${version}`,
      headers: { 'Sec-WebSocket-Version': '13' },
    };
  }
  const key = header(h, 'sec-websocket-key')?.trim();
  if (key === undefined) return { status: 400, reason: 'Sec-WebSocket-Key missing' };
  if (!KEY_PATTERN.test(key)) return { status: 400, reason: 'Sec-WebSocket-Key must be 16 bytes in base64' };
  return { key };
}

/** The server's pick (§4.2.2 step 5.5): its first preference that the client offered, if any. */
export function selectProtocol(offered: string | undefined, supported: readonly string[]): string | undefined {
  const wanted = new Set(tokens(offered));
  return supported.find((p) => wanted.has(p));
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

/** A complete HTTP/1.1 response refusing a handshake; the connection closes after it. */
export function rejectionResponse(rejection: Rejection): string {
  const body = `${rejection.reason}\n`;
  let head = `HTTP/1.1 ${rejection.status} ${statusText(rejection.status)}\r\n`;
  for (const [name, value] of Object.entries(rejection.headers ?? {})) head += `${name}: ${value}\r\n`;
  head +=
    'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return head + body;
}

/** The 101 answer (§4.2.2 step 5). */
export function acceptResponse(key: string, protocol: string | undefined): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
    '\r\n'
  );
}

/** What a client checks in the server's answer (§4.1, the client's requirements). */
export interface UpgradeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Validates a server's answer to our handshake; returns the chosen subprotocol or throws a
 * HandshakeError: UNAUTHORIZED for 401, NO_HANDSHAKE for any other non-101 or missing
 * Upgrade/Connection, HANDSHAKE_ACCEPT for a wrong key, NO_HANDSHAKE for a protocol not offered.
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
  if (header(headers, 'sec-websocket-extensions') !== undefined) {
    throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, 'server chose an extension that was not offered');
  }
  const protocol = header(headers, 'sec-websocket-protocol');
  if (protocol !== undefined && !offered.includes(protocol)) {
    throw new HandshakeError(ErrorCode.NO_HANDSHAKE, status, `server chose subprotocol "${protocol}", which was not offered`);
  }
  return protocol;
}
