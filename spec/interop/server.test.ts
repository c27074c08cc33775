/**
 * The Server with clients nobody here wrote: the `ws` package and Python's `websockets` (Debian's
 * python3-websockets 10.4, run with /usr/bin/python3). The server is used as a program would:
 * a game-tick loop that polls and echoes. The Client with servers nobody here wrote:
 * spec/interop/client.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { pythonWebsockets } from '../helpers/peers.js';
import { openWs } from '../helpers/ws-client.js';
import { countZlibCalls } from '../helpers/zlib-calls.js';
import { Event, Server, type ServerEvent, type ServerOptions } from '../../lib/index.js';

const PYTHON = '/usr/bin/python3';
const PYTHON_CLIENT = fileURLToPath(new URL('./peers/python-client.py', import.meta.url));

const servers: Server[] = [];
const stoppers: (() => void)[] = [];
const clients: WebSocket[] = [];
after(async () => {
  for (const stop of stoppers) stop();
  for (const ws of clients) ws.terminate();
  await Promise.all(servers.map((s) => s.stop({ timeoutMs: 200 })));
});

/** An echo server driven by a tick loop; every event is also recorded. "close me" closes with 4001. */
async function echoServer(options: ServerOptions = {}): Promise<{ server: Server; url: string; events: ServerEvent[] }> {
  const server = new Server({ pingInterval: 0, ...options });
  servers.push(server);
  await server.start('127.0.0.1', 0);
  const events: ServerEvent[] = [];
  const tick = setInterval(() => {
    for (let ev; (ev = server.poll()); ) {
      events.push(ev);
      if (ev.type !== Event.Message) continue;
      if (ev.message === 'close me') server.close(ev.connId, 4001, 'server says bye');
      else server.send(ev.connId, ev.message);
    }
  }, 2);
  stoppers.push(() => clearInterval(tick));
  return { server, url: `ws://127.0.0.1:${server.port}`, events };
}

function open(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return openWs(clients, url, protocols, options);
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    const onClose = (code: number): void => reject(new Error(`closed with ${code}`));
    ws.once('message', (data: Buffer, binary: boolean) => {
      ws.off('close', onClose);
      resolve({ data, binary });
    });
    ws.once('close', onClose);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 500_000, 1 << 20];

function textOf(size: number): string {
  // Mostly one-byte characters with a three-byte one at the end: exactly `size` bytes of UTF-8.
  return size >= 3 ? 'x'.repeat(size - 3) + '✓' : 'y'.repeat(size);
}

describe('ws as a client', () => {
  it('echoes text and binary of several sizes, up to maxMessageSize', async () => {
    const { url } = await echoServer();
    const ws = await open(url);
    assert.equal(ws.extensions, '', 'permessage-deflate offered by ws is not accepted');
    for (const size of SIZES) {
      const text = textOf(size);
      assert.equal(Buffer.byteLength(text), size);
      ws.send(text);
      const gotText = await nextMessage(ws);
      assert.equal(gotText.binary, false, `text ${size}`);
      assert.equal(gotText.data.toString('utf8'), text, `text ${size}`);
      const bytes = randomBytes(size);
      ws.send(bytes);
      const gotBinary = await nextMessage(ws);
      assert.equal(gotBinary.binary, true, `binary ${size}`);
      assert.ok(gotBinary.data.equals(bytes), `binary ${size}`);
    }
    ws.close();
  });

  it('echoes fragmented messages sent by ws, and many messages in one burst in order', async () => {
    const { url } = await echoServer();
    const ws = await open(url);
    ws.send('frag', { fin: false });
    ws.send('mént', { fin: false });
    ws.send('ed', { fin: true });
    assert.equal((await nextMessage(ws)).data.toString(), 'fragménted');
    const part = randomBytes(70_000);
    ws.send(part, { binary: true, fin: false });
    ws.send(part, { binary: true, fin: true });
    assert.ok((await nextMessage(ws)).data.equals(Buffer.concat([part, part])));

    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (data: Buffer) => {
        got.push(data.toString());
        if (got.length === 500) resolve();
      }),
    );
    for (let i = 0; i < 500; i++) ws.send(`burst ${i}`);
    await all;
    assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => `burst ${i}`));
    ws.close();
  });

  it('answers pings from ws with pongs carrying the payload', async () => {
    const { url } = await echoServer();
    const ws = await open(url);
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
    ws.ping('ws-ping');
    assert.equal((await pong).toString(), 'ws-ping');
    ws.close();
  });

  it('closes with 1009 when ws sends more than maxMessageSize', async () => {
    const { url, events } = await echoServer({ maxMessageSize: 1000 });
    const ws = await open(url);
    ws.send('x'.repeat(1000));
    assert.equal((await nextMessage(ws)).data.length, 1000);
    const bye = closed(ws);
    ws.send(Buffer.alloc(1001));
    assert.equal((await bye).code, 1009);
    await until(() => events.some((e) => e.type === Event.Disconnect));
    const gone = events.find((e) => e.type === Event.Disconnect);
    assert.ok(gone?.type === Event.Disconnect && gone.code === 1009 && gone.initiator === 'error');
  });

  it('closes cleanly both ways with ws', async () => {
    const { url, events } = await echoServer();
    const byClient = await open(url);
    const clientSaw = closed(byClient);
    byClient.close(4100, 'ws leaves');
    assert.equal((await clientSaw).code, 4100);
    const byServer = await open(url);
    const serverSaw = closed(byServer);
    byServer.send('close me');
    assert.deepEqual(await serverSaw, { code: 4001, reason: 'server says bye' });
    await until(() => events.filter((e) => e.type === Event.Disconnect).length === 2);
    const ends = events.filter((e) => e.type === Event.Disconnect);
    assert.deepEqual(
      ends.map((e) => e.type === Event.Disconnect && [e.code, e.reason, e.wasClean, e.initiator]),
      [
        [4100, 'ws leaves', true, 'peer'],
        [4001, 'server says bye', true, 'local'],
      ],
    );
  });

  it('serves many ws clients at once, each getting its own echoes', async () => {
    const { url } = await echoServer();
    const sockets = await Promise.all(Array.from({ length: 20 }, () => open(url)));
    await Promise.all(
      sockets.map(async (ws, i) => {
        for (let n = 0; n < 10; n++) {
          const text = `client ${i} message ${n}`;
          ws.send(text);
          assert.equal((await nextMessage(ws)).data.toString(), text);
        }
        ws.close();
      }),
    );
  });
});

describe('ws with perMessageDeflate as a client (RFC 7692)', () => {
  /** Echoes every size both ways; returns the zlib calls our side made meanwhile. */
  async function echoAll(ws: WebSocket, sizes = SIZES): Promise<{ deflates: number; inflates: number }> {
    const calls = countZlibCalls();
    try {
      for (const size of sizes) {
        const text = textOf(size);
        ws.send(text);
        assert.equal((await nextMessage(ws)).data.toString('utf8'), text, `text ${size}`);
        const bytes = Buffer.concat([randomBytes(size >> 2), Buffer.alloc(size - (size >> 2), 0x2a)]);
        ws.send(bytes);
        assert.ok((await nextMessage(ws)).data.equals(bytes), `binary ${size}`);
      }
    } finally {
      calls.stop();
    }
    return calls;
  }

  it("accepts ws's default offer, without context takeover, and echoes every size compressed both ways", async () => {
    const { url, events } = await echoServer({ compression: { threshold: 0 }, maxMessageSize: 4 << 20 });
    const ws = await open(url, [], { perMessageDeflate: { threshold: 0 } });
    assert.equal(ws.extensions, 'permessage-deflate');
    const calls = await echoAll(ws);
    assert.ok(calls.inflates >= 2 * SIZES.length - 2, `inflated ${calls.inflates}`);
    assert.ok(calls.deflates >= SIZES.length, `deflated ${calls.deflates}`);
    const hello = events[0];
    assert.ok(hello?.type === Event.NewConnection, 'NewConnection');
    assert.equal(hello.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    ws.close();
  });

  it('keeps contexts with contextTakeover: 200 similar messages each way through ws’s streaming zlib', async () => {
    const { url, events } = await echoServer({ compression: { threshold: 0, contextTakeover: true } });
    const ws = await open(url, [], { perMessageDeflate: { threshold: 0 } });
    await until(() => events.length > 0);
    const hello = events[0];
    assert.ok(hello?.type === Event.NewConnection, 'NewConnection');
    assert.equal(hello.extensions, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12', 'contexts kept both ways');
    for (let i = 0; i < 200; i++) {
      const text = JSON.stringify({ type: 'stream', seq: i, t: 1_700_000_000_000 + i * 33, value: Math.sin(i).toFixed(5) });
      ws.send(text);
      assert.equal((await nextMessage(ws)).data.toString(), text);
    }
    ws.close();
  });

  it('compresses with the window ws asks for (server_max_window_bits=9: ws inflates with a 512-byte window)', async () => {
    const { url, events } = await echoServer({ compression: { threshold: 0 } });
    const ws = await open(url, [], { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 } });
    await until(() => events.length > 0);
    const hello = events[0];
    assert.ok(hello?.type === Event.NewConnection, 'NewConnection');
    assert.match(hello.extensions, /; server_max_window_bits=9; client_max_window_bits=9$/);
    const calls = await echoAll(ws, [2000, 65536]);
    assert.ok(calls.deflates >= 4, `deflated ${calls.deflates}`);
    ws.close();
  });

  it('closes with 1009 a compressed message over maxMessageSize once inflated', async () => {
    const { url, events } = await echoServer({ compression: true, maxMessageSize: 1 << 20 });
    const ws = await open(url, [], { perMessageDeflate: { threshold: 0 } });
    const bye = closed(ws);
    ws.send(Buffer.alloc((1 << 20) + 1)); // about 1 KiB on the wire
    assert.equal((await bye).code, 1009);
    await until(() => events.some((e) => e.type === Event.Disconnect));
    const gone = events.find((e) => e.type === Event.Disconnect);
    assert.ok(gone?.type === Event.Disconnect && gone.code === 1009 && /inflated/.test(gone.reason), JSON.stringify(gone));
  });
});

describe('Python websockets as a client', { skip: pythonWebsockets.skip }, () => {
  before(() => pythonWebsockets.require());

  function runPython(url: string, mode: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      execFile(PYTHON, [PYTHON_CLIENT, url, mode], { timeout: 25_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`python-client.py ${mode} failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, unknown>);
      });
    });
  }

  it('echoes text and binary of several sizes, negotiates v2, pings, and closes with 4000', async () => {
    const { url, events } = await echoServer({ protocols: ['v2', 'v1'], maxMessageSize: 4 << 20 });
    const seen = await runPython(`${url}/py?lang=python`, 'echo');
    assert.deepEqual(seen, { echoed: 19, subprotocol: 'v2', pong: true, close_code: 4000, close_reason: '' });
    await until(() => events.some((e) => e.type === Event.Disconnect));
    const hello = events[0];
    assert.ok(hello?.type === Event.NewConnection);
    assert.equal(hello.path, '/py');
    assert.deepEqual(hello.query, { lang: 'python' });
    assert.equal(hello.protocol, 'v2');
    assert.match(String(hello.headers['user-agent']), /websockets/);
    const gone = events.at(-1);
    assert.ok(gone?.type === Event.Disconnect);
    assert.deepEqual(
      { code: gone.code, reason: gone.reason, wasClean: gone.wasClean, initiator: gone.initiator },
      { code: 4000, reason: 'python done', wasClean: true, initiator: 'peer' },
    );
    const messages = events.filter((e) => e.type === Event.Message);
    assert.equal(messages.length, 19);
    assert.equal(messages.filter((e) => e.type === Event.Message && e.binary).length, 9);
  });

  it('agrees to its default permessage-deflate offer and echoes compressed messages (RFC 7692)', async () => {
    const { url, events } = await echoServer({ compression: { threshold: 0 }, maxMessageSize: 4 << 20 });
    const seen = await runPython(url, 'deflate');
    assert.deepEqual(seen, {
      echoed: 118,
      extensions: [
        {
          name: 'permessage-deflate',
          remote_no_context_takeover: true,
          local_no_context_takeover: true,
          remote_max_window_bits: 15,
          local_max_window_bits: 15,
        },
      ],
      close_code: 1000,
    });
    const hello = events[0];
    assert.ok(hello?.type === Event.NewConnection, 'NewConnection');
    assert.equal(hello.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });

  it('sees the code and reason of a server-initiated close', async () => {
    const { url, events } = await echoServer();
    const seen = await runPython(url, 'server-close');
    assert.deepEqual(seen, { close_code: 4001, close_reason: 'server says bye', clean: true });
    await until(() => events.some((e) => e.type === Event.Disconnect));
    const gone = events.at(-1);
    assert.ok(gone?.type === Event.Disconnect && gone.wasClean && gone.initiator === 'local' && gone.code === 4001);
  });
});
