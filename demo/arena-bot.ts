/**
 * A bot that plays the arena (demo/arena.ts): it logs in, enters, and steers its dot to a target
 * by holding arrow keys, knowing only what the server sends. Its view is one trip late and its
 * keys arrive one trip later, so while a key is held it lets go early by what the dot travels
 * in a round trip (the RTT the server measured for it, which comes with every state), and from
 * rest it presses only once it sees its dot stand still.
 *
 *   node --import tsx demo/arena-bot.ts ws://127.0.0.1:8080/ws NAME   wanders until Ctrl-C
 */
import { fileURLToPath } from 'node:url';
import { Client, type ClientOptions, Event } from '../lib/index.js';
import { ARENA_SPEED, ArenaSize } from './arena.js';
import type { ArenaPlayer, Reply, Step } from './protocol.js';

/** How near the target counts as there (the dot moves 4 units a tick). */
export const NEAR = 8;

interface Goal {
  x: number;
  y: number;
  reached(): void;
}

export class ArenaBot {
  /** What the server last said about every player in the arena, by name. */
  readonly players = new Map<string, ArenaPlayer>();
  /** The arena tick of the last state seen. */
  tick = 0;
  private goal: Goal | undefined;
  private held: { dx: Step; dy: Step } = { dx: 0, dy: 0 };

  private constructor(
    readonly client: Client,
    readonly name: string,
  ) {}

  /** Connects, logs in as `name` and enters the arena. */
  static async join(url: string, name: string, options: ClientOptions = {}): Promise<ArenaBot> {
    const bot = new ArenaBot(await Client.connect(url, options), name);
    bot.send({ type: 'login', name });
    await bot.expect('welcome');
    bot.send({ type: 'enter' });
    await bot.expect('entered');
    return bot;
  }

  /** This bot's dot, as the server last placed it. */
  get me(): ArenaPlayer | undefined {
    return this.players.get(this.name);
  }

  /** Heads for (x, y); resolves once the server shows the dot there, stopped. */
  goTo(x: number, y: number): Promise<void> {
    return new Promise((reached) => {
      this.goal = { x, y, reached };
      this.steer();
    });
  }

  /** Reads the server's messages until the connection ends: keep it running while the bot plays. */
  async play(): Promise<void> {
    for (;;) {
      const event = await this.client.next();
      if (event.type === Event.Disconnect) return;
      this.take(JSON.parse(event.message as string) as Reply);
    }
  }

  /** Leaves the arena and closes the connection. */
  leave(): void {
    this.send({ type: 'exit' });
    this.client.close(1000, 'bot done');
  }

  private take(message: Reply): void {
    if (message.type !== 'arena') return;
    const before = this.me;
    this.tick = message.tick;
    this.players.clear();
    for (const player of message.players) this.players.set(player.name, player);
    const now = this.me;
    const still = before !== undefined && now !== undefined && before.x === now.x && before.y === now.y;
    this.steer(still);
  }

  /** Holds the keys toward the goal (see `key`); the goal is reached when the dot stands still near it. */
  private steer(still = false): void {
    const me = this.me;
    const goal = this.goal;
    if (!me || !goal) return;
    const lead = (ARENA_SPEED * (me.rtt ?? 0)) / 1000;
    const dx = key(this.held.dx, goal.x - me.x, lead, still);
    const dy = key(this.held.dy, goal.y - me.y, lead, still);
    if (dx !== this.held.dx || dy !== this.held.dy) {
      this.held = { dx, dy };
      this.send({ type: 'move', dx, dy });
    }
    if (dx === 0 && dy === 0 && still && Math.abs(goal.x - me.x) <= NEAR && Math.abs(goal.y - me.y) <= NEAR) {
      this.goal = undefined;
      goal.reached();
    }
  }

  /** The next message of `type` (before `play` takes over), skipping states. */
  private async expect(type: Reply['type']): Promise<void> {
    for (;;) {
      const event = await this.client.next();
      if (event.type === Event.Disconnect) throw new Error(`disconnected while waiting for "${type}": ${event.code} ${event.reason}`);
      const message = JSON.parse(event.message as string) as Reply;
      if (message.type === 'error') throw new Error(`refused: ${message.reason}`);
      if (message.type === type) return;
      this.take(message);
    }
  }

  private send(request: object): void {
    this.client.send(JSON.stringify(request));
  }
}

/**
 * The key to hold along one axis, `distance` away from the goal as last seen. A held key stays
 * down while it points at the goal and the dot is farther than NEAR plus what it coasts in a
 * round trip (`lead`). From rest, press toward a goal farther than NEAR, but only once the dot is
 * seen standing still: until then what the bot sees is older than its last key.
 */
function key(held: Step, distance: number, lead: number, still: boolean): Step {
  const toward: Step = distance > 0 ? 1 : -1;
  if (held !== 0) return held === toward && Math.abs(distance) > NEAR + lead ? held : 0;
  return still && Math.abs(distance) > NEAR ? toward : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url = 'ws://127.0.0.1:8080/ws', name = `bot-${process.pid}`] = process.argv.slice(2);
  const bot = await ArenaBot.join(url, name);
  const playing = bot.play();
  process.once('SIGINT', () => bot.leave());
  console.log(`${name} is in the arena at ${url}`);
  for (;;) {
    const [x, y] = [Math.random() * ArenaSize.width, Math.random() * ArenaSize.height];
    const arrived = bot.goTo(x, y);
    if ((await Promise.race([arrived.then(() => 'there'), playing.then(() => 'gone')])) === 'gone') break;
    console.log(`reached (${Math.round(x)}, ${Math.round(y)}); round trip ${bot.me?.rtt ?? '?'} ms`);
  }
}
