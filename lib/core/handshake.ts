import { createHash } from 'node:crypto';
import { GUID } from './constants.js';

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

/** One header's value; a repeated header (an array from node:http) joined with ", ". */
export function header(headers: UpgradeRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The comma-separated tokens of a header (RFC 6455 §4.1 lists are case-insensitive where tokens are). */
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
export const LISTS_WEBSOCKET = listHolding('websocket');
/** For the Connection header. */
export const LISTS_UPGRADE = listHolding('upgrade');

export function lists(pattern: RegExp, value: string | undefined): boolean {
  return value !== undefined && pattern.test(value);
}

/**
 * The refusal a request's HTTP version calls for, from a version such as "1.1" (node:http and
 * our parser give "major.minor"): RFC 6455 §4.1 asks for HTTP/1.1 or later, so HTTP/1.0 is a bad
 * request (400); 505 is for a major version this server does not speak (RFC 9110 §15.6.6).
 */
function versionRejection(version: string): Rejection | undefined {
  const dot = version.indexOf('.');
  const major = Number(version.slice(0, dot));
  const minor = Number(version.slice(dot + 1));
  if (major !== 1) return { status: 505, reason: `HTTP/${version} is not supported` };
  if (minor < 1) return { status: 400, reason: 'HTTP/1.1 or later required' };
  return undefined;
}

/** A key is 16 bytes in base64: exactly 22 characters of the alphabet then "==" (RFC 6455 §4.1 step 7). */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Checks an opening handshake request (RFC 6455 §4.2.1). Returns the client's key, or the Rejection to
 * answer with: 405 for a method other than GET, 400 for HTTP/1.0 (505 for another major
 * version), 400 naming the missing or invalid header, 426 (with `Sec-WebSocket-Version: 13`) for
 * a missing or other WebSocket version.
 */
export function checkUpgradeRequest(req: UpgradeRequest): { key: string } | Rejection {
  if (req.method !== 'GET') return { status: 405, reason: 'method must be GET', headers: { Allow: 'GET' } };
  const badVersion = versionRejection(req.httpVersion);
  if (badVersion) return badVersion;
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

/** The server's pick (RFC 6455 §4.2.2 step 5.5): its first preference that the client offered, if any. */
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

/** The 101 answer (RFC 6455 §4.2.2 step 5), with the chosen subprotocol and extensions if any. */
export function acceptResponse(key: string, protocol: string | undefined, extensions?: string): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
    (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '') +
    '\r\n'
  );
}


/** Where a handshake request points: the path without the query, and the query's parameters. */
export interface RequestTarget {
  /** The request path without the query, e.g. "/chat". */
  path: string;
  /** The query parameters, e.g. { token: "abc" } for "/chat?token=abc" (last value wins). */
  query: Record<string, string>;
}

const NO_QUERY: Record<string, string> = Object.freeze({});
/** A request target that URL would return unchanged as its pathname, e.g. "/" or "/chat/room-1". */
const PLAIN_PATH = /^\/(?:[A-Za-z0-9_~-]+\/?)*$/;

/**
 * Reads a request target in origin-form ("/path?query", RFC 9112 §3.2.1, where "//x" is a
 * path, not a host) or absolute-form; null when it is neither. A plain path is taken as it is;
 * anything else (a query, dots, escapes) goes through URL.
 */
export function requestTarget(target: string): RequestTarget | null {
  if (PLAIN_PATH.test(target)) return { path: target, query: NO_QUERY };
  let url: URL;
  try {
    url = new URL(target.startsWith('/') ? `ws://localhost${target}` : target);
  } catch {
    return null;
  }
  return { path: url.pathname, query: url.search ? Object.fromEntries(url.searchParams) : NO_QUERY };
}
