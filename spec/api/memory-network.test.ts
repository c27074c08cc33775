/**
 * wspoll/testing: a Server and Clients on a MemoryNetwork, with no socket and no real time.
 * Delivery (microtasks, latency per direction, pieces), the network's clock and settle(), the
 * faults (a stalled reader, a cut), seeded keys, RTT from the heartbeat, and the plain sockets
 * the network hands out for clients nobody here wrote. The suites of server, client and limits
 * run over this network too (spec/api/transports.ts); the same scenario in two processes:
 * spec/integration/memory-determinism.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { Client, type ClientOptions, Event, SendStatus, Server, type ServerEvent, type ServerOptions, TimeoutError } from '../../lib/index.js';
import { type Delivery, MemoryNetwork, type MemoryNetworkOptions, VirtualClock } from '../../lib/testing.js';
import { frame, OP } from '../helpers/frames.js';

const URL = 'ws://game.test/';

/** A network with a Server on game.test:80. */
async function serve(networkOptions: MemoryNetworkOptions = {}, serverOptions: ServerOptions = {}) {
  const network = new MemoryNetwork(networkOptions);
  const server = new Server({ pingInterval: 0, ...serverOptions });
  await server.start({ network, host: 'game.test', port: 80 });
  return { network, server };
}

/** Connects a Client, letting the network move as far as the handshake needs. */
async function connect(network: MemoryNetwork, options: ClientOptions = {}, url = URL): Promise<Client> {
  const connecting = Client.connect(url, { network, pingInterval: 0, ...options });
  await network.settle();
  return connecting;
}

async function expectEvent<T extends { type: string }, K extends T['type']>(source: { next(): Promise<T> }, type: K): Promise<Extract<T, { type: K }>> {
  const event = await source.next();
  assert.equal(event.type, type, JSON.stringify(event));
  return event as Extract<T, { type: K }>;
}

/** Every delivery from now on. */
function record(network: MemoryNetwork): Delivery[] {
  const deliveries: Delivery[] = [];
  network.tap((d) => deliveries.push(d));
  return deliveries;
}

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;
const socketHandles = (): string[] => process.getActiveResourcesInfo().filter((r) => /TCP|UDP/.test(r));

describe('a Server and Clients on a memory network', () => {
  it('echo, then a clean close, with every byte delivered on the microtask queue: no clock moves', async () => {
    const { network, server } = await serve();
    const client = await Client.connect(URL, { network, pingInterval: 0 });
    const opened = await expectEvent(server, Event.NewConnection);
    assert.equal(opened.remoteAddress, '127.0.0.1');
    assert.equal(opened.remotePort, network.connections[0]!.clientPort);
    assert.equal(opened.headers.host, 'game.test');
    client.send('hello');
    const message = await expectEvent(server, Event.Message);
    assert.equal(message.message, 'hello');
    server.send(message.connId, 'world');
    assert.equal((await expectEvent(client, Event.Message)).message, 'world');
    client.close(1000, 'bye');
    assert.equal((await expectEvent(server, Event.Disconnect)).reason, 'bye');
    assert.equal((await expectEvent(client, Event.Disconnect)).wasClean, true);
    await network.settle();
    assert.equal(network.clock.now(), 0, 'nothing waited for time');
    assert.deepEqual(network.connections, [], 'both sockets closed');
    await server.stop();
  });

  it('bytes arrive after the sender’s synchronous code, not during it', async () => {
    const { network, server } = await serve();
    const client = await connect(network);
    await expectEvent(server, Event.NewConnection);
    const deliveries = record(network);
    client.send('one');
    client.send('two');
    assert.equal(deliveries.length, 0, 'nothing delivered yet');
    await network.settle();
    assert.equal(deliveries.length, 1, 'the two frames of one turn went out in one write');
    assert.deepEqual(
      server.drain().map((e) => e.type === Event.Message && e.message),
      ['one', 'two'],
    );
  });

  it('200 clients open no file descriptor and no socket handle', async () => {
    const { network, server } = await serve();
    const descriptors = openDescriptors();
    const handles = socketHandles();
    const clients: Client[] = [];
    const pending = Array.from({ length: 200 }, (_, i) => Client.connect(`${URL}player/${i}`, { network, pingInterval: 0 }));
    await network.settle();
    clients.push(...(await Promise.all(pending)));
    const opened = server.drain().filter((e) => e.type === Event.NewConnection);
    assert.equal(opened.length, 200);
    assert.equal(openDescriptors(), descriptors);
    assert.deepEqual(socketHandles(), handles);
    for (const client of clients) client.send('x');
    await network.settle();
    assert.equal(server.drain().length, 200);
    // The clients never take their Disconnect, so they owe their close replies: stop() waits for
    // closeTimeout of the network's time, then cuts them.
    const stopped = server.stop();
    await network.clock.advance(10_000);
    await stopped;
    assert.equal(clients.filter((c) => c.pending === 1).length, 200, 'each client has its Disconnect');
    assert.equal(openDescriptors(), descriptors);
  });

  it('refuses a connection to a port nobody listens on (ECONNREFUSED), and a second listener on a taken port (EADDRINUSE)', async () => {
    const { network } = await serve();
    const refused = assert.rejects(Client.connect('ws://game.test:81/', { network }), { code: 'ECONNREFUSED' });
    await network.settle();
    await refused;
    const other = new Server();
    await assert.rejects(other.start({ network, host: 'game.test', port: 80 }), { code: 'EADDRINUSE' });
    await assert.rejects(other.start({ network, port: 80 }), { code: 'EADDRINUSE' }, 'every host name on port 80 includes game.test');
    await other.start({ network, host: 'other.test', port: 0 });
    assert.ok(other.port >= 49152, 'port 0 picks a free one');
  });

  it('wss:// and tls are refused: the network carries ws:// only', async () => {
    const { network } = await serve();
    await assert.rejects(Client.connect('wss://game.test/', { network }), TypeError);
    await assert.rejects(new Server().start({ network, port: 443, tls: {} }), TypeError);
  });

  it('a server with a clock of its own keeps it', async () => {
    const network = new MemoryNetwork();
    const own = new VirtualClock(5_000);
    const server = new Server({ clock: own, handshakeTimeout: 100 });
    await server.start({ network, port: 80 });
    const silent = network.connect(80, 'game.test');
    let closed = false;
    silent.on('close', () => (closed = true));
    await network.clock.advance(1_000);
    assert.equal(closed, false, 'the network clock does not time the server out');
    await own.advance(100);
    await network.settle();
    assert.equal(closed, true);
  });
});

describe('latency', () => {
  it('connecting takes two round trips, as over TCP; a message arrives latencyMs after it was sent', async () => {
    const { network, server } = await serve({ latencyMs: 100 });
    const connecting = Client.connect(URL, { network, pingInterval: 0 });
    await network.settle();
    const client = await connecting;
    assert.equal(network.clock.now(), 400, 'SYN, SYN-ACK, request, 101');
    await expectEvent(server, Event.NewConnection);
    const deliveries = record(network);
    client.send('ping?');
    await network.settle();
    assert.equal(deliveries[0]!.at, 500);
    assert.equal(deliveries[0]!.direction, 'toServer');
    assert.equal((await expectEvent(server, Event.Message)).message, 'ping?');
  });

  it('nothing arrives until the clock passes the due time', async () => {
    const { network, server } = await serve({ latencyMs: 50 });
    const client = await connect(network);
    await expectEvent(server, Event.NewConnection);
    client.send('later');
    await network.clock.advance(49);
    assert.equal(server.pending, 0);
    await network.clock.advance(1);
    assert.equal(server.pending, 1);
  });

  it('latency is set per direction: the round trip is their sum', async () => {
    const { network, server } = await serve({}, { pingInterval: 1000, pingTimeout: 1000 });
    const client = await connect(network);
    const { connId } = await expectEvent(server, Event.NewConnection);
    const [connection] = network.connections;
    connection!.toServer.latencyMs = 30;
    connection!.toClient.latencyMs = 70;
    await network.clock.advance(1_500);
    assert.equal(server.info(connId)!.rtt, 100);
    assert.equal(client.rtt, undefined, 'the client heard the server within its interval: it did not ping');
  });

  it('settle() moves the clock as far as the bytes in flight need, and gives up on a program that keeps sending', async () => {
    const { network, server } = await serve({ latencyMs: 25 });
    const client = await connect(network);
    const { connId } = await expectEvent(server, Event.NewConnection);
    const start = network.clock.now();
    server.send(connId, 'a');
    await network.settle();
    assert.equal(network.clock.now(), start + 25);
    const chatter = (): void => {
      server.send(connId, 'tick');
      network.clock.setTimeout(chatter, 10);
    };
    chatter();
    await assert.rejects(network.settle(1_000), TimeoutError);
    assert.ok(client.pending > 0);
  });
});

describe('faults', () => {
  it('delivery in pieces of N bytes: every message still arrives whole', async () => {
    const { network, server } = await serve({ pieceBytes: 1 });
    const client = await connect(network);
    const { connId } = await expectEvent(server, Event.NewConnection);
    const deliveries = record(network);
    const sizes: number[] = [];
    network.connections[0]!.client.on('data', (chunk: Buffer) => sizes.push(chunk.length));
    const text = 'é'.repeat(200);
    server.send(connId, text);
    client.send(Buffer.alloc(300, 7));
    await network.settle();
    assert.equal((await expectEvent(client, Event.Message)).message, text);
    assert.deepEqual((await expectEvent(server, Event.Message)).message, Buffer.alloc(300, 7));
    assert.deepEqual(new Set(sizes), new Set([1]), 'the client read one byte at a time');
    assert.equal(deliveries.length, 2, 'a tap sees each write once');
  });

  it('a stalled reader: the writer backs up (BACKPRESSURE, then DROPPED), nothing is lost, all arrives once it reads again', async () => {
    const { network, server } = await serve({ bufferBytes: 64 * 1024 }, { sendHighWaterMark: 64 * 1024, maxBufferedBytes: 256 * 1024 });
    const client = await connect(network);
    const { connId } = await expectEvent(server, Event.NewConnection);
    const path = network.connections[0]!.toClient;
    path.stall();
    const statuses: SendStatus[] = [];
    let sent = 0;
    for (let i = 0; i < 100 && statuses.at(-1) !== SendStatus.DROPPED; i++) {
      const status = server.send(connId, Buffer.alloc(16 * 1024, i));
      statuses.push(status);
      if (status !== SendStatus.DROPPED) sent++;
      await network.settle();
    }
    assert.ok(statuses.includes(SendStatus.BACKPRESSURE));
    assert.equal(statuses.at(-1), SendStatus.DROPPED);
    assert.equal(client.pending, 0, 'the stalled client read nothing');
    assert.ok(path.bufferedBytes >= 64 * 1024, `${path.bufferedBytes} bytes wait on the path`);
    assert.ok(server.info(connId)!.bufferedAmount >= 256 * 1024, 'the rest waits in the server');
    path.resume();
    await network.settle();
    const got = client.drain();
    assert.equal(got.length, sent);
    got.forEach((e, i) => assert.equal(e.type === Event.Message && (e.message as Buffer)[0], i, 'in order'));
    assert.equal(server.info(connId)!.bufferedAmount, 0);
  });

  it('a cut: neither side hears anything more; the heartbeats end both, 1006 by timeout', async () => {
    const { network, server } = await serve({}, { pingInterval: 1000, pingTimeout: 1000 });
    const client = await connect(network, { pingInterval: 1000, pingTimeout: 1000 });
    await expectEvent(server, Event.NewConnection);
    network.connections[0]!.cut();
    client.send('lost');
    await network.clock.advance(1_999);
    assert.equal(server.pending, 0, 'the message was lost, and no Disconnect yet');
    await network.clock.advance(500);
    const gone = await expectEvent(server, Event.Disconnect);
    assert.deepEqual([gone.code, gone.initiator], [1006, 'timeout']);
    const clientGone = await expectEvent(client, Event.Disconnect);
    assert.deepEqual([clientGone.code, clientGone.initiator], [1006, 'timeout']);
    await network.settle();
    assert.deepEqual(network.connections, []);
  });

  it('a handshake timeout fires when the clock passes it, never before', async () => {
    const { network, server } = await serve({}, { handshakeTimeout: 5_000 });
    const silent = network.connect(80, 'game.test');
    let closedAt = -1;
    silent.on('close', () => (closedAt = network.clock.now()));
    await network.clock.advance(4_999);
    assert.equal(closedAt, -1);
    await network.clock.advance(1);
    assert.equal(closedAt, 5_000);
    assert.equal(server.pending, 0);
  });
});

describe('RTT from the heartbeat', () => {
  it('info(connId).rtt and client.rtt read 2× the one-way latency, undefined before the first ping', async () => {
    const { network, server } = await serve({ latencyMs: 100 }, { pingInterval: 1000, pingTimeout: 5000 });
    const client = await connect(network, { pingInterval: 1000, pingTimeout: 5000 });
    const { connId } = await expectEvent(server, Event.NewConnection);
    assert.equal(server.info(connId)!.rtt, undefined);
    assert.equal(client.rtt, undefined);
    await network.clock.advance(3_000);
    assert.equal(server.info(connId)!.rtt, 200);
    assert.equal(client.rtt, 200);
    network.connections[0]!.toClient.latencyMs = 150;
    await network.clock.advance(3_000);
    assert.equal(server.info(connId)!.rtt, 250, 'the last measurement counts');
  });

  it('a pong that answers no heartbeat ping (unsolicited, or to the program’s own ping) measures nothing', async () => {
    const { network, server } = await serve({ latencyMs: 10 }, { pingInterval: 1000, pingTimeout: 5000 });
    const raw = network.connect(80, 'game.test');
    raw.on('connect', () =>
      raw.write('GET / HTTP/1.1\r\nHost: game.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    );
    const frames: Buffer[] = [];
    let arrivedAt = 0;
    raw.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      arrivedAt = network.clock.now();
    });
    await network.settle();
    const { connId } = await expectEvent(server, Event.NewConnection);
    raw.write(frame(OP.PONG, 'unasked'));
    server.ping(connId, 'mine');
    await network.settle();
    const ownPing = frames.at(-1)!;
    raw.write(frame(OP.PONG, ownPing.subarray(2)));
    await network.settle();
    assert.equal(server.info(connId)!.rtt, undefined);
    await network.clock.advance(1_250); // the heartbeat pings the silent peer
    const probe = frames.at(-1)!;
    assert.equal(probe[0], 0x89);
    assert.equal(probe[1], 4, 'the heartbeat ping carries a 4-byte count');
    const sentAt = arrivedAt - 10;
    await network.clock.advance(33);
    raw.write(frame(OP.PONG, probe.subarray(2)));
    await network.settle();
    assert.equal(server.info(connId)!.rtt, network.clock.now() - sentAt);
    assert.ok(server.info(connId)!.rtt! >= 33 + 2 * 10);
  });

  it('an hour of heartbeats for 200 clients runs on the network clock: every connection stays, every ping is answered', { timeout: 60_000 }, async () => {
    const { network, server } = await serve({ latencyMs: 20 }, { pingInterval: 30_000, pingTimeout: 30_000 });
    const pending = Array.from({ length: 200 }, () => Client.connect(URL, { network }));
    await network.settle();
    const clients = await Promise.all(pending);
    const ids = server.drain().map((e) => e.connId);
    let pings = 0;
    let pongs = 0;
    network.tap(({ direction, bytes }) => {
      if (direction === 'toClient' && bytes[0] === 0x89) pings++;
      if (direction === 'toServer' && bytes[0] === 0x8a) pongs++;
    });
    await network.clock.advance(3_600_000);
    assert.equal(network.clock.now() >= 3_600_000, true);
    assert.deepEqual(server.drain(), [], 'no Disconnect');
    // A ping after 30 s of silence, looked for every 7.5 s: one every 30–37.5 s per connection.
    assert.ok(pings >= 200 * 96, `${pings} heartbeat pings in the hour`);
    assert.ok(pongs >= pings - 200, `${pongs} pongs`);
    for (const id of ids) assert.equal(server.info(id)!.rtt, 40);
    assert.ok(clients.every((c) => c.pending === 0));
  });
});

describe('seeded keys: the same seed, the same bytes', () => {
  async function wire(seed: number): Promise<string[]> {
    const network = new MemoryNetwork({ seed });
    const server = new Server({ pingInterval: 0 });
    await server.start({ network, port: 80 });
    const deliveries = record(network);
    const client = await connect(network, {}, 'ws://game.test/');
    client.send('same bytes?');
    await network.settle();
    return deliveries.map((d) => `${d.direction} ${d.bytes.toString('hex')}`);
  }

  it('a script run twice with one seed moves identical bytes; another seed changes the keys', async () => {
    const first = await wire(42);
    assert.deepEqual(await wire(42), first);
    const other = await wire(43);
    assert.notDeepEqual(other, first);
    assert.equal(other.length, first.length);
  });
});

describe('plain sockets of the network, for other clients', () => {
  it('the ws package connects through network.connect (createConnection) and talks to the Server', async () => {
    const { network, server } = await serve();
    const ws = new WebSocket('ws://game.test/chat', { createConnection: () => network.connect(80, 'game.test') as never });
    const opened = new Promise((resolve) => ws.once('open', resolve));
    await network.settle();
    await opened;
    assert.equal((await expectEvent(server, Event.NewConnection)).path, '/chat');
    ws.send('from ws');
    await network.settle();
    const message = server.poll() as Extract<ServerEvent, { type: 'Message' }>;
    assert.equal(message.message, 'from ws');
  });

  it('a plain HTTP request goes to onRequest through node:http, as over TCP', async () => {
    const { network } = await serve({}, { onRequest: (req, res) => res.end(`hello ${req.url}\n`) });
    const socket = network.connect(80, 'game.test');
    socket.on('connect', () => socket.write('GET /page HTTP/1.1\r\nHost: game.test\r\nConnection: close\r\n\r\n'));
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await network.settle();
    await closed;
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\n\r\nhello \/page\n$/);
  });

  it('data that reaches a closed socket is answered with a reset (ECONNRESET), a round trip after it was sent', async () => {
    const network = new MemoryNetwork({ latencyMs: 10 });
    const listener = network.listen(80);
    const accepted = new Promise<NodeJS.ReadableStream & { destroy(): void }>((resolve) => listener.once('connection', resolve));
    const socket = network.connect(80, 'game.test', { allowHalfOpen: true });
    await network.settle();
    (await accepted).destroy();
    let ended = -1;
    let reset: { code: string; at: number } | undefined;
    socket.on('end', () => (ended = network.clock.now()));
    socket.on('error', (err: NodeJS.ErrnoException) => (reset = { code: err.code!, at: network.clock.now() }));
    socket.resume();
    await network.settle();
    assert.equal(ended, 30, 'the FIN of the closed end came first');
    socket.write('too late');
    await network.settle();
    assert.deepEqual(reset, { code: 'ECONNRESET', at: 50 });
  });

  it('setTimeout counts idle time on the network clock, as net.Socket does', async () => {
    const { network } = await serve();
    const socket = network.connect(80, 'game.test');
    let fired = -1;
    socket.setTimeout(1000, () => (fired = network.clock.now()));
    await network.clock.advance(500);
    socket.write('x');
    await network.clock.advance(999);
    assert.equal(fired, -1, 'the write reset it');
    await network.clock.advance(1);
    assert.equal(fired, 1500);
  });
});

describe('VirtualClock', () => {
  it('runs timers in due order (same time: in the order set), each at its own time, and counts what is pending', async () => {
    const clock = new VirtualClock(100);
    const ran: string[] = [];
    clock.setTimeout(() => ran.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => ran.push(`c@${clock.now()}`), 20);
    const cancelled = clock.setTimeout(() => ran.push('never'), 5);
    cancelled.cancel();
    cancelled.cancel();
    assert.equal(clock.pending, 3);
    await clock.advance(15);
    assert.deepEqual(ran, ['a@110']);
    assert.equal(clock.now(), 115);
    clock.setTimeout(() => clock.setTimeout(() => ran.push(`d@${clock.now()}`), 0), 5);
    await clock.advance(100);
    assert.deepEqual(ran, ['a@110', 'b@120', 'c@120', 'd@120']);
    assert.equal(clock.pending, 0);
    assert.throws(() => clock.advance(-1), RangeError);
  });

  it('lets the program react between two instants (an awaited chain sees each timer in turn)', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const wait = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await wait(10);
        seen.push(clock.now());
      }
    })();
    await clock.advance(30);
    await loop;
    assert.deepEqual(seen, [10, 20, 30]);
  });
});
