/** spec/helpers/peers.ts: skip on a bare machine, fail under WSPOLL_REQUIRE_PEERS=1, run when present. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decide, onPath, peer, peersRequired } from './peers.js';

describe('decide', () => {
  it('a present peer runs, required or not', () => {
    assert.equal(decide(true, false), 'run');
    assert.equal(decide(true, true), 'run');
  });
  it('a missing peer is skipped on a bare machine and fails when peers are required', () => {
    assert.equal(decide(false, false), 'skip');
    assert.equal(decide(false, true), 'fail');
  });
  it('only WSPOLL_REQUIRE_PEERS=1 requires peers', () => {
    assert.equal(peersRequired({ WSPOLL_REQUIRE_PEERS: '1' }), true);
    for (const value of [undefined, '', '0', 'yes']) assert.equal(peersRequired({ WSPOLL_REQUIRE_PEERS: value }), false, String(value));
  });
});

describe('peer', () => {
  it('present: not skipped, require() passes, and the check runs once', () => {
    let checks = 0;
    const p = peer('/usr/bin/thing', () => (checks++, true), 'apt-get install thing', { WSPOLL_REQUIRE_PEERS: '1' });
    assert.equal(checks, 0, 'checked on first use only');
    assert.equal(p.skip, false);
    assert.equal(p.decision, 'run');
    p.require();
    assert.equal(p.present, true);
    assert.equal(checks, 1);
  });

  it('missing on a bare machine: skipped with a message naming what to install', () => {
    const p = peer('/usr/bin/thing', () => false, 'apt-get install thing', {});
    assert.equal(p.decision, 'skip');
    assert.equal(p.skip, 'skipped: /usr/bin/thing missing (apt-get install thing); WSPOLL_REQUIRE_PEERS=1 makes this a failure');
    assert.throws(() => p.require(), { message: '/usr/bin/thing is missing (apt-get install thing)' });
  });

  it('missing under WSPOLL_REQUIRE_PEERS=1: not skipped, and require() fails saying why', () => {
    const p = peer('/usr/bin/thing', () => false, 'apt-get install thing', { WSPOLL_REQUIRE_PEERS: '1' });
    assert.equal(p.decision, 'fail');
    assert.equal(p.skip, false);
    assert.throws(() => p.require(), { message: 'WSPOLL_REQUIRE_PEERS=1, but /usr/bin/thing is missing (apt-get install thing)' });
  });

  it('onPath finds executables on PATH only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wspoll-path-'));
    try {
      writeFileSync(join(dir, 'fake-peer'), '#!/bin/sh\n');
      chmodSync(join(dir, 'fake-peer'), 0o755);
      writeFileSync(join(dir, 'not-executable'), '');
      assert.equal(onPath('fake-peer', `/nonexistent:${dir}`), true);
      assert.equal(onPath('not-executable', dir), false);
      assert.equal(onPath('fake-peer', '/nonexistent'), false);
      assert.equal(onPath('fake-peer', ''), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('in node:test', () => {
  const fixture = fileURLToPath(new URL('./peers.fixture.ts', import.meta.url));
  const run = (env: NodeJS.ProcessEnv) => {
    // Not a child of this runner (NODE_TEST_CONTEXT): a run of its own, reporting in TAP.
    const { WSPOLL_REQUIRE_PEERS: _, NODE_TEST_CONTEXT: __, ...rest } = process.env;
    return spawnSync(process.execPath, ['--import', 'tsx', '--test-reporter=tap', fixture], { env: { ...rest, ...env }, encoding: 'utf8', timeout: 30_000 });
  };

  it('a bare machine skips the suite with the message and passes', () => {
    const child = run({});
    assert.equal(child.status, 0, child.stdout + child.stderr);
    assert.match(child.stdout, /ok 1 - a suite needing an absent peer # SKIP skipped: \/nonexistent\/peer missing \(apt-get install nothing\)/);
    assert.match(child.stdout, /ok 2 - a test needing no peer\n/);
    assert.match(child.stdout, /# fail 0\n# cancelled 0\n/);
  });

  it('WSPOLL_REQUIRE_PEERS=1 fails it, saying what to install, and still runs the rest', () => {
    const child = run({ WSPOLL_REQUIRE_PEERS: '1' });
    assert.equal(child.status, 1, child.stdout + child.stderr);
    assert.match(child.stdout, /not ok 1 - a suite needing an absent peer\n/);
    assert.match(child.stdout, /error: 'WSPOLL_REQUIRE_PEERS=1, but \/nonexistent\/peer is missing \(apt-get install nothing\)'/);
    assert.match(child.stdout, /\nok 2 - a test needing no peer\n/);
    assert.doesNotMatch(child.stdout, /# SKIP/);
  });
});
