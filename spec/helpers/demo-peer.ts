/**
 * A client of the demo's JSON protocol (demo/protocol.ts) on the `ws` package: keeps every
 * message it gets, to be taken by type.
 */
import assert from 'node:assert/strict';
import WebSocket from 'ws';

export type Message = Record<string, any>;

/** A `ws` client that keeps every JSON message it gets, to be taken by type. */
export class DemoPeer {
  /** Every message received, in arrival order. */
  readonly history: Message[] = [];
  private readonly inbox: Message[] = [];
  private wake: (() => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, binary) => {
      assert.equal(binary, false, 'the demo sends text only');
      const message = JSON.parse(data.toString());
      this.history.push(message);
      this.inbox.push(message);
      this.wake?.();
    });
  }

  static async open(url: string): Promise<DemoPeer> {
    const socket = new WebSocket(url);
    const peer = new DemoPeer(socket);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return peer;
  }

  /** Logs in and takes the welcome and the first users list. */
  static async login(url: string, name: string): Promise<DemoPeer> {
    const peer = await DemoPeer.open(url);
    peer.send({ type: 'login', name });
    assert.deepEqual(await peer.take('welcome'), { type: 'welcome', name });
    await peer.take('users');
    return peer;
  }

  send(message: Message | string | Buffer): void {
    this.socket.send(typeof message === 'object' && !Buffer.isBuffer(message) ? JSON.stringify(message) : message);
  }

  /** The first message of `type` (earlier ones of other types stay), waiting up to 2 s. */
  async take(type: string, timeoutMs = 2000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex((m) => m.type === type);
      if (index >= 0) return this.inbox.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${type}" message within ${timeoutMs} ms; got ${JSON.stringify(this.inbox)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /**
   * Waits until the latest message of `type` satisfies `check` (a list that settles, in a
   * cluster), within `timeoutMs` in all; the messages of that type so far are taken.
   */
  async until(type: string, check: (message: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    let last = [...this.history].reverse().find((m) => m.type === type);
    while (last === undefined || !check(last) || this.inbox.some((m) => m.type === type && m !== last)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the latest "${type}" message is not as expected after ${timeoutMs} ms: ${JSON.stringify(last)}`);
      last = await this.take(type, left).catch(() => last);
    }
    const index = this.inbox.indexOf(last);
    if (index >= 0) this.inbox.splice(index, 1);
    return last;
  }

  /** Forgets the messages of `type` that arrived so far. */
  discard(type: string): void {
    for (let i; (i = this.inbox.findIndex((m) => m.type === type)) >= 0; ) this.inbox.splice(i, 1);
  }

  /** The newest message of `type` once one more arrived; the older ones of that type are dropped. */
  async latest(type: string): Promise<Message> {
    let newest = await this.take(type);
    for (let i; (i = this.inbox.findIndex((m) => m.type === type)) >= 0; ) newest = this.inbox.splice(i, 1)[0]!;
    return newest;
  }

  /** Sends a request and expects exactly this error. */
  async refused(message: Message | string | Buffer, reason: string | RegExp, requestType?: string): Promise<void> {
    this.send(message);
    const error = await this.take('error');
    if (typeof reason === 'string') assert.equal(error.reason, reason);
    else assert.match(error.reason, reason);
    assert.equal(error.request, requestType);
  }

  /** Asserts no message of `type` arrives for `ms`. */
  async none(type: string, ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    assert.equal(this.inbox.filter((m) => m.type === type).length, 0, `unexpected ${type}: ${JSON.stringify(this.inbox)}`);
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  close(): Promise<void> {
    this.socket.close();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }
}
