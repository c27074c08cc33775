/**
 * The demo's game loop logic: each `tick()` answers every waiting event, moves the arena's
 * dots and sends their positions, then publishes one stream sample every other tick. Groups and
 * the stream are the server's topics, and the arena's state one broadcast, so each of their
 * frames is encoded once whatever the number of receivers.
 *
 * With a Cluster (REDIS_URL), several processes share the users, routes, groups and stream:
 * names are claimed in Redis, a routed message goes to the topic of the recipient's connection
 * (its inbox), and the broker carries every topic. A request that waits for Redis (a login, a
 * join, a subscribe: the reply promises that what is published next arrives) holds the
 * connection's later requests back, so each connection is still answered in order.
 */
import { Event, type Server, type ServerEvent } from '../lib/index.js';
import { Arena } from './arena.js';
import type { Cluster } from './cluster.js';
import { parseRequest, Refusal, type Reply, type Request } from './protocol.js';

export const WS_PATH = '/ws';

export const Topic = {
  /** Every logged-in user: receives the `users` list. */
  users: 'users',
  stream: 'stream',
  group: (name: string) => `group:${name}`,
} as const;

/** One stream sample every this many ticks: 15 Hz at the demo's 30 Hz. */
const STREAM_EVERY = 2;

interface User {
  name: string;
  groups: Set<string>;
}

/** Close code for a user whose name another process's user holds (a Redis restart let both claim it). */
export const NAME_TAKEN_ELSEWHERE = 4001;

export class DemoApp {
  /** Logged-in users by connection. Kept here: the server forgets a connection's data before its Disconnect is polled. */
  private readonly users = new Map<number, User>();
  private readonly byName = new Map<string, number>();
  /** Cluster only: names being claimed, so that a second local login of one waits for nothing. */
  private readonly claiming = new Set<string>();
  /** Cluster only: connections whose requests wait behind one that waits for Redis. */
  private readonly held = new Map<number, ServerEvent[]>();
  private readonly arena: Arena;
  private ticks = 0;
  private seq = 0;

  /** `tickHz`: how often the loop calls `tick()` (the arena's dots move by it). */
  constructor(
    private readonly server: Server,
    tickHz: number,
    private readonly cluster?: Cluster,
  ) {
    this.arena = new Arena(server, tickHz);
    if (cluster) cluster.events = { names: () => this.sendUsers(), conflict: (name) => this.evict(name) };
  }

  /** One step of the game loop. */
  tick(): void {
    for (let event; (event = this.server.poll()); ) this.handle(event);
    this.arena.step();
    if (++this.ticks % STREAM_EVERY === 0) this.publishSample();
  }

  private handle(event: ServerEvent): void {
    const waiting = this.held.get(event.connId);
    if (waiting && event.type !== Event.Disconnect) return void waiting.push(event);
    switch (event.type) {
      case Event.ConnectionRequest:
        if (event.path === WS_PATH) this.server.accept(event.connId);
        else this.server.reject(event.connId, 404, `the WebSocket endpoint is ${WS_PATH}`);
        return;
      case Event.Message: {
        const request = parseRequest(event.message, event.binary);
        if (request instanceof Refusal) this.refuse(event.connId, request);
        else this.hold(event.connId, this.serve(event.connId, request));
        return;
      }
      case Event.Disconnect:
        this.held.delete(event.connId);
        this.logout(event.connId);
        return;
      case Event.NewConnection:
        return;
    }
  }

  /** While `pending` runs, the connection's next requests wait; then they are served in order. */
  private hold(connId: number, pending: Promise<void> | void): void {
    if (!pending) return;
    this.held.set(connId, []);
    void pending.then(() => {
      const waiting = this.held.get(connId);
      this.held.delete(connId);
      for (const event of waiting ?? []) this.handle(event);
    });
  }

  /** Answers a request; a Promise when the answer waits for Redis (cluster only). */
  private serve(connId: number, request: Request): Promise<void> | void {
    const user = this.users.get(connId);
    if (request.type === 'login') return this.login(connId, request.name, user);
    if (!user) return this.error(connId, 'log in first', request.type);
    switch (request.type) {
      case 'echo':
        return this.reply(connId, { type: 'echo', text: request.text });
      case 'route': {
        const to = this.byName.get(request.to);
        if (to !== undefined) return this.reply(to, { type: 'routed', from: user.name, text: request.text });
        const address = this.cluster?.addressOf(request.to);
        if (address === undefined) return this.error(connId, `unknown recipient "${request.to}"`, request.type);
        this.server.publish(this.cluster!.inbox(address), json({ type: 'routed', from: user.name, text: request.text }));
        return;
      }
      case 'join':
        user.groups.add(request.group);
        this.server.subscribe(connId, Topic.group(request.group));
        return this.once(Topic.group(request.group), () => this.reply(connId, { type: 'joined', group: request.group }));
      case 'leave':
        user.groups.delete(request.group);
        this.server.unsubscribe(connId, Topic.group(request.group));
        return this.reply(connId, { type: 'left', group: request.group });
      case 'publish':
        if (!user.groups.has(request.group)) return this.error(connId, `not in group "${request.group}"`, request.type);
        this.server.publish(Topic.group(request.group), json({ type: 'group', group: request.group, from: user.name, text: request.text }));
        return;
      case 'subscribe':
        this.server.subscribe(connId, Topic.stream);
        return this.once(Topic.stream, () => this.reply(connId, { type: 'subscribed' }));
      case 'unsubscribe':
        this.server.unsubscribe(connId, Topic.stream);
        return this.reply(connId, { type: 'unsubscribed' });
      case 'enter':
        return this.reply(connId, this.arena.enter(connId, user.name));
      case 'move':
        if (!this.arena.move(connId, request.dx, request.dy)) this.error(connId, 'enter the arena first', request.type);
        return;
      case 'exit':
        this.arena.leave(connId);
        return this.reply(connId, { type: 'exited' });
    }
  }

  /** Cluster only: `then` once the topic's subscription holds across the processes. */
  private once(topic: string, then: () => void): Promise<void> | void {
    if (!this.cluster) return then();
    return this.server.whenSubscribed(topic).then(then);
  }

  private login(connId: number, name: string, current: User | undefined): Promise<void> | void {
    if (current) return this.error(connId, `already logged in as "${current.name}"`, 'login');
    if (this.byName.has(name) || this.claiming.has(name)) return this.error(connId, `name "${name}" is taken`, 'login');
    if (this.cluster) return this.claim(this.cluster, connId, name);
    this.users.set(connId, { name, groups: new Set() });
    this.byName.set(name, connId);
    this.reply(connId, { type: 'welcome', name });
    this.server.subscribe(connId, Topic.users);
    this.publishUsers();
  }

  /** A login in the cluster: the connection holds its inbox first, so a message routed to it as soon as others see the name arrives. */
  private async claim(cluster: Cluster, connId: number, name: string): Promise<void> {
    const inbox = cluster.inbox(cluster.address(connId));
    this.claiming.add(name);
    try {
      this.server.subscribe(connId, inbox);
      await this.server.whenSubscribed(inbox);
      const claimed = await cluster.claim(name, connId);
      if (!this.server.info(connId)) {
        if (claimed) cluster.release(name); // gone meanwhile
        return;
      }
      if (!claimed) {
        this.server.unsubscribe(connId, inbox);
        return this.error(connId, `name "${name}" is taken`, 'login');
      }
      this.users.set(connId, { name, groups: new Set() });
      this.byName.set(name, connId);
      this.reply(connId, { type: 'welcome', name });
      this.sendUsers();
    } finally {
      this.claiming.delete(name);
    }
  }

  private logout(connId: number): void {
    const user = this.users.get(connId);
    if (!user) return;
    this.arena.leave(connId);
    this.users.delete(connId);
    this.byName.delete(user.name);
    if (!this.cluster) return this.publishUsers();
    this.cluster.release(user.name);
    this.sendUsers();
  }

  private publishUsers(): void {
    this.server.publish(Topic.users, json({ type: 'users', names: [...this.byName.keys()].sort() }));
  }

  /** Cluster: the list of everyone online, to this process's users (each process tells its own). */
  private sendUsers(): void {
    if (this.users.size === 0) return;
    this.server.broadcast(json({ type: 'users', names: this.cluster!.names() }), this.users.keys());
  }

  /** Cluster: a name held twice after a Redis restart stays with the other process's user. */
  private evict(name: string): void {
    const connId = this.byName.get(name);
    if (connId !== undefined) this.server.close(connId, NAME_TAKEN_ELSEWHERE, `name "${name}" is taken on another server`);
  }

  private publishSample(): void {
    if (this.cluster && !this.cluster.streams) return;
    // In a cluster the producer may change (a process leaves, Redis comes back): the clock keeps seq increasing across them.
    const seq = this.cluster ? (this.seq = Math.max(Date.now(), this.seq + 1)) : ++this.seq;
    const value = Math.round((Math.sin(seq / 8) * 0.8 + (Math.random() - 0.5) * 0.3) * 1000) / 1000;
    this.server.publish(Topic.stream, json({ type: 'stream', seq, t: Date.now(), value }));
  }

  private refuse(connId: number, refusal: Refusal): void {
    this.reply(connId, refusal.toReply());
  }

  private error(connId: number, reason: string, request: string): void {
    this.reply(connId, { type: 'error', reason, request });
  }

  private reply(connId: number, reply: Reply): void {
    this.server.send(connId, json(reply));
  }
}

function json(reply: Reply): string {
  return JSON.stringify(reply);
}
