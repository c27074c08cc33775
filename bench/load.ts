// Load generator for the wspoll benchmark: raw node:net client sockets, precomputed masked frames,
// and a tiny frame parser that only counts messages (no per-frame allocation, payloads are
// skipped, never copied or unmasked).
//
// All sockets share ONE read buffer through net's `onread` option: JS handles one read at a time,
// so the bytes are consumed before the next read overwrites them, and no Buffer is allocated per
// read. Frames from the server may be unmasked (a real WebSocket server) or masked (the raw
// node:net echo sends our own client frames back); the parser accepts both.
//
// Used by bench/run.ts; also runnable alone against a server that is already listening:
//   node --import tsx bench/load.ts SCENARIO PORT
//   (SCENARIO: echo|pipeline|large|large-text|deflate|handshakes|hold|broadcast|latency)
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';

const HOST = '127.0.0.1';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // RFC 6455 §1.3 sample key: a fixed key is valid
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='; // its accept value
const MASK = [0x37, 0xfa, 0x21, 0x3d];
const READ_BUF = Buffer.allocUnsafe(256 * 1024);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): bigint => process.hrtime.bigint();

/**
 * Payload byte i. A text payload must be valid UTF-8 or the server fails the connection: it is
 * printable ASCII, as JSON mostly is. A binary one covers every byte value. (As loadgen.c.)
 */
function payloadByte(i: number, text: boolean): number {
  return text ? 0x20 + ((i * 31 + 7) % 95) : (i * 31 + 7) & 0xff;
}

/** One masked client frame (FIN set) carrying `size` payload bytes; opcode 1 (text) or 2 (binary). */
export function maskedFrame(size: number, opcode: 0x1 | 0x2 = 0x2): Buffer {
  const ext = size < 126 ? 0 : size < 65536 ? 2 : 8;
  const head = 2 + ext + 4;
  const f = Buffer.allocUnsafe(head + size);
  f[0] = 0x80 | opcode;
  if (ext === 0) f[1] = 0x80 | size;
  else if (ext === 2) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(size, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeUInt32BE(Math.floor(size / 2 ** 32), 2);
    f.writeUInt32BE(size >>> 0, 6);
  }
  for (let i = 0; i < 4; i++) f[2 + ext + i] = MASK[i]!;
  for (let i = 0; i < size; i++) f[head + i] = payloadByte(i, opcode === 0x1) ^ MASK[i & 3]!;
  return f;
}

/**
 * `size` bytes of JSON text, a list of players as in a game's state message, the same every run
 * (cut at `size`): compressible as such messages are.
 */
export function jsonText(size: number): Buffer {
  let seed = 7;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  let text = '[';
  for (let i = 0; text.length < size; i++) {
    const player = { id: i, name: `player-${(i * 7919) % 1000}`, x: +(next() * 1000).toFixed(2), y: +(next() * 1000).toFixed(2), hp: Math.floor(next() * 100), team: i % 2 ? 'red' : 'blue' };
    text += `${JSON.stringify(player)},`;
  }
  return Buffer.from(text.slice(0, size), 'latin1');
}

/**
 * One masked client text frame carrying `payload` compressed as permessage-deflate sends it
 * without context takeover (RFC 7692 §7.2.1: raw deflate, sync flush, the final 00 00 FF FF cut),
 * RSV1 set: the same bytes are a valid message every time they are sent.
 */
export function deflatedFrame(payload: Buffer): Buffer {
  const deflated = deflateRawSync(payload, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const compressed = deflated.subarray(0, deflated.length - 4);
  const frame = maskedFrame(compressed.length, 0x1);
  frame[0] = 0x80 | 0x40 | 0x1;
  const head = frame.length - compressed.length;
  for (let i = 0; i < compressed.length; i++) frame[head + i] = compressed[i]! ^ MASK[i & 3]!;
  return frame;
}

/** What the deflate scenario offers: permessage-deflate without context takeover either way. */
const DEFLATE_OFFER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits';

/** Masked close frame, code 1000. */
const CLOSE_FRAME = Buffer.from([0x88, 0x82, ...MASK, 0x03 ^ MASK[0]!, 0xe8 ^ MASK[1]!]);

function upgradeRequest(port: number, extensions?: string): Buffer {
  return Buffer.from(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '') +
      '\r\n',
    'latin1',
  );
}

type Handler = (c: Conn, k: number) => void;
const noop = (): void => {};

/** Every socket this module opened and has not seen closed (for cleanup after a failure). */
const live = new Set<Conn>();

export class Conn {
  readonly sock: net.Socket;
  open = false;
  gone = false;
  failed = false;
  /** Messages received so far (used by broadcast). */
  recv = 0;
  private head = '';
  // frame parser state
  private readonly hb = Buffer.alloc(14);
  private hl = 0; // bytes of a split header held in hb
  private skip = 0; // payload bytes of the current frame still to come
  private op = 0;
  private fin = false;

  onOpen: (c: Conn) => void = noop;
  onMessages: Handler = noop;
  onCloseFrame: (c: Conn) => void = noop;
  onGone: (c: Conn) => void = noop;
  onFail: (c: Conn, why: string) => void = noop;

  constructor(port: number, request: Buffer) {
    this.sock = net.connect({
      host: HOST,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUF,
        callback: (n: number, buf: Uint8Array): boolean => {
          this.onBytes(buf as Buffer, n);
          return true;
        },
      },
    });
    live.add(this);
    this.sock.write(request);
    this.sock.on('error', (e) => {
      if (!this.open) this.fail(e.message);
    });
    this.sock.on('close', () => {
      this.gone = true;
      live.delete(this);
      if (!this.open) this.fail('closed before 101');
      this.onGone(this);
    });
  }

  private onBytes(b: Buffer, n: number): void {
    if (this.open) {
      const k = this.feed(b, 0, n);
      if (k > 0) this.onMessages(this, k);
      return;
    }
    const before = this.head.length;
    this.head += b.toString('latin1', 0, n);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.head.length > 16384) this.fail('response head too long');
      return;
    }
    const head = this.head.slice(0, end);
    if (!head.startsWith('HTTP/1.1 101') || !head.includes(ACCEPT)) {
      this.fail(`bad handshake response: ${head.split('\r\n')[0]}`);
      return;
    }
    this.head = '';
    this.open = true;
    this.onOpen(this);
    const used = end + 4 - before;
    if (used < n && !this.gone) {
      const k = this.feed(b, used, n);
      if (k > 0) this.onMessages(this, k);
    }
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.onFail(this, why);
    this.sock.destroy();
  }

  /** Parses bytes [i, n) of b; returns the number of complete data messages. */
  private feed(b: Buffer, i: number, n: number): number {
    let msgs = 0;
    while (i < n) {
      if (this.skip > 0) {
        const left = n - i;
        if (left < this.skip) {
          this.skip -= left;
          return msgs;
        }
        i += this.skip;
        this.skip = 0;
        if (this.endFrame()) msgs++;
        continue;
      }
      if (this.hl === 0 && n - i >= 2) {
        const b1 = b[i + 1]!;
        const len7 = b1 & 0x7f;
        const hlen = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (n - i < hlen) {
          b.copy(this.hb, 0, i, n);
          this.hl = n - i;
          return msgs;
        }
        this.header(b, i);
        i += hlen;
      } else {
        this.hb[this.hl++] = b[i++]!;
        if (this.hl < 2) continue;
        const b1 = this.hb[1]!;
        const len7 = b1 & 0x7f;
        const hlen = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (this.hl < hlen) continue;
        this.header(this.hb, 0);
        this.hl = 0;
      }
      if (this.skip === 0 && this.endFrame()) msgs++;
    }
    return msgs;
  }

  private header(b: Buffer, o: number): void {
    const b0 = b[o]!;
    const len7 = b[o + 1]! & 0x7f;
    this.fin = (b0 & 0x80) !== 0;
    this.op = b0 & 0x0f;
    this.skip =
      len7 < 126 ? len7 : len7 === 126 ? b.readUInt16BE(o + 2) : b.readUInt32BE(o + 2) * 2 ** 32 + b.readUInt32BE(o + 6);
  }

  /** A frame just ended: true when it completed a data message. */
  private endFrame(): boolean {
    if (this.op < 3) {
      if (!this.fin) return false;
      this.recv++;
      return true;
    }
    if (this.op === 8) this.onCloseFrame(this);
    return false;
  }
}

/** Opens n connections (at most `concurrency` handshakes at a time, offering `extensions`); resolves once all are open. */
export function openMany(port: number, n: number, concurrency: number, setup: (c: Conn) => void, extensions?: string): Promise<Conn[]> {
  const req = upgradeRequest(port, extensions);
  const conns: Conn[] = [];
  return new Promise((resolve, reject) => {
    let started = 0;
    let opened = 0;
    let failed = false;
    const next = (): void => {
      if (failed || started >= n) return;
      started++;
      const c = new Conn(port, req);
      conns.push(c);
      setup(c);
      c.onOpen = () => {
        opened++;
        if (opened === n) resolve(conns);
        else next();
      };
      c.onFail = (_c, why) => {
        if (!failed) {
          failed = true;
          reject(new Error(`connection ${conns.length} of ${n} failed: ${why}`));
        }
      };
    };
    for (let i = 0; i < Math.min(concurrency, n); i++) next();
  });
}

/** Destroys every socket still open (after a scenario, or after a failure/timeout). */
export function destroyAll(): void {
  for (const c of live) c.sock.destroy();
  live.clear();
}

export interface Window {
  warmMs: number;
  durationMs: number;
}

/**
 * Optional probe set by the orchestrator: CPU seconds used so far by the server process. With it,
 * every measured window also reports how busy the server and this generator were (CPU time over
 * wall time, 100 = one full core): a generator near 100 while the server is not is a bottleneck.
 */
export const probe: {
  serverCpuSeconds?: () => number;
  /** The whole machine's busy CPU seconds and, of them, steal. */
  machineCpuSeconds?: () => { busy: number; steal: number };
} = {};

interface Measured {
  rate: number;
  cpu: Record<string, number>;
}

/** A count and the CPU figures at one instant: two of them give a rate and the CPU use between. */
interface Snapshot {
  count: number;
  t: bigint;
  own: NodeJS.CpuUsage;
  server: number; // NaN without a probe
  machine: { busy: number; steal: number } | undefined;
}

function snapshot(count: number): Snapshot {
  return {
    count,
    own: process.cpuUsage(),
    server: probe.serverCpuSeconds?.() ?? NaN,
    machine: probe.machineCpuSeconds?.(),
    t: now(),
  };
}

/** Rate per second of the count between two snapshots, and CPU use (100 = one full core). */
function between(a: Snapshot, b: Snapshot): Measured {
  const wall = Number(b.t - a.t) / 1e9;
  const pct = (sec: number): number => Math.round((sec / wall) * 100);
  const loadSec = (b.own.user - a.own.user + b.own.system - a.own.system) / 1e6;
  const cpu: Record<string, number> = { loadCpu: pct(loadSec) };
  if (!Number.isNaN(a.server)) cpu['serverCpu'] = pct(b.server - a.server);
  // everything else on the machine (other processes, interrupts, steal): should be ~0 for a valid run
  if (a.machine && b.machine && !Number.isNaN(a.machine.busy) && !Number.isNaN(a.server)) {
    cpu['otherCpu'] = Math.max(0, pct(b.machine.busy - a.machine.busy - loadSec - (b.server - a.server)));
    cpu['stealCpu'] = pct(b.machine.steal - a.machine.steal);
  }
  return { rate: (b.count - a.count) / wall, cpu };
}

/** Measures the count delta over a window after a warm-up: rate per second, and CPU use. */
async function measure(count: () => number, w: Window): Promise<Measured> {
  await sleep(w.warmMs);
  const a = snapshot(count());
  await sleep(w.durationMs);
  return between(a, snapshot(count()));
}

export interface EchoOptions extends Window {
  conns: number;
  size: number;
  depth: number; // messages in flight per connection
  text?: boolean; // text frames (printable ASCII) instead of binary
  deflate?: boolean; // offer permessage-deflate and send JSON text compressed (RSV1); replies are counted, never inflated
}

export interface Result {
  value: number;
  extra?: Record<string, number | string>;
}

/** echo / pipeline / large: each connection keeps `depth` messages in flight; msgs/s received. */
export async function echo(port: number, o: EchoOptions): Promise<Result> {
  const frame = o.deflate ? deflatedFrame(jsonText(o.size)) : maskedFrame(o.size, o.text ? 0x1 : 0x2);
  const all = Buffer.concat(Array.from({ length: o.depth }, () => frame));
  const batches = Array.from({ length: o.depth + 1 }, (_, k) => all.subarray(0, k * frame.length));
  let total = 0;
  let running = true;
  let lost = 0;
  const onMessages: Handler = (c, k) => {
    total += k;
    if (!running) return;
    while (k > o.depth) {
      c.sock.write(all);
      k -= o.depth;
    }
    c.sock.write(batches[k]!);
  };
  const conns = await openMany(
    port,
    o.conns,
    100,
    (c) => {
      c.onMessages = onMessages;
      c.onGone = () => {
        if (running) lost++;
      };
    },
    o.deflate ? DEFLATE_OFFER : undefined,
  );
  for (const c of conns) c.sock.write(all);
  const m = await measure(() => total, o);
  running = false;
  destroyAll();
  return { value: m.rate, extra: lost ? { ...m.cpu, lostConnections: lost } : m.cpu };
}

export interface HandshakeOptions extends Window {
  concurrency: number;
}

/** Connect, upgrade (count the 101), close handshake, repeat; `concurrency` at a time. */
export async function handshakes(port: number, o: HandshakeOptions): Promise<Result> {
  const req = upgradeRequest(port);
  let ok = 0;
  let failures = 0;
  let running = true;
  let firstError = '';
  const start = (): void => {
    const c = new Conn(port, req);
    c.onOpen = () => {
      ok++;
      c.sock.write(CLOSE_FRAME);
    };
    c.onCloseFrame = () => c.sock.end();
    c.onFail = (_c, why) => {
      failures++;
      firstError ||= why;
    };
    c.onGone = () => {
      if (running) start();
    };
  };
  for (let i = 0; i < o.concurrency; i++) start();
  const m = await measure(() => ok, o);
  running = false;
  // let the in-flight ones finish their close handshake, briefly
  for (let i = 0; i < 50 && live.size > 0; i++) await sleep(10);
  destroyAll();
  if (ok === 0) throw new Error(`no handshake succeeded: ${firstError}`);
  const extra: Record<string, number | string> = { ...m.cpu };
  if (failures) extra['failures'] = failures;
  if (firstError) extra['firstError'] = firstError;
  return { value: m.rate, extra };
}

export interface HoldOptions {
  conns: number;
  concurrency: number; // handshakes in flight
}

/**
 * Connect and hold: opens `conns` connections, `concurrency` handshakes at a time, and keeps them
 * open; handshakes/s from the first connect to the last 101 (no warm-up: the opening is the load).
 */
export async function hold(port: number, o: HoldOptions): Promise<Result> {
  let lost = 0;
  let done = false;
  const a = snapshot(0);
  await openMany(port, o.conns, o.concurrency, (c) => {
    c.onGone = () => {
      if (c.open && !done) lost++;
    };
  });
  const m = between(a, snapshot(o.conns));
  done = true;
  destroyAll();
  return { value: m.rate, extra: lost ? { ...m.cpu, lostConnections: lost } : m.cpu };
}

export interface MemoryOptions {
  warm: number; // connections opened before the baseline (warms the code paths)
  conns: number; // idle connections measured
}

/** Server RSS delta per idle connection, in KiB (the server reports its own RSS). */
export async function memory(port: number, o: MemoryOptions, readRss: () => Promise<number>): Promise<Result> {
  // RSS after gc still moves by a few MiB as V8 and malloc return pages lazily: read it twice,
  // a moment apart, and keep the second reading.
  const settled = async (): Promise<number> => {
    await sleep(200);
    await readRss();
    await sleep(100);
    return readRss();
  };
  await openMany(port, o.warm, 100, noop);
  const before = await settled();
  await openMany(port, o.conns, 100, noop);
  const after = await settled();
  destroyAll();
  return {
    value: (after - before) / o.conns / 1024,
    extra: { rssBeforeMiB: +(before / 2 ** 20).toFixed(1), rssAfterMiB: +(after / 2 ** 20).toFixed(1) },
  };
}

export interface BroadcastOptions extends Window {
  conns: number;
  size: number;
  window: number; // message k+window is sent only once all receivers got message k
}

/**
 * A sender with `window` messages in flight to `receivers` connections: message k+window goes out
 * only once every receiver got message k (a ring counts, per message in flight, who has it).
 */
function fanOut(o: BroadcastOptions, receivers: number) {
  const frame = maskedFrame(o.size);
  const W = o.window;
  const all = Buffer.concat(Array.from({ length: W }, () => frame));
  const batches = Array.from({ length: W + 1 }, (_, k) => all.subarray(0, k * frame.length));
  const ring = new Int32Array(W); // receivers that got message m, at m % W
  const state = { complete: 0, deliveries: 0, lost: 0, running: true, sender: undefined as Conn | undefined };
  let sent = 0;
  const pump = (): void => {
    const k = state.complete + W - sent;
    if (k > 0 && state.running && state.sender) {
      state.sender.sock.write(batches[k]!);
      sent += k;
    }
  };
  const onMessages: Handler = (c, k) => {
    state.deliveries += k;
    for (let m = c.recv - k; m < c.recv; m++) ring[m % W]!++;
    let advanced = false;
    while (ring[state.complete % W] === receivers) {
      ring[state.complete % W] = 0;
      state.complete++;
      advanced = true;
    }
    if (advanced) pump();
  };
  const onGone = (): void => {
    if (state.running) state.lost++;
  };
  const receive = (c: Conn): void => {
    c.onMessages = onMessages;
    c.onGone = onGone;
  };
  return { state, pump, receive, onGone };
}

/** One sender among `conns`; the server relays each message to all (sender included). deliveries/s. */
export async function broadcast(port: number, o: BroadcastOptions): Promise<Result> {
  const fan = fanOut(o, o.conns);
  const conns = await openMany(port, o.conns, 100, fan.receive);
  fan.state.sender = conns[0]!;
  fan.pump();
  const m = await measure(() => fan.state.deliveries, o);
  fan.state.running = false;
  destroyAll();
  return { value: m.rate, extra: fan.state.lost ? { ...m.cpu, lostConnections: fan.state.lost } : m.cpu };
}

export interface CrossPublishOptions extends BroadcastOptions {
  /** How long the subscribers' server gets to confirm its Redis subscription before the first publish. */
  settleMs: number;
}

/**
 * cross-publish: one connection to server A publishes, `conns` connections to server B (another
 * process, the same Redis) receive; `window` messages in flight, each counted complete once every
 * receiver has it. value: publishes/s that crossed to all of B's subscribers.
 */
export async function crossPublish(portA: number, portB: number, o: CrossPublishOptions): Promise<Result> {
  const fan = fanOut(o, o.conns);
  await openMany(portB, o.conns, 100, fan.receive);
  [fan.state.sender] = await openMany(portA, 1, 1, (c) => (c.onGone = fan.onGone));
  await sleep(o.settleMs);
  fan.pump();
  const m = await measure(() => fan.state.complete, o);
  fan.state.running = false;
  destroyAll();
  const { lost } = fan.state;
  return { value: m.rate, extra: { ...m.cpu, deliveriesPerSecond: Math.round(m.rate * o.conns), ...(lost ? { lostConnections: lost } : {}) } };
}

export interface LatencyOptions {
  size: number;
  warmMs: number; // round trips for this long first, unrecorded (JIT tiers up in both processes)
  count: number;
}

/**
 * A round trip this slow (300 µs) is a stall: on loopback, a pause of a whole process (in Node,
 * mostly a young-generation collection), not the cost of a message.
 */
const STALL_NS = 300_000;

/** One connection, one message in flight: per-message round trip, percentiles in µs, stalls counted. */
export async function latency(port: number, o: LatencyOptions): Promise<Result> {
  const frame = maskedFrame(o.size);
  const samples = new Float64Array(o.count);
  const [c] = await openMany(port, 1, 1, noop);
  const warmEnd = now() + BigInt(Math.round(o.warmMs * 1e6));
  await new Promise<void>((resolve, reject) => {
    let warm = true;
    let i = 0;
    let t0 = now();
    c!.onMessages = () => {
      const t = now();
      if (!warm) samples[i++] = Number(t - t0);
      else if (t >= warmEnd) warm = false; // recording starts with the next round trip
      if (i < o.count) {
        t0 = now();
        c!.sock.write(frame);
      } else resolve();
    };
    c!.onGone = () => reject(new Error('connection lost during latency run'));
    t0 = now();
    c!.sock.write(frame);
  });
  destroyAll();
  samples.sort();
  const pct = (q: number): number => samples[Math.min(o.count - 1, Math.ceil(q * o.count) - 1)]! / 1000;
  let sum = 0;
  for (const s of samples) sum += s;
  return {
    value: pct(0.999),
    extra: {
      p50: +pct(0.5).toFixed(1),
      p99: +pct(0.99).toFixed(1),
      p999: +pct(0.999).toFixed(1),
      max: +(samples[o.count - 1]! / 1000).toFixed(1),
      mean: +(sum / o.count / 1000).toFixed(1),
      stalls: samples.filter((ns) => ns >= STALL_NS).length,
    },
  };
}

// ---- standalone use -------------------------------------------------------------------------
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [scenario, portArg] = process.argv.slice(2);
  const port = Number(portArg);
  const w = { warmMs: 500, durationMs: 2000 };
  const runs: Record<string, () => Promise<Result>> = {
    echo: () => echo(port, { ...w, conns: 100, size: 32, depth: 1 }),
    pipeline: () => echo(port, { ...w, conns: 100, size: 512, depth: 16 }),
    large: () => echo(port, { ...w, conns: 10, size: 65536, depth: 1 }),
    'large-text': () => echo(port, { ...w, conns: 10, size: 65536, depth: 1, text: true }),
    deflate: () => echo(port, { ...w, conns: 100, size: 4096, depth: 1, deflate: true }),
    handshakes: () => handshakes(port, { ...w, concurrency: 50 }),
    hold: () => hold(port, { conns: 10000, concurrency: 256 }),
    broadcast: () => broadcast(port, { ...w, conns: 1000, size: 64, window: 16 }),
    latency: () => latency(port, { size: 32, warmMs: 1000, count: 20000 }),
  };
  const run = scenario && runs[scenario];
  if (!run || !port) {
    console.error(`usage: load.ts ${Object.keys(runs).join('|')} PORT`);
    process.exit(2);
  }
  console.log(JSON.stringify(await run()));
  process.exit(0);
}
