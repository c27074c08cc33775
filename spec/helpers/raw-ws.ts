/**
 * A small raw WebSocket client on `node:net` for the limit, fuzz, soak and probe tests: it does
 * the opening handshake itself, writes exactly the bytes a test gives it, and parses the
 * server's frames. It knows nothing about wspoll.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

export interface FrameSpec {
  fin?: boolean;
  rsv?: number;
  /** Default true (a client frame); false sends it unmasked. */
  mask?: boolean;
  /** Put this length in the header instead of the payload's (a forged header). */
  length?: number | bigint;
  /** The mask key (default random). */
  key?: Uint8Array;
}

/** Encodes one frame, right or wrong, with a random mask key unless told otherwise. */
export function frame(opcode: number, payload: Uint8Array | string = '', spec: FrameSpec = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const length = BigInt(spec.length ?? data.length);
  const mask = spec.mask ?? true;
  const lenBytes = length < 126n ? 0 : length < 65536n ? 2 : 8;
  const head = 2 + lenBytes + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(head + data.length);
  out[0] = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (opcode & 0xf);
  out[1] = (mask ? 0x80 : 0) | (lenBytes === 0 ? Number(length) : lenBytes === 2 ? 126 : 127);
  if (lenBytes === 2) out.writeUInt16BE(Number(length), 2);
  if (lenBytes === 8) out.writeBigUInt64BE(BigInt.asUintN(64, length), 2);
  if (mask) {
    const key = spec.key ?? randomBytes(4);
    out.set(key.subarray(0, 4), 2 + lenBytes);
    for (let i = 0; i < data.length; i++) out[head + i] = data[i]! ^ key[i & 3]!;
  } else data.copy(out, head);
  return out;
}

export function closeFrame(code?: number, reason = ''): Buffer {
  if (code === undefined) return frame(OP.CLOSE);
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return frame(OP.CLOSE, payload);
}

export function upgradeRequest(port: number, key = randomBytes(16).toString('base64'), extra = '', path = '/'): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** How the TCP connection ended: the server's FIN, a reset, or our own destroy. */
export type Ending = 'fin' | 'reset' | 'local';

/** One raw connection: HTTP response head first, then frames. */
export class RawWs {
  readonly frames: Frame[] = [];
  /** Payload bytes of data frames received (counted even when frames are not kept). */
  dataBytes = 0;
  /** Keep data frames in `frames` (off for floods). */
  keepData = true;
  status = 0;
  responseHead = '';
  /** The body of a non-101 response. */
  body = '';
  close: { code: number | undefined; reason: string } | undefined;
  ended: Ending | undefined;
  private gotFin = false;
  private error = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private inHttp = true;
  private waiters = new Set<() => void>();

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => (this.gotFin = true));
    socket.on('error', () => (this.error = true));
    socket.on('close', () => {
      this.ended = this.gotFin ? 'fin' : this.error ? 'reset' : 'local';
      this.wake();
    });
  }

  static connect(port: number): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(new RawWs(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and completes a valid handshake; rejects unless the answer is a correct 101. */
  static async open(port: number, timeoutMs = 3000, path = '/'): Promise<RawWs> {
    const ws = await RawWs.connect(port);
    const key = randomBytes(16).toString('base64');
    ws.write(upgradeRequest(port, key, '', path));
    if (!(await ws.until(() => ws.status !== 0 || ws.ended !== undefined, timeoutMs))) {
      ws.socket.destroy();
      throw new Error('no handshake response');
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (ws.status !== 101 || !ws.responseHead.includes(`Sec-WebSocket-Accept: ${accept}`)) {
      ws.socket.destroy();
      throw new Error(`handshake failed: ${ws.responseHead.split('\r\n')[0] ?? ws.ended}`);
    }
    return ws;
  }

  write(bytes: Uint8Array | string): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Resolves true once `cond()` holds, false after `timeoutMs`. */
  until(cond: () => boolean, timeoutMs = 3000): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(cond());
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** The next data message's payload (fragments joined), skipping control frames. */
  async message(timeoutMs = 3000): Promise<Buffer> {
    const done = (): number => {
      for (let i = 0; i < this.frames.length; i++) if (this.frames[i]!.fin && this.frames[i]!.opcode < 8) return i;
      return -1;
    };
    await this.until(() => done() >= 0 || this.ended !== undefined || this.close !== undefined, timeoutMs);
    const end = done();
    if (end < 0) throw new Error(`no message (close ${this.close?.code}, ended ${this.ended})`);
    const parts = this.frames.splice(0, end + 1).filter((f) => f.opcode < 8);
    return Buffer.concat(parts.map((f) => f.payload));
  }

  /** Waits for TCP to close; returns how it ended, or undefined if it is still open. */
  async closed(timeoutMs = 3000): Promise<Ending | undefined> {
    await this.until(() => this.ended !== undefined, timeoutMs);
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.status > 0 && this.status !== 101) {
      this.body += chunk.toString();
      this.chunks = [];
      this.buffered = 0;
    } else {
      if (this.inHttp) this.parseHead();
      if (!this.inHttp) this.parseFrames();
    }
    this.wake();
  }

  private parseHead(): void {
    const all = Buffer.concat(this.chunks);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) return;
    this.responseHead = all.subarray(0, end).toString('latin1');
    this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.responseHead)?.[1] ?? -1);
    this.inHttp = false;
    this.chunks = [all.subarray(end + 4)];
    this.buffered = all.length - end - 4;
    if (this.status !== 101) {
      this.body = this.chunks[0]!.toString();
      this.chunks = [];
      this.buffered = 0;
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = n < all.length ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  private parseFrames(): void {
    while (this.buffered >= 2) {
      const head = this.chunks[0]!.length >= 14 ? this.chunks[0]! : Buffer.concat(this.chunks);
      if (head !== this.chunks[0]) this.chunks = [head];
      const code = head[1]! & 0x7f;
      const size = code === 126 ? 4 : code === 127 ? 10 : 2;
      if (head.length < size) return;
      const length = code === 126 ? head.readUInt16BE(2) : code === 127 ? Number(head.readBigUInt64BE(2)) : code;
      if (this.buffered < size + length) return;
      const bytes = this.take(size + length);
      const f: Frame = { fin: (bytes[0]! & 0x80) !== 0, opcode: bytes[0]! & 0xf, payload: Buffer.from(bytes.subarray(size)) };
      this.onFrame(f);
    }
  }

  private onFrame(f: Frame): void {
    if (f.opcode === OP.CLOSE && this.close === undefined) {
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
      this.close = { code, reason: f.payload.subarray(2).toString() };
    }
    if (f.opcode < 8) this.dataBytes += f.payload.length;
    if (f.opcode >= 8 || this.keepData) this.frames.push(f);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
