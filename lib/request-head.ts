/**
 * A strict parser of an HTTP/1.x request head (RFC 9112 §2–§5), for the standalone listener:
 * a handshake is one request head and nothing else of HTTP is needed.
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

/** Offset just past the blank line ending the head in buf[0, end), or -1 if it has not all arrived. */
export function headEnd(buf: Buffer): number {
  const at = buf.indexOf('\r\n\r\n', 0, 'latin1');
  return at < 0 ? -1 : at + 4;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)$/;
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
  let lineEnd = text.indexOf('\r\n');
  const requestLine = REQUEST_LINE.exec(buf.toString('latin1', 0, lineEnd));
  if (!requestLine) return 'malformed request line';
  const headers: Record<string, string> = {};
  for (let at = lineEnd + 2; at < end - 2; at = lineEnd + 2) {
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
  return { method: requestLine[1]!, url: requestLine[2]!, httpVersion: `${requestLine[3]}.${requestLine[4]}`, headers };
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
