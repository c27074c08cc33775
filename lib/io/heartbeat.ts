import type { Clock, Timer } from './clock.js';
import type { Peer } from './peer.js';

export interface HeartbeatOptions {
  clock: Clock;
  /** Ping a peer after this long without hearing from it; 0 disables the heartbeat. */
  pingInterval: number;
  /** Cut a peer that has not answered a ping within this long. */
  pingTimeout: number;
}

/**
 * One timer for the heartbeats of all of an owner's peers, instead of one per connection:
 * every quarter of min(pingInterval, pingTimeout) it lets each peer check its silence.
 */
export class Heartbeat {
  private timer: Timer | undefined;
  private readonly period: number;

  constructor(
    private readonly options: HeartbeatOptions,
    private readonly peers: () => Iterable<Peer>,
  ) {
    this.period = Math.max(1, Math.min(options.pingInterval, options.pingTimeout) / 4);
  }

  /** Starts checking (no-op when running, or when pingInterval is 0). */
  start(): void {
    if (this.timer !== undefined || this.options.pingInterval <= 0) return;
    this.schedule();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.options.clock.setTimeout(() => {
      const { clock, pingInterval, pingTimeout } = this.options;
      const now = clock.now();
      for (const peer of this.peers()) peer.heartbeat(now, pingInterval, pingTimeout);
      this.schedule();
    }, this.period);
  }
}
