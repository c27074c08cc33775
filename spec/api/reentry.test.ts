/**
 * Control flows one way: the shell hands a protocol object bytes and then takes its events and
 * its output; nothing re-enters a protocol object from inside one of its own calls. Every public
 * method of ServerProtocol and ClientProtocol is wrapped to record a call that starts while
 * another call on the same object is running, and real connections go through the paths that
 * used to re-enter: a close while `await server.next()` waits, manual accept and reject, failures,
 * pings, backpressure, stop().
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, Event, Server, type ServerEvent } from '../../lib/index.js';
import { ClientProtocol, ServerProtocol } from '../../lib/protocol.js';

const violations: string[] = [];
const restore: (() => void)[] = [];
let calls = 0;

/** The calls a shell makes on a protocol object (the contract of lib/protocol.ts). */
const CONTRACT = [
  'receiveData',
  'receiveEof',
  'abort',
  'eventsReceived',
  'dataToSend',
  'takeOutput',
  'sendText',
  'sendBinary',
  'sendEncoded',
  'ping',
  'close',
  'fail',
  'accept',
  'reject',
];

/** Wraps the contract's methods found on `proto` with a per-object depth check. */
function guard(proto: object, names: string[] = CONTRACT): void {
  const depth = new WeakMap<object, number>();
  for (const name of names) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (descriptor === undefined || typeof descriptor.value !== 'function') continue;
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const wrapped = function (this: object, ...args: unknown[]): unknown {
      calls++;
      const d = depth.get(this) ?? 0;
      if (d > 0) violations.push(`${this.constructor.name}.${name} called inside another call on the same object`);
      depth.set(this, d + 1);
      try {
        return original.apply(this, args);
      } finally {
        depth.set(this, d);
      }
    };
    Object.defineProperty(proto, name, { ...descriptor, value: wrapped });
    restore.push(() => Object.defineProperty(proto, name, descriptor));
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), what);
}

describe('no protocol object is re-entered from inside its own call', () => {
  before(() => {
    // The base class's methods once (both roles share them), then each role's own.
    guard(Object.getPrototypeOf(ServerProtocol.prototype) as object);
    guard(ServerProtocol.prototype);
    guard(ClientProtocol.prototype);
  });
  after(() => {
    for (const undo of restore.reverse()) undo();
  });

  it('the guard sees a re-entry when one happens (self-check)', () => {
    class Toy {
      outer(): void {
        this.inner();
      }
      inner(): void {}
    }
    guard(Toy.prototype, ['outer', 'inner']);
    const before = violations.length;
    new Toy().inner();
    new Toy().outer();
    assert.deepEqual(violations.slice(before), ['Toy.inner called inside another call on the same object']);
    violations.length = before;
  });

  it('a full life of connections through Server and Client re-enters nothing', async () => {
    const server = new Server({ pingInterval: 50, pingTimeout: 1000, maxMessageSize: 1024, sendHighWaterMark: 16 });
    await server.start('127.0.0.1', 0);
    const url = `ws://127.0.0.1:${server.port}/`;
    const seen: ServerEvent[] = [];
    const take = async (): Promise<ServerEvent> => {
      const event = await server.next(2000);
      seen.push(event);
      if (event.type === Event.Message) server.send(event.connId, event.message);
      return event;
    };

    // Messages, an echo, pings both ways, a heartbeat ping.
    const a = await Client.connect(url, { pingInterval: 0 });
    assert.equal((await take()).type, Event.NewConnection);
    a.send('hello');
    a.ping('p');
    assert.equal((await take()).type, Event.Message);
    assert.equal((await a.next(2000)).type, Event.Message);
    await new Promise((r) => setTimeout(r, 120)); // a heartbeat ping or two from the server

    // The client closes while the program awaits next(): the path that used to re-enter.
    const waiting = take();
    a.close(4000, 'bye');
    const gone = await waiting;
    assert.equal(gone.type, Event.Disconnect);
    assert.equal((await a.next(2000)).type, Event.Disconnect);

    // A protocol failure (a message over the limit) and a drop.
    const b = await Client.connect(url, { pingInterval: 0 });
    assert.equal((await take()).type, Event.NewConnection);
    b.send('x'.repeat(2000));
    const failed = await take();
    assert.ok(failed.type === Event.Disconnect && failed.code === 1009);
    const c = await Client.connect(url, { pingInterval: 0 });
    const cOpen = await take();
    server.drop(cOpen.connId);
    assert.equal((await take()).type, Event.Disconnect);
    assert.equal((await c.next(2000)).type, Event.Disconnect);

    // A broken handshake and a plain socket that hangs up.
    const raw = net.connect(server.port, '127.0.0.1');
    raw.on('error', () => {});
    raw.resume(); // read the answer, so the server's FIN is seen
    raw.end('GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n\r\n');
    await new Promise((r) => raw.once('close', r));

    // A peer that stays: stop() closes it.
    const d = await Client.connect(url, { pingInterval: 0 });
    assert.equal((await take()).type, Event.NewConnection);
    await server.stop({ timeoutMs: 1000 });
    assert.equal((await d.next(2000)).type, Event.Disconnect);
    await until(() => server.pending > 0 || seen.filter((e) => e.type === Event.Disconnect).length >= 3, 'the last Disconnect');

    assert.ok(calls > 50, `the guard saw the protocol calls (${calls})`);
    assert.deepEqual(violations, []);
  });

  it('manual accept and reject re-enter nothing', async () => {
    const server = new Server({ manualAccept: true, pingInterval: 0 });
    await server.start('127.0.0.1', 0);
    const url = `ws://127.0.0.1:${server.port}/`;
    const accepted = Client.connect(url, { pingInterval: 0 });
    const request = await server.next(2000);
    assert.equal(request.type, Event.ConnectionRequest);
    server.accept(request.connId);
    const client = await accepted;
    assert.equal((await server.next(2000)).type, Event.NewConnection);
    const refused = Client.connect(url, { pingInterval: 0 });
    const second = await server.next(2000);
    server.reject(second.connId, 401);
    await assert.rejects(refused, { status: 401 });
    client.close();
    assert.equal((await server.next(2000)).type, Event.Disconnect);
    await server.stop();
    assert.deepEqual(violations, []);
  });
});
