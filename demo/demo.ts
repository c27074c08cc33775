/** Wires the demo together: one port serves the page (demo/public/) and the WebSocket endpoint /ws. */
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { Server } from '../lib/index.js';
import { DemoApp, WS_PATH } from './app.js';
import { answer, serveStatic } from './static.js';

export interface DemoOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Where the server logs failures. */
  errStream?: Writable;
}

export interface RunningDemo {
  port: number;
  /** Closes every connection (1001) and the port. */
  stop(): Promise<void>;
}

const TICK_HZ = 30;
const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));

export async function startDemo({ host = '127.0.0.1', port = 0, errStream }: DemoOptions = {}): Promise<RunningDemo> {
  const files = serveStatic(PUBLIC);
  const server = new Server({
    // Handshakes wait for the loop, which refuses any path but /ws with 404 before upgrading.
    manualAccept: true,
    maxMessageSize: 64 * 1024,
    // Browsers offer permessage-deflate on every handshake; replies of 1 KiB and more go compressed.
    compression: true,
    // Notice dead peers within ~20 s, so their names come free.
    pingInterval: 10_000,
    pingTimeout: 10_000,
    onRequest: (req, res) => {
      if (req.url?.split('?')[0] === WS_PATH) return answer(res, 426, 'this is the WebSocket endpoint', { Upgrade: 'websocket' });
      files(req, res);
    },
  });
  await server.start(host, port, errStream);
  const app = new DemoApp(server);
  const loop = setInterval(() => app.tick(), 1000 / TICK_HZ);
  return {
    port: server.port,
    async stop() {
      clearInterval(loop);
      await server.stop();
    },
  };
}
