/**
 * The Server API, over loopback TCP and over a memory network (spec/api/transports.ts):
 * start, the poll API, connection ids, the event guarantees, sending, closing, per-connection
 * facts and data, broadcast and topics, the error log, and the HTTP answers to bad handshakes.
 * Clients are `ws` (a peer nobody here wrote) and raw sockets where the bytes on the wire matter.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { Event, SendStatus, Server, type ServerEvent, type ServerOptions, TimeoutError } from '../../lib/index.js';
import { frame, OP } from '../helpers/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { type Transport, transports, useTransport } from './transports.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** What the current test started: closed and stopped after it. */
const servers: Server[] = [];
const clients: WebSocket[] = [];

/** An error log to give to `start`: every line written to it. */
function errorLog(): { stream: PassThrough; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return { stream, lines };
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseResponse(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(split + 4) };
}

function handshakeHead(headers: Record<string, string | undefined>, requestLine = 'GET /chat HTTP/1.1'): string {
  const all: Record<string, string | undefined> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let head = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(all)) if (value !== undefined) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function received(ws: WebSocket, count = 1): Promise<{ data: Buffer; binary: boolean }[]> {
  const got: { data: Buffer; binary: boolean }[] = [];
  return new Promise((resolve) => {
    const on = (data: Buffer, binary: boolean): void => {
      got.push({ data, binary });
      if (got.length === count) {
        ws.off('message', on);
        resolve(got);
      }
    };
    ws.on('message', on);
  });
}

// ---------------------------------------------------------------------------------------------

describe('start (TCP)', () => {
  it('start(host, port, errStream) with port 0 listens on a free port shown by server.port', async () => {
    const server = new Server();
    await server.start('127.0.0.1', 0, new PassThrough());
    assert.ok(server.port > 0);
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal((await server.next(2000)).type, Event.NewConnection);
    ws.close();
    assert.equal((await server.next(2000)).type, Event.Disconnect);
    await server.stop();
  });
});

for (const transport of transports) describe(`over ${transport.name}`, () => serverSuite(transport));

/** Every test of the Server API, over one transport. */
function serverSuite(t: Transport): void {
  useTransport(t, async () => {
    for (const ws of clients.splice(0)) ws.terminate();
    await Promise.all(servers.splice(0).map((s) => t.stop(s, 200)));
  });

  async function startServer(options: ServerOptions = {}): Promise<{ server: Server; log: string[]; url: string }> {
    const server = new Server({ pingInterval: 0, ...options });
    servers.push(server);
    const { stream, lines } = errorLog();
    const url = await t.start(server, { errStream: stream });
    return { server, log: lines, url };
  }

  function open(url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<WebSocket> {
    const { protocols, ...rest } = options;
    const ws = t.ws(url, protocols ?? [], rest);
    clients.push(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  }

  /** The next event, which must be of `type`. */
  async function expectEvent<K extends ServerEvent['type']>(server: Server, type: K, timeoutMs = 2000): Promise<Extract<ServerEvent, { type: K }>> {
    const event = await t.next(server, timeoutMs);
    assert.equal(event.type, type, `expected ${type}, got ${JSON.stringify(event)}`);
    return event as Extract<ServerEvent, { type: K }>;
  }

  /** Every event until none came for `quietMs`. */
  async function eventsUntilQuiet(server: Server, quietMs = 150): Promise<ServerEvent[]> {
    const events: ServerEvent[] = [];
    for (;;) {
      try {
        events.push(await t.next(server, quietMs));
      } catch (err) {
        assert.ok(err instanceof TimeoutError);
        return events;
      }
    }
  }

  /** Writes `head` to the server and reads the whole answer until the server closes. */
  function rawExchange(port: number, head: string): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const socket = t.dial(port);
      socket.once('connect', () => socket.write(head));
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.setTimeout(3000, () => socket.destroy(new Error('no answer')));
      socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('latin1'))));
    });
  }

  describe('start', () => {
    it('start({ port: 0 }) listens on a free port shown by server.port, and a second start is refused', async () => {
      const server = new Server();
      servers.push(server);
      assert.equal(server.port, 0);
      const url = await t.start(server);
      assert.ok(server.port > 0);
      await assert.rejects(t.start(server), /already started/);
      const ws = await open(`${url}/`);
      const event = await expectEvent(server, Event.NewConnection);
      assert.equal(event.connId, 1);
      ws.terminate();
    });

    it('rejects when the port is taken', async () => {
      const { server } = await startServer();
      const second = new Server();
      await assert.rejects(t.start(second, { port: server.port }), /EADDRINUSE/);
    });
  });

  describe('the poll API', () => {
    it('poll, pending, drain(max) and next(timeoutMs)', async () => {
      const { server, url } = await startServer();
      assert.equal(server.poll(), undefined, 'poll never blocks');
      assert.equal(server.pending, 0);
      assert.deepEqual(server.drain(), []);
      const started = t.now();
      await assert.rejects(t.next(server, 60), (err: unknown) => err instanceof TimeoutError && /60 ms/.test(err.message));
      assert.ok(t.now() - started >= 50);

      const ws = await open(url);
      for (let i = 0; i < 5; i++) ws.send(`m${i}`);
      await until(() => server.pending === 6); // NewConnection + 5 messages
      const first = server.drain(2);
      assert.deepEqual(
        first.map((e) => e.type),
        [Event.NewConnection, Event.Message],
      );
      assert.equal(server.pending, 4);
      const one = server.poll();
      assert.equal(one?.type === Event.Message && one.message, 'm1');
      assert.equal(server.pending, 3);
      const nextOne = await t.next(server, 1000);
      assert.equal(nextOne.type === Event.Message && nextOne.message, 'm2', 'next resolves at once when an event is queued');
      const rest = server.drain();
      assert.deepEqual(
        rest.map((e) => (e.type === Event.Message ? e.message : e.type)),
        ['m3', 'm4'],
      );
      assert.equal(server.pending, 0);
      assert.equal(server.poll(), undefined);

      // next() waits for an event that has not arrived yet.
      const waiting = t.next(server, 2000);
      ws.send('late');
      const late = await waiting;
      assert.equal(late.type === Event.Message && late.message, 'late');
      ws.close();
      await expectEvent(server, Event.Disconnect);
    });
  });

  describe('connection ids and event guarantees', () => {
    it('ids count up from 1 and are never reused', async () => {
      const { server, url } = await startServer();
      const seen: number[] = [];
      for (let i = 0; i < 3; i++) {
        const ws = await open(url);
        seen.push((await expectEvent(server, Event.NewConnection)).connId);
        ws.close();
        const gone = await expectEvent(server, Event.Disconnect);
        assert.equal(gone.connId, seen[i]);
      }
      const ws = await open(url);
      seen.push((await expectEvent(server, Event.NewConnection)).connId);
      assert.deepEqual(seen, [1, 2, 3, 4]);
      ws.terminate();
    });

    it('exactly one NewConnection, then messages in arrival order, then one Disconnect, and nothing after', async () => {
      const { server, url } = await startServer();
      const count = 4;
      const sockets = await Promise.all(Array.from({ length: count }, () => open(url)));
      // Each client says who it is, then sends numbered messages interleaved with the others.
      const ids = new Map<number, number>(); // connId -> client index
      for (let round = 0; round < 50; round++) {
        sockets.forEach((ws, i) => ws.send(round === 0 ? `hello ${i}` : `${i}:${round}`));
      }
      // End them four different ways: peer close, local close, drop, peer TCP reset.
      const events: ServerEvent[] = [];
      await until(() => {
        events.push(...server.drain());
        return events.filter((e) => e.type === Event.Message).length === count * 50;
      });
      for (const e of events) {
        if (e.type === Event.Message && typeof e.message === 'string' && e.message.startsWith('hello ')) {
          ids.set(e.connId, Number(e.message.slice(6)));
        }
      }
      assert.equal(ids.size, count);
      const connIdOf = (i: number): number => [...ids].find(([, index]) => index === i)![0];
      sockets[0]!.close(1000);
      assert.equal(server.close(connIdOf(1), 4000, 'bye'), true);
      assert.equal(server.drop(connIdOf(2)), true);
      sockets[3]!.terminate();
      events.push(...(await eventsUntilQuiet(server, 300)));

      for (const [connId, index] of ids) {
        const own = events.filter((e) => e.connId === connId);
        assert.equal(own[0]!.type, Event.NewConnection, `connection ${connId} starts with NewConnection`);
        assert.equal(own.filter((e) => e.type === Event.NewConnection).length, 1);
        assert.equal(own.at(-1)!.type, Event.Disconnect, `connection ${connId} ends with Disconnect`);
        assert.equal(own.filter((e) => e.type === Event.Disconnect).length, 1);
        const messages = own.filter((e) => e.type === Event.Message).map((e) => (e.type === Event.Message ? e.message : ''));
        assert.deepEqual(messages, [`hello ${index}`, ...Array.from({ length: 49 }, (_, r) => `${index}:${r + 1}`)]);
      }
      // Nothing is pending and nothing arrives later.
      await assert.rejects(t.next(server, 200), TimeoutError);
    });
  });

  describe('sending', () => {
    it('send, sendText and sendBinary return SUCCESS and arrive as text or binary', async () => {
      const { server, url } = await startServer();
      const ws = await open(url);
      const { connId } = await expectEvent(server, Event.NewConnection);
      const arriving = received(ws, 5);
      assert.equal(server.send(connId, 'text é'), SendStatus.SUCCESS);
      assert.equal(server.send(connId, new Uint8Array([1, 2, 3])), SendStatus.SUCCESS);
      assert.equal(server.sendText(connId, 'plain'), SendStatus.SUCCESS);
      assert.equal(server.sendBinary(connId, Buffer.from([9])), SendStatus.SUCCESS);
      assert.equal(server.sendBinary(connId, 'as bytes'), SendStatus.SUCCESS);
      const got = await arriving;
      assert.deepEqual(
        got.map((m) => [m.binary, m.binary ? [...m.data] : m.data.toString()]),
        [
          [false, 'text é'],
          [true, [1, 2, 3]],
          [false, 'plain'],
          [true, [9]],
          [true, [...Buffer.from('as bytes')]],
        ],
      );
      ws.close();
      await expectEvent(server, Event.Disconnect);
    });

    it('returns CLOSED for unknown and closed ids, and never throws', async () => {
      const { server, url } = await startServer();
      for (const id of [0, 1, 999, -1]) {
        assert.equal(server.send(id, 'x'), SendStatus.CLOSED);
        assert.equal(server.sendText(id, 'x'), SendStatus.CLOSED);
        assert.equal(server.sendBinary(id, new Uint8Array(1)), SendStatus.CLOSED);
        assert.equal(server.close(id), false);
        assert.equal(server.drop(id), false);
        assert.equal(server.ping(id), false);
      }
      const ws = await open(url);
      const { connId } = await expectEvent(server, Event.NewConnection);
      server.close(connId);
      // Closing: the close frame is out, sends are refused at once.
      assert.equal(server.send(connId, 'after close'), SendStatus.CLOSED);
      assert.equal(server.sendBinary(connId, Buffer.alloc(3)), SendStatus.CLOSED);
      assert.equal(server.close(connId), false, 'a second close is refused');
      await closed(ws);
      await expectEvent(server, Event.Disconnect);
      assert.equal(server.send(connId, 'after disconnect'), SendStatus.CLOSED);
      assert.equal(server.ping(connId), false);
      assert.equal(server.drop(connId), false);
    });
  });

  describe('closing', () => {
    it('a close frame that arrives with FIN still gets its close reply when the program polls later', async () => {
      const { server } = await startServer();
      const socket = t.dial(server.port);
      socket.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      let received = Buffer.alloc(0);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        // After the 101: a masked close 1000 (zero mask key) and FIN in one go.
        if (received.includes('\r\n\r\n') && !socket.writableEnded) socket.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
      });
      await t.settle(100); // a game loop between ticks: the FIN is read before anyone polls
      const events = server.drain();
      assert.deepEqual(events.map((e) => e.type), [Event.NewConnection, Event.Disconnect]);
      await closed;
      const afterHandshake = received.subarray(received.indexOf('\r\n\r\n') + 4);
      assert.equal(afterHandshake.toString('hex'), '880203e8', 'the close 1000 is echoed');
    });

    it('close(connId, code, reason): the client sees the code; Disconnect is clean and local', async () => {
      const { server, url, log } = await startServer();
      const ws = await open(url);
      const { connId } = await expectEvent(server, Event.NewConnection);
      const clientSaw = closed(ws);
      assert.equal(server.close(connId, 4001, 'game over'), true);
      assert.deepEqual(await clientSaw, { code: 4001, reason: 'game over' });
      const gone = await expectEvent(server, Event.Disconnect);
      assert.equal(gone.connId, connId);
      assert.equal(gone.code, 4001);
      assert.equal(gone.wasClean, true);
      assert.equal(gone.initiator, 'local');
      assert.deepEqual(log, [], 'a clean close is no failure');
    });

    it("a peer's close gives initiator 'peer' with the peer's code and reason", async () => {
      const { server, url, log } = await startServer();
      const ws = await open(url);
      await expectEvent(server, Event.NewConnection);
      const clientSaw = closed(ws);
      ws.close(4002, 'leaving');
      const gone = await expectEvent(server, Event.Disconnect);
      assert.deepEqual(
        { code: gone.code, reason: gone.reason, wasClean: gone.wasClean, initiator: gone.initiator },
        { code: 4002, reason: 'leaving', wasClean: true, initiator: 'peer' },
      );
      assert.equal((await clientSaw).code, 4002, 'the server echoes the code');
      assert.deepEqual(log, []);
    });

    it('a close frame without a code gives 1005', async () => {
      const { server } = await startServer();
      const raw = await RawClient.open(server.port, { path: '/chat', dial: t.dial });
      await expectEvent(server, Event.NewConnection);
      raw.write(frame(OP.CLOSE, '', { mask: Buffer.alloc(4) })); // a zero mask key: the payload travels as is
      const gone = await expectEvent(server, Event.Disconnect);
      assert.equal(gone.code, 1005);
      assert.equal(gone.wasClean, true);
      raw.destroy();
    });

    it('drop(connId) cuts TCP: the client sees 1006, Disconnect 1006 not clean', async () => {
      const { server, url } = await startServer();
      const ws = await open(url);
      const { connId } = await expectEvent(server, Event.NewConnection);
      const clientSaw = closed(ws);
      assert.equal(server.drop(connId), true);
      assert.equal((await clientSaw).code, 1006);
      const gone = await expectEvent(server, Event.Disconnect);
      assert.equal(gone.code, 1006);
      assert.equal(gone.wasClean, false);
      assert.equal(gone.initiator, 'local');
    });

    it('a client that vanishes without a close frame gives Disconnect 1006 from the peer', async () => {
      const { server, url } = await startServer();
      const ws = await open(url);
      await expectEvent(server, Event.NewConnection);
      ws.terminate();
      const gone = await expectEvent(server, Event.Disconnect);
      assert.equal(gone.code, 1006);
      assert.equal(gone.wasClean, false);
      assert.equal(gone.initiator, 'peer');
    });
  });

  describe('ping, info and per-connection data', () => {
    it('ping(connId, payload) reaches the client, whose pong keeps the connection', async () => {
      const { server, url } = await startServer();
      const ws = await open(url);
      const { connId } = await expectEvent(server, Event.NewConnection);
      const pinged = new Promise<Buffer>((resolve) => ws.once('ping', resolve));
      assert.equal(server.ping(connId, 'are you there'), true);
      assert.equal((await pinged).toString(), 'are you there');
      const empty = new Promise<Buffer>((resolve) => ws.once('ping', resolve));
      assert.equal(server.ping(connId), true);
      assert.equal((await empty).length, 0);
      assert.throws(() => server.ping(connId, Buffer.alloc(126)), RangeError);
      ws.send('still here');
      const msg = await expectEvent(server, Event.Message);
      assert.equal(msg.message, 'still here');
      ws.close();
      await expectEvent(server, Event.Disconnect);
    });

    it('path is the request path as sent: "//" stays "//", dot segments are resolved', async () => {
      const { server, url } = await startServer();
      for (const [sent, path] of [['//', '//'], ['/a/../b?x=1', '/b'], ['/plain-path_1', '/plain-path_1']] as const) {
        const ws = await open(`${url}${sent}`);
        const event = await expectEvent(server, Event.NewConnection);
        assert.equal(event.path, path, `request target ${sent}`);
        ws.close();
        await expectEvent(server, Event.Disconnect);
      }
    });

    it('info(connId) gives the handshake facts and the buffered bytes', async () => {
      const { server, url } = await startServer({ protocols: ['chat'] });
      const ws = await open(`${url}/rooms/7?token=abc&x=1`, { protocols: ['chat'], headers: { 'X-Player': 'alice' } });
      const event = await expectEvent(server, Event.NewConnection);
      const info = server.info(event.connId)!;
      assert.ok(info);
      assert.equal(info.remoteAddress, '127.0.0.1');
      assert.equal(info.remotePort, (ws as unknown as { _socket: net.Socket })._socket.localPort);
      assert.equal(info.path, '/rooms/7');
      assert.deepEqual(info.query, { token: 'abc', x: '1' });
      assert.equal(info.headers['x-player'], 'alice');
      assert.equal(info.headers['sec-websocket-protocol'], 'chat');
      assert.equal(info.protocol, 'chat');
      assert.equal(info.bufferedAmount, 0);
      for (const key of ['remoteAddress', 'remotePort', 'path', 'query', 'headers', 'protocol'] as const) {
        assert.deepEqual(event[key], info[key], `NewConnection.${key} matches info().${key}`);
      }
      // Sends of one tick wait in the send buffer until the tick ends; past 64 KiB that is backpressure.
      assert.equal(server.send(event.connId, Buffer.alloc(1 << 20, 1)), SendStatus.BACKPRESSURE);
      assert.ok(server.info(event.connId)!.bufferedAmount >= 1 << 20, 'bufferedAmount shows unsent bytes');
      const arrived = received(ws);
      assert.equal((await arrived)[0]!.data.length, 1 << 20);
      await until(() => server.info(event.connId)!.bufferedAmount === 0);
      assert.equal(server.info(999), undefined);
      ws.close();
      await expectEvent(server, Event.Disconnect);
      assert.equal(server.info(event.connId)?.path, '/rooms/7', 'facts stay readable while the Disconnect is handled');
      await open(url);
      await expectEvent(server, Event.NewConnection);
      assert.equal(server.info(event.connId), undefined, 'no facts once the next event is taken');
    });

    it('setData/getData hold a typed value per connection', async () => {
      const server = new Server<{ name: string }>({ pingInterval: 0 });
      servers.push(server as Server);
      const url = await t.start(server as Server);
      const [a, b] = await Promise.all([open(url), open(url)]);
      const ids = [(await t.next(server, 2000)).connId, (await t.next(server, 2000)).connId];
      assert.equal(server.getData(ids[0]!), undefined);
      assert.equal(server.setData(ids[0]!, { name: 'alice' }), true);
      assert.equal(server.setData(ids[1]!, { name: 'bob' }), true);
      assert.equal(server.getData(ids[0]!)?.name, 'alice');
      assert.equal(server.getData(ids[1]!)?.name, 'bob');
      assert.equal(server.setData(999, { name: 'nobody' }), false);
      assert.equal(server.getData(999), undefined);
      a.close();
      const gone = await t.next(server, 2000);
      assert.equal(gone.type, Event.Disconnect);
      assert.equal(server.getData(gone.connId)?.name, 'alice', 'readable while the Disconnect is handled');
      b.terminate();
      assert.equal((await t.next(server, 2000)).type, Event.Disconnect);
      assert.equal(server.getData(gone.connId), undefined, 'the slot goes with the connection');
    });
  });

  describe('broadcast and topics', () => {
    async function three(): Promise<{ server: Server; ws: WebSocket[]; ids: number[] }> {
      const { server, url } = await startServer();
      const ws: WebSocket[] = [];
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        ws.push(await open(url));
        ids.push((await expectEvent(server, Event.NewConnection)).connId);
      }
      return { server, ws, ids };
    }

    /** What each client received within a short while. */
    async function inboxes(ws: WebSocket[], action: () => void, waitMs = 150): Promise<string[][]> {
      const boxes = ws.map(() => [] as string[]);
      const listeners = ws.map((_, i) => (data: Buffer, binary: boolean) => boxes[i]!.push(binary ? `bin:${[...data]}` : data.toString()));
      ws.forEach((w, i) => w.on('message', listeners[i]!));
      action();
      await t.settle(waitMs);
      ws.forEach((w, i) => w.off('message', listeners[i]!));
      return boxes;
    }

    it('broadcast reaches everyone, or only the ids given, and counts deliveries', async () => {
      const { server, ws, ids } = await three();
      let count = -1;
      assert.deepEqual(await inboxes(ws, () => (count = server.broadcast('all'))), [['all'], ['all'], ['all']]);
      assert.equal(count, 3);
      assert.deepEqual(await inboxes(ws, () => (count = server.broadcast(new Uint8Array([7]), [ids[0]!, ids[2]!, 999]))), [['bin:7'], [], ['bin:7']]);
      assert.equal(count, 2, 'the unknown id is skipped');
      server.close(ids[1]!);
      assert.deepEqual(await inboxes(ws, () => (count = server.broadcast('after'))), [['after'], [], ['after']]);
      assert.equal(count, 2, 'a closing connection is skipped');
    });

    it('publish reaches the subscribers of a topic only', async () => {
      const { server, ws, ids } = await three();
      const [a, b, c] = ids as [number, number, number];
      assert.equal(server.subscribe(a, 'red'), true);
      assert.equal(server.subscribe(b, 'red'), true);
      assert.equal(server.subscribe(b, 'blue'), true);
      assert.equal(server.subscribe(c, 'blue'), true);
      assert.equal(server.subscribe(999, 'red'), false);
      let count = -1;
      assert.deepEqual(await inboxes(ws, () => (count = server.publish('red', 'r1'))), [['r1'], ['r1'], []]);
      assert.equal(count, 2);
      assert.deepEqual(await inboxes(ws, () => (count = server.publish('blue', Buffer.from([1, 2])))), [[], ['bin:1,2'], ['bin:1,2']]);
      assert.equal(server.unsubscribe(b, 'red'), true);
      assert.equal(server.unsubscribe(b, 'red'), false, 'not subscribed any more');
      assert.equal(server.unsubscribe(c, 'red'), false, 'never subscribed');
      assert.deepEqual(await inboxes(ws, () => (count = server.publish('red', 'r2'))), [['r2'], [], []]);
      assert.equal(count, 1);
      assert.equal(server.publish('nobody-listens', 'x'), 0);
      // A connection that ends leaves its topics.
      ws[2]!.close();
      assert.equal((await expectEvent(server, Event.Disconnect)).connId, c);
      assert.deepEqual(await inboxes(ws, () => (count = server.publish('blue', 'b2'))), [[], ['b2'], []]);
      assert.equal(count, 1);
    });
  });

  describe('the error log', () => {
    it('writes one line per failure to the errStream given to start, and nothing for normal traffic', async () => {
      const { server, url, log } = await startServer({ handshakeTimeout: 200 });
      // Normal traffic: no line.
      const ws = await open(url);
      await expectEvent(server, Event.NewConnection);
      ws.send('fine');
      await expectEvent(server, Event.Message);
      ws.close();
      await expectEvent(server, Event.Disconnect);
      assert.deepEqual(log, []);

      // 1. A refused handshake.
      const refused = await rawExchange(server.port, handshakeHead({ 'Sec-WebSocket-Version': '8' }));
      assert.equal(refused.status, 426);
      await until(() => log.length === 1);

      // 2. A protocol error: an unmasked client frame closes with 1002.
      const raw = await RawClient.open(server.port, { path: '/chat', dial: t.dial });
      await expectEvent(server, Event.NewConnection);
      raw.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
      const failed = await expectEvent(server, Event.Disconnect);
      assert.equal(failed.code, 1002);
      assert.equal(failed.initiator, 'error');
      raw.destroy();
      await until(() => log.length === 2);

      // 3. A handshake that never comes.
      const idle = t.dial(server.port);
      idle.on('error', () => {});
      const idleClosed = new Promise((resolve) => idle.once('close', resolve));
      await t.elapse(200);
      await idleClosed;
      await until(() => log.length === 3);

      await t.settle(100);
      assert.equal(log.length, 3, log.join('\n'));
      assert.match(log[0]!, /426/);
      assert.match(log[1]!, /1002/);
      assert.match(log[2]!, /timeout/);
      for (const line of log) assert.match(line, /127\.0\.0\.1/, 'each line names the peer');
      assert.equal(server.pending, 0, 'the handshake timeout never made a NewConnection');
    });
  });

  describe('handshake rejections', () => {
    it('a method other than GET gets 405 with Allow: GET', async () => {
      const { server, log } = await startServer();
      const res = await rawExchange(server.port, handshakeHead({ 'Content-Length': '0' }, 'POST /chat HTTP/1.1'));
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, 'GET');
      assert.equal(log.length, 1);
    });

    const badRequests: [string, Record<string, string | undefined>, RegExp][] = [
      ['a malformed key', { 'Sec-WebSocket-Key': 'short' }, /Sec-WebSocket-Key/],
      ['no key', { 'Sec-WebSocket-Key': undefined }, /Sec-WebSocket-Key/],
      ['a key of 15 bytes', { 'Sec-WebSocket-Key': randomBytes(15).toString('base64') }, /Sec-WebSocket-Key/],
      ['an Upgrade other than websocket', { Upgrade: 'h2c' }, /Upgrade/],
      ['no Upgrade header', { Upgrade: undefined }, /Upgrade/],
      ['no Connection: Upgrade', { Connection: 'keep-alive' }, /Connection/],
    ];
    for (const [what, headers, names] of badRequests) {
      it(`${what} gets 400 naming the problem`, async () => {
        const { server, log } = await startServer();
        const res = await rawExchange(server.port, handshakeHead(headers));
        assert.equal(res.status, 400);
        assert.match(res.body, names);
        assert.equal(log.length, 1, log.join('\n'));
        assert.equal(server.pending, 0);
      });
    }

    for (const version of ['8', undefined]) {
      it(`Sec-WebSocket-Version ${version ?? 'missing'} gets 426 with Sec-WebSocket-Version: 13`, async () => {
        const { server } = await startServer();
        const res = await rawExchange(server.port, handshakeHead({ 'Sec-WebSocket-Version': version }));
        assert.equal(res.status, 426);
        assert.equal(res.headers['sec-websocket-version'], '13');
        assert.match(res.body, /Sec-WebSocket-Version/);
      });
    }

    it('a valid raw handshake gets 101 with the right accept key', async () => {
      const { server } = await startServer();
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      const socket = t.dial(server.port);
      socket.once('connect', () => socket.write(handshakeHead({ 'Sec-WebSocket-Key': key })));
      const text = await new Promise<string>((resolve) => {
        let got = '';
        socket.on('data', (c) => {
          got += c.toString('latin1');
          if (got.includes('\r\n\r\n')) resolve(got);
        });
      });
      const res = parseResponse(text);
      assert.equal(res.status, 101);
      assert.equal(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='); // RFC 6455 §1.3
      assert.equal(res.headers['sec-websocket-protocol'], undefined);
      assert.equal(res.headers['sec-websocket-extensions'], undefined);
      socket.destroy();
    });
  });
}
