/**
 * The demo's arena played by bots (demo/arena-bot.ts) over a MemoryNetwork with 100 ms of
 * latency each way: the demo server and its 30 Hz game loop run on the network's clock, so a
 * minute of play takes a fraction of a second and every run is the same. The page in Chromium:
 * spec/integration/demo-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork } from '../../lib/testing.js';
import { ARENA_SPEED, ArenaSize } from '../../demo/arena.js';
import { ArenaBot, NEAR } from '../../demo/arena-bot.js';
import { startDemo, TICK_HZ } from '../../demo/demo.js';

const LATENCY_MS = 100;
const URL = 'ws://arena.test/ws';

/** A demo on a fresh network, and two bots in its arena. */
async function arenaWithBots() {
  const network = new MemoryNetwork({ seed: 11, latencyMs: LATENCY_MS });
  const demo = await startDemo({ network, host: 'arena.test', port: 80 });
  const joining = Promise.all([ArenaBot.join(URL, 'alice', { network }), ArenaBot.join(URL, 'bob', { network })]);
  await network.clock.advance(1_000);
  const [alice, bob] = await joining;
  const playing = Promise.all([alice.play(), bob.play()]);
  return { network, demo, alice, bob, playing };
}

/** Advances the clock in small steps until `promise` settles (at most `limitMs`). */
async function playUntil(network: MemoryNetwork, promise: Promise<unknown>, limitMs: number): Promise<void> {
  let done = false;
  void promise.then(() => (done = true));
  for (const end = network.clock.now() + limitMs; !done && network.clock.now() < end; ) await network.clock.advance(50);
  assert.ok(done, `not done within ${limitMs} ms of play`);
}

describe(`the arena over a memory network, ${LATENCY_MS} ms each way`, () => {
  it('each bot sees both dots where the server puts them, and each player’s RTT as 2 × the latency', async () => {
    const { network, alice, bob } = await arenaWithBots();
    assert.equal(alice.players.get('bob')?.rtt ?? null, null, 'no round trip measured yet');
    await network.clock.advance(3_000); // silent for over 2 s: the demo's heartbeat pings both
    for (const bot of [alice, bob]) {
      assert.deepEqual([...bot.players.keys()], ['alice', 'bob']);
      assert.equal(bot.players.get('alice')!.rtt, 2 * LATENCY_MS);
      assert.equal(bot.players.get('bob')!.rtt, 2 * LATENCY_MS);
    }
    assert.deepEqual(bob.players.get('alice'), alice.me, 'one truth: the server’s');
  });

  it('a key held for one second moves the dot 120 units, counted from when the server got each message', async () => {
    const { network, alice } = await arenaWithBots();
    await network.clock.advance(500);
    const start = alice.me!;
    alice.client.send(JSON.stringify({ type: 'move', dx: 1, dy: 0 }));
    await network.clock.advance(1_000);
    alice.client.send(JSON.stringify({ type: 'move', dx: 0, dy: 0 }));
    await network.clock.advance(500);
    const moved = alice.me!.x - start.x;
    const perTick = ARENA_SPEED / TICK_HZ;
    assert.ok(Math.abs(moved - ARENA_SPEED) <= perTick, `moved ${moved} units`);
    assert.equal(moved % perTick, 0, 'in whole ticks');
    assert.equal(alice.me!.y, start.y);
  });

  it('two bots steer to opposite corners and stop there, each seeing the other arrive', async () => {
    const { network, alice, bob } = await arenaWithBots();
    await network.clock.advance(3_000); // let the RTTs be measured: the bots let go early by them
    const goals = { alice: { x: 60, y: ArenaSize.height - 60 }, bob: { x: ArenaSize.width - 60, y: 60 } };
    await playUntil(network, Promise.all([alice.goTo(goals.alice.x, goals.alice.y), bob.goTo(goals.bob.x, goals.bob.y)]), 20_000);
    for (const [bot, goal] of [[alice, goals.alice], [bob, goals.bob]] as const) {
      const at = bot.me!;
      assert.ok(Math.abs(at.x - goal.x) <= NEAR && Math.abs(at.y - goal.y) <= NEAR, `${bot.name} stopped at (${at.x}, ${at.y}), aiming at (${goal.x}, ${goal.y})`);
    }
    await network.clock.advance(500);
    assert.deepEqual(alice.players.get('bob'), bob.me);
    assert.deepEqual(bob.players.get('alice'), alice.me);
  });

  it('walls stop a dot; leaving takes it off everyone’s field; the server closes cleanly', async () => {
    const { network, demo, alice, bob, playing } = await arenaWithBots();
    alice.client.send(JSON.stringify({ type: 'move', dx: -1, dy: -1 }));
    await network.clock.advance(8_000);
    assert.deepEqual([alice.me!.x, alice.me!.y], [0, 0]);
    alice.leave();
    await network.clock.advance(1_000);
    assert.deepEqual([...bob.players.keys()], ['bob']);
    const stopped = demo.stop();
    await network.clock.advance(1_000);
    await stopped;
    await playing; // both bots took their Disconnect
    assert.equal(bob.client.pending + alice.client.pending, 0);
    assert.deepEqual(network.connections, []);
  });
});
