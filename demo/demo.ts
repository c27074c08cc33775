/**
 * Wires the demo together: one port serves the page (demo/public/) and the WebSocket endpoint /ws.
 * With `redisUrl`, this process is one of a cluster sharing users, routes, groups and the stream.
 */
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { type Clock, Server } from '../lib/index.js';
import type { MemoryNetwork } from '../lib/testing.js';
import { DemoApp, WS_PATH } from './app.js';
import { Cluster } from './cluster.js';
import { answer, serveStatic } from './static.js';

export interface DemoOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Where the server logs failures. */
  errStream?: Writable;
  /** Share users, routes, groups and the stream with the other demo processes on this Redis. */
  redisUrl?: string;
  /** Serve on this memory network instead of TCP (bots in tests); the game loop then ticks on its clock. */
  network?: MemoryNetwork;
}

export interface RunningDemo {
  port: number;
  /** Closes every connection (1001) and the port. */
  stop(): Promise<void>;
}

export const TICK_HZ = 30;
const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));

export async function startDemo({ host = '127.0.0.1', port = 0, errStream, redisUrl, network }: DemoOptions = {}): Promise<RunningDemo> {
  const files = serveStatic(PUBLIC);
  const cluster = redisUrl ? await Cluster.connect(redisUrl, (line) => errStream?.write(`${line}\n`)) : undefined;
  const server = new Server({
    ...(cluster ? { broker: cluster.broker } : {}),
    // Handshakes wait for the loop, which refuses any path but /ws with 404 before upgrading.
    manualAccept: true,
    maxMessageSize: 64 * 1024,
    // Browsers offer permessage-deflate on every handshake; replies of 1 KiB and more go compressed.
    compression: true,
    // A ping after 2 s of silence measures each connection's round trip (the arena shows it);
    // a dead peer is noticed within ~12 s, so its name comes free.
    pingInterval: 2_000,
    pingTimeout: 10_000,
    onRequest: (req, res) => {
      if (req.url?.split('?')[0] === WS_PATH) return answer(res, 426, 'this is the WebSocket endpoint', { Upgrade: 'websocket' });
      files(req, res);
    },
  });
  try {
    await server.start({ host, port, ...(errStream ? { errStream } : {}), ...(network ? { network } : {}) });
  } catch (err) {
    cluster?.close();
    throw err;
  }
  const app = new DemoApp(server, TICK_HZ, cluster);
  const stopLoop = every(1000 / TICK_HZ, () => app.tick(), network?.clock);
  return {
    port: server.port,
    async stop() {
      stopLoop();
      await cluster?.leave();
      await server.stop();
      cluster?.close();
    },
  };
}

/** Calls `tick` every `ms`, on `clock` when given (a memory network's), else on Node's timers; returns a function that stops it. */
function every(ms: number, tick: () => void, clock?: Clock): () => void {
  if (!clock) {
    const interval = setInterval(tick, ms);
    return () => clearInterval(interval);
  }
  let timer = clock.setTimeout(function step() {
    tick();
    timer = clock.setTimeout(step, ms);
  }, ms);
  return () => timer.cancel();
}
