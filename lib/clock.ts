/** A cancellable timer. */
export interface Timer {
  cancel(): void;
}

/** Time as the library sees it; tests pass a fake one and step it instead of sleeping. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): Timer;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};
