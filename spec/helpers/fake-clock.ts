/**
 * The shape of lib's Clock, restated here so that the helpers import nothing from lib/ (the
 * library accepts any object of this shape: TypeScript checks it where a test passes one in).
 */
export interface Timer {
  cancel(): void;
}
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): Timer;
}

interface Entry {
  at: number;
  /** Creation order: timers due at the same time run in the order they were set. */
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * A deterministic Clock: time stands still until `advance(ms)`, which runs every timer that
 * falls due, in due-time order, with `now()` reading each timer's own due time while it runs.
 * Timers set by a callback run in the same `advance` if they fall due within it.
 */
export class FakeClock implements Clock {
  private time: number;
  private seq = 0;
  private entries: Entry[] = [];

  constructor(start = 1_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    const entry: Entry = { at: this.time + Math.max(0, ms), seq: this.seq++, callback, cancelled: false };
    this.entries.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  /** Timers still waiting to run. */
  get pending(): number {
    return this.entries.filter((e) => !e.cancelled).length;
  }

  /** Moves time forward by `ms`, running due timers in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (let next = this.nextDue(target); next; next = this.nextDue(target)) {
      this.entries.splice(this.entries.indexOf(next), 1);
      this.time = next.at;
      next.callback();
    }
    this.time = target;
  }

  private nextDue(limit: number): Entry | undefined {
    this.entries = this.entries.filter((e) => !e.cancelled);
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.at <= limit && (!best || e.at < best.at || (e.at === best.at && e.seq < best.seq))) best = e;
    }
    return best;
  }
}
