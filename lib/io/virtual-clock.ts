import type { Clock, Timer } from './clock.js';

interface Entry extends Timer {
  at: number;
  /** Creation order: timers due at the same time run in the order they were set. */
  seq: number;
  callback: (() => void) | undefined;
}

/** One turn of the event loop: what a clock on its own lets pass between two instants. */
const oneTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A Clock whose time moves only when told to: `await advance(ms)` runs every timer that falls due,
 * in due order (same time: in the order they were set), with `now()` reading each one's own due
 * time, and lets the program react before time moves on (`settle`: on a MemoryNetwork, until
 * nothing is left to do at that instant; on its own, one turn of the event loop).
 */
export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  /** A binary min-heap of timers by (at, seq); cancelled ones are dropped when they reach the top. */
  private readonly heap: Entry[] = [];
  private live = 0;
  /** The advance in progress: the next one starts after it. */
  private running: Promise<void> = Promise.resolve();

  constructor(
    start = 0,
    private readonly settle: () => Promise<void> = oneTurn,
  ) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    const entry: Entry = {
      at: this.time + Math.max(0, ms),
      seq: this.seq++,
      callback,
      cancel: () => {
        if (entry.callback === undefined) return;
        entry.callback = undefined;
        this.live--;
      },
    };
    this.live++;
    this.push(entry);
    return entry;
  }

  /** Timers set and not yet run or cancelled. */
  get pending(): number {
    return this.live;
  }

  /** When the next timer falls due, or undefined when none is set. */
  get nextDue(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /**
   * Moves time forward by `ms`: the program first settles at the current time, then each
   * instant at which timers fall due is run and settled in turn. Calls made while one runs
   * start when it ends.
   */
  advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance(ms) takes a duration of 0 or more, got ${ms}`);
    const run = this.running.then(() => this.runUntil(this.time + ms));
    this.running = run.catch(() => {});
    return run;
  }

  /** Like advance, up to an absolute time (no-op when it has passed). */
  advanceTo(time: number): Promise<void> {
    return this.advance(Math.max(0, time - this.time));
  }

  private async runUntil(target: number): Promise<void> {
    await this.settle();
    for (let at = this.nextDue; at !== undefined && at <= target; at = this.nextDue) {
      this.time = Math.max(this.time, at);
      while (this.heap.length > 0 && this.heap[0]!.at === at) {
        const entry = this.pop();
        const callback = entry.callback;
        if (callback === undefined) continue;
        entry.callback = undefined;
        this.live--;
        callback();
      }
      await this.settle();
    }
    this.time = Math.max(this.time, target);
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.callback === undefined) this.pop();
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
