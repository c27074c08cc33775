/**
 * RFC 6455 conformance of the echo server, checked from the outside over raw TCP
 * (the categories of Autobahn|Testsuite 1–10, plus masking, limits, the opening handshake and
 * robustness). Strict expectations: the strictest correct RFC behaviour, with the close codes and
 * HTTP statuses of the README's bad-input table.
 *
 * Starts `node --import tsx demo/echo.ts` (or the command in CONFORMANCE_CMD, split on spaces,
 * for checking the suite against another echo server) with PORT=0 and waits for its
 * `ready ws://host:port` line.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { closePayload, encodeFrame, fragment, OP, type FrameOptions } from '../helpers/frames.js';
import { acceptFor, describeClose, RawClient, upgradeRequest, type Frame } from '../helpers/raw-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const T = 2000; // per-step timeout (ms)
const BIG_T = 10000; // for the multi-MiB messages (16 MiB echoes take well under 2 s on loopback)
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/** A polite client: it answers the server's close frame, and waits T for the TCP connect and the 101. */
const POLITE = { autoCloseReply: true, timeoutMs: T } as const;

let PORT = 0;
let server: ChildProcess | undefined;
let serverOut = '';

before(async () => {
  const cmd = process.env.CONFORMANCE_CMD
    ? process.env.CONFORMANCE_CMD.trim().split(/\s+/)
    : [process.execPath, '--import', 'tsx', 'demo/echo.ts'];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', MAX_MESSAGE_SIZE: String(MAX_MESSAGE_SIZE) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  child.stderr!.on('data', (d: Buffer) => {
    serverOut += d.toString();
  });
  PORT = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`echo server not ready in 20 s; output:\n${out}${serverOut}`)), 20000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready ws:\/\/[^\s:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`echo server exited (${code ?? sig}) before ready; output:\n${out}${serverOut}`));
    });
  });
  child.stdout!.resume();
});

after(() => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
});

// ---------------------------------------------------------------------------------------------
// helpers

const text = (s: string) => Buffer.from(s, 'utf8');
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const opName = (op: number) =>
  ({ 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' })[op] ?? `opcode ${op}`;

function asciiPayload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = 0x61 + (i % 26);
  return b;
}

/** Valid UTF-8 of exactly n bytes with 1-, 2-, 3- and 4-byte characters. */
function utf8Payload(n: number): Buffer {
  const unit = text('aé€😀'); // 1 + 2 + 3 + 4 = 10 bytes
  const b = Buffer.allocUnsafe(n);
  let off = 0;
  for (; off + unit.length <= n; off += unit.length) unit.copy(b, off);
  b.fill(0x78, off);
  return b;
}

/** The index of the first byte that makes `b` certainly invalid UTF-8 (Unicode Table 3-7), or -1
 *  when it is valid or only truncated at the end. */
function firstBadUtf8(b: Uint8Array): number {
  let need = 0;
  let lo = 0x80;
  let hi = 0xbf;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (need === 0) {
      if (c <= 0x7f) continue;
      lo = 0x80;
      hi = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) need = 1;
      else if (c === 0xe0) (need = 2), (lo = 0xa0);
      else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) need = 2;
      else if (c === 0xed) (need = 2), (hi = 0x9f);
      else if (c === 0xf0) (need = 3), (lo = 0x90);
      else if (c >= 0xf1 && c <= 0xf3) need = 3;
      else if (c === 0xf4) (need = 3), (hi = 0x8f);
      else return i;
    } else {
      if (c < lo || c > hi) return i;
      lo = 0x80;
      hi = 0xbf;
      need--;
    }
  }
  return -1;
}

function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Run `fn` with a handshaken peer; the socket is destroyed afterwards whatever happens. */
async function withPeer(fn: (p: RawClient) => Promise<void>): Promise<void> {
  const p = await RawClient.open(PORT, POLITE);
  try {
    await fn(p);
    assert.deepEqual(p.violations, [], 'server frames must be well-formed and unmasked');
  } finally {
    p.destroy();
  }
}

/** The next server message must be `data` with the opcode; no control frames on the way unless allowed. */
async function expectEcho(p: RawClient, opcode: number, data: Buffer, timeoutMs = T, allowControls = false) {
  const m = await p.nextMessage(timeoutMs);
  assert.equal(opName(m.opcode), opName(opcode), 'echoed message type');
  if (data.length > 4096) {
    assert.equal(m.data.length, data.length, 'echoed message length');
    assert.equal(sha(m.data), sha(data), 'echoed message content (sha256)');
  } else {
    assert.equal(m.data.toString('hex'), data.toString('hex'), 'echoed message content');
  }
  if (!allowControls) assert.deepEqual(m.controls.map((f) => opName(f.opcode)), [], 'unexpected control frames before the echo');
  return m;
}

async function expectPong(p: RawClient, payload: Buffer, timeoutMs = T) {
  const f = await p.nextFrame(timeoutMs);
  assert.equal(opName(f.opcode), 'pong', `expected a pong, got ${opName(f.opcode)} ${f.opcode === OP.CLOSE ? describeClose(p.closeReceived) : ''}`);
  assert.equal(f.fin, true, 'pong FIN');
  assert.equal(f.rsv, 0, 'pong RSV');
  assert.equal(f.payload.toString('hex'), payload.toString('hex'), 'pong payload = ping payload');
}

/** The next frame must be a close frame with one of `codes`; then the server must close TCP and send
 *  nothing after its close frame. */
async function expectClose(p: RawClient, codes: number | Array<number | undefined>, timeoutMs = T) {
  const want = Array.isArray(codes) ? codes : [codes];
  let f: Frame;
  try {
    f = await p.nextFrame(timeoutMs);
  } catch (e) {
    throw new Error(`expected close ${want.join('/')}: ${(e as Error).message}`);
  }
  if (f.opcode !== OP.CLOSE) {
    const extra = f.opcode < 8 ? ` (${f.payload.length} bytes)` : '';
    assert.fail(`expected close ${want.join('/')}, got a ${opName(f.opcode)} frame${extra}`);
  }
  const c = p.closeReceived!;
  assert.ok(
    want.includes(c.code),
    `expected close ${want.map((w) => w ?? 'empty').join('/')}, got ${describeClose(c)}`,
  );
  if (c.reason.length) assert.ok(isUtf8(c.reason), 'close reason must be valid UTF-8');
  assert.ok(c.payload.length <= 125, 'close frame payload <= 125 bytes');
  const e = await p.closed(timeoutMs);
  assert.ok(e.how === 'fin' || e.how === 'reset', `server must close TCP after the close handshake (got: ${e.how})`);
  assert.deepEqual(
    e.framesAfterClose.map((x) => opName(x.opcode)),
    [],
    'no frames may follow the server close frame',
  );
}

/** Client-initiated clean close: send close(code), expect it echoed and TCP closed by the server. */
async function closeClean(p: RawClient, code = 1000) {
  await p.send({ opcode: OP.CLOSE, payload: closePayload(code) });
  await expectClose(p, code);
}

const FAIL_1002 = 1002;

// Run every case of a block at the same time (each has its own connection); blocks run in order.
const CONC = { concurrency: true } as const;

// ---------------------------------------------------------------------------------------------

describe('frame builder self-check (RFC 6455 §5.7 examples)', () => {
  it('encodes the RFC examples', () => {
    assert.equal(encodeFrame({ opcode: OP.TEXT, payload: 'Hello', mask: false }).toString('hex'), '810548656c6c6f');
    assert.equal(encodeFrame({ opcode: OP.TEXT, payload: 'Hello', mask: hex('37fa213d') }).toString('hex'), '818537fa213d7f9f4d5158');
    assert.equal(encodeFrame({ opcode: OP.TEXT, payload: 'Hel', fin: false, mask: false }).toString('hex'), '010348656c');
    assert.equal(encodeFrame({ opcode: OP.CONT, payload: 'lo', mask: false }).toString('hex'), '80026c6f');
    assert.equal(encodeFrame({ opcode: OP.PING, payload: 'Hello', mask: false }).toString('hex'), '890548656c6c6f');
    assert.equal(encodeFrame({ opcode: OP.BINARY, payload: Buffer.alloc(256), mask: false }).subarray(0, 4).toString('hex'), '827e0100');
    assert.equal(encodeFrame({ opcode: OP.BINARY, payload: Buffer.alloc(65536), mask: false }).subarray(0, 10).toString('hex'), '827f0000000000010000');
    assert.equal(encodeFrame({ opcode: OP.TEXT, declaredLength: 1n << 63n, mask: false, rsv: 5 }).toString('hex'), 'd17f8000000000000000');
    assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });
});

describe('1 framing: echo of text and binary', CONC, () => {
  const lengths = [0, 1, 125, 126, 127, 128, 65535, 65536];
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    for (const len of lengths) {
      const payload = opcode === OP.TEXT ? asciiPayload(len) : randomBytes(len);
      it(`${opName(opcode)} ${len} bytes in one write`, () =>
        withPeer(async (p) => {
          await p.send({ opcode, payload });
          await expectEcho(p, opcode, payload);
          await closeClean(p);
        }));
      if (len > 1000) continue; // the big ones run one at a time below
      it(`${opName(opcode)} ${len} bytes, one byte per write`, () =>
        withPeer(async (p) => {
          // each write waits until the previous one was flushed (TCP_NODELAY): one byte per segment
          await p.sendChunked(1, 0, { opcode, payload });
          await expectEcho(p, opcode, payload, 10000);
          await closeClean(p);
        }));
    }
  }
  it('zero mask key is a valid mask', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.BINARY, payload: hex('00ff10'), mask: Buffer.alloc(4) });
      await expectEcho(p, OP.BINARY, hex('00ff10'));
      await closeClean(p);
    }));
  it('several messages in one write are echoed in order', () =>
    withPeer(async (p) => {
      const msgs = Array.from({ length: 20 }, (_, i) => `message ${i}`);
      await p.send(...msgs.map((m) => ({ opcode: OP.TEXT, payload: m })));
      for (const m of msgs) await expectEcho(p, OP.TEXT, text(m));
      await closeClean(p);
    }));
});

describe('1 framing: 64 KiB messages one byte per write (one at a time: heavy)', () => {
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    for (const len of [65535, 65536]) {
      const payload = opcode === OP.TEXT ? asciiPayload(len) : randomBytes(len);
      it(`${opName(opcode)} ${len} bytes, one byte per write`, () =>
        withPeer(async (p) => {
          await p.sendChunked(1, 0, { opcode, payload });
          await expectEcho(p, opcode, payload, 10000);
          await closeClean(p);
        }));
    }
  }
});

describe('2 ping/pong', CONC, () => {
  const pings: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['text 13 bytes', text('Hello, world!')],
    ['binary 125 bytes', Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 37 + 0xfe) & 0xff))],
    ['binary 8 bytes ff..', hex('ffeeddccbbaa9988')],
    ['125 bytes', asciiPayload(125)],
  ];
  for (const [name, payload] of pings) {
    it(`ping ${name} → pong with the same payload`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.PING, payload });
        await expectPong(p, payload);
        await closeClean(p);
      }));
  }
  it('ping 126 bytes (16-bit length) → close 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.PING, payload: asciiPayload(126) });
      await expectClose(p, FAIL_1002);
    }));
  it('ping with a 126-byte header and no payload → close 1002 at once', () =>
    withPeer(async (p) => {
      await p.writeFlushed(encodeFrame({ opcode: OP.PING, declaredLength: 126 }));
      await expectClose(p, FAIL_1002);
    }));
  it('ping 0xFFFF bytes → close 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.PING, payload: asciiPayload(65535) });
      await expectClose(p, FAIL_1002);
    }));
  for (const payload of [Buffer.alloc(0), text('unsolicited')]) {
    it(`unsolicited pong (${payload.length} bytes) is ignored`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.PONG, payload }, { opcode: OP.TEXT, payload: 'after pong' });
        await expectEcho(p, OP.TEXT, text('after pong'));
        await closeClean(p);
      }));
  }
  it('unsolicited pong then ping → only the pong for the ping', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.PONG, payload: 'x' }, { opcode: OP.PING, payload: 'ping payload' });
      await expectPong(p, text('ping payload'));
      await closeClean(p);
    }));
  it('10 pings in one write → 10 pongs in order', () =>
    withPeer(async (p) => {
      const ps = Array.from({ length: 10 }, (_, i) => text(`payload-${i}`));
      await p.send(...ps.map((payload) => ({ opcode: OP.PING, payload })));
      for (const x of ps) await expectPong(p, x);
      await closeClean(p);
    }));
  it('10 pings written one by one with pauses → 10 pongs in order', () =>
    withPeer(async (p) => {
      const ps = Array.from({ length: 10 }, (_, i) => text(`p${i}`));
      const bytes = Buffer.concat(ps.map((payload) => encodeFrame({ opcode: OP.PING, payload })));
      await p.writeChunks(bytes, 6 + 2, 2); // one frame per write (6-byte header + 2-byte payload)
      for (const x of ps) await expectPong(p, x);
      await closeClean(p);
    }));
  it('ping written one byte per write → pong', () =>
    withPeer(async (p) => {
      const payload = text('byte by byte ping');
      await p.sendChunked(1, 1, { opcode: OP.PING, payload });
      await expectPong(p, payload);
      await closeClean(p);
    }));
  it('ping 125 bytes, one byte per write → pong', () =>
    withPeer(async (p) => {
      const payload = asciiPayload(125);
      await p.sendChunked(1, 0, { opcode: OP.PING, payload });
      await expectPong(p, payload);
      await closeClean(p);
    }));
  it('ping then close in one write → pong then close', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.PING, payload: 'last' }, { opcode: OP.CLOSE, payload: closePayload(1000) });
      await expectPong(p, text('last'));
      await expectClose(p, 1000);
    }));
});

describe('3 reserved bits', CONC, () => {
  const targets: Array<[string, FrameOptions]> = [
    ['text', { opcode: OP.TEXT, payload: 'reserved' }],
    ['binary', { opcode: OP.BINARY, payload: hex('00ff') }],
    ['empty text', { opcode: OP.TEXT }],
    ['ping', { opcode: OP.PING, payload: 'ping' }],
    ['pong', { opcode: OP.PONG, payload: 'pong' }],
    ['close', { opcode: OP.CLOSE, payload: closePayload(1000) }],
  ];
  for (let rsv = 1; rsv <= 7; rsv++) {
    const bits = ['RSV1', 'RSV2', 'RSV3'].filter((_, i) => rsv & (4 >> i)).join('+');
    for (const [name, frame] of targets) {
      it(`${bits} on ${name} → 1002 (valid message before it echoed first, ping after it not answered)`, () =>
        withPeer(async (p) => {
          await p.send(
            { opcode: OP.TEXT, payload: 'before' },
            { ...frame, rsv },
            { opcode: OP.PING, payload: 'after' },
          );
          await expectEcho(p, OP.TEXT, text('before'));
          await expectClose(p, FAIL_1002);
        }));
    }
    it(`${bits} on a continuation frame → 1002`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.TEXT, payload: 'frag', fin: false }, { opcode: OP.CONT, payload: 'ment', rsv });
        await expectClose(p, FAIL_1002);
      }));
  }
  it('RSV1 on a text frame alone → 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.TEXT, payload: 'x', rsv: 4 });
      await expectClose(p, FAIL_1002);
    }));
});

describe('4 opcodes', CONC, () => {
  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    for (const payload of [undefined, text('reserved opcode')]) {
      it(`opcode ${opcode} ${payload ? 'with' : 'without'} payload → 1002 (valid message before it echoed, ping after not answered)`, () =>
        withPeer(async (p) => {
          await p.send({ opcode: OP.TEXT, payload: 'before' }, { opcode, payload }, { opcode: OP.PING, payload: 'after' });
          await expectEcho(p, OP.TEXT, text('before'));
          await expectClose(p, FAIL_1002);
        }));
    }
    it(`opcode ${opcode} inside a fragmented message → 1002`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.TEXT, payload: 'a', fin: false }, { opcode, payload: 'b' });
        await expectClose(p, FAIL_1002);
      }));
  }
});

describe('5 fragmentation', CONC, () => {
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    const name = opName(opcode);
    for (const n of [2, 3, 5, 10, 100]) {
      const payload = opcode === OP.TEXT ? utf8Payload(n * 7) : randomBytes(n * 7);
      it(`${name} in ${n} fragments (one write) → one message`, () =>
        withPeer(async (p) => {
          await p.send(...fragment(opcode, payload, 7));
          await expectEcho(p, opcode, payload);
          await closeClean(p);
        }));
    }
    it(`${name} in 2 fragments, separate writes with a pause`, () =>
      withPeer(async (p) => {
        const payload = opcode === OP.TEXT ? text('fragment1fragment2') : randomBytes(18);
        const [a, b] = fragment(opcode, payload, 9);
        await p.send(a!);
        await new Promise((r) => setTimeout(r, 50));
        await p.send(b!);
        await expectEcho(p, opcode, payload);
        await closeClean(p);
      }));
    it(`${name} fragments written one byte per write`, () =>
      withPeer(async (p) => {
        const payload = opcode === OP.TEXT ? text('fragment1fragment2') : randomBytes(18);
        await p.sendChunked(1, 0, ...fragment(opcode, payload, 9));
        await expectEcho(p, opcode, payload);
        await closeClean(p);
      }));
    it(`${name} with a ping between fragments → pong first, then the whole message`, () =>
      withPeer(async (p) => {
        const [a, b] = fragment(opcode, text('fragment1fragment2'), 9);
        await p.send(a!, { opcode: OP.PING, payload: 'between' }, b!);
        await expectPong(p, text('between'));
        await expectEcho(p, opcode, text('fragment1fragment2'));
        await closeClean(p);
      }));
    it(`${name} with a ping between fragments in separate writes`, () =>
      withPeer(async (p) => {
        const [a, b] = fragment(opcode, text('fragment1fragment2'), 9);
        await p.send(a!);
        await p.send({ opcode: OP.PING, payload: 'between' });
        await expectPong(p, text('between'));
        await p.send(b!);
        await expectEcho(p, opcode, text('fragment1fragment2'));
        await closeClean(p);
      }));
    it(`${name} with a pong between fragments → ignored, whole message`, () =>
      withPeer(async (p) => {
        const [a, b] = fragment(opcode, text('fragment1fragment2'), 9);
        await p.send(a!, { opcode: OP.PONG, payload: 'unsolicited' }, b!);
        await expectEcho(p, opcode, text('fragment1fragment2'));
        await closeClean(p);
      }));
    it(`${name} with 3 pings and 2 pongs between 6 fragments`, () =>
      withPeer(async (p) => {
        const payload = text('abcdefghijklmnopqr');
        const fr = fragment(opcode, payload, 3);
        const seq: FrameOptions[] = [];
        fr.forEach((f, i) => {
          seq.push(f);
          if (i < fr.length - 1) seq.push(i % 2 ? { opcode: OP.PONG, payload: `po${i}` } : { opcode: OP.PING, payload: `pi${i}` });
        });
        await p.send(...seq);
        for (const i of [0, 2, 4]) await expectPong(p, text(`pi${i}`));
        await expectEcho(p, opcode, payload);
        await closeClean(p);
      }));
    it(`${name} with empty first, middle and last fragments`, () =>
      withPeer(async (p) => {
        await p.send(
          { opcode, payload: '', fin: false },
          { opcode: OP.CONT, payload: 'ab', fin: false },
          { opcode: OP.CONT, payload: '', fin: false },
          { opcode: OP.CONT, payload: 'cd', fin: false },
          { opcode: OP.CONT, payload: '' },
        );
        await expectEcho(p, opcode, text('abcd'));
        await closeClean(p);
      }));
    it(`${name} all fragments empty → empty message`, () =>
      withPeer(async (p) => {
        await p.send({ opcode, fin: false }, { opcode: OP.CONT, fin: false }, { opcode: OP.CONT });
        await expectEcho(p, opcode, Buffer.alloc(0));
        await closeClean(p);
      }));
    it(`${name}: 1000 one-byte fragments → one message`, () =>
      withPeer(async (p) => {
        const payload = opcode === OP.TEXT ? utf8Payload(1000) : randomBytes(1000);
        await p.send(...fragment(opcode, payload, 1));
        await expectEcho(p, opcode, payload);
        await closeClean(p);
      }));
    for (const other of [OP.TEXT, OP.BINARY]) {
      it(`new ${opName(other)} frame while a fragmented ${name} message is open → 1002`, () =>
        withPeer(async (p) => {
          await p.send({ opcode, payload: 'frag', fin: false }, { opcode: other, payload: 'new', fin: true });
          await expectClose(p, FAIL_1002);
        }));
      it(`new ${opName(other)} FIN=0 frame while a fragmented ${name} message is open → 1002`, () =>
        withPeer(async (p) => {
          await p.send({ opcode, payload: 'frag', fin: false }, { opcode: other, payload: 'new', fin: false });
          await expectClose(p, FAIL_1002);
        }));
    }
  }
  for (const [name, opcode, payload] of [
    ['ping', OP.PING, 'ping'],
    ['empty ping', OP.PING, ''],
    ['pong', OP.PONG, 'pong'],
    ['close', OP.CLOSE, closePayload(1000)],
  ] as const) {
    it(`fragmented ${name} (FIN=0 control frame) → 1002`, () =>
      withPeer(async (p) => {
        await p.send({ opcode, payload, fin: false });
        await expectClose(p, FAIL_1002);
      }));
    it(`fragmented ${name} followed by a continuation → 1002, no pong`, () =>
      withPeer(async (p) => {
        await p.send({ opcode, payload, fin: false }, { opcode: OP.CONT, payload: 'rest' });
        await expectClose(p, FAIL_1002);
      }));
  }
  it('fragmented ping inside a fragmented text message → 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.TEXT, payload: 'a', fin: false }, { opcode: OP.PING, payload: 'p', fin: false });
      await expectClose(p, FAIL_1002);
    }));
  for (const [name, frames] of [
    ['FIN=1 continuation with payload', [{ opcode: OP.CONT, payload: 'orphan' }]],
    ['FIN=1 empty continuation', [{ opcode: OP.CONT }]],
    ['FIN=0 continuation', [{ opcode: OP.CONT, payload: 'orphan', fin: false }]],
    ['FIN=0 then FIN=1 continuation', [{ opcode: OP.CONT, payload: 'a', fin: false }, { opcode: OP.CONT, payload: 'b' }]],
    ['continuation after a finished message', [{ opcode: OP.TEXT, payload: 'done' }, { opcode: OP.CONT, payload: 'late' }]],
    [
      'FIN=0 continuation after a finished fragmented message, then a text',
      [
        { opcode: OP.TEXT, payload: 'do', fin: false },
        { opcode: OP.CONT, payload: 'ne' },
        { opcode: OP.CONT, payload: 'late', fin: false },
        { opcode: OP.TEXT, payload: 'never echoed' },
      ],
    ],
  ] as Array<[string, FrameOptions[]]>) {
    it(`${name} with no message started → 1002`, () =>
      withPeer(async (p) => {
        await p.send(...frames);
        if (frames[0]!.opcode === OP.TEXT) await expectEcho(p, OP.TEXT, text('done'));
        await expectClose(p, FAIL_1002);
      }));
  }
  it('fragment, close, continuation in one write → close 1000, nothing echoed', () =>
    withPeer(async (p) => {
      await p.send(
        { opcode: OP.TEXT, payload: 'frag', fin: false },
        { opcode: OP.CLOSE, payload: closePayload(1000) },
        { opcode: OP.CONT, payload: 'ment' },
      );
      await expectClose(p, 1000);
    }));
});

// --- UTF-8 --------------------------------------------------------------------------------------

const VALID_UTF8: Array<[string, Buffer]> = [
  ['ASCII and Latin-1', text('Hello-µ@ßöäüàá-UTF-8!!')],
  ['Greek κόσμε', hex('cebae1bdb9cf83cebcceb5')],
  ['U+0000', hex('00')],
  ['U+0080 (first 2-byte)', hex('c280')],
  ['U+0800 (first 3-byte)', hex('e0a080')],
  ['U+10000 (first 4-byte)', hex('f0908080')],
  ['U+007F', hex('7f')],
  ['U+07FF', hex('dfbf')],
  ['U+D7FF (before surrogates)', hex('ed9fbf')],
  ['U+E000 (after surrogates)', hex('ee8080')],
  ['U+FFFD', hex('efbfbd')],
  ['U+FFFE (noncharacter)', hex('efbfbe')],
  ['U+FFFF', hex('efbfbf')],
  ['U+FDD0 (noncharacter)', hex('efb790')],
  ['U+10FFFF', hex('f48fbfbf')],
  ['emoji 😀 between ASCII', hex('61f09f988062')],
  ['mixed 1-4 byte', text('aé€😀z')],
];

const INVALID_UTF8: Array<[string, Buffer]> = [
  ['lone continuation 80', hex('80')],
  ['lone continuation BF', hex('bf')],
  ['continuations 80 BF 80', hex('80bf80')],
  ['κόσμε then surrogate then "edited"', hex('cebae1bdb9cf83cebcceb5eda080656469746564')],
  ['overlong / (C0 AF)', hex('c0af')],
  ['overlong NUL (C0 80)', hex('c080')],
  ['overlong C1 BF', hex('c1bf')],
  ['overlong 3-byte / (E0 80 AF)', hex('e080af')],
  ['overlong 3-byte U+07FF (E0 9F BF)', hex('e09fbf')],
  ['overlong 4-byte / (F0 80 80 AF)', hex('f08080af')],
  ['overlong 4-byte U+FFFF (F0 8F BF BF)', hex('f08fbfbf')],
  ['surrogate U+D800 (ED A0 80)', hex('eda080')],
  ['surrogate U+DB7F (ED AD BF)', hex('edadbf')],
  ['surrogate U+DBFF (ED AF BF)', hex('edafbf')],
  ['surrogate U+DC00 (ED B0 80)', hex('edb080')],
  ['surrogate U+DFFF (ED BF BF)', hex('edbfbf')],
  ['surrogate pair (ED A0 80 ED B0 80)', hex('eda080edb080')],
  ['U+110000 (F4 90 80 80)', hex('f4908080')],
  ['U+1FFFFF (F7 BF BF BF)', hex('f7bfbfbf')],
  ['5-byte sequence (F8 88 80 80 80)', hex('f888808080')],
  ['6-byte sequence (FC 84 80 80 80 80)', hex('fc8480808080')],
  ['byte F5', hex('f5')],
  ['byte F8', hex('f8')],
  ['byte FE', hex('fe')],
  ['byte FF', hex('ff')],
  ['FE FE FF FF', hex('fefeffff')],
  ['2-byte start then ASCII (C2 41)', hex('c241')],
  ['3-byte start then ASCII (E0 A0 41)', hex('e0a041')],
  ['4-byte start then ASCII (F0 90 80 41)', hex('f0908041')],
  ['truncated 2-byte at end (C2)', hex('c2')],
  ['truncated 3-byte at end (E0 A0)', hex('e0a0')],
  ['truncated € at end (E2 82)', hex('e282')],
  ['truncated 4-byte at end (F0 90 80)', hex('f09080')],
  ['"ab" then truncated 😀 (F0 9F 98)', hex('6162f09f98')],
  ['κό truncated (CE BA E1 BD)', hex('cebae1bd')],
];

describe('6 UTF-8 handling', CONC, () => {
  it('self-check of the tables', () => {
    for (const [name, b] of VALID_UTF8) assert.ok(isUtf8(b), `valid table entry is not valid: ${name}`);
    for (const [name, b] of INVALID_UTF8) assert.ok(!isUtf8(b), `invalid table entry is valid: ${name}`);
  });
  for (const [name, b] of VALID_UTF8) {
    it(`valid ${name}: one frame → echoed`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.TEXT, payload: b });
        await expectEcho(p, OP.TEXT, b);
        await closeClean(p);
      }));
    it(`valid ${name}: one fragment per byte → echoed`, () =>
      withPeer(async (p) => {
        await p.send(...fragment(OP.TEXT, b, 1));
        await expectEcho(p, OP.TEXT, b);
        await closeClean(p);
      }));
    it(`valid ${name}: split into 2 fragments at every byte (with empty fragments) → echoed`, async () => {
      await Promise.all(
        Array.from({ length: b.length + 1 }, (_, k) =>
          withPeer(async (p) => {
            await p.send(
              { opcode: OP.TEXT, payload: b.subarray(0, k), fin: false },
              { opcode: OP.CONT, payload: b.subarray(k) },
            );
            await expectEcho(p, OP.TEXT, b).catch((e: Error) => {
              throw new Error(`split at ${k}: ${e.message}`);
            });
            await closeClean(p);
          }),
        ),
      );
    });
  }
  for (const [name, b] of INVALID_UTF8) {
    it(`invalid ${name}: one frame → 1007`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.TEXT, payload: b });
        await expectClose(p, 1007);
      }));
    it(`invalid ${name}: one fragment per byte → 1007`, () =>
      withPeer(async (p) => {
        await p.send(...fragment(OP.TEXT, b, 1));
        await expectClose(p, 1007);
      }));
    it(`invalid ${name}: split into 2 fragments at every byte → 1007`, async () => {
      await Promise.all(
        Array.from({ length: b.length - 1 }, (_, i) =>
          withPeer(async (p) => {
            const k = i + 1;
            await p.send(
              { opcode: OP.TEXT, payload: b.subarray(0, k), fin: false },
              { opcode: OP.CONT, payload: b.subarray(k) },
            );
            await expectClose(p, 1007).catch((e: Error) => {
              throw new Error(`split at ${k}: ${e.message}`);
            });
          }),
        ),
      );
    });
  }
  it('invalid UTF-8 in a binary message is fine (not validated)', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.BINARY, payload: hex('eda080fffe') });
      await expectEcho(p, OP.BINARY, hex('eda080fffe'));
      await closeClean(p);
    }));

  // Fail fast: the server must close as soon as the bytes it has make the text invalid, without
  // waiting for the rest of the frame or of the message.
  const prefix = text('valid prefix κόσμε ');
  for (const [name, b] of INVALID_UTF8) {
    const bad = firstBadUtf8(b);
    if (bad < 0) continue; // only truncated at the end: cannot be known before the end
    const head = Buffer.concat([prefix, b.subarray(0, bad + 1)]);
    it(`fail fast, ${name}: frame announces ${head.length + 1000} bytes, only ${head.length} sent → 1007 at once`, () =>
      withPeer(async (p) => {
        const frame = encodeFrame({ opcode: OP.TEXT, payload: Buffer.concat([head, asciiPayload(1000)]) });
        await p.writeFlushed(frame.subarray(0, frame.length - 1000));
        await expectClose(p, 1007);
      }));
    it(`fail fast, ${name}: FIN=0 fragment, no more fragments sent → 1007 at once`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.TEXT, payload: head, fin: false });
        await expectClose(p, 1007);
      }));
  }
  it('fail fast: valid first fragment, invalid second FIN=0 fragment → 1007 at once', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.TEXT, payload: 'κόσμε', fin: false }, { opcode: OP.CONT, payload: hex('eda080'), fin: false });
      await expectClose(p, 1007);
    }));
  it('fail fast: 64 KiB frame announced, invalid byte after 1 KiB, nothing more sent → 1007 at once', () =>
    withPeer(async (p) => {
      const payload = Buffer.concat([utf8Payload(1024), hex('c0af'), asciiPayload(65536 - 1026)]);
      const frame = encodeFrame({ opcode: OP.TEXT, payload });
      const headerLength = frame.length - payload.length; // 14: 64-bit length + mask key
      await p.writeFlushed(frame.subarray(0, headerLength + 1026)); // up to and including the C0 AF
      await expectClose(p, 1007);
    }));
  it('fail fast: invalid byte sent in the middle of a frame written byte by byte → 1007 before the rest', () =>
    withPeer(async (p) => {
      const payload = Buffer.concat([text('0123456789'), hex('ff'), asciiPayload(200)]);
      const frame = encodeFrame({ opcode: OP.TEXT, payload });
      await p.writeChunks(frame.subarray(0, frame.length - payload.length + 11), 1, 1); // header + up to the FF
      await expectClose(p, 1007);
    }));
});

// --- close -------------------------------------------------------------------------------------

describe('7 close handshake', CONC, () => {
  it('close with no payload → close echoed (empty or 1000), TCP closed by the server', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE });
      await expectClose(p, [undefined, 1000]);
    }));
  it('close 1000 with a reason → close 1000', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000, 'Hello World!') });
      await expectClose(p, 1000);
    }));
  it('close 1000 with a 123-byte reason → close 1000', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000, asciiPayload(123)) });
      await expectClose(p, 1000);
    }));
  it('close 1000 with a UTF-8 reason (multi-byte) → close 1000', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000, 'κόσμε 😀') });
      await expectClose(p, 1000);
    }));
  it('close 1000 with a 124-byte reason (frame of 126 bytes) → 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000, asciiPayload(124)) });
      await expectClose(p, FAIL_1002);
    }));
  it('close with a 1-byte payload → 1002', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: hex('03') });
      await expectClose(p, FAIL_1002);
    }));
  for (const [name, reason] of [
    ['surrogate', hex('cebae1bdb9cf83cebcceb5eda080656469746564')],
    ['lone continuation', hex('80')],
    ['truncated', hex('e282')],
    ['byte FF', hex('ff')],
  ] as const) {
    it(`close 1000 with an invalid UTF-8 reason (${name}) → 1007`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.CLOSE, payload: closePayload(1000, reason) });
        await expectClose(p, 1007);
      }));
  }
  it('text, close, text in one write → first echoed, then close, the message after close not echoed', () =>
    withPeer(async (p) => {
      await p.send(
        { opcode: OP.TEXT, payload: 'before close' },
        { opcode: OP.CLOSE, payload: closePayload(1000) },
        { opcode: OP.TEXT, payload: 'after close' },
      );
      await expectEcho(p, OP.TEXT, text('before close'));
      await expectClose(p, 1000);
    }));
  it('close then ping → no pong after the close', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000) }, { opcode: OP.PING, payload: 'after close' });
      await expectClose(p, 1000);
    }));
  it('close, then a message in a later write → not echoed', () =>
    withPeer(async (p) => {
      p.autoCloseReply = false;
      await p.send({ opcode: OP.CLOSE, payload: closePayload(1000) });
      const f = await p.nextFrame(T);
      assert.equal(opName(f.opcode), 'close');
      await p.send({ opcode: OP.TEXT, payload: 'late' });
      const e = await p.closed(T);
      assert.ok(e.how === 'fin' || e.how === 'reset', `server must close TCP (got ${e.how})`);
      assert.deepEqual(e.framesAfterClose.map((x) => opName(x.opcode)), []);
    }));
  it('close in the middle of a fragmented message → close 1000, the partial message dropped', () =>
    withPeer(async (p) => {
      await p.send({ opcode: OP.TEXT, payload: 'partial', fin: false }, { opcode: OP.CLOSE, payload: closePayload(1000) });
      await expectClose(p, 1000);
    }));
  it('close written one byte per write → close 1000', () =>
    withPeer(async (p) => {
      await p.sendChunked(1, 1, { opcode: OP.CLOSE, payload: closePayload(1000, 'bye') });
      await expectClose(p, 1000);
    }));
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`valid close code ${code} → echoed as ${code}`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.CLOSE, payload: closePayload(code) });
        await expectClose(p, code);
      }));
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`invalid close code ${code} → 1002`, () =>
      withPeer(async (p) => {
        await p.send({ opcode: OP.CLOSE, payload: closePayload(code) });
        await expectClose(p, FAIL_1002);
      }));
  }
});

// --- limits ------------------------------------------------------------------------------------

describe('9 limits: big messages', CONC, () => {
  const sizes: Array<[string, number]> = [
    ['64 KiB', 64 * 1024],
    ['1 MiB', 1 << 20],
    ['4 MiB', 4 << 20],
    ['16 MiB', 16 << 20],
  ];
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    for (const [name, n] of sizes) {
      it(`${opName(opcode)} ${name} in one frame → echoed intact`, () =>
        withPeer(async (p) => {
          const payload = opcode === OP.TEXT ? utf8Payload(n) : randomBytes(n);
          await p.send({ opcode, payload });
          await expectEcho(p, opcode, payload, BIG_T);
          await closeClean(p);
        }));
    }
    for (const [name, size] of [
      ['64 KiB', 64 * 1024],
      ['4 KiB', 4096],
      ['256-byte', 256],
    ] as const) {
      it(`${opName(opcode)} 1 MiB in ${name} fragments → echoed as one message`, () =>
        withPeer(async (p) => {
          const payload = opcode === OP.TEXT ? utf8Payload(1 << 20) : randomBytes(1 << 20);
          await p.send(...fragment(opcode, payload, size));
          await expectEcho(p, opcode, payload, BIG_T);
          await closeClean(p);
        }));
    }
  }
});

describe('10 auto-fragmented 64 KiB messages', CONC, () => {
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    for (const size of [1, 2, 3, 4, 7, 16, 64, 256, 1300, 4096, 16384, 65535]) {
      it(`${opName(opcode)} 64 KiB in ${size}-byte fragments → one message`, () =>
        withPeer(async (p) => {
          const payload = opcode === OP.TEXT ? utf8Payload(65536) : randomBytes(65536);
          await p.send(...fragment(opcode, payload, size));
          await expectEcho(p, opcode, payload, 10000);
          await closeClean(p);
        }));
    }
  }
});

describe('masking', CONC, () => {
  for (const [name, frames, echoFirst] of [
    ['unmasked text', [{ opcode: OP.TEXT, payload: 'unmasked', mask: false }], false],
    ['unmasked empty text', [{ opcode: OP.TEXT, mask: false }], false],
    ['unmasked binary', [{ opcode: OP.BINARY, payload: hex('0102'), mask: false }], false],
    ['unmasked ping', [{ opcode: OP.PING, payload: 'p', mask: false }], false],
    ['unmasked pong', [{ opcode: OP.PONG, payload: 'p', mask: false }], false],
    ['unmasked close', [{ opcode: OP.CLOSE, payload: closePayload(1000), mask: false }], false],
    [
      'unmasked continuation',
      [{ opcode: OP.TEXT, payload: 'a', fin: false }, { opcode: OP.CONT, payload: 'b', mask: false }],
      false,
    ],
    ['unmasked text after a masked one', [{ opcode: OP.TEXT, payload: 'ok' }, { opcode: OP.TEXT, payload: 'x', mask: false }], true],
  ] as Array<[string, FrameOptions[], boolean]>) {
    it(`${name} → 1002`, () =>
      withPeer(async (p) => {
        await p.send(...frames);
        if (echoFirst) await expectEcho(p, OP.TEXT, text('ok'));
        await expectClose(p, FAIL_1002);
      }));
  }
});

describe('limits from the frame header', CONC, () => {
  for (const opcode of [OP.TEXT, OP.BINARY]) {
    it(`${opName(opcode)} with a 64-bit length with the top bit set → 1009 (or 1002) at once`, () =>
      withPeer(async (p) => {
        await p.writeFlushed(encodeFrame({ opcode, declaredLength: (1n << 63n) + 5n }));
        await expectClose(p, [1009, 1002]);
      }));
    it(`${opName(opcode)} header announcing 64 MiB + 1 → 1009 at once, before any payload`, () =>
      withPeer(async (p) => {
        await p.writeFlushed(encodeFrame({ opcode, declaredLength: MAX_MESSAGE_SIZE + 1 }));
        await expectClose(p, 1009);
      }));
    it(`${opName(opcode)} header announcing 2^32 bytes → 1009 at once`, () =>
      withPeer(async (p) => {
        await p.writeFlushed(encodeFrame({ opcode, declaredLength: 1n << 32n }));
        await expectClose(p, 1009);
      }));
    it(`${opName(opcode)} continuation header that takes the message past 64 MiB → 1009 at once`, () =>
      withPeer(async (p) => {
        await p.send({ opcode, payload: asciiPayload(1024), fin: false });
        await p.writeFlushed(encodeFrame({ opcode: OP.CONT, declaredLength: MAX_MESSAGE_SIZE - 1024 + 1 }));
        await expectClose(p, 1009);
      }));
  }
});

// --- opening handshake ---------------------------------------------------------------------------

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

async function rawRequest(req: string | Buffer, chunk?: number, pauseMs = 0) {
  const p = await RawClient.connect(PORT, POLITE);
  try {
    const b = typeof req === 'string' ? Buffer.from(req, 'latin1') : req;
    if (chunk) await p.writeChunks(b, chunk, pauseMs);
    else await p.writeFlushed(b);
    const res = await p.httpResponse(T);
    return { p, res };
  } catch (e) {
    p.destroy();
    throw e;
  }
}

function req(headers: Record<string, string> = {}, extra: { method?: string; version?: string; path?: string } = {}) {
  return upgradeRequest(PORT, { key: RFC_KEY, headers, ...extra });
}

async function expectStatus(request: string, status: number, check?: (h: Record<string, string>) => void) {
  const { p, res } = await rawRequest(request);
  try {
    assert.equal(res.status, status, `expected HTTP ${status}, got: ${res.raw.split('\r\n')[0]}`);
    check?.(res.headers);
  } finally {
    p.destroy();
  }
}

describe('opening handshake', CONC, () => {
  it('valid request → 101 with the RFC §1.3 accept key, then echo works', async () => {
    const { p, res } = await rawRequest(req());
    try {
      assert.equal(res.status, 101);
      assert.equal(res.httpVersion, '1.1');
      assert.equal(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      assert.equal(acceptFor(RFC_KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      assert.equal(res.headers['upgrade']?.toLowerCase(), 'websocket');
      assert.ok(/(^|,)\s*upgrade\s*(,|$)/i.test(res.headers['connection'] ?? ''), 'Connection: Upgrade');
      assert.equal(res.headers['sec-websocket-protocol'], undefined, 'no subprotocol was offered');
      assert.equal(res.headers['sec-websocket-extensions'], undefined, 'no extension was negotiated');
      await p.send({ opcode: OP.TEXT, payload: 'after handshake' });
      await expectEcho(p, OP.TEXT, text('after handshake'));
      await closeClean(p);
    } finally {
      p.destroy();
    }
  });
  it('offered permessage-deflate is not accepted (no extensions)', () =>
    expectStatus(req({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }), 101, (h) =>
      assert.equal(h['sec-websocket-extensions'], undefined),
    ));
  it('POST → 405 with Allow: GET', () =>
    expectStatus(req({}, { method: 'POST' }), 405, (h) => assert.equal(h['allow'], 'GET')));
  it('PUT → 405 with Allow: GET', () =>
    expectStatus(req({}, { method: 'PUT' }), 405, (h) => assert.equal(h['allow'], 'GET')));
  it('HTTP/1.0 upgrade request → refused (4xx/5xx, not 101)', async () => {
    let status: number | string;
    try {
      const { p, res } = await rawRequest(req({}, { version: '1.0' }));
      p.destroy();
      status = res.status;
    } catch (e) {
      status = (e as Error).message;
    }
    assert.ok(typeof status === 'number' && status >= 400 && status <= 599, `expected 4xx/5xx, got ${status}`);
  });
  for (const [name, headers] of [
    ['missing Upgrade', { Upgrade: '' }],
    ['Upgrade: h2c', { Upgrade: 'h2c' }],
    ['missing Connection', { Connection: '' }],
    ['Connection: keep-alive (no upgrade token)', { Connection: 'keep-alive' }],
    ['missing Sec-WebSocket-Key', { 'Sec-WebSocket-Key': '' }],
    ['key of 15 bytes', { 'Sec-WebSocket-Key': randomBytes(15).toString('base64') }],
    ['key of 17 bytes', { 'Sec-WebSocket-Key': randomBytes(17).toString('base64') }],
    ['key not base64', { 'Sec-WebSocket-Key': 'this is not base64!!!!==' }],
    ['empty key', { 'Sec-WebSocket-Key': ' ' }],
  ] as Array<[string, Record<string, string>]>) {
    it(`${name} → 400`, () => expectStatus(req(headers), 400));
  }
  for (const [name, headers] of [
    ['missing Sec-WebSocket-Version', { 'Sec-WebSocket-Version': '' }],
    ['Sec-WebSocket-Version: 8', { 'Sec-WebSocket-Version': '8' }],
    ['Sec-WebSocket-Version: 14', { 'Sec-WebSocket-Version': '14' }],
  ] as Array<[string, Record<string, string>]>) {
    it(`${name} → 426 with Sec-WebSocket-Version: 13`, () =>
      expectStatus(req(headers), 426, (h) => assert.equal(h['sec-websocket-version'], '13')));
  }
  it('plain GET with no upgrade headers → 426', () =>
    expectStatus(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\n\r\n`, 426));
  for (const [name, headers] of [
    ['upgrade: WebSocket', { Upgrade: 'WebSocket' }],
    ['UPGRADE: WEBSOCKET', { Upgrade: 'WEBSOCKET' }],
    ['Connection: keep-alive, Upgrade', { Connection: 'keep-alive, Upgrade' }],
    ['Connection: upgrade (lower case)', { Connection: 'upgrade' }],
    ['lower-case header names', { 'sec-websocket-key': RFC_KEY, 'sec-websocket-version': '13', connection: 'Upgrade', upgrade: 'websocket' }],
  ] as Array<[string, Record<string, string>]>) {
    it(`case-insensitive tokens: ${name} → 101`, () =>
      expectStatus(req(headers), 101, (h) => assert.equal(h['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')));
  }
  it('request with a path and query → 101', () => expectStatus(req({}, { path: '/chat?room=1&x=%20' }), 101));
  it('request target "//" (a path with an empty segment) → 101', () => expectStatus(req({}, { path: '//' }), 101));
  it('request target that is no URL → 400, and the server goes on', async () => {
    await expectStatus(req({}, { path: 'http://[' }), 400);
    await expectStatus(req(), 101);
  });
  it('request split one byte per write → 101, then echo works', async () => {
    const { p, res } = await rawRequest(req(), 1);
    try {
      assert.equal(res.status, 101);
      assert.equal(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      await p.send({ opcode: OP.TEXT, payload: 'split' });
      await expectEcho(p, OP.TEXT, text('split'));
      await closeClean(p);
    } finally {
      p.destroy();
    }
  });
  it('request split into 7-byte writes with pauses → 101', async () => {
    const { p, res } = await rawRequest(req(), 7, 3);
    p.destroy();
    assert.equal(res.status, 101);
  });
  it('first frame in the same write as the request → handshake and echo', async () => {
    const b = Buffer.concat([Buffer.from(req(), 'latin1'), encodeFrame({ opcode: OP.TEXT, payload: 'eager' })]);
    const { p, res } = await rawRequest(b);
    try {
      assert.equal(res.status, 101);
      await expectEcho(p, OP.TEXT, text('eager'));
      await closeClean(p);
    } finally {
      p.destroy();
    }
  });
});

describe('robustness', CONC, () => {
  it('garbage instead of HTTP → 400 or closed, and the server keeps serving', async () => {
    const p = await RawClient.connect(PORT, POLITE);
    try {
      await p.writeFlushed(Buffer.concat([hex('0001fffe8081'), text('garbage\r\n\r\n')]));
      let outcome: string;
      try {
        const res = await p.httpResponse(T);
        outcome = String(res.status);
      } catch {
        outcome = (await p.closed(T)).how;
      }
      assert.ok(outcome === '400' || outcome === 'fin' || outcome === 'reset', `expected 400 or a closed connection, got ${outcome}`);
    } finally {
      p.destroy();
    }
    await withPeer(async (q) => {
      await q.send({ opcode: OP.TEXT, payload: 'still here' });
      await expectEcho(q, OP.TEXT, text('still here'));
      await closeClean(q);
    });
  });
  it('client resets mid-frame → the server keeps serving', async () => {
    const peers = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(PORT, POLITE)));
    await Promise.all(
      peers.map(async (p, i) => {
        const frame = encodeFrame({ opcode: i % 2 ? OP.TEXT : OP.BINARY, payload: asciiPayload(1000) });
        await p.writeFlushed(frame.subarray(0, 500));
        p.reset();
      }),
    );
    await withPeer(async (q) => {
      await q.send({ opcode: OP.TEXT, payload: 'still here' });
      await expectEcho(q, OP.TEXT, text('still here'));
      await closeClean(q);
    });
  });
  it('client closes TCP (FIN) mid-handshake and mid-frame → the server keeps serving', async () => {
    const a = await RawClient.connect(PORT, POLITE);
    await a.writeFlushed(req().slice(0, 30));
    a.end();
    const b = await RawClient.open(PORT, POLITE);
    await b.writeFlushed(encodeFrame({ opcode: OP.TEXT, payload: 'abcdef' }).subarray(0, 4));
    b.end();
    await Promise.all([a.closed(T), b.closed(T)]);
    await withPeer(async (q) => {
      await q.send({ opcode: OP.PING, payload: 'alive' });
      await expectPong(q, text('alive'));
      await closeClean(q);
    });
  });
});

describe('server health', () => {
  it('the server process is still running after everything', () => {
    assert.equal(server?.exitCode, null, `server exited; stderr:\n${serverOut}`);
    assert.equal(server?.signalCode, null, `server killed; stderr:\n${serverOut}`);
  });
});
