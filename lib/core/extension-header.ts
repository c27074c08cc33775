/** One element of a Sec-WebSocket-Extensions list: an extension's name and its parameters, in order. */
export interface ExtensionElement {
  name: string;
  /** [name, value] pairs; `true` for a parameter without a value. Repeats are kept, for the caller to judge. */
  params: [string, string | true][];
}

/** RFC 7230 tchar: what a token is made of. */
const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1): a comma-separated list of
 * `name *( ";" param [ "=" ( token / quoted-string ) ] )`, with optional whitespace around the
 * separators. A quoted value is unescaped and must then be a token (RFC 6455 §9.1). Returns null for a
 * value that does not follow the grammar, or that lists nothing (`1#extension`).
 */
export function parseExtensions(value: string): ExtensionElement[] | null {
  const reader = new Reader(value);
  const elements: ExtensionElement[] = [];
  for (;;) {
    // RFC 7230 §7: empty list elements are ignored.
    while (reader.takeAfterSpace(','));
    reader.skipSpace();
    if (reader.done) break;
    const name = reader.token();
    if (name === null) return null;
    const params: [string, string | true][] = [];
    while (reader.takeAfterSpace(';')) {
      reader.skipSpace();
      const param = reader.token();
      if (param === null) return null;
      if (!reader.takeAfterSpace('=')) {
        params.push([param, true]);
        continue;
      }
      reader.skipSpace();
      const paramValue = reader.peek() === '"' ? reader.quoted() : reader.token();
      if (paramValue === null || !isToken(paramValue)) return null;
      params.push([param, paramValue]);
    }
    elements.push({ name, params });
    reader.skipSpace();
    if (!reader.done && reader.peek() !== ',') return null;
  }
  return elements.length > 0 ? elements : null;
}

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (const c of text) if (!TCHAR.test(c)) return false;
  return true;
}

/** A cursor over the header value. */
class Reader {
  private at = 0;
  constructor(private readonly text: string) {}

  get done(): boolean {
    return this.at === this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.at];
  }

  /** Consumes `c` if it comes next. */
  take(c: string): boolean {
    if (this.text[this.at] !== c) return false;
    this.at++;
    return true;
  }

  /** Skips whitespace, then consumes `c` if it comes next. */
  takeAfterSpace(c: string): boolean {
    this.skipSpace();
    return this.take(c);
  }

  skipSpace(): void {
    while (this.text[this.at] === ' ' || this.text[this.at] === '\t') this.at++;
  }

  token(): string | null {
    const start = this.at;
    while (this.at < this.text.length && TCHAR.test(this.text[this.at]!)) this.at++;
    return this.at > start ? this.text.slice(start, this.at) : null;
  }

  /** A quoted-string (RFC 7230 §3.2.6), unescaped; null if it is not closed. */
  quoted(): string | null {
    let out = '';
    for (this.at++; this.at < this.text.length; this.at++) {
      const c = this.text[this.at]!;
      if (c === '"') {
        this.at++;
        return out;
      }
      if (c === '\\') {
        this.at++;
        if (this.at >= this.text.length) return null;
      }
      out += this.text[this.at];
    }
    return null;
  }
}
