/**
 * A Server with a broker, the broker played by a recorder (no Redis): which topics it is asked
 * to hold and release, what it is given to publish, and what it delivers. The envelope that
 * redisBroker puts on Redis, byte by byte. (spec/interop/redis.test.ts runs the real thing.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeEnvelope, newServerId, openEnvelope } from '../../lib/api/broker-envelope.js';
import { Client, Event, Server, type Broker, type BrokerHost } from '../../lib/index.js';

class RecordingBroker implements Broker {
  host: BrokerHost | undefined;
  readonly calls: string[] = [];
  closed = false;

  open(host: BrokerHost): void {
    this.host = host;
  }
  hold(topic: string): void {
    this.calls.push(`hold ${topic}`);
  }
  release(topic: string): void {
    this.calls.push(`release ${topic}`);
  }
  subscribed(topic: string): Promise<void> {
    this.calls.push(`subscribed ${topic}`);
    return Promise.resolve();
  }
  publish(topic: string, data: string | Uint8Array): void {
    this.calls.push(`publish ${topic} ${typeof data === 'string' ? data : `<${data.length} bytes>`}`);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('a Server with a broker', () => {
  const broker = new RecordingBroker();
  const server = new Server({ broker, pingInterval: 0 });
  const clients: Client[] = [];

  async function connect(): Promise<{ client: Client; connId: number }> {
    const client = await Client.connect(`ws://127.0.0.1:${server.port}`, { pingInterval: 0, closeTimeout: 200 });
    clients.push(client);
    let ev = await server.next(1000);
    while (ev.type !== Event.NewConnection) ev = await server.next(1000);
    return { client, connId: ev.connId };
  }

  before(async () => {
    await server.start('127.0.0.1', 0);
  });

  after(async () => {
    for (const client of clients) client.drop();
    await server.stop({ timeoutMs: 200 });
  });

  test('the broker opens with the server', () => {
    assert.ok(broker.host);
  });

  test('holds a topic from its first subscriber to its last, leaving included', async () => {
    const one = await connect();
    const two = await connect();
    broker.calls.length = 0;
    server.subscribe(one.connId, 'room');
    server.subscribe(two.connId, 'room');
    server.subscribe(one.connId, 'room'); // twice: nothing new
    server.subscribe(two.connId, 'other');
    assert.deepEqual(broker.calls, ['hold room', 'hold other']);
    server.unsubscribe(one.connId, 'room');
    assert.deepEqual(broker.calls.slice(2), []);
    two.client.drop();
    await server.next(1000); // its Disconnect
    assert.deepEqual(broker.calls.slice(2).sort(), ['release other', 'release room']);
    one.client.drop();
    await server.next(1000);
  });

  test('publish goes to the broker and to this server’s subscribers; broadcast and send stay here', async () => {
    const { client, connId } = await connect();
    server.subscribe(connId, 'news');
    broker.calls.length = 0;
    assert.equal(server.publish('news', 'local and far'), 1);
    assert.equal(server.publish('nobody-here', Buffer.from([1, 2])), 0);
    server.broadcast('everyone here');
    server.send(connId, 'just you');
    assert.deepEqual(broker.calls, ['publish news local and far', 'publish nobody-here <2 bytes>']);
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await client.next(1000));
    assert.deepEqual(
      got.map((ev) => ev.type === Event.Message && ev.message),
      ['local and far', 'everyone here', 'just you'],
    );
    client.drop();
    await server.next(1000);
  });

  test('what the broker delivers reaches the topic’s subscribers with its type', async () => {
    const { client, connId } = await connect();
    server.subscribe(connId, 'feed');
    broker.host!.deliver('feed', Buffer.from('héllo'), false);
    broker.host!.deliver('feed', Buffer.from([0, 255]), true);
    broker.host!.deliver('unheld', Buffer.from('lost'), false);
    const first = await client.next(1000);
    const second = await client.next(1000);
    assert.deepEqual(first, { type: Event.Message, connId: 1, message: 'héllo', binary: false });
    assert.ok(second.type === Event.Message && second.binary);
    assert.deepEqual(second.message, Buffer.from([0, 255]));
    await assert.rejects(client.next(100), { name: 'TimeoutError' });
    client.drop();
    await server.next(1000);
  });

  test('whenSubscribed asks the broker; without one it resolves at once', async () => {
    await server.whenSubscribed('feed');
    assert.equal(broker.calls.at(-1), 'subscribed feed');
    await new Server().whenSubscribed('anything');
  });

  test('stop() closes the broker', async () => {
    const other = new RecordingBroker();
    const s = new Server({ broker: other });
    await s.start('127.0.0.1', 0);
    await s.stop();
    assert.ok(other.closed);
  });

  test('a start that fails closes the broker it opened', async () => {
    const other = new RecordingBroker();
    const s = new Server({ broker: other });
    await assert.rejects(s.start('127.0.0.1', server.port), { code: 'EADDRINUSE' });
    assert.ok(other.closed);
  });
});

describe('the envelope of a publish between servers', () => {
  const id = newServerId();

  test('type byte, the server id, then the payload unchanged', () => {
    const text = encodeEnvelope(id, 'é');
    assert.deepEqual(text, Buffer.concat([Buffer.of(1), id, Buffer.from('é')]));
    const binary = encodeEnvelope(id, Uint8Array.of(0, 1, 255));
    assert.deepEqual(binary, Buffer.concat([Buffer.of(2), id, Buffer.of(0, 1, 255)]));
    assert.equal(id.length, 16);
    assert.notDeepEqual(newServerId(), id, 'each server its own id');
  });

  test('opened by another server: the payload and its type; by the same one: its own echo', () => {
    const other = newServerId();
    assert.deepEqual(openEnvelope(other, encodeEnvelope(id, 'hi')), { binary: false, payload: Buffer.from('hi') });
    assert.deepEqual(openEnvelope(other, encodeEnvelope(id, Buffer.alloc(0))), { binary: true, payload: Buffer.alloc(0) });
    assert.equal(openEnvelope(id, encodeEnvelope(id, 'hi')), 'own');
  });

  test('what is not an envelope says why', () => {
    const other = newServerId();
    assert.deepEqual(openEnvelope(other, Buffer.alloc(16)), { malformed: '16 bytes, shorter than the 17-byte header' });
    assert.deepEqual(openEnvelope(other, Buffer.concat([Buffer.of(3), id])), { malformed: 'unknown payload type 3' });
    assert.deepEqual(openEnvelope(other, Buffer.concat([Buffer.of(1), id, Buffer.of(0xc3)])), { malformed: 'a text payload that is not UTF-8' });
  });
});
