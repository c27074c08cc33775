/**
 * permessage-deflate against `demo/echo.ts` run with COMPRESSION=1 as a child process, measured
 * from outside (/proc/<pid>/status): a decompression bomb is closed with 1009 without the
 * server's memory growing by more than the limit, and an idle connection that has compressed and
 * inflated a message holds no compression state (RSS per connection).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflatePayload, frame, inflatePayload, OP } from '../helpers/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { startEcho, type EchoProcess } from '../helpers/echo-process.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const OFFER = 'permessage-deflate; client_max_window_bits';
const IDLE_CONNECTIONS = 2000;

let echo: EchoProcess;
let child: ChildProcess;
let port = 0;
const sockets: RawClient[] = [];
const figures: string[] = [];

function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * KiB;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** A client that offered permessage-deflate and had it accepted. */
async function open(): Promise<RawClient> {
  const ws = await RawClient.open(port, { headers: { 'Sec-WebSocket-Extensions': OFFER } });
  sockets.push(ws);
  assert.equal(ws.response?.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  return ws;
}

/** Sends `text` compressed and returns the echo, inflated (the server compresses every message: threshold 0). */
async function compressedEcho(ws: RawClient, text: string): Promise<string> {
  ws.write(frame(OP.TEXT, deflatePayload(text), { rsv: 4 }));
  const reply = await ws.nextFrame(5000);
  assert.equal(reply.rsv, 4, 'the echo is compressed');
  return inflatePayload(reply.payload).toString();
}

before(async () => {
  echo = await startEcho({ COMPRESSION: '1', COMPRESSION_THRESHOLD: '0' }, ['--max-semi-space-size=1']);
  port = echo.port;
  child = echo.child;
});


after(async () => {
  for (const ws of sockets) ws.destroy();
  await echo.stop();
  process.stderr.write(`compression probe figures:\n  ${figures.join('\n  ')}\n`);
});

describe('demo/echo.ts with COMPRESSION=1 (maxMessageSize 1 MiB)', () => {
  it('a 64 MiB decompression bomb (64 KiB on the wire) is closed with 1009; RSS grows by less than 8 MiB', async () => {
    const bomb = deflatePayload(Buffer.alloc(64 * MiB));
    const warm = await open();
    assert.equal(await compressedEcho(warm, 'warm up '.repeat(10)), 'warm up '.repeat(10));
    const ws = await open();
    await sleep(100);
    const before = memory();
    const began = performance.now();
    ws.write(frame(OP.BINARY, bomb, { rsv: 4 }));
    assert.ok(await ws.until(() => ws.closeReceived !== undefined, 5000), 'a close frame came');
    const took = performance.now() - began;
    const afterwards = memory();
    figures.push(
      `64 MiB bomb (${(bomb.length / KiB).toFixed(0)} KiB compressed) → close ${ws.closeReceived?.code} after ${took.toFixed(1)} ms; ` +
        `rss ${mib(before.rss)} → ${mib(afterwards.rss)}, peak +${mib(afterwards.peak - before.peak)}`,
    );
    assert.equal(ws.closeReceived?.code, 1009);
    assert.equal(ws.log.filter((f) => f.opcode < 8).length, 0, 'nothing echoed');
    assert.ok(afterwards.peak - before.peak < 8 * MiB, `peak RSS grew ${mib(afterwards.peak - before.peak)}`);
    assert.ok(afterwards.rss - before.rss < 8 * MiB, `RSS grew ${mib(afterwards.rss - before.rss)}`);
    assert.equal(await compressedEcho(warm, 'still here '.repeat(10)), 'still here '.repeat(10), 'the other connection is served');
  });

  it(`${IDLE_CONNECTIONS} idle connections that have compressed and inflated a message: under 24 KiB of RSS each`, async () => {
    const warmUp = await Promise.all(Array.from({ length: 100 }, () => open()));
    for (const ws of warmUp) assert.equal(await compressedEcho(ws, 'warm-up '.repeat(20)), 'warm-up '.repeat(20));
    await sleep(500);
    const before = memory().rss;
    for (let opened = 0; opened < IDLE_CONNECTIONS; opened += 200) {
      const batch = await Promise.all(Array.from({ length: 200 }, () => open()));
      const echoes = await Promise.all(batch.map((ws, i) => compressedEcho(ws, `connection ${opened + i} `.repeat(20))));
      echoes.forEach((echo, i) => assert.equal(echo, `connection ${opened + i} `.repeat(20)));
    }
    await sleep(1000);
    const perConnection = (memory().rss - before) / IDLE_CONNECTIONS;
    figures.push(`${IDLE_CONNECTIONS} idle compressed connections: ${(perConnection / KiB).toFixed(2)} KiB of RSS each`);
    assert.ok(perConnection < 24 * KiB, `${(perConnection / KiB).toFixed(1)} KiB per connection`);
  });
});
