// The wspoll benchmark server.
//   node --expose-gc --import tsx bench/server.ts PORT MODE   (or PORT / BENCH_MODE env)
// Listens on 127.0.0.1, prints `ready <port>` once listening, answers SIGUSR2 with `rss <bytes>`
// (after a gc when run with --expose-gc).
//   echo:      every message back to its sender with its type (string → text, Buffer → binary);
//   broadcast: every message to all connections, sender included, through server.broadcast()
//              (the frame is encoded once);
//   deflate:   echo, with permessage-deflate accepted (`compression: true`: its defaults);
//   publish:   with a Redis broker on REDIS_URL (node-redis clients): every message is published
//              to topic `bench`; with BENCH_SUBSCRIBE=1 every connection subscribes to it. Two
//              such processes on one Redis, one of each kind: the cross-process scenario.
// Default limits, except maxMessageSize, large enough for the 64 KiB scenario.
// The loop is the low-latency one: await next(), then drain what is already queued with poll().
// WSPOLL_BENCH_LIB=/path/to/other/lib/index.js runs this same server on another checkout's library
// (run.ts --baseline, when that checkout has no bench/server.ts of its own).
import { pathToFileURL } from 'node:url';

const libPath = process.env.WSPOLL_BENCH_LIB;
const { Server, Event }: typeof import('../lib/index.js') = await import(
  libPath ? pathToFileURL(libPath).href : '../lib/index.js'
);

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const mode = process.argv[3] ?? process.env.BENCH_MODE ?? 'echo';
if (mode !== 'echo' && mode !== 'broadcast' && mode !== 'publish' && mode !== 'deflate') {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const server = new Server({
  maxMessageSize: 1 << 20,
  ...(mode === 'publish' ? { broker: await redisBrokerFrom(process.env.REDIS_URL) } : {}),
  ...(mode === 'deflate' ? { compression: true } : {}),
});
await server.start('127.0.0.1', port);

process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  console.log(`rss ${process.memoryUsage().rss}`);
});

console.log(`ready ${server.port}`);

type Ev = NonNullable<ReturnType<typeof server.poll>>;

const subscribe = process.env.BENCH_SUBSCRIBE === '1';
const handle =
  mode === 'echo' || mode === 'deflate'
    ? (ev: Ev): void => {
        if (ev.type === Event.Message) server.send(ev.connId, ev.message);
      }
    : mode === 'broadcast'
      ? (ev: Ev): void => {
          if (ev.type === Event.Message) server.broadcast(ev.message);
        }
      : (ev: Ev): void => {
          if (ev.type === Event.Message) server.publish('bench', ev.message);
          else if (ev.type === Event.NewConnection && subscribe) server.subscribe(ev.connId, 'bench');
        };

/** A broker on two node-redis clients of `url` (this checkout's wspoll/redis). */
async function redisBrokerFrom(url: string | undefined) {
  if (!url) {
    console.error('publish mode needs REDIS_URL');
    process.exit(2);
  }
  const { createClient } = await import('redis');
  const { redisBroker } = await import('../lib/redis.js');
  const publisher = createClient({ url });
  const subscriber = publisher.duplicate();
  await Promise.all([publisher.connect(), subscriber.connect()]);
  return redisBroker({ publisher, subscriber });
}

for (;;) {
  handle(await server.next());
  for (let ev; (ev = server.poll()); ) handle(ev);
}
