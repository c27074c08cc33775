/**
 * Issue #4: every timeout and limit of the server, over loopback TCP and over a memory network
 * (spec/api/transports.ts), with raw clients that do the handshake themselves. Where time matters
 * the server runs on a clock the test steps instead of sleeping: a FakeClock over TCP, the
 * network's own clock in memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { Event, SendStatus, Server, type DisconnectEvent, type ServerEvent, type ServerOptions } from '../../lib/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFrame, frame, OP } from '../helpers/frames.js';
import { RawClient, upgradeRequest } from '../helpers/raw-client.js';
import { type Transport, transports, useTransport } from './transports.js';

/**
 * A server whose events are polled into `log`, every 2 ms unless made manual (the library sends
 * the close frame that answers a peer's close or a failure once the program takes the Disconnect).
 */
class Harness {
  readonly log: ServerEvent[] = [];
  private readonly ticker: NodeJS.Timeout | undefined;
  constructor(
    readonly server: Server,
    autoPump: boolean,
  ) {
    if (autoPump) this.ticker = setInterval(() => this.pump(), 2);
  }

  stopPumping(): void {
    clearInterval(this.ticker);
  }

  get port(): number {
    return this.server.port;
  }

  pump(): void {
    for (let ev; (ev = this.server.poll()); ) this.log.push(ev);
  }

  /** Polls (on real time) until an event matches; fails after `ms`. */
  async event<E extends ServerEvent>(match: (ev: ServerEvent) => ev is E, ms?: number): Promise<E>;
  async event(match: (ev: ServerEvent) => boolean, ms?: number): Promise<ServerEvent>;
  async event(match: (ev: ServerEvent) => boolean, ms = 3000): Promise<ServerEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      this.pump();
      const found = this.log.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching event within ${ms} ms; got ${this.log.map((e) => e.type).join(', ')}`);
      await sleep(2);
    }
  }

  /** The connection id of the next NewConnection. */
  async opened(): Promise<number> {
    const ev = await this.event((e) => e.type === Event.NewConnection && !this.seen.has(e.connId));
    this.seen.add(ev.connId);
    return ev.connId;
  }
  private readonly seen = new Set<number>();

  disconnect(connId: number, ms?: number): Promise<DisconnectEvent> {
    return this.event((e): e is DisconnectEvent => e.type === Event.Disconnect && e.connId === connId, ms);
  }

  hasDisconnect(connId: number): boolean {
    this.pump();
    return this.log.some((e) => e.type === Event.Disconnect && e.connId === connId);
  }
}

const open: { harnesses: Harness[]; sockets: net.Socket[] } = { harnesses: [], sockets: [] };

for (const transport of transports) describe(`over ${transport.name}`, () => limitsSuite(transport));

/** Every limit and timeout, over one transport. */
function limitsSuite(t: Transport): void {
  useTransport(t, async () => {
    for (const s of open.sockets.splice(0)) s.destroy();
    await Promise.all(
      open.harnesses.splice(0).map((h) => {
        h.stopPumping();
        return t.stop(h.server, 200);
      }),
    );
  });

  async function start(options: ServerOptions = {}, autoPump = true): Promise<Harness> {
    const server = new Server(options);
    await t.start(server);
    const h = new Harness(server, autoPump);
    open.harnesses.push(h);
    return h;
  }

  async function client(h: Harness): Promise<{ ws: RawClient; id: number }> {
    const ws = await RawClient.open(h.port, { dial: t.dial });
    open.sockets.push(ws.socket);
    return { ws, id: await h.opened() };
  }

  async function rawSocket(port: number): Promise<RawClient> {
    const ws = await RawClient.connect(port, { dial: t.dial });
    open.sockets.push(ws.socket);
    return ws;
  }

  describe('handshakeTimeout', () => {
    it('cuts a connection that sends nothing, and one that trickles its request, after the timeout', async () => {
      const h = await start({ handshakeTimeout: 300 });
      const silent = await rawSocket(h.port);
      const trickle = await rawSocket(h.port);
      const began = t.now();
      const request = upgradeRequest(h.port);
      const closed = Promise.all([silent.closed(3000), trickle.closed(3000)]);
      for (let i = 0; trickle.ended === undefined && t.now() - began < 1500; i++) {
        trickle.write(request[i % request.length]!);
        await t.elapse(20);
      }
      const [a, b] = await closed;
      const took = t.now() - began;
      assert.ok(a.how !== 'timeout' && b.how !== 'timeout', 'both sockets were cut');
      assert.ok(took >= 250 && took < 1500, `cut after ${took} ms (timeout 300 ms)`);
      assert.equal(trickle.status, 0, 'no HTTP answer to an unfinished request');
      h.pump();
      assert.deepEqual(h.log, [], 'never a NewConnection');
    });

    it('a completed handshake is not cut by the handshake timer', async () => {
      const h = await start({ handshakeTimeout: 200, pingInterval: 0 });
      const { ws, id } = await client(h);
      await t.elapse(450);
      assert.equal(ws.ended, undefined);
      ws.write(frame(OP.TEXT, 'still here'));
      const msg = await h.event((e) => e.type === Event.Message && e.connId === id);
      assert.equal(msg.type === Event.Message && msg.message, 'still here');
    });

    it('300 half-open handshakes do not delay a good client (echo < 1 s), and are all cut', async () => {
      const h = await start({ handshakeTimeout: 2000 });
      const loris: RawClient[] = [];
      const partial = upgradeRequest(h.port).slice(0, 40);
      for (let i = 0; i < 300; i++) {
        const s = await rawSocket(h.port);
        s.write(partial);
        loris.push(s);
      }
      const echo = setInterval(() => {
        h.pump();
        for (const ev of h.log.splice(0)) if (ev.type === Event.Message) h.server.send(ev.connId, ev.message);
      }, 1);
      try {
        const began = performance.now();
        const ws = await RawClient.open(h.port, { dial: t.dial });
        open.sockets.push(ws.socket);
        ws.write(frame(OP.TEXT, 'ping through the crowd'));
        assert.equal((await ws.message(1000)).toString(), 'ping through the crowd');
        const took = performance.now() - began;
        assert.ok(took < 1000, `good client echoed in ${took.toFixed(0)} ms`);
        assert.equal(loris.filter((s) => s.ended).length, 0, 'the half-open ones are still waiting');
        const closed = Promise.all(loris.map((s) => s.closed(4000)));
        await t.elapse(2000);
        const ended = await closed;
        assert.equal(ended.filter((e) => e.how !== 'timeout').length, 300, 'every half-open handshake was cut');
      } finally {
        clearInterval(echo);
      }
    });

    it('a refused handshake whose peer never closes is cut instead of held forever', async () => {
      const h = await start({ handshakeTimeout: 500 });
      const socket = t.dial(h.port, '127.0.0.1', { allowHalfOpen: true });
      open.sockets.push(socket);
      const ws = new RawClient(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      ws.write(upgradeRequest(h.port, { headers: { 'Sec-WebSocket-Version': '12' } }));
      assert.ok(await ws.until(() => ws.status !== 0));
      assert.equal(ws.status, 426);
      let reset = false;
      socket.on('error', () => (reset = true));
      await t.elapse(1200); // past the linger of min(handshakeTimeout, 1 s)
      // A half-closed server socket would swallow this; a closed one answers with a reset.
      for (let i = 0; i < 5 && !reset; i++) {
        socket.write('are you still there?');
        await t.settle(50);
      }
      assert.ok(reset, 'the server let go of the socket although the peer kept its side open');
    });
  });

  describe('maxHandshakeBytes', () => {
    it('answers a 20 KiB request head with 431 (default 16 KiB) and accepts a 12 KiB one', async () => {
      const h = await start();
      const big = await rawSocket(h.port);
      big.write(upgradeRequest(h.port, { headers: { 'X-Pad': 'a'.repeat(20 * 1024) } }));
      assert.ok(await big.until(() => big.status !== 0));
      assert.equal(big.status, 431);
      assert.notEqual((await big.closed()).how, 'timeout');
      const fine = await rawSocket(h.port);
      fine.write(upgradeRequest(h.port, { headers: { 'X-Pad': 'a'.repeat(12 * 1024) } }));
      assert.ok(await fine.until(() => fine.status !== 0));
      assert.equal(fine.status, 101);
    });

    it('honours a smaller limit, even when the head arrives in many pieces', async () => {
      const h = await start({ maxHandshakeBytes: 2048 });
      const s = await rawSocket(h.port);
      const request = Buffer.from(upgradeRequest(h.port, { headers: { 'X-Pad': 'b'.repeat(3000) } }));
      for (let i = 0; i < request.length && !s.ended; i += 256) {
        s.write(request.subarray(i, i + 256));
        await t.settle(1);
      }
      assert.ok(await s.until(() => s.status !== 0));
      assert.equal(s.status, 431);
      h.pump();
      assert.deepEqual(h.log, []);
    });
  });

  describe('closeTimeout (fake clock)', () => {
    it('a peer that never answers our close frame is cut: Disconnect 1006, initiator timeout', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, closeTimeout: 5000, pingInterval: 0 });
      const { ws, id } = await client(h);
      assert.equal(h.server.close(id, 1000, 'bye'), true);
      assert.ok(await ws.until(() => ws.closeReceived !== undefined));
      assert.deepEqual(ws.closeReceived && { code: ws.closeReceived.code, reason: ws.closeReceived.reason.toString() }, { code: 1000, reason: 'bye' });
      await time.advance(4999);
      assert.equal(h.hasDisconnect(id), false, 'not before closeTimeout');
      assert.equal(ws.ended, undefined);
      await time.advance(1);
      const d = await h.disconnect(id);
      assert.equal(d.code, 1006);
      assert.equal(d.wasClean, false);
      assert.equal(d.initiator, 'timeout');
      assert.match(d.reason, /timeout/);
      assert.notEqual((await ws.closed()).how, 'timeout', 'TCP was destroyed');
    });

    it('a peer that answers in time closes cleanly with its code', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, closeTimeout: 5000, pingInterval: 0 });
      const { ws, id } = await client(h);
      h.server.close(id, 4000);
      assert.ok(await ws.until(() => ws.closeReceived !== undefined));
      ws.write(closeFrame(4000));
      const d = await h.disconnect(id);
      assert.deepEqual([d.code, d.wasClean, d.initiator], [4000, true, 'local']);
      assert.equal((await ws.closed()).how, 'fin');
    });
  });

  describe('heartbeat (fake clock)', () => {
    const pings = (ws: RawClient): number => ws.log.filter((f) => f.opcode === OP.PING).length;

    it('pings after pingInterval of silence; a pong keeps the connection; no answer → 1006 "timeout"', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, pingInterval: 1000, pingTimeout: 500 });
      const { ws, id } = await client(h);
      await time.advance(999);
      assert.equal(pings(ws), 0, 'no ping before the interval');
      await time.advance(1);
      assert.ok(await ws.until(() => pings(ws) === 1), 'a ping after 1000 ms of silence');
      ws.write(frame(OP.PONG));
      await t.settle(30); // let the server read the pong
      await time.advance(999);
      assert.equal(h.hasDisconnect(id), false, 'the pong kept it alive past pingTimeout');
      assert.equal(pings(ws), 1, 'no new ping while the peer was heard within the interval');
      await time.advance(1);
      assert.ok(await ws.until(() => pings(ws) === 2), 'a second ping after another interval of silence');
      await time.advance(499);
      assert.equal(h.hasDisconnect(id), false, 'not before pingTimeout');
      await time.advance(1);
      const d = await h.disconnect(id);
      assert.equal(d.code, 1006);
      assert.equal(d.initiator, 'timeout');
      assert.match(d.reason, /timeout/);
      assert.notEqual((await ws.closed()).how, 'timeout', 'the silent peer was dropped');
    });

    it('info(connId).rtt: from a heartbeat ping to its pong, undefined before the first; other pongs measure nothing', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, pingInterval: 1000, pingTimeout: 500 });
      const { ws, id } = await client(h);
      assert.equal(h.server.info(id)!.rtt, undefined);
      ws.write(frame(OP.PONG)); // unsolicited (RFC 6455 §5.5.3)
      await time.advance(1000);
      assert.ok(await ws.until(() => pings(ws) === 1));
      const ping = ws.log.find((f) => f.opcode === OP.PING)!;
      assert.equal(ping.payload.length, 4, 'the heartbeat ping carries a count');
      await time.advance(7);
      ws.write(frame(OP.PONG, ping.payload));
      await t.settle(30);
      assert.equal(h.server.info(id)!.rtt, 7);
    });

    it('any data counts as a sign of life', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, pingInterval: 1000, pingTimeout: 500 });
      const { ws, id } = await client(h);
      for (let i = 0; i < 10; i++) {
        await time.advance(900);
        ws.write(frame(OP.TEXT, `tick ${i}`));
        await h.event((e) => e.type === Event.Message && e.message === `tick ${i}`);
      }
      assert.equal(pings(ws), 0);
      assert.equal(h.hasDisconnect(id), false);
    });

    it('is on by default (30 s / 30 s)', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock });
      const { ws, id } = await client(h);
      await time.advance(29_999);
      assert.equal(pings(ws), 0);
      await time.advance(1);
      assert.ok(await ws.until(() => pings(ws) === 1));
      await time.advance(30_000);
      const d = await h.disconnect(id);
      assert.equal(d.code, 1006);
      assert.match(d.reason, /timeout/);
    });

    it('pingInterval 0 disables it', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, pingInterval: 0 });
      const { ws, id } = await client(h);
      await time.advance(3_600_000);
      assert.equal(pings(ws), 0);
      assert.equal(h.hasDisconnect(id), false);
      assert.equal(ws.ended, undefined);
    });

    it('a connection paused by a stalled program is not dropped for the silence we caused', async () => {
      const time = t.steppedClock();
      const h = await start({ clock: time.clock, pingInterval: 1000, pingTimeout: 500, maxQueuedBytesPerConnection: 1024 }, false);
      const { ws, id } = await client(h);
      for (let i = 0; i < 8; i++) ws.write(frame(OP.BINARY, Buffer.alloc(512, i)));
      await t.settle(50); // the server reads, queues past the limit, and stops reading
      await time.advance(10_000); // the program stalls for 10 s
      assert.equal(h.hasDisconnect(id), false, 'still connected after the stall');
      const got = h.log.filter((e) => e.type === Event.Message).length;
      await t.settle(30);
      h.pump();
      assert.equal(h.log.filter((e) => e.type === Event.Message).length, 8, `all 8 messages arrived (had ${got})`);
      ws.write(frame(OP.PONG));
      await t.settle(30);
      await time.advance(1000);
      assert.equal(h.hasDisconnect(id), false);
    });
  });

  /** Sends `size`-byte binary messages, one per event-loop turn, until `stop` says so. */
  async function flood(h: Harness, id: number, size: number, stop: (status: SendStatus) => boolean): Promise<{ accepted: number; statuses: SendStatus[] }> {
    const statuses: SendStatus[] = [];
    let accepted = 0;
    for (let i = 0; i < 100_000; i++) {
      const status = h.server.send(id, Buffer.alloc(size, i & 0xff));
      statuses.push(status);
      if (status === SendStatus.SUCCESS || status === SendStatus.BACKPRESSURE) accepted += size;
      const info = h.server.info(id);
      // A message is refused once the buffer holds maxBufferedBytes: it may pass it by one message.
      if (info) assert.ok(info.bufferedAmount < 512 * 1024 + size + 14, `bufferedAmount ${info.bufferedAmount} within maxBufferedBytes`);
      if (stop(status)) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { accepted, statuses };
  }

  describe('send side: sendHighWaterMark, maxBufferedBytes, closeOnBackpressureLimit', () => {
    const limits = { sendHighWaterMark: 64 * 1024, maxBufferedBytes: 512 * 1024, pingInterval: 0 };

    it('BACKPRESSURE past the high-water mark, DROPPED past the limit, nothing accepted is lost', async () => {
      const h = await start(limits);
      const { ws, id } = await client(h);
      ws.socket.pause(); // a client that does not read
      ws.keepData = false;
      const { accepted, statuses } = await flood(h, id, 16 * 1024, (s) => s === SendStatus.DROPPED);
      const first = statuses.indexOf(SendStatus.BACKPRESSURE);
      assert.ok(first > 0, 'SUCCESS first, then BACKPRESSURE');
      assert.equal(statuses.at(-1), SendStatus.DROPPED);
      const info = h.server.info(id)!;
      assert.ok(info.bufferedAmount >= 512 * 1024 && info.bufferedAmount < 512 * 1024 + 16 * 1024 + 14, `bufferedAmount ${info.bufferedAmount}`);
      assert.equal(h.server.send(id, Buffer.alloc(600 * 1024)), SendStatus.DROPPED, 'a message bigger than the room left');
      // Control frames are never dropped: a pong and our close frame still go out behind the data.
      ws.write(frame(OP.PING, 'are you there'));
      await t.settle(30);
      assert.equal(h.server.send(id, Buffer.alloc(512 * 1024)), SendStatus.DROPPED);
      assert.equal(h.server.close(id, 1000, 'done'), true);
      ws.socket.resume();
      assert.ok(await ws.until(() => ws.closeReceived !== undefined, 10_000), 'the close frame arrived');
      assert.equal(ws.dataBytes, accepted, 'every accepted byte arrived, no dropped one did');
      const pong = ws.log.find((f) => f.opcode === OP.PONG);
      assert.equal(pong?.payload.toString(), 'are you there');
      assert.equal(ws.closeReceived?.code, 1000);
    });

    it('closeOnBackpressureLimit fails the connection with 1008 instead', async () => {
      const h = await start({ ...limits, closeOnBackpressureLimit: true });
      const { ws, id } = await client(h);
      ws.socket.pause();
      ws.keepData = false;
      const { accepted, statuses } = await flood(h, id, 16 * 1024, (s) => s !== SendStatus.SUCCESS && s !== SendStatus.BACKPRESSURE);
      assert.notEqual(statuses.at(-1), SendStatus.SUCCESS);
      const d = await h.disconnect(id);
      assert.equal(d.code, 1008);
      assert.equal(d.wasClean, false);
      assert.equal(h.server.send(id, 'late'), SendStatus.CLOSED);
      ws.socket.resume();
      assert.ok(await ws.until(() => ws.closeReceived !== undefined, 10_000));
      assert.equal(ws.closeReceived?.code, 1008);
      assert.equal(ws.dataBytes, accepted);
    });

    it('a peer that pings but never reads: no pong dropped, our buffer bounded, its reading held; the heartbeat drops it', async () => {
      const time = t.steppedClock();
      const max = 256 * 1024;
      const h = await start({ clock: time.clock, maxBufferedBytes: max, pingInterval: 1000, pingTimeout: 1000 });
      const { ws, id } = await client(h);
      ws.socket.pause();
      const ping = frame(OP.PING, Buffer.alloc(125, 0x70), { mask: Buffer.from([9, 8, 7, 6]) });
      const burst = Buffer.concat(Array.from({ length: 256 }, () => ping)); // 33 KiB of pings
      for (let i = 0; i < 512; i++) {
        ws.write(burst); // 16 MiB in all; the pongs would be as big
      }
      // Until the pongs fill the buffer (at once on a quiet machine; a loaded one gets 10 s), then
      // a while more, in which it must not grow past the bound.
      for (let waited = 0; h.server.info(id)!.bufferedAmount <= max && waited < 10_000; waited += 50) await t.settle(50);
      await t.settle(300);
      const buffered = h.server.info(id)!.bufferedAmount;
      assert.ok(buffered > max && buffered < max + 128 * 1024, `server send buffer ${buffered} bounded near maxBufferedBytes`);
      assert.ok(ws.socket.writableLength > 1024 * 1024, 'the pinger is held back by TCP');
      // Silent towards us while it does not read: the heartbeat drops it.
      await time.advance(1000);
      await time.advance(1000);
      const d = await h.disconnect(id);
      assert.deepEqual([d.code, d.initiator], [1006, 'timeout']);
      assert.match(d.reason, /timeout/);
    });

    it('pongs held back that way all go out once the peer reads again', async () => {
      const max = 128 * 1024;
      const h = await start({ maxBufferedBytes: max, pingInterval: 0 });
      const { ws, id } = await client(h);
      ws.socket.pause();
      const ping = frame(OP.PING, Buffer.alloc(125, 0x71), { mask: Buffer.from([1, 3, 5, 7]) });
      const total = 32 * 1024; // 4 MiB of pings
      ws.write(Buffer.concat(Array.from({ length: total }, () => ping)));
      await t.settle(300);
      assert.ok(h.server.info(id)!.bufferedAmount < max + 128 * 1024);
      ws.socket.resume();
      const pongs = (): number => ws.log.filter((f) => f.opcode === OP.PONG).length;
      assert.ok(await ws.until(() => pongs() === total, 10_000), `${pongs()} of ${total} pongs`);
      assert.equal(ws.log.filter((f) => f.opcode === OP.PONG && f.payload.length !== 125).length, 0);
      assert.equal(h.hasDisconnect(id), false);
    });

    it('info().bufferedAmount is 0 for an idle connection and undefined for an unknown one', async () => {
      const h = await start({ pingInterval: 0 });
      const { id } = await client(h);
      assert.equal(h.server.info(id)?.bufferedAmount, 0);
      assert.equal(h.server.info(id + 1000), undefined);
    });
  });

  describe('receive side: maxQueuedBytesPerConnection', () => {
    it('stops reading a connection whose events are not drained, loses nothing, resumes when drained', async () => {
      const limit = 64 * 1024;
      const h = await start({ maxQueuedBytesPerConnection: limit, pingInterval: 0 }, false);
      const { ws, id } = await client(h);
      const other = await client(h);
      const count = 12_288;
      const size = 2048; // 24 MiB in all: more than the kernel buffers hold
      for (let i = 0; i < count; i++) {
        const payload = Buffer.alloc(size, i & 0xff);
        payload.writeUInt32BE(i, 0);
        ws.write(frame(OP.BINARY, payload));
      }
      // The program stalls: nothing is polled for a while.
      await t.settle(400);
      const queued = h.server.info(id)!.queuedBytes;
      assert.ok(queued > limit && queued < limit + 256 * 1024, `queued ${queued} bytes, bounded near the limit`);
      assert.ok(ws.socket.writableLength > 0, 'the sender is held back by TCP');
      // The other connection is not held back.
      other.ws.write(frame(OP.TEXT, 'me too'));
      await t.settle(50);
      // Now drain, checking order and bytes.
      let next = 0;
      let bytes = 0;
      let otherServed = false;
      const deadline = Date.now() + 20_000;
      while (next < count && Date.now() < deadline) {
        h.pump();
        for (const ev of h.log.splice(0)) {
          if (ev.type === Event.Message && ev.connId === other.id) otherServed = next < count / 2;
          if (ev.type !== Event.Message || ev.connId !== id) continue;
          const data = ev.message as Buffer;
          assert.equal(data.readUInt32BE(0), next, 'in order, none lost or repeated');
          next++;
          bytes += data.length;
          assert.ok(h.server.info(id)!.queuedBytes <= limit + 256 * 1024);
        }
        await sleep(1);
      }
      assert.equal(next, count);
      assert.equal(bytes, count * size);
      assert.ok(otherServed, 'the other connection was read while this one was paused');
    });
  });

  describe('receive side: a flood of empty messages', () => {
    it('counts each queued event, so empty messages pause reading too, and none is lost', async () => {
      const limit = 16 * 1024;
      const h = await start({ maxQueuedBytesPerConnection: limit, pingInterval: 0 }, false);
      const { ws, id } = await client(h);
      const count = 200_000; // 1.2 MiB of 6-byte frames: far more events than the limit allows
      const empty = frame(OP.BINARY, Buffer.alloc(0));
      ws.write(Buffer.concat(Array.from({ length: count }, () => empty)));
      await t.settle(400);
      // Reading pauses between reads: one 64 KiB read of 6-byte frames may still queue ~11 000 events.
      const queued = h.server.info(id)!.queuedBytes;
      assert.ok(queued > limit && queued < limit + 1024 * 1024, `queued ${queued}, bounded near the limit`);
      assert.ok(h.server.pending < count / 4, `${h.server.pending} events queued: reading paused`);
      let received = 0;
      const deadline = Date.now() + 20_000;
      while (received < count && Date.now() < deadline) {
        h.pump();
        for (const ev of h.log.splice(0)) if (ev.type === Event.Message && ev.connId === id && ev.message.length === 0) received++;
        await sleep(1);
      }
      assert.equal(received, count);
      assert.equal(h.server.info(id)!.queuedBytes, 0);
    });
  });

  describe('reassembly and maxMessageSize', () => {
    it('65 536+ one-byte fragments of one message arrive as one message', async () => {
      const h = await start({ pingInterval: 0 });
      const { ws, id } = await client(h);
      const n = 70_000;
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        parts.push(frame(i === 0 ? OP.TEXT : OP.CONT, String.fromCharCode(97 + (i % 26)), { fin: i === n - 1 }));
      }
      const wire = Buffer.concat(parts);
      for (let i = 0; i < wire.length; i += 64 * 1024) ws.write(wire.subarray(i, i + 64 * 1024));
      const msg = await h.event((e) => e.type === Event.Message && e.connId === id, 10_000);
      assert.equal(msg.type === Event.Message && msg.message.length, n);
      assert.equal(msg.type === Event.Message && (msg.message as string).slice(0, 28), 'abcdefghijklmnopqrstuvwxyzab');
      assert.equal(h.hasDisconnect(id), false);
    });

    it('a fragmented message over maxMessageSize is closed with 1009 when its fragments pass the limit', async () => {
      const h = await start({ maxMessageSize: 64 * 1024, pingInterval: 0 });
      const { ws, id } = await client(h);
      const piece = Buffer.alloc(16 * 1024, 1);
      for (let i = 0; i < 4; i++) ws.write(frame(i === 0 ? OP.BINARY : OP.CONT, piece, { fin: false }));
      await t.settle(50);
      assert.equal(ws.log.some((f) => f.opcode === OP.CLOSE), false, 'exactly 64 KiB so far: still fine');
      ws.write(frame(OP.CONT, Buffer.alloc(1), { fin: true }).subarray(0, 6)); // just the header of one more byte
      assert.ok(await ws.until(() => ws.closeReceived !== undefined));
      assert.equal(ws.closeReceived?.code, 1009);
      const d = await h.disconnect(id);
      assert.equal(d.code, 1009);
      h.pump();
      assert.equal(h.log.filter((e) => e.type === Event.Message).length, 0, 'nothing delivered');
    });

    it('one-byte fragments past the limit → 1009', async () => {
      const h = await start({ maxMessageSize: 1000, pingInterval: 0 });
      const { ws } = await client(h);
      const parts: Buffer[] = [];
      for (let i = 0; i < 1001; i++) parts.push(frame(i === 0 ? OP.TEXT : OP.CONT, 'x', { fin: i === 1000 }));
      ws.write(Buffer.concat(parts));
      assert.ok(await ws.until(() => ws.closeReceived !== undefined));
      assert.equal(ws.closeReceived?.code, 1009);
    });

    it('a 64-bit length over the limit is closed with 1009 from the header alone', async () => {
      const h = await start({ pingInterval: 0 });
      const { ws, id } = await client(h);
      ws.write(frame(OP.BINARY, '', { declaredLength: 2n ** 32n })); // 14 header bytes, no payload
      assert.ok(await ws.until(() => ws.closeReceived !== undefined, 1000), 'closed at once');
      assert.equal(ws.closeReceived?.code, 1009);
      assert.equal((await h.disconnect(id)).code, 1009);
      assert.notEqual((await ws.closed()).how, 'timeout');
    });

    it('a 64-bit length with the top bit set → 1009', async () => {
      const h = await start({ pingInterval: 0 });
      const { ws } = await client(h);
      ws.write(frame(OP.BINARY, '', { declaredLength: 2n ** 63n + 5n }));
      assert.ok(await ws.until(() => ws.closeReceived !== undefined, 1000));
      assert.equal(ws.closeReceived?.code, 1009);
    });
  });
}
