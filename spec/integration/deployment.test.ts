/**
 * Issue #7, handshake control and deployment, tried the way a new user would: through the
 * public API, over real loopback sockets, with `ws` (and raw sockets where the bytes matter)
 * as the clients. TLS uses a self-signed test certificate kept in spec/helpers (certificate.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { openWs } from '../helpers/ws-client.js';
import { Event, Server, type ServerEvent, type ServerOptions, TimeoutError } from '../../lib/index.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const servers: Server[] = [];
const clients: WebSocket[] = [];
const cleanups: (() => void)[] = [];
after(async () => {
  for (const ws of clients) {
    ws.on('error', () => {});
    ws.terminate();
  }
  await Promise.all(servers.map((s) => s.stop({ timeoutMs: 200 })));
  for (const cleanup of cleanups) cleanup();
});

function errorLog(): { stream: PassThrough; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return { stream, lines };
}

async function startServer<T = unknown>(options: ServerOptions = {}): Promise<{ server: Server<T>; log: string[]; url: string }> {
  const server = new Server<T>({ pingInterval: 0, ...options });
  servers.push(server as Server);
  const { stream, lines } = errorLog();
  await server.start('127.0.0.1', 0, stream);
  return { server, log: lines, url: `ws://127.0.0.1:${server.port}` };
}

function open(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return openWs(clients, url, protocols, options);
}

interface Refusal {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Tries a WebSocket handshake with `ws` that must be refused: the HTTP answer. */
function refused(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<Refusal> {
  const ws = new WebSocket(url, protocols, options);
  clients.push(ws);
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the handshake was accepted')));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body });
        ws.terminate();
      });
    });
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function echoed(ws: WebSocket, data: string | Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    ws.once('message', (reply: Buffer) => resolve(reply));
    ws.send(data);
  });
}

async function expectEvent<K extends ServerEvent['type']>(server: Server<any>, type: K, timeoutMs = 2000): Promise<Extract<ServerEvent, { type: K }>> {
  const event = await server.next(timeoutMs);
  assert.equal(event.type, type, `expected ${type}, got ${JSON.stringify(event)}`);
  return event as Extract<ServerEvent, { type: K }>;
}

async function noEvent(server: Server<any>, waitMs = 150): Promise<void> {
  await assert.rejects(server.next(waitMs), TimeoutError, 'no event expected');
}

/** A game-tick loop that echoes every message; returns its stopper. */
function echoLoop(server: Server<any>): () => void {
  const tick = setInterval(() => {
    for (let ev; (ev = server.poll()); ) if (ev.type === Event.Message) server.send(ev.connId, ev.message);
  }, 2);
  return () => clearInterval(tick);
}

function responseHead(socket: net.Socket | tls.TLSSocket): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve({ status: Number(text.split(' ')[1]), text: text.slice(0, text.indexOf('\r\n\r\n')) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before an answer: ${JSON.stringify(text)}`)));
  });
}

function handshakeHead(path = '/', extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/** A raw handshake: the answer's status and head, and the socket (left open). */
async function rawHandshake(port: number, extra = ''): Promise<{ socket: net.Socket; status: number; text: string }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(handshakeHead('/', extra));
  return { socket, ...(await responseHead(socket)) };
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

function socketClosed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

// ---------------------------------------------------------------------------------------------

describe('origins', () => {
  it('an allowed origin connects; a foreign origin or none gets 403 and no event', async () => {
    const { server, url, log } = await startServer({ origins: ['https://game.example', 'http://localhost:3000'] });
    const ws = await open(url, [], { origin: 'https://game.example' });
    const event = await expectEvent(server, Event.NewConnection);
    assert.equal(event.headers.origin, 'https://game.example');

    const foreign = await refused(url, [], { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /evil\.example/);
    const missing = await refused(url);
    assert.equal(missing.status, 403);
    const similar = await refused(url, [], { origin: 'https://game.example.evil.example' });
    assert.equal(similar.status, 403, 'an exact match, not a prefix');
    await noEvent(server);
    assert.equal(log.length, 3, log.join('\n'));
    ws.close();
    await expectEvent(server, Event.Disconnect);
  });
});

describe('protocols', () => {
  it('the server preference wins: v2 over v1, on the 101 answer and on NewConnection', async () => {
    const { server, url } = await startServer({ protocols: ['v2', 'v1'] });
    const ws = await open(url, ['v1', 'v2']);
    assert.equal(ws.protocol, 'v2');
    const event = await expectEvent(server, Event.NewConnection);
    assert.equal(event.protocol, 'v2');
    assert.equal(server.info(event.connId)?.protocol, 'v2');

    const onlyV1 = await open(url, ['v1']);
    assert.equal(onlyV1.protocol, 'v1');
    assert.equal((await expectEvent(server, Event.NewConnection)).protocol, 'v1');
    ws.terminate();
    onlyV1.terminate();
  });

  it('no overlap, or no offer, gives no Sec-WebSocket-Protocol header and protocol undefined', async () => {
    const { server } = await startServer({ protocols: ['v2', 'v1'] });
    const noOverlap = await rawHandshake(server.port, 'Sec-WebSocket-Protocol: v3, chat\r\n');
    assert.equal(noOverlap.status, 101);
    assert.doesNotMatch(noOverlap.text, /sec-websocket-protocol/i);
    assert.equal((await expectEvent(server, Event.NewConnection)).protocol, undefined);
    const noOffer = await rawHandshake(server.port);
    assert.equal(noOffer.status, 101);
    assert.doesNotMatch(noOffer.text, /sec-websocket-protocol/i);
    assert.equal((await expectEvent(server, Event.NewConnection)).protocol, undefined);
    noOverlap.socket.destroy();
    noOffer.socket.destroy();
  });

  it('a server without protocols chooses none', async () => {
    const { server } = await startServer();
    const offered = await rawHandshake(server.port, 'Sec-WebSocket-Protocol: v1\r\n');
    assert.equal(offered.status, 101);
    assert.doesNotMatch(offered.text, /sec-websocket-protocol/i);
    offered.socket.destroy();
  });
});

describe('manualAccept', () => {
  it('a ConnectionRequest waits over several ticks for accept: 101, then NewConnection', async () => {
    const { server, url } = await startServer({ manualAccept: true, protocols: ['v1'] });
    let opened = false;
    const connecting = open(`${url}/play?token=good`, ['v1'], { headers: { 'X-Client': 'test' } }).then((ws) => {
      opened = true;
      return ws;
    });
    const request = await expectEvent(server, Event.ConnectionRequest);
    assert.equal(request.path, '/play');
    assert.deepEqual(request.query, { token: 'good' });
    assert.equal(request.headers['x-client'], 'test');
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.ok(request.remotePort > 0);
    assert.equal(request.protocol, 'v1');
    assert.equal(server.info(request.connId), undefined, 'not a connection yet');
    // An async token check that takes several ticks.
    const valid = await (async (token: string | undefined) => {
      for (let i = 0; i < 3; i++) await sleep(20);
      return token === 'good';
    })(request.query.token);
    assert.equal(opened, false, 'no 101 before accept');
    assert.equal(valid, true);
    assert.equal(server.accept(request.connId), true);
    const ws = await connecting;
    assert.equal(ws.protocol, 'v1');
    const event = await expectEvent(server, Event.NewConnection);
    assert.equal(event.connId, request.connId, 'the id of the request becomes the connection id');
    assert.equal(event.path, '/play');
    assert.equal(server.accept(request.connId), false, 'answered once only');
    ws.send('hi');
    assert.equal((await expectEvent(server, Event.Message)).message, 'hi');
    ws.close();
    await expectEvent(server, Event.Disconnect);
  });

  it('reject(connId, 401) gives the client 401 and never a NewConnection', async () => {
    const { server, url } = await startServer({ manualAccept: true });
    const answer = refused(`${url}/play?token=bad`);
    const request = await expectEvent(server, Event.ConnectionRequest);
    await sleep(10);
    assert.equal(server.reject(request.connId, 401), true);
    assert.equal((await answer).status, 401);
    assert.equal(server.accept(request.connId), false);
    assert.equal(server.reject(request.connId, 401), false);
    await noEvent(server);
    // The refused request's id is not reused.
    const again = refused(url);
    const next = await expectEvent(server, Event.ConnectionRequest);
    assert.equal(next.connId, request.connId + 1);
    server.reject(next.connId); // default status
    assert.equal((await again).status, 403);
  });

  for (const leaving of ['end', 'destroy'] as const) {
    it(`a request whose client left (${leaving === 'end' ? 'FIN' : 'reset'}) cannot be accepted`, async () => {
      const { server, log } = await startServer({ manualAccept: true });
      const socket = net.connect(server.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(handshakeHead('/gone'));
      const request = await expectEvent(server, Event.ConnectionRequest);
      socket[leaving]();
      await sleep(100);
      assert.equal(server.accept(request.connId), false);
      await noEvent(server);
      assert.equal(server.info(request.connId), undefined);
      assert.deepEqual(log, []);
    });
  }

  for (const mode of ['start', 'attach'] as const) {
    it(`an unanswered request expires with the handshake timeout (${mode})`, async () => {
      const { stream, lines } = errorLog();
      const server = new Server({ manualAccept: true, handshakeTimeout: 300, pingInterval: 0 });
      servers.push(server);
      let port: number;
      if (mode === 'start') {
        await server.start('127.0.0.1', 0, stream);
        port = server.port;
      } else {
        const httpServer = http.createServer((_req, res) => res.end('page'));
        cleanups.push(() => (httpServer.closeAllConnections(), httpServer.close()));
        server.attach(httpServer, stream);
        await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
        port = (httpServer.address() as net.AddressInfo).port;
      }
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(handshakeHead('/slow'));
      const request = await expectEvent(server, Event.ConnectionRequest);
      const started = Date.now();
      await socketClosed(socket);
      const waited = Date.now() - started;
      assert.ok(waited >= 150 && waited < 2000, `closed after ${waited} ms`);
      assert.equal(server.accept(request.connId), false, 'too late');
      await noEvent(server);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /timeout/);
      await server.stop({ timeoutMs: 100 });
    });
  }
});

describe('maxConnections', () => {
  it('a third connection over maxConnections: 2 gets 503; a freed slot takes a new one', async () => {
    const { server, url } = await startServer({ maxConnections: 2 });
    const a = await open(url);
    const b = await open(url);
    await expectEvent(server, Event.NewConnection);
    await expectEvent(server, Event.NewConnection);
    const third = await refused(url);
    assert.equal(third.status, 503);
    await noEvent(server);
    a.close();
    await expectEvent(server, Event.Disconnect);
    const c = await open(url);
    await expectEvent(server, Event.NewConnection);
    assert.equal((await refused(url)).status, 503);
    b.terminate();
    c.terminate();
  });

  it('requests waiting for manual accept count toward the limit', async () => {
    const { server, url } = await startServer({ maxConnections: 1, manualAccept: true });
    const first = open(url);
    const request = await expectEvent(server, Event.ConnectionRequest);
    assert.equal((await refused(url)).status, 503);
    server.accept(request.connId);
    const ws = await first;
    await expectEvent(server, Event.NewConnection);
    ws.terminate();
  });
});

describe('TLS', () => {
  let cert: { key: Buffer; cert: Buffer };
  before(() => {
    cert = selfSignedCertificate();
  });

  it('start({ host, port, tls }) serves wss:// and a ws client echoes over it', async () => {
    const server = new Server({ pingInterval: 0 });
    servers.push(server);
    const { stream, lines } = errorLog();
    await server.start({ host: '127.0.0.1', port: 0, tls: { key: cert.key, cert: cert.cert }, errStream: stream });
    const stopEcho = echoLoop(server);
    try {
      const ws = await open(`wss://127.0.0.1:${server.port}/secure`, [], { ca: cert.cert });
      assert.equal((await echoed(ws, 'over tls')).toString(), 'over tls');
      const big = randomBytes(200_000);
      assert.deepEqual(await echoed(ws, big), big);
      // Names check out too: the certificate is for localhost.
      const byName = await open(`wss://127.0.0.1:${server.port}/`, [], { ca: cert.cert, servername: 'localhost' } as WebSocket.ClientOptions);
      assert.equal((await echoed(byName, 'by name')).toString(), 'by name');
      const bye = [closed(ws), closed(byName)];
      ws.close(1000, 'done');
      byName.close(4000);
      assert.deepEqual(
        (await Promise.all(bye)).map((c) => c.code),
        [1000, 4000],
      );
      // An untrusting client fails the TLS handshake.
      await assert.rejects(open(`wss://127.0.0.1:${server.port}/`), /self-signed|certificate/i);
    } finally {
      stopEcho();
    }
    // A plain ws:// client on the TLS port gets no WebSocket.
    await assert.rejects(open(`ws://127.0.0.1:${server.port}/`));
    // Clean closes write nothing; the plain client on the TLS port is a failure of its own.
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /127\.0\.0\.1:\d+: TLS handshake failed: ERR_SSL/);
  });

  it('a TLS connection that never sends a request is cut by the handshake timeout', async () => {
    const server = new Server({ pingInterval: 0, handshakeTimeout: 300 });
    servers.push(server);
    const { stream, lines } = errorLog();
    await server.start({ host: '127.0.0.1', port: 0, tls: cert, errStream: stream });
    // TLS done, then silence.
    const silent = tls.connect({ host: '127.0.0.1', port: server.port, ca: cert.cert });
    silent.on('error', () => {});
    await new Promise((resolve) => silent.once('secureConnect', resolve));
    const started = Date.now();
    await new Promise((resolve) => silent.once('close', resolve));
    assert.ok(Date.now() - started < 2000);
    // Plain TCP that never starts TLS.
    const tcp = net.connect(server.port, '127.0.0.1');
    tcp.on('error', () => {});
    const tcpStarted = Date.now();
    await socketClosed(tcp);
    assert.ok(Date.now() - tcpStarted < 2000, 'the TLS handshake has the same timeout');
    await noEvent(server, 50);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0]!, /handshake timeout after 300 ms/);
    assert.match(lines[1]!, /TLS handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT/);
  });
});

describe('attach', () => {
  const page = '<!doctype html><title>game</title><script>new WebSocket(`ws://${location.host}/ws`)</script>';

  function pageServer(): http.Server {
    const httpServer = http.createServer((req, res) => {
      res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html' });
      res.end(req.url === '/' ? page : 'not found');
    });
    cleanups.push(() => (httpServer.closeAllConnections(), httpServer.close()));
    return httpServer;
  }

  it('a page and a WebSocket share one port on an existing http server', async () => {
    const httpServer = pageServer();
    const server = new Server({ pingInterval: 0 });
    servers.push(server);
    const { stream, lines } = errorLog();
    server.attach(httpServer, stream);
    assert.throws(() => server.attach(httpServer), /already/);
    await assert.rejects(server.start('127.0.0.1', 0), /already/);
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const { port } = httpServer.address() as net.AddressInfo;
    assert.equal(server.port, port, 'server.port reports the shared port');

    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), page);
    const stopEcho = echoLoop(server);
    const ws = await open(`ws://127.0.0.1:${port}/ws`);
    assert.equal((await echoed(ws, 'same port')).toString(), 'same port');
    assert.equal((await fetch(`http://127.0.0.1:${port}/missing`)).status, 404, "plain requests stay the program's");
    stopEcho();

    // Bad handshakes are still refused by the library.
    const bad = net.connect(port, '127.0.0.1');
    bad.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    assert.equal((await responseHead(bad)).status, 400);
    bad.destroy();

    // stop() ends the WebSockets but leaves the program's server serving pages.
    const bye = closed(ws);
    await server.stop();
    assert.equal((await bye).code, 1001);
    assert.equal(httpServer.listening, true);
    const after = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await after.text(), page);
    assert.equal(lines.length, 1, lines.join('\n'));
  });

  it('works on an https server too (wss:// and https:// on one port)', async () => {
    const cert = selfSignedCertificate();
    const httpsServer = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.end('secure page'));
    cleanups.push(() => (httpsServer.closeAllConnections(), httpsServer.close()));
    const server = new Server({ pingInterval: 0 });
    servers.push(server);
    server.attach(httpsServer);
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    const stopEcho = echoLoop(server);
    try {
      const ws = await open(`wss://127.0.0.1:${server.port}/`, [], { ca: cert.cert });
      assert.equal((await echoed(ws, 'wss on https')).toString(), 'wss on https');
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: server.port, path: '/', ca: cert.cert }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      assert.equal(body, 'secure page');
      ws.close();
    } finally {
      stopEcho();
    }
  });
});

describe('plain HTTP on the server port', () => {
  it("onRequest(req, res) answers plain requests", async () => {
    const { server } = await startServer({
      onRequest: (req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`hello from ${req.method} ${req.url}`);
      },
    });
    const res = await fetch(`http://127.0.0.1:${server.port}/status?x=1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello from GET /status?x=1');
    // WebSockets still work beside it.
    const ws = await open(`ws://127.0.0.1:${server.port}/`);
    await expectEvent(server, Event.NewConnection);
    ws.terminate();
  });

  it('without onRequest, a plain request gets 426 Upgrade Required', async () => {
    const { server, log } = await startServer();
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(res.status, 426);
    assert.equal(res.headers.get('upgrade'), 'websocket');
    assert.equal(res.headers.get('sec-websocket-version'), '13');
    await res.text();
    await noEvent(server, 50);
    assert.deepEqual(log, [], 'a browser visiting the port is no failure');
  });
});

describe('stop', () => {
  it('stop() gives every client 1001 and keeps every Disconnect pollable', async () => {
    const { server, url } = await startServer();
    const sockets = await Promise.all([open(url), open(url), open(url)]);
    const ids = new Set<number>();
    for (let i = 0; i < 3; i++) ids.add((await expectEvent(server, Event.NewConnection)).connId);
    const seen = sockets.map(closed);
    const started = Date.now();
    await server.stop();
    assert.ok(Date.now() - started < 2000, 'cooperative clients do not make stop wait for the timeout');
    for (const result of await Promise.all(seen)) assert.equal(result.code, 1001);
    const events = server.drain();
    assert.equal(events.length, 3);
    for (const event of events) {
      assert.equal(event.type, Event.Disconnect);
      assert.ok(ids.delete(event.connId));
      if (event.type === Event.Disconnect) {
        assert.equal(event.code, 1001);
        assert.equal(event.wasClean, true);
        assert.equal(event.initiator, 'local');
      }
    }
    // Nothing listens any more.
    await assert.rejects(open(url), /ECONNREFUSED/);
    assert.equal(server.stop(), server.stop(), 'stop is idempotent');
  });

  it('stop({ code, reason, timeoutMs }): pending handshakes get 503, silent peers are cut after the timeout', async () => {
    const { server, url } = await startServer({ manualAccept: true });
    // Two accepted ws clients.
    const wsClients: WebSocket[] = [];
    for (let i = 0; i < 2; i++) {
      const opening = open(url);
      server.accept((await expectEvent(server, Event.ConnectionRequest)).connId);
      wsClients.push(await opening);
      await expectEvent(server, Event.NewConnection);
    }
    // A raw client that never answers the close frame.
    const mute = net.connect(server.port, '127.0.0.1');
    mute.on('error', () => {});
    mute.write(handshakeHead('/mute'));
    const muteId = (await expectEvent(server, Event.ConnectionRequest)).connId;
    server.accept(muteId);
    assert.equal((await responseHead(mute)).status, 101);
    await expectEvent(server, Event.NewConnection);
    // One handshake left waiting for accept.
    const waiting = refused(url);
    await expectEvent(server, Event.ConnectionRequest);

    const seen = wsClients.map(closed);
    const started = Date.now();
    await server.stop({ code: 1012, reason: 'restarting', timeoutMs: 400 });
    const took = Date.now() - started;
    assert.ok(took >= 350 && took < 2500, `stop took ${took} ms`);
    assert.equal((await waiting).status, 503);
    for (const result of await Promise.all(seen)) assert.deepEqual(result, { code: 1012, reason: 'restarting' });
    assert.equal(mute.destroyed || (await socketClosed(mute), true), true);

    const events = server.drain();
    assert.equal(events.length, 3);
    const muteEnd = events.find((e) => e.connId === muteId);
    assert.ok(muteEnd?.type === Event.Disconnect);
    assert.equal(muteEnd.code, 1006);
    assert.equal(muteEnd.wasClean, false);
    assert.equal(muteEnd.initiator, 'timeout');
    for (const event of events.filter((e) => e.connId !== muteId)) {
      assert.ok(event.type === Event.Disconnect && event.code === 1012 && event.wasClean);
    }
    assert.equal(server.pending, 0);
    await assert.rejects(server.next(50), TimeoutError);
  });

  it('stop({ timeoutMs }) also bounds connections whose close had already started', async () => {
    const { server } = await startServer({ closeTimeout: 10_000 });
    const mute = net.connect(server.port, '127.0.0.1');
    mute.on('error', () => {});
    mute.write(handshakeHead('/mute'));
    assert.equal((await responseHead(mute)).status, 101);
    const { connId } = await expectEvent(server, Event.NewConnection);
    assert.equal(server.close(connId, 4000, 'kicked'), true); // the peer never answers
    const started = Date.now();
    await server.stop({ timeoutMs: 300 });
    const took = Date.now() - started;
    assert.ok(took < 2000, `stop took ${took} ms, not bounded by its timeoutMs`);
    const gone = await expectEvent(server, Event.Disconnect, 10);
    assert.equal(gone.code, 1006);
    await socketClosed(mute);
  });

  it('while an attached server stops, new handshakes get 503', async () => {
    const httpServer = http.createServer((_req, res) => res.end('page'));
    cleanups.push(() => (httpServer.closeAllConnections(), httpServer.close()));
    const server = new Server({ pingInterval: 0 });
    servers.push(server);
    server.attach(httpServer);
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const mute = net.connect(server.port, '127.0.0.1');
    mute.on('error', () => {});
    mute.write(handshakeHead('/mute'));
    assert.equal((await responseHead(mute)).status, 101);
    await expectEvent(server, Event.NewConnection);
    const stopping = server.stop({ timeoutMs: 500 });
    const during = await refused(`ws://127.0.0.1:${server.port}/`);
    assert.equal(during.status, 503);
    await stopping;
    await socketClosed(mute);
  });

  it('stop() answers a close that arrived just before it, even if the Disconnect was not polled yet', async () => {
    const { server, url } = await startServer();
    const ws = await open(url);
    await expectEvent(server, Event.NewConnection);
    const clientSaw = closed(ws);
    ws.close(4000, 'leaving');
    await until(() => server.pending === 1); // the Disconnect waits in the queue
    const started = Date.now();
    await server.stop({ timeoutMs: 3000 });
    assert.ok(Date.now() - started < 1500, `stop took ${Date.now() - started} ms`);
    assert.equal((await clientSaw).code, 4000, 'the client got its close echoed, not a cut');
    const gone = await expectEvent(server, Event.Disconnect, 10);
    assert.equal(gone.code, 4000);
    assert.equal(gone.initiator, 'peer');
  });

  it('stop() without connections, and before start, resolves', async () => {
    const { server } = await startServer();
    await server.stop();
    await new Server().stop();
  });
});
