/**
 * The fifth workflow: each player is a dot that its arrow keys move. The server is the only
 * authority on positions: a player sends which keys it holds, the game loop moves every dot
 * each tick and sends where all of them are, with each player's round-trip time (measured by
 * the server's heartbeat), to everyone in the arena: one broadcast, encoded once. An arena is
 * one process's: with several demo processes (REDIS_URL), each runs its own.
 */
import type { Server } from '../lib/index.js';
import type { ArenaPlayer, Reply, Step } from './protocol.js';

export const ArenaSize = { width: 640, height: 400 } as const;

/** Units a held key moves a dot per second. */
export const ARENA_SPEED = 120;

interface Player {
  name: string;
  x: number;
  y: number;
  dx: Step;
  dy: Step;
}

export class Arena {
  private readonly players = new Map<number, Player>();
  private readonly stepPerTick: number;
  private entries = 0;
  private ticks = 0;

  constructor(
    private readonly server: Server,
    tickHz: number,
  ) {
    this.stepPerTick = ARENA_SPEED / tickHz;
  }

  /** A player comes in (again: where it was), at a spot that depends on how many came before. */
  enter(connId: number, name: string): Reply {
    if (!this.players.has(connId)) {
      const k = this.entries++;
      this.players.set(connId, { name, x: 40 + ((k * 149) % 560), y: 40 + ((k * 97) % 320), dx: 0, dy: 0 });
    }
    return { type: 'entered', name, ...ArenaSize };
  }

  /** The keys a player holds now; false when it is not in the arena. */
  move(connId: number, dx: Step, dy: Step): boolean {
    const player = this.players.get(connId);
    if (!player) return false;
    player.dx = dx;
    player.dy = dy;
    return true;
  }

  /** A player leaves (exit, logout or disconnect). */
  leave(connId: number): void {
    this.players.delete(connId);
  }

  /** One tick: every dot moves by the keys its player holds, then everyone learns where all are. */
  step(): void {
    if (this.players.size === 0) return;
    const { width, height } = ArenaSize;
    for (const player of this.players.values()) {
      player.x = clamp(player.x + player.dx * this.stepPerTick, width);
      player.y = clamp(player.y + player.dy * this.stepPerTick, height);
    }
    const players: ArenaPlayer[] = [...this.players].map(([connId, { name, x, y }]) => ({ name, x, y, rtt: roundTrip(this.server, connId) }));
    players.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.server.broadcast(JSON.stringify({ type: 'arena', tick: ++this.ticks, players } satisfies Reply), this.players.keys());
  }
}

function clamp(value: number, max: number): number {
  return Math.min(max, Math.max(0, value));
}

/** The connection's last round-trip time in 0.1 ms steps, or null before the first. */
function roundTrip(server: Server, connId: number): number | null {
  const rtt = server.info(connId)?.rtt;
  return rtt === undefined ? null : Math.round(rtt * 10) / 10;
}
