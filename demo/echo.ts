/**
 * The echo server used for conformance runs: every message goes back with its type.
 *   HOST (default 127.0.0.1), PORT (default 8080; 0 = any free port), MAX_MESSAGE_SIZE (bytes),
 *   COMPRESSION=1 (accept permessage-deflate; COMPRESSION_THRESHOLD bytes, default 1024; COMPRESSION_CONTEXT=1 keeps contexts).
 * Prints "ready ws://HOST:PORT" once listening. Ctrl-C stops it gracefully.
 */
import { Event, Server, type ServerEvent } from '../lib/index.js';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const maxMessageSize = process.env.MAX_MESSAGE_SIZE ? Number(process.env.MAX_MESSAGE_SIZE) : undefined;
const compression =
  process.env.COMPRESSION === '1'
    ? {
        ...(process.env.COMPRESSION_THRESHOLD ? { threshold: Number(process.env.COMPRESSION_THRESHOLD) } : {}),
        contextTakeover: process.env.COMPRESSION_CONTEXT === '1',
      }
    : undefined;

const server = new Server({ ...(maxMessageSize ? { maxMessageSize } : {}), ...(compression ? { compression } : {}) });
await server.start(host, port, process.stderr);
console.log(`ready ws://${host}:${server.port}`);

process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));

function handle(event: ServerEvent): void {
  if (event.type === Event.Message) server.send(event.connId, event.message);
}

// The lowest-latency loop: wait for one event, then drain whatever else arrived meanwhile.
for (;;) {
  handle(await server.next());
  for (let more; (more = server.poll()); ) handle(more);
}
