/**
 * The demo's game loop logic: each `tick()` answers every waiting event, moves the arena's
 * dots and sends their positions, then publishes one stream sample every other tick. Groups,
 * the stream and the arena are the server's topics, so each of their frames is encoded once
 * whatever the number of receivers.
 */
import { Event, type Server, type ServerEvent } from '../lib/index.js';
import { Arena } from './arena.js';
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

export class DemoApp {
  /** Logged-in users by connection. Kept here: the server forgets a connection's data before its Disconnect is polled. */
  private readonly users = new Map<number, User>();
  private readonly byName = new Map<string, number>();
  private readonly arena: Arena;
  private ticks = 0;
  private seq = 0;

  /** `tickHz`: how often the loop calls `tick()` (the arena's dots move by it). */
  constructor(
    private readonly server: Server,
    tickHz: number,
  ) {
    this.arena = new Arena(server, tickHz);
  }

  /** One step of the game loop. */
  tick(): void {
    for (let event; (event = this.server.poll()); ) this.handle(event);
    this.arena.step();
    if (++this.ticks % STREAM_EVERY === 0) this.publishSample();
  }

  private handle(event: ServerEvent): void {
    switch (event.type) {
      case Event.ConnectionRequest:
        if (event.path === WS_PATH) this.server.accept(event.connId);
        else this.server.reject(event.connId, 404, `the WebSocket endpoint is ${WS_PATH}`);
        return;
      case Event.Message: {
        const request = parseRequest(event.message, event.binary);
        if (request instanceof Refusal) this.refuse(event.connId, request);
        else this.serve(event.connId, request);
        return;
      }
      case Event.Disconnect:
        this.logout(event.connId);
        return;
      case Event.NewConnection:
        return;
    }
  }

  private serve(connId: number, request: Request): void {
    const user = this.users.get(connId);
    if (request.type === 'login') return this.login(connId, request.name, user);
    if (!user) return this.error(connId, 'log in first', request.type);
    switch (request.type) {
      case 'echo':
        return this.reply(connId, { type: 'echo', text: request.text });
      case 'route': {
        const to = this.byName.get(request.to);
        if (to === undefined) return this.error(connId, `unknown recipient "${request.to}"`, request.type);
        return this.reply(to, { type: 'routed', from: user.name, text: request.text });
      }
      case 'join':
        user.groups.add(request.group);
        this.server.subscribe(connId, Topic.group(request.group));
        return this.reply(connId, { type: 'joined', group: request.group });
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
        return this.reply(connId, { type: 'subscribed' });
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

  private login(connId: number, name: string, current: User | undefined): void {
    if (current) return this.error(connId, `already logged in as "${current.name}"`, 'login');
    if (this.byName.has(name)) return this.error(connId, `name "${name}" is taken`, 'login');
    this.users.set(connId, { name, groups: new Set() });
    this.byName.set(name, connId);
    this.reply(connId, { type: 'welcome', name });
    this.server.subscribe(connId, Topic.users);
    this.publishUsers();
  }

  private logout(connId: number): void {
    const user = this.users.get(connId);
    if (!user) return;
    this.arena.leave(connId);
    this.users.delete(connId);
    this.byName.delete(user.name);
    this.publishUsers();
  }

  private publishUsers(): void {
    this.server.publish(Topic.users, json({ type: 'users', names: [...this.byName.keys()].sort() }));
  }

  private publishSample(): void {
    const seq = ++this.seq;
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
