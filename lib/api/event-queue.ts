import { TimeoutError } from '../core/errors.js';
import type { Clock, Timer } from '../io/clock.js';

interface Waiter<E> {
  resolve(event: E): void;
  timer: Timer | undefined;
}

/** How a queue's wake-ups fit the turn of the event loop. */
export interface TurnBatching {
  /** True while wake-ups are batched per turn. */
  active(): boolean;
  /** Runs once a program woken by a batched wake-up has had its turn. */
  afterWake(): void;
}

const NO_BATCHING: TurnBatching = { active: () => false, afterWake: () => {} };

/**
 * A FIFO of events on a growable ring buffer (no Array.shift on the hot path), with
 * promise-based waiting for the next event. Each event may carry a source (its connection's
 * Peer, say) that `onTake` is given back when the event leaves: no lookup by id per event.
 *
 * While `batching` is active, waiters are woken once per turn of the event loop, after its I/O
 * callbacks (setImmediate): a program awaiting `next()` then handles everything the turn read
 * in one go, instead of once per socket read, and `afterWake` can send its answers in the same
 * turn. Otherwise a waiter is woken at the push.
 */
export class EventQueue<E, S = undefined> {
  private items: (E | undefined)[] = new Array(64);
  private sources: (S | undefined)[] = new Array(64);
  private head = 0;
  private count = 0;
  private readonly waiters: Waiter<E>[] = [];
  private wakeScheduled = false;

  constructor(
    private readonly clock: Clock,
    private readonly onTake: (event: E, source: S | undefined) => void,
    private readonly batching: TurnBatching = NO_BATCHING,
  ) {}

  get length(): number {
    return this.count;
  }

  push(event: E, source?: S): void {
    if (this.waiters.length > 0) {
      // At the push only when nothing older waits for a batched wake-up: events keep their order.
      if (this.count === 0 && !this.batching.active()) {
        this.onTake(event, source);
        this.resolveWaiter(event);
        return;
      }
      if (!this.wakeScheduled) {
        this.wakeScheduled = true;
        setImmediate(this.wake);
      }
    }
    if (this.count === this.items.length) this.grow();
    const at = (this.head + this.count) & (this.items.length - 1);
    this.items[at] = event;
    this.sources[at] = source;
    this.count++;
  }

  shift(): E | undefined {
    if (this.count === 0) return undefined;
    const at = this.head;
    const event = this.items[at];
    const source = this.sources[at];
    this.items[at] = undefined;
    this.sources[at] = undefined;
    this.head = (at + 1) & (this.items.length - 1);
    this.count--;
    this.onTake(event!, source);
    return event;
  }

  /** Up to `max` events, oldest first. */
  drain(max: number): E[] {
    const events: E[] = [];
    for (let event; events.length < max && (event = this.shift()) !== undefined; ) events.push(event);
    return events;
  }

  /** The next event: at once if one is queued, else when one arrives; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<E> {
    const ready = this.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<E>((resolve, reject) => {
      const waiter: Waiter<E> = { resolve, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = this.clock.setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new TimeoutError(`no event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Hands queued events to the waiters, oldest first to each. */
  private readonly wake = (): void => {
    this.wakeScheduled = false;
    if (this.waiters.length === 0 || this.count === 0) return;
    while (this.waiters.length > 0 && this.count > 0) this.resolveWaiter(this.shift()!);
    // Queued after the woken continuations, so it runs once they have had their turn.
    queueMicrotask(this.batching.afterWake);
  };

  /** Gives `event` to the oldest waiter. */
  private resolveWaiter(event: E): void {
    const waiter = this.waiters.shift()!;
    waiter.timer?.cancel();
    waiter.resolve(event);
  }

  private grow(): void {
    const size = this.items.length;
    const items: (E | undefined)[] = new Array(size * 2);
    const sources: (S | undefined)[] = new Array(size * 2);
    for (let i = 0; i < this.count; i++) {
      items[i] = this.items[(this.head + i) & (size - 1)];
      sources[i] = this.sources[(this.head + i) & (size - 1)];
    }
    this.items = items;
    this.sources = sources;
    this.head = 0;
  }
}
