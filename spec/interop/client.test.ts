/**
 * The Client of issue #3 against servers nobody here wrote: the `ws` package's WebSocketServer,
 * and Python's `websockets` (Debian's python3-websockets, run with /usr/bin/python3; ws:// and
 * wss:// with a self-signed certificate made here). The Client against our own Server:
 * spec/api/client.test.ts.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type WebSocket, WebSocketServer } from 'ws';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { pythonWebsockets } from '../helpers/peers.js';
import { countZlibCalls } from '../helpers/zlib-calls.js';
import { Client, type ClientEvent, type ClientOptions, Event, type ServerEvent } from '../../lib/index.js';
import { assertEchoSizes, ECHO_SIZES } from '../helpers/echo-sizes.js';

const WAIT = 3000;

// ---------------------------------------------------------------------------------------------
// Helpers (as in spec/api/client.test.ts)

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function connect(url: string, options: ClientOptions = {}): Promise<Client> {
  const client = await Client.connect(url, { pingInterval: 0, closeTimeout: 1000, ...options });
  cleanups.push(() => client.drop());
  return client;
}

async function nextOf<T extends ClientEvent | ServerEvent, K extends T['type']>(
  source: { next(ms: number): Promise<T> },
  type: K,
): Promise<Extract<T, { type: K }>> {
  const event = await source.next(WAIT);
  assert.equal(event.type, type, `expected ${type}, got ${JSON.stringify(event).slice(0, 200)}`);
  return event as Extract<T, { type: K }>;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !condition(); await sleep(5)) {
    if (Date.now() - start > WAIT) assert.fail(`timed out waiting for ${what}`);
  }
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

const PYTHON_SERVER = fileURLToPath(new URL('./peers/python-echo-server.py', import.meta.url));

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

// ---------------------------------------------------------------------------------------------
// Tests

describe('Client ↔ ws (a server nobody here wrote)', () => {
  it('echoes text and binary messages of 0 B to 1 MiB', async () => {
    const { url } = await startWs();
    const client = await connect(url);
    await assertEchoSizes(client, () => nextOf(client, Event.Message), 'ws');
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

describe('Client ↔ ws with perMessageDeflate (RFC 7692)', () => {
  const DEFAULT_ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

  it('agrees without context takeover and echoes every size compressed both ways', async () => {
    const { url } = await startWs({ perMessageDeflate: { threshold: 0 }, maxPayload: 4 << 20 });
    const client = await connect(url, { compression: { threshold: 0 } });
    assert.equal(client.extensions, DEFAULT_ANSWER);
    const calls = countZlibCalls();
    try {
      await assertEchoSizes(client, () => nextOf(client, Event.Message), 'ws, compressed');
    } finally {
      calls.stop();
    }
    assert.ok(calls.deflates >= 2 * ECHO_SIZES.length - 2 && calls.inflates >= 2 * ECHO_SIZES.length - 2, `deflated ${calls.deflates}, inflated ${calls.inflates}`);
  });

  it('keeps contexts with contextTakeover: 200 similar messages each way through ws’s streaming zlib', async () => {
    const { url } = await startWs({ perMessageDeflate: { threshold: 0 } });
    const client = await connect(url, { compression: { threshold: 0, contextTakeover: true } });
    assert.equal(client.extensions, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    for (let i = 0; i < 200; i++) {
      const text = JSON.stringify({ type: 'stream', seq: i, t: 1_700_000_000_000 + i * 33, value: Math.sin(i).toFixed(5) });
      client.send(text);
      assert.equal((await nextOf(client, Event.Message)).message, text);
    }
  });

  it('compresses with the window the server sets (client_max_window_bits=9: ws inflates with a 512-byte window)', async () => {
    const { url } = await startWs({ perMessageDeflate: { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 } });
    const client = await connect(url, { compression: { threshold: 0 } });
    assert.equal(client.extensions, `${DEFAULT_ANSWER}; client_max_window_bits=9; server_max_window_bits=10`);
    await assertEchoSizes(client, () => nextOf(client, Event.Message), 'ws, 9-bit window');
  });
});

describe('Client ↔ Python websockets (a server nobody here wrote)', { skip: pythonWebsockets.skip }, () => {
  let plainUrl = '';
  let secureUrl = '';
  let ca: Buffer;
  before(async () => {
    pythonWebsockets.require();
    const certificate = selfSignedCertificate();
    ca = certificate.cert;
    const [plain, secure] = await Promise.all([startPython(), startPython([certificate.certPath, certificate.keyPath])]);
    plainUrl = `ws://127.0.0.1:${plain}`;
    secureUrl = `wss://localhost:${secure}`;
  });

  it('echoes text and binary messages of 0 B to 1 MiB over ws://', async () => {
    const plain = await connect(plainUrl);
    await assertEchoSizes(plain, () => nextOf(plain, Event.Message), 'python ws://');
  });

  it('echoes text and binary messages of 0 B to 1 MiB over wss:// with the test CA', async () => {
    const secure = await connect(secureUrl, { tls: { ca } });
    await assertEchoSizes(secure, () => nextOf(secure, Event.Message), 'python wss://');
  });

  it('agrees to its default permessage-deflate (12-bit windows) and echoes every size compressed (RFC 7692)', async () => {
    const client = await connect(plainUrl, { compression: { threshold: 0 } });
    assert.equal(
      client.extensions,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12',
    );
    await assertEchoSizes(client, () => nextOf(client, Event.Message), 'python, compressed');
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
