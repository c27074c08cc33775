/**
 * demo/sans-io.ts, the README's example of the protocol without I/O: a ServerProtocol over a
 * plain node:net socket, run as its own process and used by the `ws` package, an independent peer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const DEMO = fileURLToPath(new URL('../../demo/sans-io.ts', import.meta.url));

describe('demo/sans-io.ts: ServerProtocol over a plain socket', () => {
  let child: ChildProcess;
  let url = '';

  before(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', DEMO], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
    url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`demo exited with ${code}`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        const ready = /ready (ws:\/\/\S+)/.exec(chunk.toString());
        if (ready) resolve(ready[1]!);
      });
    });
  });
  after(() => child.kill());

  it('echoes text and binary to ws, and closes cleanly', async () => {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const received: (string | Buffer)[] = [];
    const two = new Promise<void>((resolve) =>
      ws.on('message', (data, isBinary) => {
        received.push(isBinary ? (data as Buffer) : data.toString());
        if (received.length === 2) resolve();
      }),
    );
    ws.send('héllo');
    ws.send(Buffer.from([0, 1, 2, 255]));
    await two;
    assert.deepEqual(received, ['héllo', Buffer.from([0, 1, 2, 255])]);
    const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
    ws.close(4000, 'done');
    assert.deepEqual(await closed, [4000, '']);
  });

  it('answers a request that is not a handshake with 400 and closes', async () => {
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.end('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    await new Promise((resolve) => socket.once('close', resolve));
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(answer, /Connection header must include "Upgrade"/);
  });
});
