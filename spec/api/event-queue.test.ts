/** lib/event-queue.ts: the FIFO, and when `next()` waiters are woken. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as afterThisTurn } from 'node:timers/promises';
import { EventQueue } from '../../lib/api/event-queue.js';
import { TimeoutError } from '../../lib/core/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A queue whose wake-ups are batched per turn (as with several sockets open). */
function queue(afterWake = (): void => {}): { q: EventQueue<string>; taken: string[] } {
  const taken: string[] = [];
  const q = new EventQueue<string>(new FakeClock(), (event) => taken.push(event), { active: () => true, afterWake });
  return { q, taken };
}

/** Lets every pending promise continuation run, without letting the event loop turn. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('EventQueue', () => {
  it('is first in, first out, through a ring that grows', () => {
    const { q, taken } = queue();
    for (let i = 0; i < 200; i++) q.push(`e${i}`);
    assert.equal(q.length, 200);
    assert.deepEqual(q.drain(3), ['e0', 'e1', 'e2']);
    for (let i = 200; i < 300; i++) q.push(`e${i}`); // wraps around, then grows again
    const rest = q.drain(Infinity);
    assert.deepEqual(rest, Array.from({ length: 297 }, (_, i) => `e${i + 3}`));
    assert.equal(q.shift(), undefined);
    assert.equal(taken.length, 300, 'onTake sees every event once');
  });

  it('next() resolves at once when an event is queued', async () => {
    const { q } = queue();
    q.push('ready');
    assert.equal(await q.next(), 'ready');
    assert.equal(q.length, 0);
  });

  it('a waiter is woken once the turn has done its I/O, not at the push: it then finds the whole burst', async () => {
    const { q } = queue();
    let woken: string | undefined;
    void q.next().then((event) => (woken = event));
    q.push('a');
    q.push('b');
    q.push('c');
    await microtasks();
    assert.equal(woken, undefined, 'not woken inside the turn that pushed');
    assert.equal(q.length, 3);
    await afterThisTurn();
    assert.equal(woken, 'a');
    assert.deepEqual(q.drain(Infinity), ['b', 'c'], 'the rest waits for poll, in order');
  });

  it('without batching (one socket open), a waiter is woken at the push', async () => {
    const q = new EventQueue<string>(new FakeClock(), () => {});
    let woken: string | undefined;
    void q.next().then((event) => (woken = event));
    q.push('a');
    q.push('b');
    await microtasks();
    assert.equal(woken, 'a');
    assert.deepEqual(q.drain(Infinity), ['b']);
  });

  it('events keep their order when batching ends before a batched wake-up', async () => {
    let batching = true;
    const q = new EventQueue<string>(new FakeClock(), () => {}, { active: () => batching, afterWake: () => {} });
    const first = q.next();
    const second = q.next();
    q.push('older');
    batching = false; // say the other sockets closed in the meantime
    q.push('newer');
    assert.equal(await first, 'older');
    assert.equal(await second, 'newer');
  });

  it('several waiters get one event each, oldest first; an event polled before the wake is not given twice', async () => {
    const { q } = queue();
    const first = q.next();
    const second = q.next();
    const third = q.next();
    q.push('x');
    q.push('y');
    q.push('z');
    assert.equal(q.shift(), 'x', 'poll() may still take what is queued before the wake');
    await afterThisTurn();
    assert.equal(await first, 'y');
    assert.equal(await second, 'z');
    let thirdDone = false;
    void third.then(() => (thirdDone = true));
    await afterThisTurn();
    assert.equal(thirdDone, false, 'nothing left for the third waiter');
    q.push('w');
    assert.equal(await third, 'w');
  });

  it('afterWake runs once the woken program has handled its event', async () => {
    const order: string[] = [];
    const { q } = queue(() => order.push('afterWake'));
    const program = (async () => {
      const event = await q.next();
      order.push(`handled ${event}`);
      for (let more; (more = q.shift()) !== undefined; ) order.push(`handled ${more}`);
    })();
    q.push('m1');
    q.push('m2');
    await program;
    await microtasks();
    assert.deepEqual(order, ['handled m1', 'handled m2', 'afterWake']);
  });

  it('a waiter that timed out is not woken, and gets no event', async () => {
    const clock = new FakeClock();
    const q = new EventQueue<string>(clock, () => {});
    const waiting = q.next(50);
    clock.advance(50);
    await assert.rejects(waiting, TimeoutError);
    q.push('after');
    await afterThisTurn();
    assert.equal(q.shift(), 'after');
  });
});
