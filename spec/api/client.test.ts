/**
 * The Client against our own Server, stepped with `await next()`, over loopback TCP
 * (ws:// and wss:// with a self-signed certificate) and over a memory network
 * (spec/api/transports.ts). Servers written by hand answer the handshakes that must fail and show
 * the bytes on the wire where they matter (masking). The Client against servers nobody here
 * wrote (`ws`, Python's `websockets`): spec/interop/client.test.ts.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { acceptFor } from '../helpers/raw-client.js';
import { randomMaskKey } from '../../lib/core/mask-pool.js';
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
import { type Transport, transports, useTransport } from './transports.js';
import { assertEchoSizes } from '../helpers/echo-sizes.js';

const WAIT = 3000;

// ---------------------------------------------------------------------------------------------
// Helpers

/** What the current test opened: dropped, stopped and closed after it. */
const clientsOpened: Client[] = [];
const serversStarted: Server[] = [];
const rawServers: { close(): Promise<void> }[] = [];

async function cleanUp(t: Transport): Promise<void> {
  for (const client of clientsOpened.splice(0)) client.drop();
  await Promise.all(serversStarted.splice(0).map((server) => t.stop(server, 200)));
  await Promise.all(rawServers.splice(0).map((server) => server.close()));
}

/** The Client and Server helpers over one transport. */
function over(t: Transport) {
  async function connect(url: string, options: ClientOptions = {}): Promise<Client> {
    const client = await Client.connect(url, { ...t.clientOptions, pingInterval: 0, closeTimeout: 1000, ...options });
    clientsOpened.push(client);
    return client;
  }

  async function startServer(options: ServerOptions = {}): Promise<{ server: Server; url: string }> {
    const server = new Server({ pingInterval: 0, ...options });
    serversStarted.push(server);
    return { server, url: await t.start(server) };
  }

  /** Our Server with one Client connected; returns the server's connId for it. */
  async function pair(options: ClientOptions = {}, serverOptions: ServerOptions = {}) {
    const { server, url } = await startServer(serverOptions);
    const client = await connect(url, options);
    const opened = await t.next(server, WAIT);
    assert.equal(opened.type, Event.NewConnection);
    return { server, client, connId: opened.connId };
  }

  async function nextOf<T extends ClientEvent | ServerEvent, K extends T['type']>(
    source: { next(ms?: number): Promise<T> },
    type: K,
  ): Promise<Extract<T, { type: K }>> {
    const event = await t.next(source, WAIT);
    assert.equal(event.type, type, `expected ${type}, got ${JSON.stringify(event).slice(0, 200)}`);
    return event as Extract<T, { type: K }>;
  }

  /** A server that reads one request head and lets `answer` write whatever it likes. */
  async function rawServer(answer: (key: string, socket: net.Socket) => void): Promise<{ url: string; received: () => Buffer }> {
    const chunks: Buffer[] = [];
    const sockets = new Set<net.Socket>();
    const server = await t.listen((socket) => {
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
    rawServers.push({
      close: () => {
        for (const socket of sockets) socket.destroy();
        return server.close();
      },
    });
    return { url: `ws://127.0.0.1:${server.port}/`, received: () => Buffer.concat(chunks) };
  }

  return { connect, startServer, pair, nextOf, rawServer };
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

for (const transport of transports) describe(`over ${transport.name}`, () => clientSuite(transport));

/** Every test of the Client that a transport carries. */
function clientSuite(t: Transport): void {
  useTransport(t, () => cleanUp(t));
  const { connect, startServer, pair, nextOf, rawServer } = over(t);

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
      await assertEchoSizes(client, () => nextOf(client, Event.Message), 'wspoll', async () => {
        const message = await nextOf(server, Event.Message);
        server.send(message.connId, message.message);
      });
    });

    it('has the queue API: poll, pending, drain with a budget, next with a timeout', async () => {
      const { server, client, connId } = await pair();
      assert.equal(client.poll(), undefined);
      await assert.rejects(t.next(client, 20), TimeoutError);
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
      await t.settle(30);
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
      const taken = t.now();
      assert.equal(client.send('too late'), SendStatus.CLOSED);
      assert.equal((await nextOf(server, Event.Message)).message, 'last answer');
      const seen = await nextOf(server, Event.Disconnect);
      assert.equal(seen.wasClean, true);
      assert.equal(seen.initiator, 'local');
      assert.ok(t.now() - taken < 500, 'taking the Disconnect sends the close echo at once, not after closeTimeout');
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
      await t.elapse(250);
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

  describe('handshake failures', () => {
    it('rejects a 200 answer with NO_HANDSHAKE', async () => {
      const raw = await rawServer((_key, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'));
      await assert.rejects(Client.connect(raw.url, t.clientOptions), isHandshakeError(ErrorCode.NO_HANDSHAKE, 200));
    });

    it('rejects a 401 answer with UNAUTHORIZED', async () => {
      const raw = await rawServer((_key, socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'));
      await assert.rejects(Client.connect(raw.url, t.clientOptions), isHandshakeError(ErrorCode.UNAUTHORIZED, 401));
    });

    it('rejects a 101 with a wrong Sec-WebSocket-Accept with HANDSHAKE_ACCEPT', async () => {
      const raw = await rawServer((_key, socket) => socket.write(switching('dGhlIHNhbXBsZSBub25jZQ==')));
      await assert.rejects(Client.connect(raw.url, t.clientOptions), isHandshakeError(ErrorCode.HANDSHAKE_ACCEPT, 101));
    });

    it('rejects a 101 choosing a subprotocol that was not offered with NO_HANDSHAKE', async () => {
      const raw = await rawServer((key, socket) => socket.write(switching(key, 'Sec-WebSocket-Protocol: chat.v9\r\n')));
      await assert.rejects(Client.connect(raw.url, { ...t.clientOptions, protocols: ['chat.v1'] }), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
      await assert.rejects(Client.connect(raw.url, t.clientOptions), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
    });

    it('rejects a 101 without the Upgrade header with NO_HANDSHAKE', async () => {
      const raw = await rawServer((key, socket) => socket.write(`HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`));
      await assert.rejects(Client.connect(raw.url, t.clientOptions), isHandshakeError(ErrorCode.NO_HANDSHAKE, 101));
    });

    it('rejects with a TimeoutError when the server never answers', async () => {
      const raw = await rawServer(() => {});
      const started = t.now();
      const refused = assert.rejects(Client.connect(raw.url, { ...t.clientOptions, handshakeTimeout: 150 }), TimeoutError);
      await t.elapse(150);
      await refused;
      assert.ok(t.now() - started < 1000);
    });

    it("rejects with Node's error when nothing listens", async () => {
      const probe = await t.listen(() => {});
      await probe.close();
      await assert.rejects(Client.connect(`ws://127.0.0.1:${probe.port}`, t.clientOptions), { code: 'ECONNREFUSED' });
    });
  });
}

describe('Client over TLS (wss://)', () => {
  useTransport(transports[0]!, () => cleanUp(transports[0]!));
  const { connect, nextOf } = over(transports[0]!);

  async function startTlsServer(certificate: { key: Buffer; cert: Buffer }): Promise<{ server: Server; url: string }> {
    const server = new Server({ pingInterval: 0 });
    serversStarted.push(server);
    await server.start({ host: '127.0.0.1', port: 0, tls: certificate });
    return { server, url: `wss://127.0.0.1:${server.port}` };
  }

  it('connects over wss:// with a trusted CA and rejects an untrusted certificate', async () => {
    const certificate = selfSignedCertificate();
    const { server, url } = await startTlsServer(certificate);
    await assert.rejects(Client.connect(url), (err: NodeJS.ErrnoException) => /SELF_SIGNED/.test(err.code ?? ''));
    const client = await connect(url, { tls: { ca: certificate.cert } });
    await nextOf(server, Event.NewConnection);
    await assertEchoSizes(client, () => nextOf(client, Event.Message), 'wspoll wss', async () => {
      const message = await nextOf(server, Event.Message);
      server.send(message.connId, message.message);
    });
  });

  it('gets the first message of a wss:// connection without a delayed-ACK stall (Nagle off on the server)', async () => {
    // With Nagle's algorithm on, the server's first small frame waits behind its unacknowledged
    // TLS session tickets until the client's delayed ACK, about 40 ms later, on every connection.
    const certificate = selfSignedCertificate();
    const { server, url } = await startTlsServer(certificate);
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

});

describe('Client: what needs no connection', () => {
  it('hands out keys from a pool that never rewrites a key already given', () => {
    const first = randomMaskKey();
    const copy = Buffer.from(first);
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++) keys.add(Buffer.from(randomMaskKey()).toString('hex'));
    assert.ok(keys.size > 2990, 'keys are random');
    assert.deepEqual(Buffer.from(first), copy);
    assert.equal(randomMaskKey().length, 4);
  });

  it('rejects a URL that is not ws:// or wss://, and bad subprotocol lists', async () => {
    await assert.rejects(Client.connect('http://127.0.0.1/'), TypeError);
    await assert.rejects(Client.connect('not a url'), TypeError);
    await assert.rejects(Client.connect('ws://127.0.0.1:1/', { protocols: ['a b'] }), TypeError);
    await assert.rejects(Client.connect('ws://127.0.0.1:1/', { protocols: ['a', 'a'] }), TypeError);
  });
});
