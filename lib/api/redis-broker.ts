/**
 * A Broker over Redis pub/sub, on the program's own clients: node-redis (v4 and later) or
 * ioredis, told apart by their shape, so wspoll depends on neither. Topic T travels on channel
 * `${prefix}T`; each message is an envelope (broker-envelope.ts) carrying the publishing
 * server's id and the payload's type.
 */
import type { Broker, BrokerHost } from './broker.js';
import { encodeEnvelope, newServerId, openEnvelope } from './broker-envelope.js';

/** An event listener of a Redis client. */
export type Listener = (...args: any[]) => void;

/** What the broker needs of any Redis client: node-redis and ioredis clients both have it. */
export interface RedisClientLike {
  /** PUBLISH `message` on `channel`. */
  publish(channel: string, message: Buffer): Promise<unknown>;
  /** SUBSCRIBE (node-redis: with a listener per channel; ioredis: messages come as events). */
  subscribe(...args: any[]): unknown;
  /** UNSUBSCRIBE. */
  unsubscribe(...args: any[]): unknown;
  /** Listens to the client's events ('ready', 'error', 'end', ioredis's 'messageBuffer'). */
  on(event: string, listener: Listener): unknown;
  /** Stops listening. */
  off(event: string, listener: Listener): unknown;
}

/** Options of `redisBroker(options)`. */
export interface RedisBrokerOptions {
  /** Sends this server's publishes: any connected client (it may serve the program too). */
  publisher: RedisClientLike;
  /**
   * Receives the other servers' publishes: a client of its own (in subscriber mode it can run
   * no other command: node-redis `client.duplicate()`, ioredis `new Redis(...)`), given to this
   * broker only. Connect both first (node-redis: `await client.connect()`).
   */
  subscriber: RedisClientLike;
  /** Topic T travels on Redis channel `${prefix}T`. @default 'wspoll:' */
  prefix?: string;
}

/** A Broker for `new Server({ broker })`, with a look at its connection. */
export interface RedisBroker extends Broker {
  /** True while both clients are ready; publishes made otherwise reach this server's subscribers only. */
  readonly connected: boolean;
}

/** Carries a Server's topics across processes through Redis (`new Server({ broker: redisBroker(...) })`). */
export function redisBroker(options: RedisBrokerOptions): RedisBroker {
  return new RedisPubSubBroker(options);
}

/** How the two client libraries subscribe: node-redis takes a listener per call, ioredis emits an event. */
type Flavour = 'node-redis' | 'ioredis';

function flavourOf(client: RedisClientLike, role: string): Flavour {
  if (client === null || typeof client !== 'object' || typeof client.publish !== 'function' || typeof client.on !== 'function') {
    throw new TypeError(`redisBroker: ${role} is not a Redis client`);
  }
  if ('isReady' in client) return 'node-redis';
  if (typeof (client as { status?: unknown }).status === 'string') return 'ioredis';
  throw new TypeError(`redisBroker: ${role} is neither a node-redis nor an ioredis client (no isReady, no status)`);
}

function isReady(client: RedisClientLike): boolean {
  const c = client as { isReady?: unknown; status?: unknown };
  if (typeof c.isReady === 'boolean') return c.isReady;
  return c.status === 'ready';
}

/** Events by which either library says a connection went away. */
const LOST_EVENTS = ['error', 'end', 'close', 'reconnecting'] as const;

/** A promise and its resolver: what `subscribed(topic)` waits on. */
interface Waiter {
  promise: Promise<void>;
  resolve(): void;
}

class RedisPubSubBroker implements RedisBroker {
  private readonly publisher: RedisClientLike;
  private readonly subscriber: RedisClientLike;
  private readonly flavour: Flavour;
  private readonly prefix: string;
  private readonly serverId = newServerId();
  private host: BrokerHost | undefined;
  /** The topic of each channel held. */
  private readonly topicOf = new Map<string, string>();
  /** Channels whose SUBSCRIBE is not confirmed yet. */
  private readonly waiting = new Map<string, Waiter>();
  /** Redis went away and the log said so; cleared when both clients are ready again. */
  private lost = false;
  /** Publishes that stayed on this server while the publisher was not ready. */
  private unsent = 0;
  private publishFailing = false;
  private malformed = 0;
  private readonly listeners: [RedisClientLike, string, Listener][] = [];

  constructor({ publisher, subscriber, prefix = 'wspoll:' }: RedisBrokerOptions) {
    flavourOf(publisher, 'publisher');
    this.flavour = flavourOf(subscriber, 'subscriber');
    if (publisher === subscriber) throw new TypeError('redisBroker: the subscriber must be a client of its own, not the publisher');
    if (typeof prefix !== 'string') throw new TypeError('redisBroker: prefix must be a string');
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.prefix = prefix;
  }

  get connected(): boolean {
    return isReady(this.publisher) && isReady(this.subscriber);
  }

  open(host: BrokerHost): void {
    if (this.host) throw new Error('redisBroker: this broker serves another server already (one broker per server)');
    this.host = host;
    for (const client of [this.publisher, this.subscriber]) {
      for (const event of LOST_EVENTS) this.listen(client, event, (err?: unknown) => this.wentAway(event, err));
      this.listen(client, 'ready', this.cameBack);
    }
    if (this.flavour === 'ioredis') this.listen(this.subscriber, 'messageBuffer', (channel: Buffer, message: Buffer) => this.received(message, channel));
  }

  hold(topic: string): void {
    const channel = this.prefix + topic;
    this.topicOf.set(channel, topic);
    this.subscribe(channel);
  }

  release(topic: string): void {
    const channel = this.prefix + topic;
    if (!this.topicOf.delete(channel)) return;
    this.settle(channel);
    this.attempt(
      () => (this.flavour === 'node-redis' ? this.subscriber.unsubscribe(channel, this.received, true) : this.subscriber.unsubscribe(channel)),
      (err) => this.log(`UNSUBSCRIBE ${channel} failed: ${message(err)}`),
    );
  }

  subscribed(topic: string): Promise<void> {
    return this.waiting.get(this.prefix + topic)?.promise ?? Promise.resolve();
  }

  publish(topic: string, data: string | Uint8Array): void {
    if (!isReady(this.publisher)) {
      this.unsent++;
      return;
    }
    this.attempt(() => this.publisher.publish(this.prefix + topic, encodeEnvelope(this.serverId, data)), this.publishFailed, this.published);
  }

  async close(): Promise<void> {
    const channels = [...this.topicOf.keys()];
    this.topicOf.clear();
    for (const channel of channels) this.settle(channel);
    if (channels.length > 0 && this.connected) {
      await new Promise<void>((resolve) =>
        this.attempt(
          () => (this.flavour === 'node-redis' ? this.subscriber.unsubscribe(channels, this.received, true) : this.subscriber.unsubscribe(channels)),
          () => resolve(),
          () => resolve(),
        ),
      );
    }
    for (const [client, event, listener] of this.listeners.splice(0)) client.off(event, listener);
    this.host = undefined;
  }

  /** SUBSCRIBE: `subscribed(topic)` waits for its answer (or for Redis to be found gone). */
  private subscribe(channels: string | string[]): void {
    if (!this.lost) for (const channel of typeof channels === 'string' ? [channels] : channels) this.waitFor(channel);
    const done = (): void => {
      for (const channel of typeof channels === 'string' ? [channels] : channels) this.settle(channel);
    };
    this.attempt(
      () => (this.flavour === 'node-redis' ? this.subscriber.subscribe(channels, this.received, true) : this.subscriber.subscribe(channels)),
      (err) => {
        done();
        if (this.connected) this.log(`SUBSCRIBE ${typeof channels === 'string' ? channels : `${channels.length} channels`} failed: ${message(err)}`);
      },
      done,
    );
  }

  private waitFor(channel: string): void {
    if (this.waiting.has(channel)) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.waiting.set(channel, { promise, resolve });
  }

  private settle(channel: string): void {
    this.waiting.get(channel)?.resolve();
    this.waiting.delete(channel);
  }

  /** A message on a channel: node-redis calls (message, channel), ioredis's event is turned around to match. */
  private readonly received = (envelope: Buffer, channel: Buffer | string): void => {
    const topic = this.topicOf.get(typeof channel === 'string' ? channel : channel.toString());
    if (topic === undefined || !this.host) return;
    const opened = openEnvelope(this.serverId, envelope);
    if (opened === 'own') return;
    if ('malformed' in opened) {
      // A power of ten: the first, the tenth, the hundredth… so a flood cannot flood the log.
      if (Number.isInteger(Math.log10(++this.malformed))) {
        this.log(`dropped ${this.malformed} unreadable message(s) so far; the last on ${String(channel)}: ${opened.malformed}`);
      }
      return;
    }
    this.host.deliver(topic, opened.payload, opened.binary);
  };

  /** Either client lost its connection (each library says so its own way, often repeatedly): one line. */
  private wentAway(event: string, err: unknown): void {
    if (this.connected && event !== 'end') return; // an error reply, not a lost connection
    for (const channel of [...this.waiting.keys()]) this.settle(channel);
    if (this.lost) return;
    this.lost = true;
    const why = event === 'error' ? message(err) : `connection ${event === 'reconnecting' ? 'lost' : event}`;
    this.log(`Redis unreachable (${why}): publishes reach this server's subscribers only until it is back`);
  }

  /** A client is ready: once both are after an outage, hold every topic again and say so. */
  private readonly cameBack = (): void => {
    if (!this.lost || !this.connected) return;
    this.lost = false;
    const channels = [...this.topicOf.keys()];
    if (channels.length > 0) this.subscribe(channels);
    this.log(`Redis is back: ${channels.length} topic(s) subscribed again; ${this.unsent} publish(es) meanwhile reached this server only`);
    this.unsent = 0;
  };

  private readonly publishFailed = (err: unknown): void => {
    if (this.publishFailing) return;
    this.publishFailing = true;
    if (this.connected) this.log(`PUBLISH failed: ${message(err)} (said once until a publish succeeds)`);
  };

  private readonly published = (): void => {
    this.publishFailing = false;
  };

  /** Calls into a client, which may throw or reject (closed, refused): never an unhandled rejection. */
  private attempt(call: () => unknown, failed: (err: unknown) => void, succeeded?: () => void): void {
    let result: unknown;
    try {
      result = call();
    } catch (err) {
      failed(err);
      return;
    }
    if (typeof (result as Promise<unknown> | undefined)?.then === 'function') (result as Promise<unknown>).then(succeeded, failed);
    else succeeded?.();
  }

  private listen(client: RedisClientLike, event: string, listener: Listener): void {
    client.on(event, listener);
    this.listeners.push([client, event, listener]);
  }

  private log(line: string): void {
    this.host?.log(`redis broker: ${line}`);
  }
}

function message(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? (err.message || err.name);
  return String(err);
}
