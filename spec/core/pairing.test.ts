/**
 * A ClientProtocol and a ServerProtocol talking to each other with no sockets: the bytes one
 * owes are handed to the other, in pieces the test chooses. Handshake, messages of every size
 * class split at every byte, ping/pong, a close from each side, and every failure code, seen
 * from both ends.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frame } from '../helpers/frames.js';
import { ClientProtocol, ErrorCode, HandshakeError, ServerProtocol, type ClientProtocolEvent, type ServerProtocolEvent } from '../../lib/protocol.js';

type AnyEvent = ServerProtocolEvent | ClientProtocolEvent;

/** How the bytes in flight are cut before they are handed over. */
type Cutter = (bytes: Buffer) => Buffer[];
const whole: Cutter = (bytes) => (bytes.length > 0 ? [bytes] : []);
const byteByByte: Cutter = (bytes) => Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
const splitAt = (at: number): Cutter => (bytes) => [bytes.subarray(0, at), bytes.subarray(at)].filter((b) => b.length > 0);

/** A client and a server, and every event each one yielded, in order. */
class Pair {
  readonly client: ClientProtocol;
  readonly server: ServerProtocol;
  readonly serverEvents: ServerProtocolEvent[] = [];
  readonly clientEvents: ClientProtocolEvent[] = [];

  constructor(options: { maxMessageSize?: number; protocols?: string[] } = {}) {
    this.client = new ClientProtocol('ws://example.com/chat?room=1', { ...options });
    this.server = new ServerProtocol({ ...options });
  }

  /** Client → server, cut by `cut`; the server's events are recorded (a request is accepted). */
  toServer(cut: Cutter = whole): ServerProtocolEvent[] {
    const before = this.serverEvents.length;
    for (const piece of cut(this.client.dataToSend())) {
      this.server.receiveData(Buffer.from(piece)); // a copy: the receiver unmasks in place
      for (const event of this.server.eventsReceived()) {
        this.serverEvents.push(copied(event) as ServerProtocolEvent);
        if (event.type === 'request') this.server.accept();
      }
    }
    return this.serverEvents.slice(before);
  }

  /** Server → client, cut by `cut`. */
  toClient(cut: Cutter = whole): ClientProtocolEvent[] {
    const before = this.clientEvents.length;
    for (const piece of cut(this.server.dataToSend())) {
      this.client.receiveData(Buffer.from(piece));
      for (const event of this.client.eventsReceived()) this.clientEvents.push(copied(event) as ClientProtocolEvent);
    }
    return this.clientEvents.slice(before);
  }

  /** Both ways until nothing is in flight. */
  settle(): void {
    for (let i = 0; i < 10; i++) {
      if (this.toServer().length === 0 && this.toClient().length === 0 && this.client.bufferedAmount === 0 && this.server.bufferedAmount === 0) return;
    }
  }

  open(cut: Cutter = whole): this {
    const request = this.toServer(cut);
    assert.equal(request[0]?.type, 'request');
    const open = this.toClient(cut);
    assert.equal(open[0]?.type, 'open');
    assert.equal(this.server.state, 'open');
    assert.equal(this.client.state, 'open');
    return this;
  }
}

/** Events hold views of bytes the next read may reuse: keep copies. */
function copied(event: AnyEvent): AnyEvent {
  if (event.type === 'message' && event.binary) return { ...event, data: Buffer.from(event.data as Buffer) };
  return event;
}

function closeOf(events: AnyEvent[]): Extract<AnyEvent, { type: 'close' }> {
  const closes = events.filter((e) => e.type === 'close');
  assert.equal(closes.length, 1, `exactly one close event: ${JSON.stringify(events.map((e) => e.type))}`);
  assert.equal(events.at(-1), closes[0], 'the close event is the last');
  return closes[0] as Extract<AnyEvent, { type: 'close' }>;
}

function bytesOf(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + (i >> 8)) & 0xff));
}

/** Text of `size` bytes of UTF-8 mixing 1- to 4-byte characters, so splits fall inside them. */
function textOf(size: number): string {
  const pieces = ['a', 'é', '€', '𝄞'];
  let text = '';
  let bytes = 0;
  for (let i = 0; bytes < size; i++) {
    const piece = pieces[i % 4]!;
    const n = Buffer.byteLength(piece);
    if (bytes + n > size) {
      text += 'a'.repeat(size - bytes);
      break;
    }
    text += piece;
    bytes += n;
  }
  return text;
}

describe('ClientProtocol ↔ ServerProtocol, no sockets', () => {
  test('the handshake, whole and split at every byte both ways', () => {
    const reference = new Pair({ protocols: ['chat', 'v2'] }).open();
    const request = reference.serverEvents[0] as Extract<ServerProtocolEvent, { type: 'request' }>;
    assert.equal(request.request.path, '/chat');
    assert.deepEqual(request.request.query, { room: '1' });
    assert.equal(request.request.headers.host, 'example.com');
    assert.equal(request.request.protocol, 'chat');
    assert.equal((reference.clientEvents[0] as Extract<ClientProtocolEvent, { type: 'open' }>).protocol, 'chat');
    for (const cut of [byteByByte, splitAt(1), splitAt(40), splitAt(100)]) new Pair({ protocols: ['chat'] }).open(cut);
  });

  const sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537];
  for (const size of sizes) {
    test(`a ${size}-byte binary and text message each way, delivered byte by byte`, () => {
      const pair = new Pair().open();
      pair.client.sendBinary(bytesOf(size));
      pair.client.sendText(textOf(size));
      const atServer = pair.toServer(byteByByte);
      assert.deepEqual(atServer, [
        { type: 'message', data: bytesOf(size), binary: true },
        { type: 'message', data: textOf(size), binary: false },
      ]);
      pair.server.sendBinary(bytesOf(size));
      pair.server.sendText(textOf(size));
      assert.deepEqual(pair.toClient(byteByByte), [
        { type: 'message', data: bytesOf(size), binary: true },
        { type: 'message', data: textOf(size), binary: false },
      ]);
    });
  }

  test('a 300-byte text message split into two at every byte, each way', () => {
    const text = textOf(300);
    for (let at = 1; at < 320; at++) {
      const pair = new Pair().open();
      pair.client.sendText(text);
      assert.deepEqual(pair.toServer(splitAt(at)), [{ type: 'message', data: text, binary: false }], `client → server split at ${at}`);
      pair.server.sendText(text);
      assert.deepEqual(pair.toClient(splitAt(at)), [{ type: 'message', data: text, binary: false }], `server → client split at ${at}`);
    }
  });

  test('1 MiB binary client → server and 1 MiB text server → client, byte by byte (the default limit exactly)', () => {
    const pair = new Pair().open();
    const big = bytesOf(1 << 20);
    pair.client.sendBinary(big);
    assert.deepEqual(pair.toServer(byteByByte), [{ type: 'message', data: big, binary: true }]);
    const text = textOf(1 << 20);
    pair.server.sendText(text);
    const events = pair.toClient(byteByByte);
    assert.equal(events.length, 1);
    assert.ok(events[0]?.type === 'message' && events[0].data === text);
  });

  test('ping and pong each way: the pong carries the payload back', () => {
    const pair = new Pair().open();
    pair.client.ping('from client');
    assert.deepEqual(pair.toServer(), [{ type: 'ping', payload: Buffer.from('from client') }]);
    assert.deepEqual(pair.toClient(), [{ type: 'pong', payload: Buffer.from('from client') }]);
    pair.server.ping(Buffer.from([1, 2, 3]));
    assert.deepEqual(pair.toClient(), [{ type: 'ping', payload: Buffer.from([1, 2, 3]) }]);
    assert.deepEqual(pair.toServer(), [{ type: 'pong', payload: Buffer.from([1, 2, 3]) }]);
  });

  test('the client closes: both see one clean close; the server ends TCP first, the client once it sees the end', () => {
    const pair = new Pair().open();
    pair.client.close(4000, 'bye');
    assert.equal(pair.client.state, 'closing');
    assert.equal(pair.client.closeExpected, true);
    pair.settle();
    assert.deepEqual(closeOf(pair.serverEvents), { type: 'close', code: 4000, reason: 'bye', wasClean: true, initiator: 'peer' });
    assert.deepEqual(closeOf(pair.clientEvents), { type: 'close', code: 4000, reason: '', wasClean: true, initiator: 'local' });
    assert.equal(pair.server.state, 'closed');
    assert.equal(pair.server.shouldEndTransport, true, 'RFC 6455 §7.1.1: the server closes TCP first');
    assert.equal(pair.client.shouldEndTransport, false, 'the client waits for the server to close TCP');
    pair.client.receiveEof();
    assert.equal(pair.client.shouldEndTransport, true);
    assert.deepEqual(pair.client.eventsReceived(), [], 'nothing after the close event');
  });

  test('the server closes: both see one clean close', () => {
    const pair = new Pair().open();
    pair.server.sendText('last words');
    pair.server.close(1001, 'going away');
    pair.settle();
    assert.deepEqual(pair.clientEvents.slice(1), [
      { type: 'message', data: 'last words', binary: false },
      { type: 'close', code: 1001, reason: 'going away', wasClean: true, initiator: 'peer' },
    ]);
    assert.deepEqual(closeOf(pair.serverEvents), { type: 'close', code: 1001, reason: '', wasClean: true, initiator: 'local' });
    assert.equal(pair.server.sendText('too late'), false);
    assert.equal(pair.client.sendText('too late'), false);
  });

  test('both close at once: each sees a clean close with the other side\'s code', () => {
    const pair = new Pair().open();
    pair.client.close(4001);
    pair.server.close(4002);
    pair.settle();
    assert.equal(closeOf(pair.serverEvents).code, 4001);
    assert.equal(closeOf(pair.clientEvents).code, 4002);
    assert.equal(closeOf(pair.serverEvents).wasClean, true);
  });

  test('a closed TCP connection without a close frame: 1006 on the side that saw it', () => {
    const pair = new Pair().open();
    pair.server.receiveEof();
    assert.deepEqual(closeOf(pair.server.eventsReceived()), {
      type: 'close',
      code: 1006,
      reason: 'connection closed without a close frame',
      wasClean: false,
      initiator: 'peer',
    });
  });

  // Frames a ClientProtocol would never send (masked, as a client must, unless said otherwise).
  const KEY = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  function clientFrame(first: number, payload: number[], declaredLength?: number): Buffer {
    return frame(first & 0x0f, Buffer.from(payload), {
      fin: (first & 0x80) !== 0,
      rsv: (first >> 4) & 7,
      mask: KEY,
      ...(declaredLength === undefined ? {} : { declaredLength }),
    });
  }
  const failures: [string, Buffer, number][] = [
    ['a reserved opcode', clientFrame(0x83, []), 1002],
    ['RSV1 without an extension', clientFrame(0xc1, [0x41]), 1002],
    ['an unmasked client frame', frame(0x1, 'A', { mask: false }), 1002],
    ['a continuation with nothing to continue', clientFrame(0x80, [0x41]), 1002],
    ['a fragmented ping', clientFrame(0x09, []), 1002],
    ['a close frame with a 1-byte payload', clientFrame(0x88, [0x03]), 1002],
    ['the close code 1005 on the wire', clientFrame(0x88, [0x03, 0xed]), 1002],
    ['invalid UTF-8 in a text message', clientFrame(0x81, [0xc3, 0x28]), 1007],
    ['invalid UTF-8 in a close reason', clientFrame(0x88, [0x03, 0xe8, 0xff]), 1007],
    ['a message over the limit', clientFrame(0x82, [], 1025), 1009],
  ];
  for (const [what, bytes, code] of failures) {
    test(`${what}: the server fails with ${code}, the client hears ${code} and answers`, () => {
      const pair = new Pair({ maxMessageSize: 1024 }).open();
      pair.server.receiveData(Buffer.from(bytes));
      const serverClose = closeOf(pair.server.eventsReceived());
      assert.equal(serverClose.code, code);
      assert.equal(serverClose.wasClean, false);
      assert.equal(serverClose.initiator, 'error');
      assert.equal(pair.server.state, 'closed');
      const clientClose = closeOf(pair.toClient());
      assert.equal(clientClose.code, code);
      assert.equal(clientClose.initiator, 'peer');
      assert.equal(pair.toServer().length, 0, 'the server reads nothing after its failure');
    });
  }

  test('a limit of the shell (fail 1008): both see 1008', () => {
    const pair = new Pair().open();
    pair.server.fail(1008, 'send buffer limit reached');
    assert.equal(closeOf(pair.server.eventsReceived()).code, 1008);
    assert.equal(closeOf(pair.toClient()).code, 1008);
  });

  test('a masked frame from the server: the client fails with 1002', () => {
    const pair = new Pair().open();
    pair.client.receiveData(clientFrame(0x81, [0x41]));
    const close = closeOf(pair.client.eventsReceived());
    assert.equal(close.code, 1002);
    assert.equal(closeOf(pair.toServer()).code, 1002);
  });

  const handshakeFailures: [string, (request: string) => string, number, number][] = [
    ['the server answers 401', () => 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n', ErrorCode.UNAUTHORIZED, 401],
    ['the server answers 404', () => 'HTTP/1.1 404 Not Found\r\n\r\n', ErrorCode.NO_HANDSHAKE, 404],
    [
      'a wrong Sec-WebSocket-Accept',
      () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
      ErrorCode.HANDSHAKE_ACCEPT,
      101,
    ],
    ['a malformed status line', () => 'HTTP/1.1 ok\r\n\r\n', ErrorCode.NO_HANDSHAKE, 0],
  ];
  for (const [what, answer, code, status] of handshakeFailures) {
    test(`${what}: the client's close event carries a HandshakeError (code ${code}, status ${status})`, () => {
      const client = new ClientProtocol('ws://example.com/');
      const request = client.dataToSend().toString('latin1');
      client.receiveData(Buffer.from(answer(request), 'latin1'));
      const close = closeOf(client.eventsReceived());
      assert.ok(close.error instanceof HandshakeError);
      assert.equal(close.error.code, code);
      assert.equal(close.error.status, status);
      assert.equal(client.state, 'closed');
      assert.equal(client.shouldEndTransport, true);
    });
  }

  test('a refused request: the server answers with its status and the client reports it', () => {
    const pair = new Pair();
    pair.server.receiveData(pair.client.dataToSend());
    assert.equal(pair.server.eventsReceived()[0]?.type, 'request');
    assert.equal(pair.server.reject(403, 'not you'), true);
    const serverClose = closeOf(pair.server.eventsReceived());
    assert.equal(serverClose.reason, 'handshake refused: 403 not you');
    assert.equal(serverClose.initiator, 'local');
    const clientClose = closeOf(pair.toClient());
    assert.ok(clientClose.error instanceof HandshakeError);
    assert.equal(clientClose.error.status, 403);
  });
});
