/**
 * permessage-deflate (RFC 7692) through the poll API, over loopback: our Client and Server agree
 * on it (or not), report it, echo compressed messages, apply the size limit once inflated, and a
 * broadcast or publish compresses once per set of negotiated parameters (counted at node:zlib).
 * Against peers nobody here wrote: spec/interop/.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { deflatesDuring } from '../helpers/zlib-calls.js';
import { Client, type ClientOptions, Event, Server, type ServerEvent, type ServerOptions } from '../../lib/index.js';

const WAIT = 3000;
const DEFAULT_ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startServer(options: ServerOptions = {}): Promise<{ server: Server; url: string }> {
  const server = new Server({ pingInterval: 0, ...options });
  cleanups.push(() => server.stop({ timeoutMs: 200 }));
  await server.start('127.0.0.1', 0);
  return { server, url: `ws://127.0.0.1:${server.port}` };
}

async function connect(url: string, options: ClientOptions = {}): Promise<Client> {
  const client = await Client.connect(url, { pingInterval: 0, closeTimeout: 1000, ...options });
  cleanups.push(() => client.drop());
  return client;
}

async function opened(server: Server): Promise<Extract<ServerEvent, { type: 'NewConnection' }>> {
  const ev = await server.next(WAIT);
  assert.ok(ev.type === Event.NewConnection, ev.type);
  return ev;
}

describe('compression between our Client and Server', () => {
  it('agreed when both have it: NewConnection, info() and client.extensions say so; messages echo both ways', async () => {
    const { server, url } = await startServer({ compression: { threshold: 0 } });
    const client = await connect(url, { compression: { threshold: 0 } });
    const hello = await opened(server);
    assert.equal(hello.extensions, DEFAULT_ANSWER);
    assert.equal(server.info(hello.connId)?.extensions, DEFAULT_ANSWER);
    assert.equal(client.extensions, DEFAULT_ANSWER);
    for (const size of [0, 1, 200, 70_000, 1 << 20]) {
      const text = size >= 3 ? `${'echo, '.repeat(size).slice(0, size - 3)}✓` : 'e'.repeat(size); // `size` bytes of UTF-8
      const bytes = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1), 9)]);
      for (const message of [text, bytes]) {
        client.send(message);
        const got = await server.next(WAIT);
        assert.ok(got.type === Event.Message, `a message, got ${got.type}`);
        assert.deepEqual(got.message, message);
        server.send(got.connId, got.message);
        const back = await client.next(WAIT);
        assert.ok(back.type === Event.Message, `a message back, got ${back.type}`);
        assert.deepEqual(back.message, message);
      }
    }
  });

  it('not agreed when one side lacks it: extensions empty on both', async () => {
    for (const [serverCompression, clientCompression] of [[true, false], [false, true]] as const) {
      const { server, url } = await startServer({ compression: serverCompression });
      const client = await connect(url, { compression: clientCompression });
      assert.equal((await opened(server)).extensions, '');
      assert.equal(client.extensions, '');
      client.send('x'.repeat(5000));
      const got = await server.next(WAIT);
      assert.ok(got.type === Event.Message && got.message === 'x'.repeat(5000), 'the message, uncompressed');
    }
  });

  it('a message over maxMessageSize once inflated → both see 1009', async () => {
    const { server, url } = await startServer({ compression: true, maxMessageSize: 10_000 });
    const client = await connect(url, { compression: true });
    const { connId } = await opened(server);
    client.send('z'.repeat(10_000));
    const fits = await server.next(WAIT);
    assert.ok(fits.type === Event.Message && fits.message.length === 10_000, 'a message of exactly the limit');
    client.send('z'.repeat(10_001)); // about 30 bytes on the wire
    const gone = await server.next(WAIT);
    assert.deepEqual(gone.type === Event.Disconnect && [gone.connId, gone.code, gone.initiator], [connId, 1009, 'error']);
    const seen = await client.next(WAIT);
    assert.deepEqual(seen.type === Event.Disconnect && seen.code, 1009);
  });

  it('a bad compression option throws at once: from new Server, from Client.connect', async () => {
    assert.throws(() => new Server({ compression: { level: 12 } }), RangeError);
    assert.throws(() => new Server({ compression: { serverMaxWindowBits: 8 } }), /9 to 15/);
    await assert.rejects(Client.connect('ws://127.0.0.1:1/', { compression: { memLevel: 10 } }), RangeError);
  });
});

describe('broadcast and publish compress once per set of negotiated parameters', () => {
  it('one deflate for 5 clients with the same parameters, one more for 2 with a smaller window, none for 3 without compression', async () => {
    const { server, url } = await startServer({ compression: { threshold: 100 } });
    const same: ClientOptions = { compression: true };
    const plain: ClientOptions = { compression: false };
    const small: ClientOptions = { compression: { serverMaxWindowBits: 10 } };
    const kinds = [same, same, small, plain, same, plain, small, same, plain, same];
    const clients: Client[] = [];
    const ids: number[] = [];
    for (const options of kinds) {
      clients.push(await connect(url, options));
      ids.push((await opened(server)).connId);
    }
    for (const id of ids) assert.ok(server.subscribe(id, 'news'), `subscribe #${id}`);
    const text = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ id: i, name: `player ${i}` })));
    assert.equal(deflatesDuring(() => assert.equal(server.broadcast(text), 10)), 2);
    assert.equal(deflatesDuring(() => assert.equal(server.publish('news', Buffer.from(text)), 10)), 2);
    assert.equal(deflatesDuring(() => assert.equal(server.broadcast('short: under the threshold'), 10)), 0);
    assert.equal(deflatesDuring(() => assert.equal(server.broadcast(text, ids.slice(3, 4)), 1)), 0, 'to one plain client only');
    for (const client of clients) {
      const got = [await client.next(WAIT), await client.next(WAIT), await client.next(WAIT)];
      assert.deepEqual(
        got.map((ev) => ev.type === Event.Message && ev.message),
        [text, Buffer.from(text), 'short: under the threshold'],
      );
    }
  });

  it('a server that keeps contexts compresses for each connection', async () => {
    const { server, url } = await startServer({ compression: { threshold: 0, contextTakeover: true } });
    for (let i = 0; i < 3; i++) {
      await connect(url, { compression: { contextTakeover: true } });
      await opened(server);
    }
    assert.equal(deflatesDuring(() => server.broadcast('to everyone, with context')), 3);
  });
});
