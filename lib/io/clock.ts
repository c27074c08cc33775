/** A cancellable timer. */
export interface Timer {
  /** Stops the timer; its callback will not run. Cancelling twice, or after it ran, does nothing. */
  cancel(): void;
}

/** Time as the library sees it; tests pass a fake one and step it instead of sleeping. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /**
   * Runs `callback` once, `ms` milliseconds from now.
   * @returns A timer that can be cancelled.
   */
  setTimeout(callback: () => void, ms: number): Timer;
}

/** A timer of the real clock: a class, so a timer costs no closure. */
class SystemTimer implements Timer {
  private readonly handle: NodeJS.Timeout;

  constructor(callback: () => void, ms: number) {
    this.handle = setTimeout(callback, ms);
  }

  cancel(): void {
    clearTimeout(this.handle);
  }
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => new SystemTimer(callback, ms),
};

/** A Clock that asks `holder.clock` at every call: it follows a holder whose clock is replaced (a Server started on a memory network). */
export function clockOf(holder: { readonly clock: Clock }): Clock {
  return {
    now: () => holder.clock.now(),
    setTimeout: (callback, ms) => holder.clock.setTimeout(callback, ms),
  };
}
