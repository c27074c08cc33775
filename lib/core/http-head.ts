/**
 * Strict parsers of HTTP/1.x heads (RFC 9112 §2–§5): an opening handshake is one request head
 * and one response head, and nothing else of HTTP is needed.
 */

export interface RequestHead {
  method: string;
  /** The request-target, e.g. "/chat?room=1". */
  url: string;
  /** e.g. "1.1" */
  httpVersion: string;
  /** Lower-case names; repeated fields joined with ", " (RFC 9110 §5.3). */
  headers: Record<string, string>;
}

/** A response head: the status and the header fields. */
export interface ResponseHead {
  status: number;
  /** Lower-case names; repeated fields joined with ", " (RFC 9110 §5.3). */
  headers: Record<string, string>;
}

/** Offset just past the blank line ending the head in buf, or -1 if it has not all arrived. */
export function headEnd(buf: Buffer): number {
  const at = buf.indexOf('\r\n\r\n', 0, 'latin1');
  return at < 0 ? -1 : at + 4;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)$/;
/** RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ]. */
const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** Field values: visible characters, spaces and tabs, obs-text; no control characters (RFC 9110 §5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parses buf[0, end) (ending with CRLF CRLF); a string says what is malformed. Lines and
 * names are found in the head decoded once (a Buffer.indexOf per line is a call into native
 * code); the request line and each value are decoded on their own from the bytes, so what is
 * kept does not pin the whole head in memory (a substring of 13 characters or more would).
 */
export function parseRequestHead(buf: Buffer, end: number): RequestHead | string {
  const text = buf.toString('latin1', 0, end);
  const lineEnd = text.indexOf('\r\n');
  const requestLine = REQUEST_LINE.exec(buf.toString('latin1', 0, lineEnd));
  if (!requestLine) return 'malformed request line';
  const headers = parseFields(buf, text, lineEnd + 2, end);
  if (typeof headers === 'string') return headers;
  return { method: requestLine[1]!, url: requestLine[2]!, httpVersion: `${requestLine[3]}.${requestLine[4]}`, headers };
}

/** Parses a response head in buf[0, end) (ending with CRLF CRLF); a string says what is malformed. */
export function parseResponseHead(buf: Buffer, end: number): ResponseHead | string {
  const text = buf.toString('latin1', 0, end);
  const lineEnd = text.indexOf('\r\n');
  const statusLine = STATUS_LINE.exec(text.slice(0, lineEnd));
  if (!statusLine) return 'malformed status line';
  const headers = parseFields(buf, text, lineEnd + 2, end);
  if (typeof headers === 'string') return headers;
  return { status: Number(statusLine[1]), headers };
}

/** The header fields from `at` to the blank line at `end`. */
function parseFields(buf: Buffer, text: string, at: number, end: number): Record<string, string> | string {
  const headers: Record<string, string> = {};
  for (let lineEnd; at < end - 2; at = lineEnd + 2) {
    lineEnd = text.indexOf('\r\n', at);
    const colon = text.indexOf(':', at);
    // No colon, whitespace before it, or a folded line (obsolete, RFC 9112 §5.2): refused.
    if (colon <= at || colon > lineEnd) return 'malformed header line';
    const name = text.slice(at, colon);
    if (!TOKEN.test(name)) return 'malformed header name';
    const value = buf.toString('latin1', skipSpace(text, colon + 1, lineEnd), trimSpace(text, colon + 1, lineEnd));
    if (!FIELD_VALUE.test(value)) return `invalid characters in header ${name}`;
    const key = name.toLowerCase();
    headers[key] = Object.hasOwn(headers, key) ? `${headers[key]}, ${value}` : value;
  }
  return headers;
}

/** Optional whitespace around a field value (RFC 9110 §5.6.3), skipped by offset. */
function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function skipSpace(text: string, start: number, end: number): number {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  return start;
}

function trimSpace(text: string, start: number, end: number): number {
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return end;
}
