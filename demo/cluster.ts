/**
 * What the demo's processes share through Redis (REDIS_URL), beside the topics that the broker
 * carries: who is online and where (a name belongs to one user in the whole cluster), and which
 * process produces the one stream.
 *
 * In Redis, under PREFIX (`wspoll-demo:`):
 *   names              hash: name → address of its connection ("INSTANCE:CONNID")
 *   alive:INSTANCE     set by each process every second, expires after 5 s: a name whose process
 *                      is gone is free again and drops out of the list
 *   stream-leader      the instance that produces the stream, a lease renewed every second
 *   changes            channel: a message after every change of `names`, so every process reads
 *                      the list again at once
 *   born               when this registry began (a Redis restarted empty begins a new one)
 * Each process also reads the list every second (it notices a crashed process that way), and
 * writes its own names back then and whenever its connection comes back: a Redis restarted empty
 * is filled again within a second. Until the registry is SETTLE_MS old, a login waits and the list
 * is not read, so nobody takes a name whose user's process has not written it back yet.
 */
import { randomBytes } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { redisBroker, type RedisBroker } from '../lib/redis.js';

const PREFIX = 'wspoll-demo:';
const KEYS = {
  names: `${PREFIX}names`,
  alivePrefix: `${PREFIX}alive:`,
  leader: `${PREFIX}stream-leader`,
  changes: `${PREFIX}changes`,
  born: `${PREFIX}born`,
};
const BEAT_MS = 1000;
const ALIVE_MS = 5000;
const LEASE_MS = 3000;
/** Longer than a beat: every live process has written its names back by then. */
const SETTLE_MS = 1500;
/** How often a waiting login tries again. */
const RETRY_MS = 100;

/** The instance of an address "INSTANCE:CONNID", and how old the registry is (KEYS[#KEYS] is `born`), in ms. */
const INSTANCE = `local instance = function(address) return string.match(address, '^[^:]+') end
local function age()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local born = tonumber(redis.call('GET', KEYS[#KEYS]))
  if not born then redis.call('SET', KEYS[#KEYS], now); return 0 end
  return now - born
end`;

/** KEYS: names, alive prefix, changes, born. ARGV: name, address, this instance. 1: claimed, 0: taken, -1: too early. */
const CLAIM = `${INSTANCE}
if age() < ${SETTLE_MS} then return -1 end
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and instance(owner) ~= ARGV[3] and redis.call('EXISTS', KEYS[2] .. instance(owner)) == 1 then return 0 end
redis.call('SET', KEYS[2] .. ARGV[3], '1', 'PX', ${ALIVE_MS})
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1`;

/** KEYS: names, changes. ARGV: name, address. Frees the name if it is still that address's. */
const RELEASE = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('PUBLISH', KEYS[2], ARGV[1])
end
return 1`;

/**
 * KEYS: names, alive prefix, leader, changes, born. ARGV: this instance, then name, address pairs of
 * its users. Marks the instance alive, writes back its names (a restarted Redis is empty),
 * renews or takes the stream lease, and returns { leader (0/1), names taken meanwhile by a
 * live other instance... }.
 */
const BEAT = `${INSTANCE}
age()
local me = ARGV[1]
redis.call('SET', KEYS[2] .. me, '1', 'PX', ${ALIVE_MS})
local changed, conflicts = false, {}
for i = 2, #ARGV, 2 do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner ~= ARGV[i + 1] then
    if owner and instance(owner) ~= me and redis.call('EXISTS', KEYS[2] .. instance(owner)) == 1 then
      table.insert(conflicts, ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      changed = true
    end
  end
end
if changed then redis.call('PUBLISH', KEYS[4], '') end
local leader = 0
if redis.call('GET', KEYS[3]) == me then
  redis.call('PEXPIRE', KEYS[3], ${LEASE_MS})
  leader = 1
elseif redis.call('SET', KEYS[3], me, 'NX', 'PX', ${LEASE_MS}) then
  leader = 1
end
return { leader, unpack(conflicts) }`;

/** KEYS: names, alive prefix, born. Every name whose instance is alive, with its address (the others are removed); false while the registry settles. */
const LIST = `${INSTANCE}
if age() < ${SETTLE_MS} then return false end
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if redis.call('EXISTS', KEYS[2] .. instance(all[i + 1])) == 1 then
    table.insert(live, all[i]); table.insert(live, all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live`;

/** KEYS: names, alive prefix, leader, changes. ARGV: this instance, then its names. A clean exit. */
const LEAVE = `redis.call('DEL', KEYS[2] .. ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and string.match(owner, '^[^:]+') == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
redis.call('PUBLISH', KEYS[4], '')
return 1`;

/** What the cluster tells the demo's game loop. */
export interface ClusterEvents {
  /** The list of names online changed elsewhere (a change made here is for the caller to tell). */
  names(): void;
  /** A local user's name was found taken by a user of another process (after a Redis restart): that user must go. */
  conflict(name: string): void;
}

export class Cluster {
  /** This process, as the other ones know it. */
  readonly instance = randomBytes(6).toString('hex');
  /** Every name online in the cluster, with the address of its connection. */
  private online = new Map<string, string>();
  /** This process's users: name → address. */
  private readonly local = new Map<string, string>();
  private leader = false;
  /** Local changes count up; a list read started before the last one is stale when it comes back. */
  private localChanges = 0;
  private beat: NodeJS.Timeout | undefined;
  events: ClusterEvents = { names() {}, conflict() {} };
  /** Carries the demo's topics (groups, the stream, routed messages) between the processes. */
  readonly broker: RedisBroker;

  private constructor(
    /** Commands, and this process's publishes (the broker's publisher). */
    private readonly commands: RedisClientType,
    /** The broker's subscriber. */
    private readonly subscriber: RedisClientType,
    /** The `changes` channel. */
    private readonly listener: RedisClientType,
  ) {
    this.broker = redisBroker({ publisher: commands, subscriber });
    // Whoever held the lease before an outage waits for the next beat to hold it again.
    for (const event of ['error', 'reconnecting', 'end']) commands.on(event, () => (this.leader = false));
    // Back after an outage: write our names back at once (Redis may have restarted empty).
    commands.on('ready', () => void this.heartbeat().catch(() => {}));
  }

  /** Connects the three clients the cluster and its broker use. */
  static async connect(url: string, log: (line: string) => void): Promise<Cluster> {
    const commands: RedisClientType = createClient({ url });
    const subscriber = commands.duplicate();
    const listener = commands.duplicate();
    // The broker reports the connection's state in the server's log; this keeps an error from being unhandled.
    for (const client of [commands, subscriber, listener]) client.on('error', () => {});
    await Promise.all([commands.connect(), subscriber.connect(), listener.connect()]).catch((err: Error) => {
      for (const client of [commands, subscriber, listener]) client.destroy();
      throw new Error(`cannot reach Redis at ${url}: ${err.message}`);
    });
    const cluster = new Cluster(commands, subscriber, listener);
    await listener.subscribe(KEYS.changes, () => void cluster.refresh());
    await cluster.heartbeat();
    cluster.beat = setInterval(() => void cluster.heartbeat().catch((err: Error) => log(`demo cluster: ${err.message}`)), BEAT_MS);
    return cluster;
  }

  get connected(): boolean {
    return this.broker.connected;
  }

  /** Whether this process produces the stream now: the leader does, and every process does for its own users while Redis is away. */
  get streams(): boolean {
    return this.connected ? this.leader : true;
  }

  /** Every name online, sorted. */
  names(): string[] {
    return [...this.online.keys()].sort();
  }

  /** The address of `name`'s connection, if it is online. */
  addressOf(name: string): string | undefined {
    return this.online.get(name);
  }

  /** The topic a connection holds to receive what other processes route to it. */
  inbox(address: string): string {
    return `to:${address}`;
  }

  address(connId: number): string {
    return `${this.instance}:${connId}`;
  }

  /** Claims `name` for a local connection, cluster-wide. Waits while Redis is away or its registry settles. */
  async claim(name: string, connId: number): Promise<boolean> {
    const address = this.address(connId);
    let claimed;
    while ((claimed = await this.commands.eval(CLAIM, { keys: [KEYS.names, KEYS.alivePrefix, KEYS.changes, KEYS.born], arguments: [name, address, this.instance] })) === -1) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    if (claimed !== 1) return false;
    this.local.set(name, address);
    this.change(() => this.online.set(name, address));
    return true;
  }

  /** Frees a local user's name (once Redis is reachable, if it is not now). */
  release(name: string): void {
    const address = this.local.get(name);
    if (address === undefined) return;
    this.local.delete(name);
    this.change(() => this.online.delete(name));
    this.commands.eval(RELEASE, { keys: [KEYS.names, KEYS.changes], arguments: [name, address] }).catch(() => {});
  }

  /** Frees every local name and the lease (call it before the server stops). */
  async leave(): Promise<void> {
    clearInterval(this.beat);
    if (!this.commands.isReady) return;
    const names = [...this.local.keys()];
    await this.commands.eval(LEAVE, { keys: [KEYS.names, KEYS.alivePrefix, KEYS.leader, KEYS.changes], arguments: [this.instance, ...names] }).catch(() => {});
  }

  /** Closes the clients (after the server has stopped: its broker releases its channels first). */
  close(): void {
    for (const client of [this.commands, this.subscriber, this.listener]) client.destroy();
  }

  /** A change made here: the caller tells its users. */
  private change(apply: () => void): void {
    this.localChanges++;
    apply();
  }

  private async heartbeat(): Promise<void> {
    if (!this.commands.isReady) return;
    const pairs = [...this.local].flat();
    const [leader, ...conflicts] = (await this.commands.eval(BEAT, {
      keys: [KEYS.names, KEYS.alivePrefix, KEYS.leader, KEYS.changes, KEYS.born],
      arguments: [this.instance, ...pairs],
    })) as [number, ...string[]];
    this.leader = leader === 1;
    for (const name of conflicts) if (this.local.has(name)) this.events.conflict(name);
    await this.refresh();
  }

  /** Reads the list again; a change made here meanwhile makes the answer stale. */
  private async refresh(): Promise<void> {
    if (!this.commands.isReady) return;
    const asOf = this.localChanges;
    const flat = (await this.commands.eval(LIST, { keys: [KEYS.names, KEYS.alivePrefix, KEYS.born] }).catch(() => undefined)) as string[] | null | undefined;
    if (!flat || asOf !== this.localChanges) return;
    const online = new Map<string, string>();
    for (let i = 0; i < flat.length; i += 2) online.set(flat[i]!, flat[i + 1]!);
    for (const [name, address] of this.local) online.set(name, address); // ours, whatever Redis says (a restart)
    const before = this.names().join('\n');
    this.online = online;
    if (this.names().join('\n') !== before) this.events.names();
  }
}
