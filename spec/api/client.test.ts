/**
 * The Client of issue #3 over real loopback sockets, against three servers: our own Server
 * (stepped with `await next()`), the `ws` package's WebSocketServer, and Python's `websockets`
 * (ws:// and wss:// with a self-signed certificate made here). Raw `node:net` servers answer
 * the handshakes that must fail and show the bytes on the wire where they matter (masking).
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type WebSocket, WebSocketServer } from 'ws';
import { acceptFor } from '../helpers/raw-client.js';
import { randomMaskKey } from '../../lib/mask-pool.js';
import {
  Client,
  type ClientEvent,
  type ClientOptions,
  ErrorCode,
  Event,
  HandshakeError,
  SendStatus,
  Server,
  type ServerEvent,
  type ServerOptions,
  TimeoutError,
} from '../../lib/index.js';

const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];
const WAIT = 3000;

// ---------------------------------------------------------------------------------------------
// Helpers

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function connect(url: string, options: ClientOptions = {}): Promise<Client> {
  const client = await Client.connect(url, { pingInterval: 0, closeTimeout: 1000, ...options });
  cleanups.push(() => client.drop());
  return client;
}

async function startServer(options: ServerOptions = {}, tls?: { key: Buffer; cert: Buffer }): Promise<{ server: Server; url: string }> {
  const server = new Server({ pingInterval: 0, ...options });
  cleanups.push(() => server.stop({ timeoutMs: 200 }));
  await server.start({ host: '127.0.0.1', port: 0, ...(tls ? { tls } : {}) });
  return { server, url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${server.port}` };
}

/** Our Server with one Client connected; returns the server's connId for it. */
async function pair(options: ClientOptions = {}, serverOptions: ServerOptions = {}) {
  const { server, url } = await startServer(serverOptions);
  const client = await connect(url, options);
  const opened = await server.next(WAIT);
  assert.equal(opened.type, Event.NewConnection);
  return { server, client, connId: opened.connId };
}

async function nextOf<T extends ClientEvent | ServerEvent, K extends T['type']>(
  source: { next(ms: number): Promise<T> },
  type: K,
): Promise<Extract<T, { type: K }>> {
  const event = await source.next(WAIT);
  assert.equal(event.type, type, `expected ${type}, got ${JSON.stringify(event).slice(0, 200)}`);
  return event as Extract<T, { type: K }>;
}

/** Sends text and binary messages of every size in SIZES and checks each echo. */
async function assertEchoSizes(client: Client, label: string, serve: () => Promise<void> = async () => {}): Promise<void> {
  for (const size of SIZES) {
    const text = 'é'.repeat(size >> 1) + 'x'.repeat(size & 1);
    assert.equal(Buffer.byteLength(text), size);
    client.sendText(text);
    await serve();
    const textEcho = await nextOf(client, Event.Message);
    assert.equal(textEcho.binary, false, `${label}: text ${size}`);
    assert.ok(textEcho.message === text, `${label}: text of ${size} bytes comes back intact`);
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31) & 0xff;
    client.sendBinary(bytes);
    await serve();
    const binaryEcho = await nextOf(client, Event.Message);
    assert.equal(binaryEcho.binary, true, `${label}: binary ${size}`);
    assert.ok(bytes.equals(binaryEcho.message as Buffer), `${label}: binary of ${size} bytes comes back intact`);
  }
}

/** A TCP server that reads one request head and lets `answer` write whatever it likes. */
async function rawServer(answer: (key: string, socket: net.Socket) => void): Promise<{ url: string; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      socket.on('data', (more: Buffer) => chunks.push(more));
      if (head.length > end + 4) chunks.push(head.subarray(end + 4));
      answer(/sec-websocket-key: *(\S+)/i.exec(head.toString('latin1'))?.[1] ?? '', socket);
    };
    socket.on('data', onHead);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as net.AddressInfo;
  return { url: `ws://127.0.0.1:${port}/`, received: () => Buffer.concat(chunks) };
}

function switching(key: string, extra = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${extra}\r\n`;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !condition(); await sleep(5)) {
    if (Date.now() - start > WAIT) assert.fail(`timed out waiting for ${what}`);
  }
}

function unmask(frame: Buffer, at: number, length: number, key: Buffer): Buffer {
  return Buffer.from(frame.subarray(at, at + length).map((b, i) => b ^ key[i & 3]!));
}

async function startWs(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ url: string; connections: WebSocket[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  const connections: WebSocket[] = [];
  wss.on('connection', (ws) => {
    connections.push(ws);
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  cleanups.push(() => {
    for (const ws of wss.clients) ws.terminate();
    return new Promise((resolve) => wss.close(resolve));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`, connections };
}

const PYTHON_SERVER = join(import.meta.dirname, '..', 'interop', 'peers', 'python-echo-server.py');

/** Python's websockets echo server (Debian's python3-websockets, hence /usr/bin/python3). */
async function startPython(args: string[] = []): Promise<number> {
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [PYTHON_SERVER, '127.0.0.1', '0', ...args]);
  cleanups.push(() => {
    child.stdin.end();
    if (child.exitCode === null) child.kill();
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`python server did not start: ${stderr}`)), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const ready = /ready (\d+)/.exec(stdout);
      if (ready) {
        clearTimeout(timer);
        resolve(Number(ready[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`python server exited with ${code}: ${stderr}`)));
  });
}

interface Certificate {
  key: Buffer;
  cert: Buffer;
  keyPath: string;
  certPath: string;
}
let certificate: Certificate | undefined;

/** A self-signed certificate for localhost and 127.0.0.1, valid for one day; made once per run. */
function selfSignedCertificate(): Certificate {
  certificate ??= makeCertificate();
  return certificate;
}

function makeCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'wspoll-cert-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', keyPath, '-out', certPath],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), keyPath, certPath };
}

function isHandshakeError(code: ErrorCode, status: number) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof HandshakeError, `expected a HandshakeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// Tests

describe('Client ↔ wspoll Server, stepped with await next()', () => {
  it('connects with path, query, headers, origin and a negotiated subprotocol', async () => {
    const { server, url } = await startServer({ protocols: ['chat.v2', 'chat.v1'] });
    const client = await connect(`${url}/lobby?room=7`, {
      protocols: ['chat.v1', 'chat.v2'],
      headers: { 'X-Bot': 'smith' },
      origin: 'https://game.example',
    });
    assert.equal(client.protocol, 'chat.v2');
    const opened = await nextOf(server, Event.NewConnection);
    assert.equal(opened.path, '/lobby');
    assert.deepEqual(opened.query, { room: '7' });
    assert.equal(opened.headers['x-bot'], 'smith');
    assert.equal(opened.headers.origin, 'https://game.example');
    assert.equal(opened.protocol, 'chat.v2');
  });

  it('has no subprotocol when none was offered', async () => {
    const { client } = await pair({}, { protocols: ['chat.v1'] });
    assert.equal(client.protocol, undefined);
  });

  it('echoes text and binary messages of 0 B to 1 MiB through the server', async () => {
    const { server, client } = await pair();
    await assertEchoSizes(client, 'wspoll', async () => {
      const message = await nextOf(server, Event.Message);
      server.send(message.connId, message.message);
    });
  });

  it('has the queue API: poll, pending, drain with a budget, next with a timeout', async () => {
    const { server, client, connId } = await pair();
    assert.equal(client.poll(), undefined);
    await assert.rejects(client.next(20), TimeoutError);
    for (const word of ['one', 'two', 'three']) server.send(connId, word);
    await until(() => client.pending === 3, 'three queued messages');
    assert.deepEqual(client.drain(2).map((e) => e.type === Event.Message && e.message), ['one', 'two']);
    assert.deepEqual(client.poll(), { type: Event.Message, connId: 1, message: 'three', binary: false });
    assert.deepEqual(client.drain(), []);
  });

  it('sends text, binary and strings-as-binary with a SendStatus', async () => {
    const { server, client } = await pair();
    assert.equal(client.send('text'), SendStatus.SUCCESS);
    assert.equal(client.send(Uint8Array.of(1, 2)), SendStatus.SUCCESS);
    assert.equal(client.sendText('more'), SendStatus.SUCCESS);
    assert.equal(client.sendBinary('bytes'), SendStatus.SUCCESS);
    const got = [];
    for (let i = 0; i < 4; i++) {
      const m = await nextOf(server, Event.Message);
      got.push([m.binary, Buffer.from(m.message).toString()]);
    }
    assert.deepEqual(got, [[false, 'text'], [true, '\x01\x02'], [false, 'more'], [true, 'bytes']]);
    assert.equal(typeof client.bufferedAmount, 'number');
  });

  it('closes cleanly on close(code, reason); exactly one Disconnect, nothing after it', async () => {
    const { server, client } = await pair();
    assert.equal(client.close(4000, 'done'), true);
    assert.equal(client.close(), false);
    assert.equal(client.send('late'), SendStatus.CLOSED);
    // The server echoes the close once its program has taken the Disconnect.
    const seen = await nextOf(server, Event.Disconnect);
    assert.equal(seen.code, 4000);
    assert.equal(seen.reason, 'done');
    assert.equal(seen.wasClean, true);
    const gone = await nextOf(client, Event.Disconnect);
    assert.deepEqual(gone, { type: Event.Disconnect, connId: 1, code: 4000, reason: '', wasClean: true, initiator: 'local' });
    await sleep(30);
    assert.equal(client.pending, 0);
    assert.equal(client.poll(), undefined);
    assert.equal(client.send('after'), SendStatus.CLOSED);
    assert.equal(client.ping(), false);
    assert.equal(client.drop(), false);
  });

  it('rejects close codes that may not be sent', async () => {
    const { client } = await pair();
    assert.throws(() => client.close(1006), RangeError);
    assert.throws(() => client.close(1000, 'x'.repeat(124)), RangeError);
  });

  it('reports server-initiated close codes and reasons, after answering what came before', async () => {
    const { server, client, connId } = await pair();
    server.send(connId, 'last question');
    server.close(connId, 4001, 'game over');
    assert.equal((await nextOf(client, Event.Message)).message, 'last question');
    assert.equal(client.send('last answer'), SendStatus.SUCCESS);
    assert.deepEqual(await nextOf(client, Event.Disconnect), {
      type: Event.Disconnect,
      connId: 1,
      code: 4001,
      reason: 'game over',
      wasClean: true,
      initiator: 'peer',
    });
    const taken = Date.now();
    assert.equal(client.send('too late'), SendStatus.CLOSED);
    assert.equal((await nextOf(server, Event.Message)).message, 'last answer');
    const seen = await nextOf(server, Event.Disconnect);
    assert.equal(seen.wasClean, true);
    assert.equal(seen.initiator, 'local');
    assert.ok(Date.now() - taken < 500, 'taking the Disconnect sends the close echo at once, not after closeTimeout');
  });

  it('reports 1001 when the server stops', async () => {
    const { server, client } = await pair();
    const stopped = server.stop();
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.code, 1001);
    assert.equal(gone.wasClean, true);
    await stopped;
  });

  it('answers the server heartbeat pings, so the server keeps it', async () => {
    const { server, client } = await pair({}, { pingInterval: 20, pingTimeout: 40 });
    await sleep(250);
    client.send('still here');
    assert.equal((await nextOf(server, Event.Message)).message, 'still here');
  });

  it('drop() cuts TCP: Disconnect 1006 on both sides', async () => {
    const { server, client } = await pair();
    assert.equal(client.drop(), true);
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.code, 1006);
    assert.equal(gone.initiator, 'local');
    assert.equal(gone.wasClean, false);
    assert.equal((await nextOf(server, Event.Disconnect)).code, 1006);
  });

  it('closes with 1009 a message over its maxMessageSize', async () => {
    const { server, client, connId } = await pair({ maxMessageSize: 1000 });
    server.send(connId, Buffer.alloc(1000));
    assert.equal((await nextOf(client, Event.Message)).message.length, 1000);
    server.send(connId, Buffer.alloc(1001));
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.code, 1009);
    assert.equal(gone.initiator, 'error');
    assert.equal((await nextOf(server, Event.Disconnect)).code, 1009);
  });

  it('connects over wss:// with a trusted CA and rejects an untrusted certificate', async () => {
    const certificate = selfSignedCertificate();
    const { server, url } = await startServer({}, certificate);
    await assert.rejects(Client.connect(url), (err: NodeJS.ErrnoException) => /SELF_SIGNED/.test(err.code ?? ''));
    const client = await connect(url, { tls: { ca: certificate.cert } });
    await nextOf(server, Event.NewConnection);
    await assertEchoSizes(client, 'wspoll wss', async () => {
      const message = await nextOf(server, Event.Message);
      server.send(message.connId, message.message);
    });
  });

  it('gets the first message of a wss:// connection without a delayed-ACK stall (Nagle off on the server)', async () => {
    // With Nagle's algorithm on, the server's first small frame waits behind its unacknowledged
    // TLS session tickets until the client's delayed ACK, about 40 ms later, on every connection.
    const certificate = selfSignedCertificate();
    const { server, url } = await startServer({}, certificate);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await connect(url, { tls: { ca: certificate.cert } });
      const { connId } = await nextOf(server, Event.NewConnection);
      const sentAt = performance.now();
      server.send(connId, 'first');
      assert.equal((await nextOf(client, Event.Message)).message, 'first');
      delays.push(performance.now() - sentAt);
      client.drop();
      await nextOf(server, Event.Disconnect);
    }
    // The best of three: a stall shows on every connection, a busy machine only now and then.
    assert.ok(Math.min(...delays) < 20, `first-message delays ${delays.map((d) => d.toFixed(1)).join(', ')} ms`);
  });

  it('is refused with NO_HANDSHAKE and the status when the server refuses the origin', async () => {
    const { url } = await startServer({ origins: ['https://good.example'] });
    await assert.rejects(connect(url, { origin: 'https://evil.example' }), isHandshakeError(ErrorCode.NO_HANDSHAKE, 403));
  });
});

describe('masking', () => {
  it('masks every frame with the injected key', async () => {
    const raw = await rawServer((key, socket) => socket.write(switching(key)));
    const client = await connect(raw.url, { maskKey: () => Uint8Array.of(1, 2, 3, 4) });
    client.send('abc');
    await until(() => raw.received().length >= 9, 'the masked frame');
    assert.deepEqual([...raw.received()], [0x81, 0x83, 1, 2, 3, 4, 0x61 ^ 1, 0x62 ^ 2, 0x63 ^ 3]);
  });

  it('draws a fresh random key for every frame', async () => {
    const raw = await rawServer((key, socket) => socket.write(switching(key)));
    const client = await connect(raw.url);
    client.send('a');
    client.send('a');
    await until(() => raw.received().length >= 14, 'two frames');
    const frames = raw.received();
    assert.notDeepEqual(frames.subarray(2, 6), frames.subarray(9, 13));
    assert.equal(unmask(frames, 6, 1, frames.subarray(2, 6)).toString(), 'a');
  });

  it('hands out keys from a pool that never rewrites a key already given', () => {
    const first = randomMaskKey();
    const copy = Buffer.from(first);
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++) keys.add(Buffer.from(randomMaskKey()).toString('hex'));
    assert.ok(keys.size > 2990, 'keys are random');
    assert.deepEqual(Buffer.from(first), copy);
    assert.equal(randomMaskKey().length, 4);
  });

  it('fails with 1002 when the server masks a frame', async () => {
    const raw = await rawServer((key, socket) => {
      socket.write(switching(key));
      socket.write(Buffer.from([0x81, 0x82, 9, 9, 9, 9, 0x68 ^ 9, 0x69 ^ 9]));
    });
    const client = await connect(raw.url);
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.code, 1002);
    assert.equal(gone.initiator, 'error');
    assert.equal(gone.wasClean, false);
    await until(() => raw.received().length >= 8, 'our close frame');
    const close = raw.received();
    assert.equal(close[0], 0x88);
    assert.equal(unmask(close, 6, 2, close.subarray(2, 6)).readUInt16BE(0), 1002);
  });
});

describe('Client ↔ ws (a server nobody here wrote)', () => {
  it('echoes text and binary messages of 0 B to 1 MiB', async () => {
    const { url } = await startWs();
    await assertEchoSizes(await connect(url), 'ws');
  });

  it('answers server pings with the same payload; its own pings reach the server', async () => {
    const { url, connections } = await startWs();
    const client = await connect(url);
    await until(() => connections.length === 1, 'the connection');
    const ws = connections[0]!;
    const pong = new Promise<string>((resolve) => ws.once('pong', (data) => resolve(data.toString())));
    ws.ping('heartbeat-7');
    assert.equal(await pong, 'heartbeat-7');
    const ping = new Promise<string>((resolve) => ws.once('ping', (data) => resolve(data.toString())));
    assert.equal(client.ping('from-client'), true);
    assert.equal(await ping, 'from-client');
  });

  it('negotiates a subprotocol the server picks', async () => {
    const { url } = await startWs({ handleProtocols: (offered) => (offered.has('v2') ? 'v2' : false) });
    assert.equal((await connect(url, { protocols: ['v1', 'v2'] })).protocol, 'v2');
  });

  it('reports the server close code and reason, and a cut as 1006', async () => {
    const { url, connections } = await startWs();
    const client = await connect(url);
    const other = await connect(url);
    await until(() => connections.length === 2, 'two connections');
    const echoed = new Promise<number>((resolve) => connections[0]!.once('close', (code) => resolve(code)));
    connections[0]!.close(4003, 'ws says bye');
    assert.deepEqual(await nextOf(client, Event.Disconnect), {
      type: Event.Disconnect,
      connId: 1,
      code: 4003,
      reason: 'ws says bye',
      wasClean: true,
      initiator: 'peer',
    });
    assert.equal(await echoed, 4003);
    connections[1]!.terminate();
    const cut = await nextOf(other, Event.Disconnect);
    assert.equal(cut.code, 1006);
    assert.equal(cut.wasClean, false);
  });

  it('closes cleanly from the client side', async () => {
    const { url, connections } = await startWs();
    const client = await connect(url);
    await until(() => connections.length === 1, 'the connection');
    const seen = new Promise<[number, string]>((resolve) => connections[0]!.once('close', (code, reason) => resolve([code, reason.toString()])));
    client.close(1000, 'bot done');
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.wasClean, true);
    assert.equal(gone.code, 1000);
    assert.deepEqual(await seen, [1000, 'bot done']);
  });
});

describe('Client ↔ Python websockets (a server nobody here wrote)', () => {
  let plainUrl = '';
  let secureUrl = '';
  let ca: Buffer;
  before(async () => {
    const certificate = selfSignedCertificate();
    ca = certificate.cert;
    const [plain, secure] = await Promise.all([startPython(), startPython([certificate.certPath, certificate.keyPath])]);
    plainUrl = `ws://127.0.0.1:${plain}`;
    secureUrl = `wss://localhost:${secure}`;
  });

  it('echoes text and binary messages of 0 B to 1 MiB over ws://', async () => {
    await assertEchoSizes(await connect(plainUrl), 'python ws://');
  });

  it('echoes text and binary messages of 0 B to 1 MiB over wss:// with the test CA', async () => {
    await assertEchoSizes(await connect(secureUrl, { tls: { ca } }), 'python wss://');
  });

  it('rejects the self-signed certificate without the CA', async () => {
    await assert.rejects(Client.connect(secureUrl), (err: NodeJS.ErrnoException) => /SELF_SIGNED/.test(err.code ?? ''));
  });

  it('answers the server ping', async () => {
    const client = await connect(plainUrl);
    client.send('cmd:ping p-42');
    assert.equal((await nextOf(client, Event.Message)).message, 'pong p-42');
  });

  it('reports the server close code and reason', async () => {
    const client = await connect(secureUrl, { tls: { ca } });
    client.send('cmd:close 4002 python says bye');
    assert.deepEqual(await nextOf(client, Event.Disconnect), {
      type: Event.Disconnect,
      connId: 1,
      code: 4002,
      reason: 'python says bye',
      wasClean: true,
      initiator: 'peer',
    });
  });

  it('closes cleanly from the client side', async () => {
    const client = await connect(plainUrl);
    client.close(1000, 'bye');
    const gone = await nextOf(client, Event.Disconnect);
    assert.equal(gone.code, 1000);
    assert.equal(gone.wasClean, true);
  });
});

describe('handshake failures', () => {
  it('rejects a 200 answer with NO_HANDSHAKE', async () => {
    const raw = await rawServer((_key, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'));
    await assert.rejects(Client.connect(raw.url), isHandshakeError(ErrorCode.NO_HANDSHAKE, 200));
  });

  it('rejects a 401 answer with UNAUTHORIZED', async () => {
    const raw = await rawServer((_key, socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'));
    await assert.rejects(Client.connect(raw.url), isHandshakeError(ErrorCode.UNAUTHORIZED, 401));
  });

  it('rejects a 101 with a wrong Sec-WebSocket-Accept with HANDSHAKE_ACCEPT', async () => {
    const raw = await rawServer((_key, socket) => socket.write(switching('dGhlIHNhbXBsZSBub25jZQ==')));
    await assert.rejects(Client.connect(raw.url), isHandshakeError(ErrorCode.HANDSHAKE_ACCEPT, 101));
  });

  it('rejects a 101 choosing a subprotocol that was not offered with NO_HANDSHAKE', async () => {
    const raw = await rawServer((key, socket) => socket.write(switching(key, 'Sec-WebSocket-Protocol: chat.v9\r\n')));
    await assert.rejects(Client.connect(raw.url, { protocols: ['chat.v1'] }), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
    await assert.rejects(Client.connect(raw.url), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
  });

  it('rejects a 101 without the Upgrade header with NO_HANDSHAKE', async () => {
    const raw = await rawServer((key, socket) => socket.write(`HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`));
    await assert.rejects(Client.connect(raw.url), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
  });

  it('rejects with a TimeoutError when the server never answers', async () => {
    const raw = await rawServer(() => {});
    const started = Date.now();
    await assert.rejects(Client.connect(raw.url, { handshakeTimeout: 150 }), TimeoutError);
    assert.ok(Date.now() - started < 1000);
  });

  it("rejects with Node's error when nothing listens", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(Client.connect(`ws://127.0.0.1:${port}`), { code: 'ECONNREFUSED' });
  });

  it('rejects a URL that is not ws:// or wss://, and bad subprotocol lists', async () => {
    await assert.rejects(Client.connect('http://127.0.0.1/'), TypeError);
    await assert.rejects(Client.connect('not a url'), TypeError);
    await assert.rejects(Client.connect('ws://127.0.0.1:1/', { protocols: ['a b'] }), TypeError);
    await assert.rejects(Client.connect('ws://127.0.0.1:1/', { protocols: ['a', 'a'] }), TypeError);
  });
});
