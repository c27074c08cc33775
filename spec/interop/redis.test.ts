/**
 * redisBroker against a real redis-server (Debian's), with both client libraries it takes:
 * node-redis and ioredis. Two Servers in this process, each with its own broker and its own pair
 * of clients, stand for two processes (spec/integration/demo-cluster.test.ts runs two real ones).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { Client, Event, Server } from '../../lib/index.js';
import { redisBroker, type RedisBroker, type RedisClientLike } from '../../lib/redis.js';
import { redisServer } from '../helpers/peers.js';
import { RedisServer } from '../helpers/redis-server.js';

/** A pair of connected clients of one library, and how to close them. */
interface Pair {
  publisher: RedisClientLike;
  subscriber: RedisClientLike;
  close(): Promise<void>;
}

const LIBRARIES: Record<string, (url: string) => Promise<Pair>> = {
  'node-redis': async (url) => {
    const publisher = createClient({ url });
    const subscriber = publisher.duplicate();
    await Promise.all([publisher.connect(), subscriber.connect()]);
    return {
      publisher,
      subscriber,
      close: async () => {
        publisher.destroy();
        subscriber.destroy();
      },
    };
  },
  ioredis: async (url) => {
    const publisher = new Redis(url);
    const subscriber = new Redis(url);
    await Promise.all([once(publisher, 'ready'), once(subscriber, 'ready')]);
    return {
      publisher,
      subscriber,
      close: async () => {
        publisher.disconnect();
        subscriber.disconnect();
      },
    };
  },
};

/** A Server with a broker on its own clients, logging into `lines`. */
interface Node {
  server: Server;
  broker: RedisBroker;
  pair: Pair;
  lines: string[];
}

async function node(redis: RedisServer, library: string, prefix?: string): Promise<Node> {
  const pair = await LIBRARIES[library]!(redis.url);
  const broker = redisBroker({ publisher: pair.publisher, subscriber: pair.subscriber, ...(prefix ? { prefix } : {}) });
  const server = new Server({ broker, pingInterval: 0 });
  const log = new PassThrough();
  const lines: string[] = [];
  log.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  await server.start({ host: '127.0.0.1', port: 0, errStream: log });
  return { server, broker, pair, lines };
}

/** A client of `n`, its connection subscribed to `topic` on the server (the subscription confirmed). */
async function subscriber(n: Node, topic: string): Promise<{ client: Client; connId: number }> {
  const client = await Client.connect(`ws://127.0.0.1:${n.server.port}`, { pingInterval: 0, closeTimeout: 200 });
  let ev = await n.server.next(2000);
  while (ev.type !== Event.NewConnection) ev = await n.server.next(2000); // earlier tests' Disconnects
  assert.ok(n.server.subscribe(ev.connId, topic));
  await n.server.whenSubscribed(topic);
  return { client, connId: ev.connId };
}

/** Every message `client` gets within `ms`. */
async function collect(client: Client, ms: number): Promise<(string | Buffer)[]> {
  const got: (string | Buffer)[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return got;
    const ev = await client.next(left).catch(() => undefined);
    if (ev?.type === Event.Message) got.push(ev.message);
  }
}

/** Redis's own view: how many subscribers each channel has. */
async function numsub(redis: RedisServer, channels: string[]): Promise<number[]> {
  const admin = new Redis(redis.url);
  try {
    const reply = (await admin.call('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[];
    return channels.map((_, i) => Number(reply[2 * i + 1]));
  } finally {
    admin.disconnect();
  }
}

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('redisBroker', { skip: redisServer.skip }, () => {
  let redis: RedisServer;

  before(async () => {
    redisServer.require();
    redis = await RedisServer.launch();
  });

  after(async () => {
    await redis?.close();
  });

  for (const library of Object.keys(LIBRARIES)) {
    describe(`with ${library} clients`, () => {
      let a: Node;
      let b: Node;
      const clients: Client[] = [];

      before(async () => {
        await redis.start();
        a = await node(redis, library);
        b = await node(redis, library);
      });

      after(async () => {
        for (const client of clients) client.drop();
        await Promise.all([a?.server.stop({ timeoutMs: 500 }), b?.server.stop({ timeoutMs: 500 })]);
        await Promise.all([a?.pair.close(), b?.pair.close()]);
      });

      test('5000 publishes from one server reach a subscriber on another, in order, each once', async () => {
        const far = await subscriber(b, 'order');
        const near = await subscriber(a, 'order');
        clients.push(far.client, near.client);
        const started = performance.now();
        for (let i = 0; i < 5000; i++) assert.equal(a.server.publish('order', `#${i}`), 1, 'publish counts this server’s subscribers');
        for (const { client } of [far, near]) {
          for (let i = 0; i < 5000; i++) {
            const ev = await client.next(5000);
            assert.ok(ev.type === Event.Message && ev.message === `#${i}`, `message ${i}: ${JSON.stringify(ev)}`);
          }
        }
        const ms = performance.now() - started;
        console.log(`# ${library}: 5000 publishes reached the other server's subscriber in ${ms.toFixed(0)} ms`);
        assert.deepEqual(await collect(near.client, 100), [], 'the publishing server ignores its own echo');
        far.client.drop();
        near.client.drop();
      });

      test('text and binary payloads arrive as they were sent', async () => {
        const far = await subscriber(b, 'payloads');
        clients.push(far.client);
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const text = 'héllo 🦊 \u0000 end';
        const large = Buffer.alloc(100_000, 7);
        a.server.publish('payloads', text);
        a.server.publish('payloads', bytes);
        a.server.publish('payloads', '');
        a.server.publish('payloads', new Uint8Array(0));
        a.server.publish('payloads', large);
        const got = [];
        for (let i = 0; i < 5; i++) got.push(await far.client.next(2000));
        assert.deepEqual(got.map((ev) => ev.type === Event.Message && ev.binary), [false, true, false, true, true]);
        const messages = got.map((ev) => (ev.type === Event.Message ? ev.message : undefined));
        assert.equal(messages[0], text);
        assert.deepEqual(messages[1], bytes);
        assert.equal(messages[2], '');
        assert.deepEqual(messages[3], Buffer.alloc(0));
        assert.deepEqual(messages[4], large);
        far.client.drop();
      });

      test('a channel is held only while a connection of that server holds the topic', async () => {
        const channel = 'wspoll:held';
        assert.deepEqual(await numsub(redis, [channel]), [0]);
        const first = await subscriber(b, 'held');
        const second = await subscriber(b, 'held');
        clients.push(first.client, second.client);
        assert.deepEqual(await numsub(redis, [channel]), [1], 'one subscription for the server, whatever its connections');
        assert.ok(b.server.unsubscribe(first.connId, 'held'));
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(await numsub(redis, [channel]), [1], 'the other connection still holds it');
        second.client.drop(); // leaving drops every topic
        await until(async () => (await numsub(redis, [channel]))[0] === 0, 2000, 'the channel released');
        assert.equal(a.server.publish('held', 'nobody'), 0);
        first.client.drop();
      });

      test('a message of another format on the channel is dropped with a line in the log', async () => {
        const far = await subscriber(b, 'garbage');
        clients.push(far.client);
        const before = b.lines.length;
        await a.pair.publisher.publish('wspoll:garbage', Buffer.from('not an envelope'));
        const foreign = Buffer.concat([Buffer.of(1), Buffer.alloc(16, 0xee), Buffer.from('from a foreign server')]);
        await a.pair.publisher.publish('wspoll:garbage', foreign);
        const notUtf8 = Buffer.concat([Buffer.of(1), Buffer.alloc(16, 0xee), Buffer.of(0xff)]);
        await a.pair.publisher.publish('wspoll:garbage', notUtf8);
        assert.deepEqual(await collect(far.client, 300), ['from a foreign server'], 'a well-formed envelope from another id is delivered');
        assert.deepEqual(b.lines.slice(before), [
          'wspoll: redis broker: dropped 1 unreadable message(s) so far; the last on wspoll:garbage: 15 bytes, shorter than the 17-byte header',
        ]);
        far.client.drop();
      });

      test('a prefix puts the topics on other channels', async () => {
        const c = await node(redis, library, 'game1/');
        const d = await node(redis, library, 'game1/');
        try {
          const far = await subscriber(d, 'lobby');
          const other = await subscriber(b, 'lobby'); // the default prefix: not the same channel
          clients.push(far.client, other.client);
          assert.deepEqual(await numsub(redis, ['game1/lobby', 'wspoll:lobby']), [1, 1]);
          c.server.publish('lobby', 'hi');
          assert.deepEqual(await collect(far.client, 300), ['hi']);
          assert.deepEqual(await collect(other.client, 50), []);
          far.client.drop();
          other.client.drop();
        } finally {
          await Promise.all([c.server.stop({ timeoutMs: 500 }), d.server.stop({ timeoutMs: 500 })]);
          await Promise.all([c.pair.close(), d.pair.close()]);
        }
      });

      test('Redis down: local traffic goes on, one line; it comes back: topics are subscribed again', async () => {
        const far = await subscriber(b, 'outage');
        const near = await subscriber(a, 'outage');
        clients.push(far.client, near.client);
        const linesBefore = [a.lines.length, b.lines.length];
        await redis.stop();
        await until(() => !a.broker.connected && !b.broker.connected, 5000, 'both brokers see Redis gone');
        // Local publishes go on; nothing is queued for Redis meanwhile.
        for (let i = 0; i < 10; i++) assert.equal(a.server.publish('outage', `local ${i}`), 1);
        assert.deepEqual(await collect(near.client, 200), Array.from({ length: 10 }, (_, i) => `local ${i}`));
        await a.server.whenSubscribed('outage'); // does not wait while Redis is away
        await new Promise((resolve) => setTimeout(resolve, 1000)); // several reconnection attempts
        for (const [n, from] of [[a, linesBefore[0]!], [b, linesBefore[1]!]] as const) {
          const lines = n.lines.slice(from);
          assert.equal(lines.length, 1, lines.join('\n'));
          assert.match(lines[0]!, /^wspoll: redis broker: Redis unreachable \(.+\): publishes reach this server's subscribers only until it is back$/);
        }

        const restarted = performance.now();
        await redis.start(); // empty: no persistence
        // Routing resumes within seconds: probe until a publish from a reaches b's subscriber.
        let seconds = 0;
        for (let n = 0; ; n++) {
          a.server.publish('outage', `probe ${n}`);
          const got = await collect(far.client, 100);
          if (got.length > 0) {
            seconds = (performance.now() - restarted) / 1000;
            break;
          }
          assert.ok(performance.now() - restarted < 10_000, 'routing resumed within 10 s');
        }
        console.log(`# ${library}: routing resumed ${seconds.toFixed(2)} s after Redis came back`);
        await until(() => a.broker.connected && b.broker.connected, 5000, 'both brokers connected');
        for (const [n, from] of [[a, linesBefore[0]!], [b, linesBefore[1]!]] as const) {
          const lines = n.lines.slice(from);
          assert.equal(lines.length, 2, lines.join('\n'));
          assert.match(lines[1]!, /^wspoll: redis broker: Redis is back: \d+ topic\(s\) subscribed again; \d+ publish\(es\) meanwhile reached this server only$/);
        }
        assert.match(a.lines.at(-1)!, /subscribed again; [1-9]\d* publish\(es\)/, 'the publishes made meanwhile are counted');
        assert.deepEqual(await numsub(redis, ['wspoll:outage']), [2]);
        await collect(near.client, 100);
        a.server.publish('outage', 'after');
        assert.deepEqual(await collect(far.client, 300), ['after']);
        assert.deepEqual(await collect(near.client, 100), ['after']);
        far.client.drop();
        near.client.drop();
      });

      test('stop() releases every channel and takes its listeners off the clients', async () => {
        const pair = await LIBRARIES[library]!(redis.url);
        const emitter = pair.subscriber as unknown as NodeJS.EventEmitter;
        const counts = (): number[] => ['error', 'ready', 'end', 'messageBuffer'].map((e) => emitter.listenerCount(e));
        const initial = counts();
        const server = new Server({ broker: redisBroker(pair), pingInterval: 0 });
        await server.start('127.0.0.1', 0);
        assert.notDeepEqual(counts(), initial);
        const client = await Client.connect(`ws://127.0.0.1:${server.port}`, { pingInterval: 0, closeTimeout: 200 });
        const ev = await server.next(2000);
        assert.ok(server.subscribe(ev.connId, 'stopping'));
        await server.whenSubscribed('stopping');
        assert.deepEqual(await numsub(redis, ['wspoll:stopping']), [1]);
        await server.stop({ timeoutMs: 500 });
        client.drop();
        assert.deepEqual(await numsub(redis, ['wspoll:stopping']), [0]);
        assert.deepEqual(counts(), initial);
        await pair.close();
      });
    });
  }

  test('redisBroker refuses what is not a node-redis or ioredis client, and one broker for two servers', async () => {
    const fake = { publish: async () => 0, subscribe() {}, unsubscribe() {}, on() {}, off() {} };
    assert.throws(() => redisBroker({ publisher: fake, subscriber: fake }), /neither a node-redis nor an ioredis client/);
    assert.throws(() => redisBroker({ publisher: {} as RedisClientLike, subscriber: fake }), /publisher is not a Redis client/);
    const pair = await LIBRARIES.ioredis!(redis.url);
    try {
      assert.throws(() => redisBroker({ publisher: pair.publisher, subscriber: pair.publisher }), /a client of its own/);
      const broker = redisBroker(pair);
      const first = new Server({ broker, pingInterval: 0 });
      await first.start('127.0.0.1', 0);
      const second = new Server({ broker, pingInterval: 0 });
      await assert.rejects(second.start('127.0.0.1', 0), /one broker per server/);
      await Promise.all([first.stop(), second.stop()]);
    } finally {
      await pair.close();
    }
  });
});
