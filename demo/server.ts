/**
 * `npm start`: the four-workflow demo on one port, the page at / and the WebSocket at /ws.
 *   HOST (default 127.0.0.1, this machine only; 0.0.0.0 for every interface), PORT (default 8080; 0 = any free port).
 *   REDIS_URL (e.g. redis://127.0.0.1:6379): one of several demo processes sharing users, routes,
 *   groups and the stream through that Redis; without it, one process on its own.
 * Prints "ready http://HOST:PORT/" once listening. Ctrl-C (or SIGTERM) closes every connection with 1001 and exits.
 */
import { startDemo } from './demo.js';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be 0–65535, got "${process.env.PORT}"`);
  process.exit(2);
}

const redisUrl = process.env.REDIS_URL || undefined;
const demo = await startDemo({ host, port, errStream: process.stderr, redisUrl }).catch((err: NodeJS.ErrnoException) => {
  console.error(err.code ? `cannot listen on ${host}:${port}: ${err.code}` : err.message);
  process.exit(1);
});
if (redisUrl) console.log(`sharing users, routes, groups and the stream through ${redisUrl}`);
console.log(`ready http://${urlHost(host)}:${demo.port}/`);

const shutDown = () => void demo.stop().then(() => process.exit(0));
process.once('SIGINT', shutDown);
process.once('SIGTERM', shutDown);

/** A wildcard address is not one to browse to; an IPv6 one needs brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
