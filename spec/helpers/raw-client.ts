/**
 * The one raw WebSocket client of the tests, on `node:net` (or any socket that stands in for one).
 *
 * It does the opening handshake itself (or lets a test write any bytes it likes), writes exactly
 * the bytes a test gives it (whole, in chunks, with pauses), and parses what the server sends back
 * into frames. It records the server's close frame, what came after it, and how the TCP
 * connection ended (FIN, reset, or our own destroy). It answers nothing on its own unless told to
 * (`autoCloseReply`): no pongs, no close replies.
 *
 * It knows nothing about wspoll (no import from lib/): it checks the server from the outside,
 * like Autobahn does. Frames are built with ./frames.ts.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { closePayload, encodeFrame, maskBytes, OP, type FrameOptions } from './frames.js';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface RequestOptions {
  path?: string;
  /** Default: 16 random bytes in base64. */
  key?: string;
  /** Extra or replacing headers (name as written); a value of '' removes a default header. */
  headers?: Record<string, string>;
  method?: string;
  /** The HTTP version of the request line (default '1.1'). */
  version?: string;
  /** The Host header's host (default 127.0.0.1); the port follows it. */
  host?: string;
}

/**
 * An opening handshake request. Headers in `o.headers` replace defaults of the same name
 * (case-insensitive) in place; others follow the defaults in the order given.
 */
export function upgradeRequest(port: number, o: RequestOptions = {}): string {
  const defaults: Array<[string, string]> = [
    ['Host', `${o.host ?? '127.0.0.1'}:${port}`],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', o.key ?? randomBytes(16).toString('base64')],
    ['Sec-WebSocket-Version', '13'],
  ];
  const extra = o.headers ?? {};
  const lower = new Map(Object.entries(extra).map(([k, v]) => [k.toLowerCase(), [k, v] as const]));
  const lines: string[] = [];
  for (const [k, v] of defaults) {
    const given = lower.get(k.toLowerCase());
    if (given) {
      lower.delete(k.toLowerCase());
      if (given[1] !== '') lines.push(`${given[0]}: ${given[1]}`);
    } else lines.push(`${k}: ${v}`);
  }
  for (const [k, v] of lower.values()) if (v !== '') lines.push(`${k}: ${v}`);
  return `${o.method ?? 'GET'} ${o.path ?? '/'} HTTP/${o.version ?? '1.1'}\r\n${lines.join('\r\n')}\r\n\r\n`;
}

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface CloseInfo {
  /** undefined when the close frame had no payload. */
  code?: number;
  reason: Buffer;
  payload: Buffer;
}

export interface HttpResponse {
  /** -1 when the status line is not HTTP. */
  status: number;
  statusText: string;
  httpVersion: string;
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  raw: string;
}

export interface Ending {
  /** fin: the server closed TCP (FIN); reset: ECONNRESET/EPIPE before any FIN; local: we
   *  destroyed the socket ourselves; timeout: still open. */
  how: 'fin' | 'reset' | 'local' | 'timeout';
  /** ms from the server's close frame (or from opening, without one) to the TCP close. */
  ms?: number;
  /** The server's close frame, if one arrived. */
  close?: CloseInfo;
  /** Frames that arrived after the server's close frame (must be none). */
  framesAfterClose: Frame[];
}

export interface ClientOptions {
  /** Answer the server's close frame with a close frame echoing its code (default false). */
  autoCloseReply?: boolean;
}

export interface ConnectOptions extends ClientOptions {
  host?: string;
  /** Opens the socket (default: node:net's connect); a test passes another network's, e.g. a memory network's. */
  dial?: (port: number, host: string) => net.Socket;
  /** For the TCP connect, and for `open()` the HTTP answer too (default 3000 ms). */
  timeoutMs?: number;
}

export interface OpenOptions extends ConnectOptions, Omit<RequestOptions, 'host'> {
  /** Write the request in pieces of this many bytes, with `pauseMs` between them. */
  chunkSize?: number;
  pauseMs?: number;
}

const DEFAULT_TIMEOUT = 3000;

/** Chunked byte queue: no quadratic concatenation for big messages. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // read offset inside chunks[0]
  length = 0;
  push(b: Buffer): void {
    if (b.length) {
      this.chunks.push(b);
      this.length += b.length;
    }
  }
  /** Copy out the first n bytes without consuming them. */
  peek(n: number): Buffer {
    return this.read(n, false);
  }
  take(n: number): Buffer {
    return this.read(n, true);
  }
  private read(n: number, consume: boolean): Buffer {
    if (n > this.length) throw new RangeError('not enough bytes');
    const first = this.chunks[0];
    let out: Buffer;
    if (first && first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      if (consume) {
        this.head += n;
        if (this.head === first.length) {
          this.chunks.shift();
          this.head = 0;
        }
        this.length -= n;
      }
      return out;
    }
    out = Buffer.allocUnsafe(n);
    let copied = 0;
    let ci = 0;
    let h = this.head;
    while (copied < n) {
      const c = this.chunks[ci]!;
      const k = Math.min(c.length - h, n - copied);
      c.copy(out, copied, h, h + k);
      copied += k;
      h += k;
      if (h === c.length) {
        ci++;
        h = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, ci);
      this.head = h;
      this.length -= n;
    }
    return out;
  }
  takeAll(): Buffer {
    return this.take(this.length);
  }
}

export class RawClient {
  /** 'http' until a 101 was parsed (or `rawFrames()` was called), then 'ws'. */
  private mode: 'http' | 'ws' = 'http';
  private buf = new ByteQueue();
  /** Frames not yet taken by nextFrame/nextMessage/message. */
  private queue: Frame[] = [];
  /** Every frame the server sent, in order (data frames only while `keepData`). */
  readonly log: Frame[] = [];
  /** Payload bytes of data frames received (counted even when `keepData` is off). */
  dataBytes = 0;
  /** Keep data frames in `log` and for nextMessage (turn off for floods). */
  keepData = true;
  /** The server's close frame, once one arrived. */
  closeReceived: CloseInfo | undefined;
  readonly framesAfterClose: Frame[] = [];
  /** How TCP ended, once it has. */
  ended: 'fin' | 'reset' | 'local' | undefined;
  /** Date.now() when the connection was opened, the server close frame arrived, TCP closed. */
  readonly openedAt = Date.now();
  closeReceivedAt: number | undefined;
  endedAt: number | undefined;
  private gotFin = false;
  private socketError: Error | undefined;
  /** We sent a close frame (through send()). */
  sentClose = false;
  /** Reply to the server's close frame with a close frame (echoing its code), as a polite client. */
  autoCloseReply: boolean;
  /** Problems with what the server sent (masked frames, impossible lengths); tests may assert this stays empty. */
  readonly violations: string[] = [];
  private http: HttpResponse | undefined;
  private httpBody = new ByteQueue();
  private waiters: Array<() => void> = [];

  /** Wraps a socket (connected or connecting); `connect` and `open` are the usual ways in. */
  constructor(
    readonly socket: net.Socket,
    options: ClientOptions = {},
  ) {
    this.autoCloseReply = options.autoCloseReply ?? false;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => {
      this.gotFin = true;
      this.wake();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.socketError = e;
      this.wake();
    });
    socket.on('close', () => {
      if (this.ended === undefined) {
        // a FIN from the server wins over a later EPIPE from our own close reply
        if (this.gotFin) this.ended = 'fin';
        else if (this.socketError) this.ended = 'reset';
        else this.ended = 'local';
        this.endedAt = Date.now();
      }
      this.wake();
    });
  }

  /** Open a TCP connection only (no handshake). */
  static connect(port: number, o: ConnectOptions = {}): Promise<RawClient> {
    const host = o.host ?? '127.0.0.1';
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT;
    return new Promise((resolve, reject) => {
      const s = o.dial ? o.dial(port, host) : net.connect({ port, host });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`TCP connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RawClient(s, o));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** Connect and do a valid opening handshake; rejects unless the server answers a correct 101. */
  static async open(port: number, o: OpenOptions = {}): Promise<RawClient> {
    const p = await RawClient.connect(port, o);
    try {
      const key = o.key ?? randomBytes(16).toString('base64');
      const request = Buffer.from(upgradeRequest(port, { ...o, key }), 'latin1');
      if (o.chunkSize) await p.writeChunks(request, o.chunkSize, o.pauseMs ?? 0);
      else await p.writeFlushed(request);
      const res = await p.httpResponse(o.timeoutMs ?? DEFAULT_TIMEOUT);
      if (res.status !== 101) throw new Error(`handshake: expected 101, got ${res.status} ${res.statusText}`);
      if (res.headers['sec-websocket-accept'] !== acceptFor(key)) {
        throw new Error(`handshake: wrong Sec-WebSocket-Accept ${res.headers['sec-websocket-accept']}`);
      }
      return p;
    } catch (e) {
      p.socket.destroy();
      throw e;
    }
  }

  /** The HTTP response head, once it arrived. */
  get response(): HttpResponse | undefined {
    return this.http;
  }

  /** The HTTP status: 0 until a response head arrived, -1 if it was not HTTP. */
  get status(): number {
    return this.http?.status ?? 0;
  }

  /** Treat the connection as already upgraded (for tests that skip parsing the 101). */
  rawFrames(): void {
    this.mode = 'ws';
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(d: Buffer): void {
    if (this.mode === 'http') {
      this.buf.push(d);
      if (this.http) {
        this.httpBody.push(this.buf.takeAll());
        this.wake();
        return;
      }
      const all = this.buf.peek(this.buf.length);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.buf.take(end + 4);
      this.http = parseHttpHead(all.subarray(0, end).toString('latin1'));
      if (this.http.status === 101) this.mode = 'ws';
      else this.httpBody.push(this.buf.takeAll());
      if (this.mode === 'ws') this.parseFrames();
      this.wake();
      return;
    }
    this.buf.push(d);
    this.parseFrames();
  }

  private parseFrames(): void {
    let any = false;
    for (;;) {
      const q = this.buf;
      if (q.length < 2) break;
      const h2 = q.peek(2);
      const b0 = h2[0]!, b1 = h2[1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let hl = 2;
      if (len === 126) hl = 4;
      else if (len === 127) hl = 10;
      if (masked) hl += 4;
      if (q.length < hl) break;
      const h = q.peek(hl);
      if (len === 126) len = h.readUInt16BE(2);
      else if (len === 127) {
        const big = h.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.violations.push(`server sent a frame with 64-bit length ${big}`);
          this.socket.destroy();
          return;
        }
        len = Number(big);
      }
      if (q.length < hl + len) break;
      q.take(hl);
      let payload = q.take(len);
      if (masked) {
        const key = h.subarray(hl - 4, hl);
        payload = maskBytes(payload, key);
        this.violations.push('server sent a masked frame');
      } else if (payload.length < 65536) {
        payload = Buffer.from(payload); // own the bytes (subarray of a socket chunk otherwise)
      }
      const f: Frame = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload };
      this.onFrame(f);
      any = true;
    }
    if (any) this.wake();
  }

  private onFrame(f: Frame): void {
    if (f.opcode < 8) this.dataBytes += f.payload.length;
    const keep = f.opcode >= 8 || this.keepData;
    if (keep) this.log.push(f);
    if (this.closeReceived) {
      this.framesAfterClose.push(f);
      return;
    }
    if (f.opcode === OP.CLOSE) {
      const p = f.payload;
      this.closeReceivedAt = Date.now();
      this.closeReceived = {
        code: p.length >= 2 ? p.readUInt16BE(0) : undefined,
        reason: p.length > 2 ? p.subarray(2) : Buffer.alloc(0),
        payload: p,
      };
      if (this.autoCloseReply && !this.sentClose && !this.socket.destroyed) {
        this.sentClose = true;
        const code = this.closeReceived.code;
        this.socket.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(code) }), () => {});
      }
    }
    if (keep) this.queue.push(f);
  }

  /** Write bytes now, as one write; returns false when the socket buffers (wait for 'drain') or is gone. */
  write(data: Uint8Array | string): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  /** Write bytes; resolves once handed to the kernel (or the socket died). */
  writeFlushed(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.writableEnded) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Write `data` in pieces of `size` bytes, waiting `pauseMs` (0 = until flushed) between pieces. */
  async writeChunks(data: Uint8Array, size: number, pauseMs = 0): Promise<void> {
    for (let off = 0, n = 0; off < data.length; off += size, n++) {
      if (this.socket.destroyed) return;
      const piece = data.subarray(off, Math.min(off + size, data.length));
      if (pauseMs > 0) {
        await this.writeFlushed(piece);
        await sleep(pauseMs);
      } else if (n % 64 === 63 || off + size >= data.length) {
        await this.writeFlushed(piece); // let the event loop turn (and the socket drain) every 64 writes
      } else {
        this.socket.write(piece); // still its own write (and, with TCP_NODELAY, segment)
      }
    }
  }

  /** Encode the frames and write them in ONE write; resolves once flushed. */
  send(...frames: FrameOptions[]): Promise<void> {
    if (frames.some((f) => f.opcode === OP.CLOSE)) this.sentClose = true;
    return this.writeFlushed(Buffer.concat(frames.map(encodeFrame)));
  }

  /** Encode the frames and write them in pieces of `size` bytes with pauses. */
  sendChunked(size: number, pauseMs: number, ...frames: FrameOptions[]): Promise<void> {
    if (frames.some((f) => f.opcode === OP.CLOSE)) this.sentClose = true;
    return this.writeChunks(Buffer.concat(frames.map(encodeFrame)), size, pauseMs);
  }

  /** Resolves true once `cond()` holds (checked whenever something arrives), false after `timeoutMs`. */
  until(cond: () => boolean, timeoutMs = DEFAULT_TIMEOUT): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    const deadline = Date.now() + timeoutMs;
    return new Promise<boolean>((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          resolve(true);
        } else this.waiters.push(check);
      };
      t = setTimeout(() => {
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        // Timers run before I/O in an event-loop turn: if this process was busy, bytes may be
        // waiting unread. Let one I/O phase pass before declaring a timeout.
        setImmediate(() => resolve(cond()));
      }, Math.max(0, deadline - Date.now()));
      this.waiters.push(check);
    });
  }

  /** The HTTP response head to our request. */
  async httpResponse(timeoutMs = DEFAULT_TIMEOUT): Promise<HttpResponse> {
    const ok = await this.until(() => this.http !== undefined || this.ended !== undefined, timeoutMs);
    if (this.http) return this.http;
    if (!ok) throw new Error(`no HTTP response within ${timeoutMs} ms`);
    throw new Error(`connection ended (${this.ended}) before an HTTP response`);
  }

  /** The HTTP response body bytes that arrived so far (waits up to `waitMs` for the server to finish). */
  async httpBodyText(waitMs = 200): Promise<string> {
    await this.until(() => this.ended !== undefined, waitMs);
    return this.httpBody.peek(this.httpBody.length).toString('utf8');
  }

  /** The next frame from the server (data or control, close included). */
  async nextFrame(timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    await this.until(() => this.queue.length > 0 || this.ended !== undefined, timeoutMs);
    const f = this.queue.shift();
    if (f) return f;
    if (this.ended !== undefined) throw new Error(`connection ended (${this.ended}) while waiting for a frame`);
    throw new Error(`no frame within ${timeoutMs} ms`);
  }

  /**
   * The next whole data message (continuations joined). Control frames met on the way (pings,
   * pongs) are returned in `controls`; a close frame makes it throw, describing the close.
   */
  async nextMessage(timeoutMs = DEFAULT_TIMEOUT): Promise<{ opcode: number; data: Buffer; frames: number; controls: Frame[] }> {
    const deadline = Date.now() + timeoutMs;
    const parts: Buffer[] = [];
    const controls: Frame[] = [];
    let opcode = -1;
    let frames = 0;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === OP.CLOSE) {
        throw new Error(`expected a message, got close ${describeClose(this.closeReceived)}`);
      }
      if (f.opcode >= 8) {
        controls.push(f);
        continue;
      }
      if (opcode === -1) {
        if (f.opcode === OP.CONT) throw new Error('server sent a continuation frame with no message started');
        opcode = f.opcode;
      } else if (f.opcode !== OP.CONT) {
        throw new Error(`server started a new message (opcode ${f.opcode}) inside a fragmented one`);
      }
      parts.push(f.payload);
      frames++;
      if (f.fin) return { opcode, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), frames, controls };
    }
  }

  /** The payload of the next whole data message, skipping control frames. */
  async message(timeoutMs = DEFAULT_TIMEOUT): Promise<Buffer> {
    return (await this.nextMessage(timeoutMs)).data;
  }

  /** Wait until TCP has closed (or the timeout passed) and say how it ended. */
  async closed(timeoutMs = DEFAULT_TIMEOUT): Promise<Ending> {
    await this.until(() => this.ended !== undefined, timeoutMs);
    const how = this.ended ?? 'timeout';
    const ms = this.endedAt === undefined ? undefined : this.endedAt - (this.closeReceivedAt ?? this.openedAt);
    return { how, ms, close: this.closeReceived, framesAfterClose: this.framesAfterClose };
  }

  /** Close our side gracefully (FIN). */
  end(): void {
    this.socket.end();
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Drop the connection with a TCP RST. */
  reset(): void {
    const s = this.socket as net.Socket & { resetAndDestroy?: () => void };
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
  }
}

function parseHttpHead(text: string): HttpResponse {
  const lines = text.split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  return {
    status: m ? Number(m[2]) : -1,
    statusText: m ? m[3]! : lines[0] ?? '',
    httpVersion: m ? m[1]! : '',
    headers,
    raw: text,
  };
}

export function describeClose(c: CloseInfo | undefined): string {
  if (!c) return '(no close frame)';
  if (c.code === undefined) return '(empty close frame)';
  const r = c.reason.toString('utf8');
  return r ? `${c.code} "${r}"` : String(c.code);
}
