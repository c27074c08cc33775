/**
 * The black-box abuse probe against `demo/echo.ts` with its default limits, run as a
 * child process and measured from outside (/proc/<pid>/status). Slow, silent, greedy and hostile
 * peers each get their documented answer while a good client keeps being echoed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEcho, type EchoProcess } from '../helpers/echo-process.js';
import { frame, OP } from '../helpers/frames.js';
import { RawClient, upgradeRequest } from '../helpers/raw-client.js';
import { prng } from '../helpers/prng.js';

const MiB = 1024 * 1024;
const HANDSHAKE_TIMEOUT = 10_000; // echo.ts runs on the default handshakeTimeout

let echo: EchoProcess;
let child: ChildProcess;
let port = 0;
const sockets: RawClient[] = [];

/** The child's memory in bytes: resident now and its high-water mark. */
function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const figures: string[] = [];

async function connect(): Promise<RawClient> {
  const ws = await RawClient.connect(port);
  sockets.push(ws);
  return ws;
}

async function open(): Promise<RawClient> {
  const ws = await RawClient.open(port);
  sockets.push(ws);
  return ws;
}

/** A round trip through a fresh good client; returns its latency in ms (handshake included). */
async function goodEcho(text = 'hello'): Promise<number> {
  const began = performance.now();
  const ws = await open();
  ws.write(frame(OP.TEXT, text));
  assert.equal((await ws.message(5000)).toString(), text);
  const took = performance.now() - began;
  ws.destroy();
  return took;
}

before(async () => {
  echo = await startEcho({}, []);
  port = echo.port;
  child = echo.child;
});


after(async () => {
  for (const ws of sockets) ws.destroy();
  await echo.stop();
  process.stderr.write(`probe figures:\n  ${figures.join('\n  ')}\n`);
});

describe('black-box probe of demo/echo.ts with default limits', () => {
  let loris: Promise<number[]> | undefined;

  it('500 slowloris handshakes do not delay a good client (echo < 1 s)', async () => {
    const opened = performance.now();
    const request = upgradeRequest(port);
    const peers = await Promise.all(Array.from({ length: 500 }, () => connect()));
    for (const ws of peers) ws.write(request.slice(0, 20));
    // Trickle one more byte now and then, as slowloris does, so an idle timer alone would not catch them.
    let at = 20;
    const trickle = setInterval(() => {
      for (const ws of peers) ws.write(request[at]!);
      at++;
    }, 1000);
    loris = Promise.all(
      peers.map(async (ws) => {
        await ws.closed(HANDSHAKE_TIMEOUT + 5000);
        return ws.ended === undefined ? Infinity : performance.now() - opened;
      }),
    ).finally(() => clearInterval(trickle));
    await sleep(200);
    const latencies = [await goodEcho('first'), await goodEcho('second'), await goodEcho('third')];
    figures.push(`good client echo under 500 half-open handshakes: ${latencies.map((l) => l.toFixed(1)).join(' / ')} ms`);
    for (const l of latencies) assert.ok(l < 1000, `echo took ${l.toFixed(0)} ms`);
    assert.equal(peers.filter((ws) => ws.ended).length, 0, 'the slow ones are still waiting');
  });

  it('a 64 KiB header block is refused with 431', async () => {
    const ws = await connect();
    ws.write(upgradeRequest(port, { headers: { 'X-Flood': 'a'.repeat(64 * 1024) } }));
    assert.ok(await ws.until(() => ws.status !== 0 || ws.ended !== undefined, 3000));
    assert.equal(ws.status, 431);
  });

  it('a 4 GiB frame header is closed with 1009 at once', async () => {
    const ws = await open();
    const began = performance.now();
    ws.write(frame(OP.BINARY, '', { declaredLength: 4n * 1024n * 1024n * 1024n }));
    assert.ok(await ws.until(() => ws.closeReceived !== undefined, 1000));
    figures.push(`4 GiB header → close ${ws.closeReceived?.code} after ${(performance.now() - began).toFixed(1)} ms`);
    assert.equal(ws.closeReceived?.code, 1009);
    assert.notEqual((await ws.closed()).how, 'timeout');
  });

  it('a 1.5 MiB fragmented message is closed with 1009', async () => {
    const ws = await open();
    const piece = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 24 && ws.closeReceived === undefined; i++) {
      ws.write(frame(i === 0 ? OP.BINARY : OP.CONT, piece, { fin: i === 23 }));
      await sleep(1);
    }
    assert.ok(await ws.until(() => ws.closeReceived !== undefined, 3000));
    assert.equal(ws.closeReceived?.code, 1009);
    assert.equal(ws.log.filter((f) => f.opcode < 8).length, 0, 'nothing echoed');
  });

  it('262 144 one-byte fragments are echoed as one message with little memory', async () => {
    const ws = await open();
    const n = 262_144;
    const wire = Buffer.allocUnsafe(n * 7);
    const key = [0x1b, 0x2c, 0x3d, 0x4e];
    for (let i = 0, at = 0; i < n; i++, at += 7) {
      // FIN + opcode, MASK + length 1, the key, one masked byte.
      wire[at] = (i === n - 1 ? 0x80 : 0) | (i === 0 ? OP.BINARY : OP.CONT);
      wire[at + 1] = 0x81;
      wire.set(key, at + 2);
      wire[at + 6] = (i & 0xff) ^ key[0]!;
    }
    const before = memory();
    for (let at = 0; at < wire.length; at += 256 * 1024) {
      if (!ws.write(wire.subarray(at, at + 256 * 1024))) await new Promise((resolve) => ws.socket.once('drain', resolve));
    }
    const echoed = await ws.message(15_000);
    const afterwards = memory();
    assert.equal(echoed.length, n);
    for (let i = 0; i < n; i += 4099) assert.equal(echoed[i], i & 0xff);
    const grew = afterwards.peak - before.peak;
    figures.push(`262144 one-byte fragments: rss ${mib(before.rss)} → ${mib(afterwards.rss)}, peak +${mib(grew)}`);
    assert.ok(grew < 32 * MiB, `peak RSS grew ${mib(grew)}`);
    ws.destroy();
  });

  it('the 500 slowloris handshakes were cut at the handshake timeout', async () => {
    const cuts = await loris!;
    const slowest = Math.max(...cuts);
    const fastest = Math.min(...cuts);
    figures.push(`500 slowloris cut after ${(fastest / 1000).toFixed(2)}–${(slowest / 1000).toFixed(2)} s (handshakeTimeout 10 s)`);
    assert.ok(fastest >= HANDSHAKE_TIMEOUT - 500, `first cut after ${fastest.toFixed(0)} ms`);
    assert.ok(slowest <= HANDSHAKE_TIMEOUT + 2500, `last cut after ${slowest.toFixed(0)} ms`);
  });

  it('a client that never reads while sending 128 MiB leaves memory bounded and others served', async () => {
    const greedy = await open();
    greedy.socket.pause(); // never reads the echoes
    const before = memory();
    let sent = 0;
    let peak = before.rss;
    const sampler = setInterval(() => (peak = Math.max(peak, memory().rss)), 20);
    const message = frame(OP.BINARY, Buffer.alloc(64 * 1024, 0x5a));
    const flood = (async () => {
      while (sent < 128 * MiB && greedy.ended === undefined) {
        sent += 64 * 1024;
        if (!greedy.write(message)) await new Promise((resolve) => greedy.socket.once('drain', resolve));
      }
    })();
    const latencies: number[] = [];
    while (sent < 128 * MiB && greedy.ended === undefined) {
      latencies.push(await goodEcho(`during the flood at ${mib(sent)}`));
      await sleep(100);
    }
    await flood;
    clearInterval(sampler);
    const afterwards = memory();
    assert.equal(sent, 128 * MiB, `the server kept reading (connection ended: ${greedy.ended})`);
    figures.push(
      `128 MiB non-reading client: rss ${mib(before.rss)} → peak ${mib(peak)} (+${mib(peak - before.rss)}) → ${mib(afterwards.rss)}; ` +
        `${latencies.length} good echoes during it, max ${Math.max(...latencies).toFixed(1)} ms`,
    );
    assert.ok(latencies.length >= 1);
    assert.ok(peak - before.rss < 200 * MiB, `server RSS grew ${mib(peak - before.rss)}`);
    for (const l of latencies) assert.ok(l < 1000, `echo during the flood took ${l.toFixed(0)} ms`);
    greedy.destroy();
  });

  it('a client that pings for 2 s but never reads leaves memory bounded (pongs are never dropped)', async () => {
    const pinger = await open();
    pinger.socket.pause();
    const before = memory();
    const ping = frame(OP.PING, Buffer.alloc(125, 0x33), { mask: Buffer.from([5, 6, 7, 8]) });
    const burst = Buffer.concat(Array.from({ length: 1024 }, () => ping));
    let sent = 0;
    const until = performance.now() + 2000;
    while (performance.now() < until && pinger.ended === undefined) {
      sent += burst.length;
      if (!pinger.write(burst)) await Promise.race([new Promise((resolve) => pinger.socket.once('drain', resolve)), sleep(100)]);
      pinger.socket.removeAllListeners('drain');
    }
    const latency = await goodEcho('beside the pinger');
    const afterwards = memory();
    figures.push(`ping flood, never read: ${mib(sent)} written by the client in 2 s; server rss ${mib(before.rss)} → ${mib(afterwards.rss)}; good echo ${latency.toFixed(1)} ms`);
    assert.ok(afterwards.rss - before.rss < 64 * MiB, `server RSS grew ${mib(afterwards.rss - before.rss)}`);
    assert.ok(latency < 1000);
    pinger.destroy();
  });

  it('200 garbage and 200 reset connections leave the server alive and echoing', async () => {
    const rng = prng(0x9a4ba9e);
    const junk = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rng() * 256)));
    const answers: string[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        if (i % 2 === 0) {
          // Garbage instead of a handshake: an HTTP error, or a cut.
          const ws = await connect();
          ws.write(junk(1 + Math.floor(rng() * 4000)));
          ws.write('\r\n\r\n');
          await ws.closed(HANDSHAKE_TIMEOUT + 3000);
          answers.push(ws.status > 0 ? `http ${ws.status}` : `cut`);
        } else {
          // Garbage after a good handshake: a close frame with an error code, or a cut.
          const ws = await open();
          ws.write(junk(1 + Math.floor(rng() * 4000)));
          if ((await ws.closed(1500)).how === 'timeout') ws.socket.end();
          await ws.closed(3000);
          answers.push(ws.closeReceived ? `close ${ws.closeReceived.code}` : `cut (${ws.ended})`);
        }
      }),
    );
    const tally: Record<string, number> = {};
    for (const a of answers) tally[a] = (tally[a] ?? 0) + 1;
    figures.push(`200 garbage connections: ${JSON.stringify(tally)}`);
    for (const a of Object.keys(tally)) assert.match(a, /^(http 4\d\d|close 100[279]|cut.*)$/, `answer ${a}`);
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const ws = await connect();
        const request = upgradeRequest(port);
        if (i % 3 === 0) ws.write(request.slice(0, Math.floor(rng() * request.length)));
        else {
          ws.write(request);
          await ws.until(() => ws.status !== 0, 3000);
          ws.write(frame(OP.TEXT, 'x'.repeat(Math.floor(rng() * 70_000))).subarray(0, Math.floor(rng() * 70_000)));
        }
        if (rng() < 0.5) await sleep(Math.floor(rng() * 20));
        ws.socket.resetAndDestroy();
      }),
    );
    await sleep(200);
    assert.equal(child.exitCode, null, `echo.ts is alive: ${echo.stderr().slice(-2000)}`);
    const latency = await goodEcho('after the abuse');
    figures.push(`echo after garbage and resets: ${latency.toFixed(1)} ms`);
    assert.doesNotMatch(echo.stderr(), /Uncaught|TypeError|RangeError|FATAL|at .*\.ts:\d+/, 'no crash or stack trace on stderr');
  });
});
