/**
 * Soak: a few thousand connections, a few hundred at a time, exchange messages with a server
 * drained by a tick loop, and end in every way there is: clean closes from either side, FINs
 * without a close frame, and TCP resets. Checks: exactly one NewConnection then one Disconnect
 * per connection and nothing after it; every message of a connection delivered and echoed
 * exactly once, in order (a prefix of what was sent for connections cut mid-way); the heap back
 * near its baseline at the end.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Event, Server, type ServerEvent } from '../../lib/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFrame, frame, OP } from '../helpers/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { prng } from '../helpers/prng.js';

const TOTAL = 2000;
const AT_ONCE = 200;
const SEED = 0x50a4;

type Ending = 'clean' | 'server-close' | 'fin' | 'reset';

function collectGarbage(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function settledMemory(gc: () => void): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

interface Plan {
  ending: Ending;
  messages: string[];
  /** fin/reset: how many messages go out before the cut. */
  cutAfter: number;
}

function plan(rng: () => number, i: number): Plan {
  const r = rng();
  const ending: Ending = r < 0.55 ? 'clean' : r < 0.7 ? 'server-close' : r < 0.85 ? 'fin' : 'reset';
  const count = 1 + Math.floor(rng() * 12);
  const messages = Array.from({ length: count }, (_, seq) => `${i}:${seq}:${'x'.repeat(Math.floor(rng() ** 3 * 4000))}`);
  return { ending, messages, cutAfter: Math.floor(rng() * (count + 1)) };
}

interface Result {
  echoed: string[];
  close: number | undefined;
  ended?: string | undefined;
  frames?: number;
}

/** Message lists as short labels ("12:3" per message) so a failure prints readably. */
const labels = (list: string[]): string => list.map((m) => m.split(':', 2).join(':') + `/${m.length}`).join(' ');

async function runClient(port: number, i: number, p: Plan, rng: () => number): Promise<Result> {
  const ws = await RawClient.open(port, { timeoutMs: 5000, path: `/soak?i=${i}&ending=${p.ending}` });
  const text = (): string[] => ws.log.filter((f) => f.opcode === OP.TEXT).map((f) => f.payload.toString());
  try {
    if (p.ending === 'fin' || p.ending === 'reset') {
      for (const m of p.messages.slice(0, p.cutAfter)) ws.write(frame(OP.TEXT, m));
      if (rng() < 0.5) await sleep(Math.floor(rng() * 20));
      if (p.ending === 'reset') ws.socket.resetAndDestroy();
      else ws.socket.end();
      await ws.closed(5000);
      return { echoed: text(), close: ws.closeReceived?.code };
    }
    for (const m of p.messages) {
      ws.write(frame(OP.TEXT, m));
      if (rng() < 0.2) await sleep(1);
    }
    if (p.ending === 'server-close') {
      // The server closes after echoing our first message; we answer its close frame.
      await ws.until(() => ws.closeReceived !== undefined, 5000);
      ws.write(closeFrame(ws.closeReceived?.code));
      await ws.closed(5000);
      return { echoed: text(), close: ws.closeReceived?.code };
    }
    await ws.until(() => text().length >= p.messages.length || ws.ended !== undefined, 5000);
    await sleep(Math.floor(rng() * 5)); // room for a duplicate to show up
    ws.write(closeFrame(1000));
    await ws.closed(5000);
    return { echoed: text(), close: ws.closeReceived?.code, ended: ws.ended, frames: ws.log.length };
  } finally {
    ws.destroy();
  }
}

it(`soak: ${TOTAL} connections, ${AT_ONCE} at a time, clean closes, drops and resets, seed 0x${SEED.toString(16)}`, { timeout: 90_000 }, async () => {
  const gc = collectGarbage();
  const server = new Server({ closeTimeout: 3000 });
  await server.start('127.0.0.1', 0);
  const began = Date.now();

  const state = new Map<number, { i: number; ending: Ending; messages: string[]; disconnect?: ServerEvent }>();
  const violations: string[] = [];
  let opened = 0;
  let closed = 0;
  const handle = (ev: ServerEvent): void => {
    const s = state.get(ev.connId);
    if (ev.type === Event.NewConnection) {
      if (s) violations.push(`#${ev.connId}: a second NewConnection`);
      state.set(ev.connId, { i: Number(ev.query.i), ending: ev.query.ending as Ending, messages: [] });
      opened++;
      return;
    }
    if (!s) return void violations.push(`#${ev.connId}: ${ev.type} before NewConnection`);
    if (s.disconnect) return void violations.push(`#${ev.connId}: ${ev.type} after Disconnect`);
    if (ev.type === Event.Disconnect) {
      s.disconnect = ev;
      closed++;
    } else if (ev.type === Event.Message) {
      s.messages.push(ev.message as string);
      server.send(ev.connId, ev.message);
      if (s.ending === 'server-close' && s.messages.length === 1) server.close(ev.connId, 4001, 'soak');
    }
  };
  // The game loop: drain everything each tick.
  const tick = setInterval(() => {
    for (let ev; (ev = server.poll()); ) handle(ev);
  }, 2);

  try {
    // Warm up (JIT, buffers, socket pools), then take the baseline.
    const warm = prng(SEED ^ 0xffff);
    await Promise.all(Array.from({ length: 50 }, (_, i) => runClient(server.port, -1 - i, { ending: 'clean', messages: ['warm'], cutAfter: 0 }, warm)));
    await sleep(100);
    const base = await settledMemory(gc);

    const rng = prng(SEED);
    const plans = Array.from({ length: TOTAL }, (_, i) => plan(rng, i));
    const seeds = plans.map(() => Math.floor(rng() * 2 ** 32));
    const results: Result[] = new Array(TOTAL);
    let next = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        for (let i; (i = next++) < TOTAL; ) {
          results[i] = await runClient(server.port, i, plans[i]!, prng(seeds[i]!));
          if (i % 250 === 0) peak = Math.max(peak, process.memoryUsage().rss);
        }
      }),
    );
    const deadline = Date.now() + 10_000;
    while (closed < opened && Date.now() < deadline) await sleep(10);

    assert.deepEqual(violations, []);
    assert.equal(opened, TOTAL + 50, 'one NewConnection per connection');
    assert.equal(closed, opened, 'one Disconnect per connection');
    assert.equal(server.pending, 0);

    const counts: Record<string, number> = {};
    for (const s of state.values()) {
      if (s.i < 0) continue;
      const p = plans[s.i]!;
      const r = results[s.i]!;
      const d = s.disconnect!;
      const what = `connection ${s.i} (${p.ending})`;
      counts[p.ending] = (counts[p.ending] ?? 0) + 1;
      assert.ok(d.type === Event.Disconnect);
      if (p.ending === 'clean') {
        assert.equal(labels(s.messages), labels(p.messages), `${what}: the server got every message once, in order`);
        assert.equal(labels(r.echoed), labels(p.messages), `${what}: every echo once, in order (close ${r.close}, ended ${r.ended}, ${r.frames} frames)`);
        assert.deepEqual([d.code, d.wasClean, d.initiator, r.close], [1000, true, 'peer', 1000], what);
      } else if (p.ending === 'server-close') {
        assert.equal(labels(s.messages), labels(p.messages.slice(0, s.messages.length)), `${what}: a prefix, in order`);
        assert.ok(s.messages.length >= 1);
        assert.equal(labels(r.echoed), labels(p.messages.slice(0, r.echoed.length)), `${what}: echoes a prefix, in order`);
        assert.deepEqual([d.code, d.wasClean, d.initiator, r.close], [4001, true, 'local', 4001], what);
      } else {
        assert.equal(labels(s.messages), labels(p.messages.slice(0, s.messages.length)), `${what}: a prefix of what was sent, in order`);
        assert.ok(s.messages.length <= p.cutAfter);
        assert.equal(labels(r.echoed), labels(s.messages.slice(0, r.echoed.length)), `${what}: echoes a prefix`);
        assert.equal(d.code, 1006, what);
        assert.equal(d.wasClean, false);
      }
    }
    assert.ok(Object.values(counts).every((n) => n > 100), JSON.stringify(counts));

    // Let go of the test's own records (the messages it sent and saw) before measuring.
    const endings = JSON.stringify(counts);
    plans.length = 0;
    results.length = 0;
    state.clear();
    await sleep(200);
    const after = await settledMemory(gc);
    const grewHeap = (after.heap - base.heap) / 2 ** 20;
    const took = Date.now() - began;
    process.stderr.write(
      `soak: ${TOTAL} connections in ${took} ms; heap+external ${(base.heap / 2 ** 20).toFixed(1)} → ${(after.heap / 2 ** 20).toFixed(1)} MiB (${grewHeap >= 0 ? '+' : ''}${grewHeap.toFixed(1)}), ` +
        `rss ${(base.rss / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB; endings ${endings}\n`,
    );
    // Judged by the heap (JS objects and the Buffers outside it), the memory that a leak holds.
    // RSS is printed only: allocators keep freed pages (Node 24 keeps RSS at its peak, +127 MiB
    // with a flat heap), so it measures the peak, not what is still held.
    assert.ok(grewHeap < 30, `heap+external grew ${grewHeap.toFixed(1)} MiB`);
    assert.ok(took < 60_000, `took ${took} ms`);
  } finally {
    clearInterval(tick);
    await server.stop({ timeoutMs: 500 });
  }
});
