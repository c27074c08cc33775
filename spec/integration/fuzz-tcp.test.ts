/**
 * A seeded fuzz of the server over real TCP: many connections send valid, deliberately broken,
 * randomly mutated and pure-garbage frame streams in random chunkings. The server must never
 * throw, answer every broken stream with 1002/1007/1009 or a cut (never 1011), echo the valid
 * ones exactly, report exactly one NewConnection and one Disconnect per connection, and still
 * echo for a control client at the end. The seed is in the test name: a failure replays.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Event, Server, type ServerEvent } from '../../lib/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFrame, frame, OP, type FrameHeaderOptions } from '../helpers/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { prng } from '../helpers/prng.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x5eed_2026;
const CONNECTIONS = 96;
const AT_ONCE = 24;
const MAX_MESSAGE = 64 * 1024;

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const bytes = (rng: Rng, n: number): Buffer => {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256);
  return out;
};

/** A client frame with a seeded mask key. */
function f(rng: Rng, opcode: number, payload: Uint8Array | string = '', options: FrameHeaderOptions = {}): Buffer {
  return frame(opcode, payload, { mask: bytes(rng, 4), ...options });
}

const CHARS = ['a', 'z', ' ', '~', 'é', 'ß', '€', '中', '😀', '\u0000'];
function randomText(rng: Rng, length: number): string {
  const chars: string[] = [];
  for (let size = 0; size < length; ) {
    const c = pick(rng, CHARS);
    chars.push(c);
    size += Buffer.byteLength(c);
  }
  return chars.join('');
}

function randomSize(rng: Rng): number {
  const r = rng();
  if (r < 0.1) return 0;
  if (r < 0.6) return int(rng, 1, 125);
  if (r < 0.9) return int(rng, 126, 2000);
  return int(rng, 60_000, MAX_MESSAGE - 8);
}

interface Stream {
  kind: 'valid' | 'broken' | 'mutated' | 'garbage';
  /** The bytes after the handshake. */
  wire: Buffer;
  /** The messages the server should deliver (valid and broken: the valid prefix). */
  messages: Buffer[];
  /** broken: the close code the violation calls for. */
  expect?: number;
}

/** 1–6 valid messages, some fragmented (text split anywhere, even inside a character), with pings between fragments. */
function validMessages(rng: Rng): { wire: Buffer[]; messages: Buffer[] } {
  const wire: Buffer[] = [];
  const messages: Buffer[] = [];
  for (let m = int(rng, 1, 6); m > 0; m--) {
    const text = rng() < 0.5;
    const size = randomSize(rng);
    const payload = text ? Buffer.from(randomText(rng, size)) : bytes(rng, size);
    messages.push(payload);
    const pieces = payload.length > 0 && rng() < 0.5 ? int(rng, 2, 6) : 1;
    const cuts = [0, ...Array.from({ length: pieces - 1 }, () => int(rng, 0, payload.length)).sort((a, b) => a - b), payload.length];
    for (let i = 0; i < pieces; i++) {
      const opcode = i === 0 ? (text ? OP.TEXT : OP.BINARY) : OP.CONT;
      wire.push(f(rng, opcode, payload.subarray(cuts[i]!, cuts[i + 1]!), { fin: i === pieces - 1 }));
      if (rng() < 0.2) wire.push(f(rng, OP.PING, bytes(rng, int(rng, 0, 125))));
    }
  }
  return { wire, messages };
}

/** Violations of RFC 6455 and the limits, each with the close code the README's bad-input table gives. */
const VIOLATIONS: ((rng: Rng) => [Buffer[], number])[] = [
  (rng) => [[f(rng, OP.TEXT, 'unmasked', { mask: false })], 1002],
  (rng) => [[f(rng, OP.BINARY, 'rsv', { rsv: int(rng, 1, 7) })], 1002],
  (rng) => [[f(rng, pick(rng, [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), 'reserved opcode')], 1002],
  (rng) => [[f(rng, OP.PING, 'fragmented ping', { fin: false })], 1002],
  (rng) => [[f(rng, OP.PING, bytes(rng, 126))], 1002],
  (rng) => [[f(rng, OP.CONT, 'nothing to continue')], 1002],
  (rng) => [[f(rng, OP.TEXT, 'first', { fin: false }), f(rng, OP.TEXT, 'second')], 1002],
  (rng) => {
    const bad = pick(rng, [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]);
    return [[f(rng, OP.TEXT, Buffer.from([0x61, ...bad]))], 1007];
  },
  (rng) => [[f(rng, OP.TEXT, Buffer.from([0x61, 0xf0, 0x9f]), { fin: false }), f(rng, OP.CONT, Buffer.from([0x28, 0x61]))], 1007],
  (rng) => [[f(rng, OP.CLOSE, Buffer.from([3]))], 1002],
  (rng) => {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(pick(rng, [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]));
    return [[f(rng, OP.CLOSE, payload)], 1002];
  },
  (rng) => [[f(rng, OP.CLOSE, Buffer.from([0x03, 0xe8, 0xc3, 0x28]))], 1007],
  (rng) => [[f(rng, OP.BINARY, '', { declaredLength: MAX_MESSAGE + int(rng, 1, 1 << 20) })], 1009],
  (rng) => [[f(rng, OP.BINARY, '', { declaredLength: 2n ** 63n + BigInt(int(rng, 0, 1000)) })], 1009],
  (rng) => {
    const half = Buffer.alloc(MAX_MESSAGE / 2 + 1);
    return [[f(rng, OP.BINARY, half, { fin: false }), f(rng, OP.CONT, half)], 1009];
  },
];

function mutate(rng: Rng, wire: Buffer): Buffer {
  let out = Buffer.from(wire);
  for (let n = int(rng, 1, 4); n > 0; n--) {
    const at = int(rng, 0, Math.max(0, out.length - 1));
    const op = int(rng, 0, 4);
    if (op === 0 && out.length > 0) out[at]! ^= 1 << int(rng, 0, 7);
    else if (op === 1 && out.length > 0) out[at] = int(rng, 0, 255);
    else if (op === 2) out = Buffer.concat([out.subarray(0, at), out.subarray(at + int(rng, 1, 16))]);
    else if (op === 3) out = Buffer.concat([out.subarray(0, at), bytes(rng, int(rng, 1, 16)), out.subarray(at)]);
    else out = out.subarray(0, at);
  }
  return out;
}

function makeStream(rng: Rng): Stream {
  const r = rng();
  const valid = validMessages(rng);
  if (r < 0.3) return { kind: 'valid', wire: Buffer.concat(valid.wire), messages: valid.messages };
  if (r < 0.65) {
    const [bad, code] = pick(rng, VIOLATIONS)(rng);
    const prefix = rng() < 0.5 ? valid : { wire: [], messages: [] };
    return { kind: 'broken', wire: Buffer.concat([...prefix.wire, ...bad, f(rng, OP.TEXT, 'never seen')]), messages: prefix.messages, expect: code };
  }
  if (r < 0.9) return { kind: 'mutated', wire: mutate(rng, Buffer.concat([...valid.wire, closeFrame(1000)])), messages: [] };
  return { kind: 'garbage', wire: bytes(rng, int(rng, 1, 3000)), messages: [] };
}

/** Writes `wire` in random pieces, sometimes pausing between them. */
async function writeChunked(rng: Rng, ws: RawClient, wire: Buffer): Promise<void> {
  for (let at = 0; at < wire.length && !ws.ended; ) {
    const n = int(rng, 1, rng() < 0.3 ? 8 : 4096);
    ws.write(wire.subarray(at, at + n));
    at += n;
    if (rng() < 0.1) await sleep(1);
  }
}

interface Outcome {
  kind: Stream['kind'];
  close: number | undefined;
  ended: string | undefined;
  echoed: Buffer[];
}

async function runOne(port: number, index: number, stream: Stream, rng: Rng): Promise<Outcome> {
  const ws = await RawClient.open(port, { timeoutMs: 3000, path: `/fuzz?i=${index}` });
  try {
    await writeChunked(rng, ws, stream.wire);
    if (stream.kind === 'valid') {
      const echoed: Buffer[] = [];
      for (let i = 0; i < stream.messages.length; i++) echoed.push(await ws.message(5000));
      ws.write(closeFrame(1000));
      await ws.closed(3000);
      return { kind: stream.kind, close: ws.closeReceived?.code, ended: ws.ended, echoed };
    }
    // Broken input should be answered at once; a stream cut short may leave the server waiting
    // for bytes that never come, so end our side: the server must then close too.
    if ((await ws.closed(1000)).how === 'timeout') ws.socket.end();
    await ws.closed(3000);
    return { kind: stream.kind, close: ws.closeReceived?.code, ended: ws.ended, echoed: [] };
  } finally {
    ws.destroy();
  }
}

it(`fuzz over TCP: ${CONNECTIONS} connections of random and mutated frames, seed 0x${SEED.toString(16)}`, { timeout: 30_000 }, async () => {
  const crashes: unknown[] = [];
  const onCrash = (err: unknown): void => void crashes.push(err);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const logLines: string[] = [];
  const server = new Server({ maxMessageSize: MAX_MESSAGE, pingInterval: 0, closeTimeout: 2000 });
  const errStream = new (await import('node:stream')).Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  await server.start({ host: '127.0.0.1', port: 0, errStream });
  const events = new Map<number, ServerEvent[]>();
  const tick = setInterval(() => {
    for (let ev; (ev = server.poll()); ) {
      let list = events.get(ev.connId);
      if (!list) events.set(ev.connId, (list = []));
      list.push(ev);
      if (ev.type === Event.Message) server.send(ev.connId, ev.message);
    }
  }, 1);
  const began = Date.now();
  try {
    const rng = prng(SEED);
    const streams = Array.from({ length: CONNECTIONS }, () => makeStream(rng));
    const seeds = streams.map(() => Math.floor(rng() * 2 ** 32));
    const outcomes: Outcome[] = new Array(CONNECTIONS);
    let nextIndex = 0;
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        for (let i; (i = nextIndex++) < CONNECTIONS; ) {
          outcomes[i] = await runOne(server.port, i, streams[i]!, prng(seeds[i]!));
        }
      }),
    );

    // A control client is still echoed.
    const control = await RawClient.open(server.port);
    control.write(frame(OP.TEXT, 'still alive?'));
    assert.equal((await control.message(2000)).toString(), 'still alive?');
    control.write(closeFrame(1000));
    await control.closed();
    await sleep(50);

    const kinds: Record<string, number> = {};
    for (let i = 0; i < CONNECTIONS; i++) {
      const { kind, close, ended, echoed } = outcomes[i]!;
      const stream = streams[i]!;
      const what = `connection ${i} (${kind})`;
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      assert.ok(ended !== undefined, `${what}: TCP closed`);
      assert.notEqual(close, 1011, `${what}: no internal error`);
      if (kind === 'valid') {
        assert.equal(close, 1000, `${what}: clean close`);
        assert.deepEqual(echoed, stream.messages, `${what}: every message echoed once, in order`);
      } else if (kind === 'broken') {
        const seen = [...events.values()].find((l) => l[0]?.type === Event.NewConnection && l[0].query.i === String(i));
        assert.equal(close, stream.expect, `${what}: close ${stream.expect}; server saw ${JSON.stringify(seen?.at(-1))}; wire ${stream.wire.subarray(0, 40).toString('hex')}`);
      } else {
        assert.ok(close === undefined || [1000, 1002, 1007, 1009].includes(close) || close >= 3000, `${what}: close ${close}`);
      }
    }
    assert.ok(kinds.valid! > 10 && kinds.broken! > 10 && kinds.mutated! > 10 && kinds.garbage! > 2, JSON.stringify(kinds));

    // The server's own view: exactly one NewConnection first and one Disconnect last per
    // connection; broken streams deliver their valid prefix and fail with the expected code.
    assert.equal(events.size, CONNECTIONS + 1);
    let connId = 0;
    for (const [id, list] of [...events].sort((a, b) => a[0] - b[0])) {
      assert.equal(id, ++connId, 'ids count up from 1');
      const first = list[0]!;
      assert.equal(first.type, Event.NewConnection, `#${id} starts with NewConnection`);
      assert.equal(list.filter((e) => e.type === Event.NewConnection).length, 1);
      assert.equal(list.filter((e) => e.type === Event.Disconnect).length, 1, `#${id}: one Disconnect`);
      const last = list.at(-1)!;
      assert.equal(last.type, Event.Disconnect, `#${id} ends with Disconnect`);
      if (first.type !== Event.NewConnection || first.path !== '/fuzz' || last.type !== Event.Disconnect) continue;
      const stream = streams[Number(first.query.i)]!;
      const received = list.filter((e) => e.type === Event.Message).map((e) => (typeof e.message === 'string' ? Buffer.from(e.message) : e.message));
      if (stream.kind === 'valid' || stream.kind === 'broken') assert.deepEqual(received, stream.messages, `#${id}: its messages`);
      if (stream.kind === 'broken') assert.equal(last.code, stream.expect, `#${id}: Disconnect ${stream.expect}`);
      if (stream.kind === 'valid') assert.deepEqual([last.code, last.wasClean], [1000, true]);
      if (!last.wasClean) assert.ok([1002, 1006, 1007, 1009].includes(last.code), `#${id}: Disconnect ${last.code} ${last.reason}`);
    }
    assert.deepEqual(crashes, [], 'nothing thrown');
    assert.ok(!logLines.some((l) => / 1011 /.test(l)), 'no internal error logged');
    assert.ok(Date.now() - began < 15_000, `took ${Date.now() - began} ms`);
  } finally {
    clearInterval(tick);
    await server.stop({ timeoutMs: 500 });
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
});
