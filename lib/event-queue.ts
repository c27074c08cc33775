import type { Clock, Timer } from './clock.js';
import { TimeoutError } from './errors.js';

interface Waiter<E> {
  resolve(event: E): void;
  timer: Timer | undefined;
}

/**
 * A FIFO of events on a growable ring buffer (no Array.shift on the hot path), with
 * promise-based waiting for the next event. `onTake` is told of every event that leaves.
 */
export class EventQueue<E> {
  private items: (E | undefined)[] = new Array(64);
  private head = 0;
  private count = 0;
  private readonly waiters: Waiter<E>[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly onTake: (event: E) => void,
  ) {}

  get length(): number {
    return this.count;
  }

  push(event: E): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.timer?.cancel();
      this.onTake(event);
      waiter.resolve(event);
      return;
    }
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = event;
    this.count++;
  }

  shift(): E | undefined {
    if (this.count === 0) return undefined;
    const event = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    this.onTake(event!);
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

  private grow(): void {
    const bigger: (E | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.count; i++) bigger[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = bigger;
    this.head = 0;
  }
}
