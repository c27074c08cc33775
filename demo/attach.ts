/**
 * One port for a page and its WebSockets: wspoll attached to the program's own node:http server.
 * An Express or Fastify app works the same way: attach to the http.Server that `app.listen()`
 * (Express) or `fastify.server` (Fastify) gives you.
 *   HOST (default 127.0.0.1), PORT (default 8080; 0 = any free port).
 * Open http://HOST:PORT/ in a browser: every line typed is broadcast to every open page.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Event, Server } from '../lib/index.js';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);

const page = `<!doctype html>
<meta charset="utf-8"><title>wspoll attach demo</title>
<input id="line" placeholder="say something" autofocus><pre id="log"></pre>
<script>
  const ws = new WebSocket(\`\${location.protocol === 'https:' ? 'wss' : 'ws'}://\${location.host}/ws\`);
  const log = (text) => (document.getElementById('log').textContent += text + '\\n');
  ws.onmessage = (e) => log(e.data);
  ws.onclose = (e) => log('closed ' + e.code);
  document.getElementById('line').onkeydown = (e) => {
    if (e.key === 'Enter' && e.target.value) { ws.send(e.target.value); e.target.value = ''; }
  };
</script>`;

// The program's own HTTP server: it serves pages; wspoll only takes the upgrades.
const httpServer = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }
});

await new Promise<void>((resolve) => httpServer.listen(port, host, resolve));
const { port: actualPort } = httpServer.address() as AddressInfo;

// Only our own page may open WebSockets here (cross-site WebSocket hijacking is the threat).
const server = new Server({ origins: [`http://${host}:${actualPort}`, `http://localhost:${actualPort}`] });
server.attach(httpServer, process.stderr);
console.log(`ready http://${host}:${server.port}/`);

// A game tick: drain the events, answer them, let the event loop run until the next tick.
const tick = setInterval(() => {
  for (const event of server.drain(1000)) {
    if (event.type === Event.NewConnection && event.path !== '/ws') server.close(event.connId, 1008, 'use /ws');
    else if (event.type === Event.NewConnection) server.broadcast(`#${event.connId} joined`);
    else if (event.type === Event.Message) server.broadcast(`#${event.connId}: ${String(event.message)}`);
    else if (event.type === Event.Disconnect) server.broadcast(`#${event.connId} left (${event.code})`);
  }
}, 16);

async function shutDown(): Promise<void> {
  clearInterval(tick);
  await server.stop(); // 1001 to every page; the http server is ours to close
  httpServer.close(() => process.exit(0));
}
process.once('SIGINT', () => void shutDown());
process.once('SIGTERM', () => void shutDown());
