/**
 * The same seeded script on a MemoryNetwork gives the same events and the same bytes, run after
 * run, in any process: spec/integration/scenarios/forty-clients.ts (40 clients acting at random,
 * faults, heartbeats, a stop) runs in two child processes and in this one, and the three logs of
 * every event and every write on the wire must be identical, byte for byte.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { run } from './scenarios/forty-clients.js';

const SCENARIO = fileURLToPath(new URL('./scenarios/forty-clients.ts', import.meta.url));
const SEED = 7;

async function inChildProcess(seed: number): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', SCENARIO, String(seed)], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
  });
  return stdout;
}

/** Fails with the first line where two logs part. */
function assertSameLog(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  const a = actual.split('\n');
  const e = expected.split('\n');
  const at = a.findIndex((line, i) => line !== e[i]);
  assert.fail(`${what}: the logs part at line ${at + 1}:\n  ${a[at]?.slice(0, 200)}\n  ${e[at]?.slice(0, 200)}`);
}

const count = (log: string, pattern: RegExp): number => log.match(new RegExp(pattern.source, 'g'))?.length ?? 0;

describe('a seeded scenario of 40 clients on a memory network', { timeout: 120_000 }, () => {
  it('gives a byte-identical log of events and wire bytes in two separate processes, and in this one', async () => {
    const [first, second] = await Promise.all([inChildProcess(SEED), inChildProcess(SEED)]);
    assertSameLog(second, first, 'two processes');
    assertSameLog(`${await run(SEED)}\n`, first, 'this process and a child');

    // The log is the whole story, not an empty one: every connection opened and ended, every
    // kind of ending happened, and the wire carried the handshakes and frames.
    assert.equal(count(first, /server \{"type":"NewConnection"/), 40);
    assert.equal(count(first, /server \{"type":"Disconnect"/), 40);
    assert.equal(count(first, /client\d+ \{"type":"Disconnect"/), 40);
    for (const ending of ['"initiator":"timeout"', '"reason":"dropped"', '"code":1001', '"reason":"bye from', 'without a close frame']) {
      assert.ok(first.includes(ending), `some connection ended with ${ending}`);
    }
    assert.ok(count(first, / wire #\d+ toServer 474554/) === 40, 'forty handshake requests on the wire');
    assert.ok(count(first, / wire /) > 5_000, 'thousands of writes on the wire');
    assert.match(first, /\n\d+ end 0 connections open\n$/);
  });

  it('another seed changes the keys, so the bytes on the wire', async () => {
    const [seven, eight] = await Promise.all([run(SEED), run(SEED + 1)]);
    const firstRequest = (log: string) => /wire #1 toServer (\S+)/.exec(log)![1];
    assert.notEqual(firstRequest(seven), firstRequest(eight), 'another Sec-WebSocket-Key');
  });
});
