
/** What a broker may tell its server. */
export interface BrokerHost {
  /** A message another server published to `topic`: UTF-8 text unless `binary`. */
  deliver(topic: string, payload: Uint8Array, binary: boolean): void;
  /** One line for the server's error log. */
  log(line: string): void;
}

/**
 * A broker carries a Server's publishes to the other servers sharing it, and theirs to this
 * server's subscribers: `new Server({ broker })`. wspoll ships one for Redis (`wspoll/redis`);
 * any object of this shape works.
 */
export interface Broker {
  /** Binds the broker to its server: called once, when the server starts (or attaches). */
  open(host: BrokerHost): void;
  /** The first connection of this server subscribed to `topic`: its messages from other servers are wanted. */
  hold(topic: string): void;
  /** The last connection of this server holding `topic` left it. */
  release(topic: string): void;
  /**
   * Resolves once messages that other servers publish to `topic` from now on reach this server
   * (at once when `topic` is not held, or while the broker cannot reach its peers).
   */
  subscribed(topic: string): Promise<void>;
  /** Carries a publish to the other servers; this server's own subscribers already have it. */
  publish(topic: string, data: string | Uint8Array): void;
  /** The server stopped: drop every subscription and detach from what the broker uses. */
  close(): Promise<void>;
}
