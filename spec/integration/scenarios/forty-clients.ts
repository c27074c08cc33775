/**
 * A seeded scenario on a MemoryNetwork: a Server whose game loop ticks every 50 ms of network
 * time, and 40 Clients that arrive one after another and act at random (from the seed): text,
 * binary, topics, pings, closes with their own codes, drops. Some connections get faults: pieces
 * of 3 bytes, 40 ms more latency one way, a stall of 600 ms, a cut (the heartbeats end it).
 * Then the server stops. Returns the log
 * of everything: every event of every side and every write on the wire, each with its time.
 *
 *   node --import tsx spec/integration/scenarios/forty-clients.ts SEED   prints the log
 *
 * spec/integration/memory-determinism.test.ts runs it in separate processes and compares.
 */
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { Client, type ClientEvent, Event, Server, type ServerEvent } from '../../../lib/index.js';
import { MemoryNetwork } from '../../../lib/testing.js';
import { prng } from '../../helpers/prng.js';

const CLIENTS = 40;
const TICK_MS = 50;
const PLAY_MS = 8_000;

export async function run(seed: number): Promise<string> {
  const network = new MemoryNetwork({ seed, latencyMs: 3 });
  const lines: string[] = [];
  const log = (who: string, what: string): void => void lines.push(`${network.clock.now()} ${who} ${what}`);
  network.tap(({ connection, direction, at, bytes }) => lines.push(`${at} wire #${connection.id} ${direction} ${bytes.toString('hex')}`));

  const errStream = { write: (line: string) => log('server-log', line.trimEnd()) } as unknown as Writable;
  const server = new Server({ pingInterval: 1000, pingTimeout: 1000, maxQueuedBytesPerConnection: 2048 });
  await server.start({ network, host: 'arena.test', port: 80, errStream });

  // The server's program: a game loop on the network's clock.
  let ticks = 0;
  const serverTick = (): void => {
    for (let event; (event = server.poll()); ) {
      log('server', describe(event));
      if (event.type !== Event.Message) continue;
      const text = typeof event.message === 'string' ? event.message : '';
      if (text.startsWith('join ')) server.subscribe(event.connId, text.slice(5));
      else if (text.startsWith('say ')) server.publish('lobby', `${event.connId}: ${text.slice(4)}`);
      else server.send(event.connId, event.message);
    }
    if (++ticks % 4 === 0) server.broadcast(`tick ${ticks}`);
    network.clock.setTimeout(serverTick, TICK_MS);
  };
  serverTick();

  // The clients: each arrives 13 ms after the last and acts on a period of its own.
  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    network.clock.setTimeout(() => void play(i), i * 13);
  }

  async function play(i: number): Promise<void> {
    const who = `client${i}`;
    const random = prng(seed * 1000 + i);
    let client: Client;
    try {
      client = await Client.connect(`ws://arena.test/p${i}`, { network, pingInterval: 1500, pingTimeout: 1500 });
    } catch (err) {
      return log(who, `connect failed: ${(err as Error).message}`);
    }
    clients.push(client);
    log(who, 'connected');
    // Connections count up in the order they were opened: client i opened the (i + 1)th.
    const connection = network.connections.find((c) => c.id === i + 1)!;
    if (i === 5) connection.toServer.pieceBytes = connection.toClient.pieceBytes = 3;
    if (i === 7) connection.toClient.latencyMs = 43;
    if (i === 11) {
      connection.toServer.stall();
      network.clock.setTimeout(() => connection.toServer.resume(), 600);
    }
    const cut = i === 13;
    if (cut) network.clock.setTimeout(() => connection.cut(), 300);
    let done = false;
    const act = (): void => {
      for (const event of client.drain()) {
        log(who, describe(event));
        if (event.type === Event.Disconnect) done = true;
      }
      if (done) return;
      const roll = random();
      if (roll < 0.3) client.send(`hello ${Math.floor(random() * 1e6)} from ${i}`);
      else if (roll < 0.45) client.send(Buffer.from([i, Math.floor(random() * 256), Math.floor(random() * 256)]));
      else if (roll < 0.5) client.send('join lobby');
      else if (roll < 0.6) client.send(`say ${'x'.repeat(Math.floor(random() * 200))}`);
      else if (roll < 0.62) client.ping('are you there');
      else if (roll < 0.625 && !cut) client.close(4000 + i, `bye from ${i}`);
      else if (roll < 0.627 && !cut) client.drop();
      network.clock.setTimeout(act, 20 + (i % 7) * 10);
    };
    act();
  }

  await network.clock.advance(PLAY_MS);
  const stopped = server.stop();
  await network.clock.advance(20_000);
  await stopped;
  for (let event; (event = server.poll()); ) log('server', describe(event));
  clients.forEach((client, i) => {
    for (const event of client.drain()) log(`client${i}`, describe(event));
  });
  log('end', `${network.connections.length} connections open`);
  return lines.join('\n');
}

function describe(event: ServerEvent | ClientEvent): string {
  if (event.type === Event.Message && Buffer.isBuffer(event.message)) return JSON.stringify({ ...event, message: event.message.toString('hex') });
  return JSON.stringify(event);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${await run(Number(process.argv[2] ?? 1))}\n`);
}
