// Benchmark orchestrator: `npm run bench` (= node --import tsx bench/run.ts).
//
// Runs wspoll (bench/server.ts), ws (bench/ws-server.ts), a raw node:net echo
// (bench/net-server.ts) and, with --baseline DIR, another checkout of wspoll (`base`) over the same
// scenarios, interleaved: for each round, for each scenario, for each target (order rotated per
// round) a fresh server process pinned to core 0, the load pinned to core 1 (latency: both on
// core 0). The load comes from the C generator (bench/loadgen.c, compiled to artifacts/loadgen at
// start, one process per measurement) or, with --generator js and always for the memory scenario,
// from bench/load.ts in this process. Prints medians, ratios of wspoll to ws, raw (and base) and
// pass/fail against the issue's goals; writes artifacts/bench.json.
//
// Options: --rounds N (default 3) · --quick (1 round, short windows: a smoke run)
//          --only a,b (scenario names) · --targets a,b (wspoll,ws,raw,base) · --broadcast-window W
//          --wait-quiet S · --generator c|js (default c) · --baseline DIR (another wspoll checkout)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as load from './load.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const PIN_ENV = 'WSPOLL_BENCH_PINNED';

// ---- options --------------------------------------------------------------------------------
const argv = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) die(`${name} needs a value`);
  return v;
}
function die(msg: string): never {
  console.error(`bench: ${msg}`);
  process.exit(2);
}
const known = new Set([
  '--rounds',
  '--quick',
  '--only',
  '--targets',
  '--broadcast-window',
  '--wait-quiet',
  '--generator',
  '--baseline',
  '--help',
]);
for (const a of argv) if (a.startsWith('--') && !known.has(a)) die(`unknown option ${a} (try --help)`);
if (argv.includes('--help')) {
  console.log(
    'usage: npm run bench -- [--rounds N] [--quick] [--only scenario,...] [--targets wspoll,ws,raw,base]\n' +
      '                        [--broadcast-window W] [--wait-quiet SECONDS] [--generator c|js]\n' +
      '                        [--baseline DIR]   (DIR: another wspoll checkout, measured as target `base`)',
  );
  process.exit(0);
}
const quick = argv.includes('--quick');
const rounds = Number(opt('--rounds') ?? (quick ? 1 : 3));
if (!Number.isInteger(rounds) || rounds < 1) die('--rounds must be a positive integer');
const bcastWindow = Number(opt('--broadcast-window') ?? 16);
const waitQuietS = Number(opt('--wait-quiet') ?? 0);
if (!(waitQuietS >= 0)) die('--wait-quiet must be a number of seconds');
const generatorOpt = opt('--generator') ?? 'c';
if (generatorOpt !== 'c' && generatorOpt !== 'js') die('--generator must be c or js');
const baselineOpt = opt('--baseline');

// ---- descriptors: the hold and memory scenarios keep 10 000 connections open ------------------
// Node (servers, this process) and loadgen raise their soft RLIMIT_NOFILE to the hard limit by
// themselves, so the hard limit is what counts. Raising it needs privileges (CAP_SYS_RESOURCE):
// when `prlimit` can, this script re-executes itself under it and every child inherits the limit;
// otherwise the scenarios scale down to what the limit allows (see fdRoom below).
const FD_WANT = 65536;
function hardFdLimit(): number {
  const out = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return out === 'unlimited' ? Infinity : Number(out) || 1024;
}
const raiseFds =
  !process.env[PIN_ENV] &&
  hardFdLimit() < FD_WANT &&
  spawnSync('prlimit', [`--nofile=${FD_WANT}:${FD_WANT}`, 'true'], { stdio: 'ignore' }).status === 0;

// ---- pinning: re-exec this script under `taskset -c 1` -------------------------------------
const cpus = os.cpus().length; // all CPUs, whatever this process's affinity
const haveTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const canPin = haveTaskset && cpus >= 2;
if (!process.env[PIN_ENV]) {
  if (!canPin) console.warn(`bench: ${haveTaskset ? `only ${cpus} CPU(s)` : 'taskset not found'}; running UNPINNED`);
  const prefix = [
    ...(raiseFds ? ['prlimit', `--nofile=${FD_WANT}:${FD_WANT}`] : []),
    ...(canPin ? ['taskset', '-c', '1'] : []),
  ];
  if (prefix.length > 0) {
    const r = spawnSync(
      prefix[0]!,
      [...prefix.slice(1), process.execPath, '--expose-gc', ...process.execArgv, process.argv[1]!, ...argv],
      { stdio: 'inherit', env: { ...process.env, [PIN_ENV]: canPin ? '1' : 'none' } },
    );
    process.exit(r.status ?? 1);
  }
  process.env[PIN_ENV] = 'none';
}
const pinned = process.env[PIN_ENV] === '1';
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => {});

function setOwnCore(core: number): void {
  if (pinned) spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

// ---- the C load generator: built once, when missing or older than its source -----------------
const LOADGEN_SRC = path.join(HERE, 'loadgen.c');
const LOADGEN = path.join(ROOT, 'artifacts', 'loadgen');

/** Compiles bench/loadgen.c if needed; returns why it cannot be used, or undefined. */
function buildLoadgen(): string | undefined {
  const mtime = (f: string): number => {
    try {
      return statSync(f).mtimeMs;
    } catch {
      return NaN;
    }
  };
  const src = mtime(LOADGEN_SRC);
  if (Number.isNaN(src)) return `${path.relative(ROOT, LOADGEN_SRC)} not found`;
  if (mtime(LOADGEN) >= src) return undefined;
  mkdirSync(path.dirname(LOADGEN), { recursive: true });
  const r = spawnSync('cc', ['-O2', '-o', LOADGEN, LOADGEN_SRC], { cwd: ROOT, encoding: 'utf8' });
  if (r.error) return `cc: ${r.error.message}`;
  if (r.status !== 0) return `cc failed (${r.signal ?? r.status}): ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`;
  console.log(`bench: compiled ${path.relative(ROOT, LOADGEN)} from ${path.relative(ROOT, LOADGEN_SRC)}`);
  return undefined;
}
let generator: 'c' | 'js' = generatorOpt;
let generatorFallback: string | undefined;
if (generator === 'c') {
  generatorFallback = buildLoadgen();
  if (generatorFallback) {
    console.warn(`bench: WARNING: the C load generator is not available (${generatorFallback}); using the JS one (bench/load.ts)`);
    generator = 'js';
  }
}

// ---- targets (server processes) ------------------------------------------------------------
type Target = 'wspoll' | 'ws' | 'raw' | 'base';
/** How to start a target's server: its script, the directory it runs in (whose node_modules
 *  provide tsx), and extra environment. */
interface TargetSpec {
  script: string;
  cwd: string;
  env?: Record<string, string>;
}
const TARGETS: Partial<Record<Target, TargetSpec>> = {
  wspoll: { script: path.join(HERE, 'server.ts'), cwd: ROOT },
  ws: { script: path.join(HERE, 'ws-server.ts'), cwd: ROOT },
  raw: { script: path.join(HERE, 'net-server.ts'), cwd: ROOT },
};

/**
 * --baseline DIR: another checkout of wspoll (e.g. a `git worktree` of an older commit), run as
 * target `base`. Its own bench/server.ts when it has one (the server of that era, with its own
 * imports); otherwise this checkout's bench/server.ts on DIR's lib/ (WSPOLL_BENCH_LIB). It runs in
 * DIR when DIR has node_modules (its own tsx), else here.
 */
function baselineSpec(dir: string): TargetSpec {
  const abs = path.resolve(dir);
  const lib = path.join(abs, 'lib', 'index.ts');
  if (!existsSync(lib) && !existsSync(path.join(abs, 'lib', 'index.js'))) die(`--baseline ${dir}: no lib/index.ts there`);
  if (abs === ROOT) die('--baseline is this checkout; give another one (e.g. git worktree add ../base HEAD~5)');
  const cwd = existsSync(path.join(abs, 'node_modules')) ? abs : ROOT;
  const own = path.join(abs, 'bench', 'server.ts');
  if (existsSync(own)) return { script: own, cwd };
  return { script: path.join(HERE, 'server.ts'), cwd, env: { WSPOLL_BENCH_LIB: path.join(abs, 'lib', 'index.js') } };
}
if (baselineOpt !== undefined) TARGETS.base = baselineSpec(baselineOpt);
const ALL_TARGETS = Object.keys(TARGETS) as Target[];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

type CpuTicks = [number, number, number, number, number, number, number, number];
type MachineCpu = ReturnType<NonNullable<typeof load.probe.machineCpuSeconds>>;

/** The first line of /proc/stat (all CPUs), in ticks: user nice system idle iowait irq softirq steal; NaNs if unreadable. */
function procStatCpu(): CpuTicks {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number) as CpuTicks;
  } catch {
    return [NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN];
  }
}

/** utime + stime of a process, in seconds (Linux /proc); NaN if unreadable. */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

class ServerProc {
  port = 0;
  private tail: string[] = [];
  private waiters: { prefix: string; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  exited = false;
  private readonly exitP: Promise<void>;

  get pid(): number | undefined {
    return this.child.pid;
  }

  private constructor(
    readonly target: Target,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.tail.push(line);
      if (this.tail.length > 20) this.tail.shift();
    });
    this.exitP = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exited = true;
        const why = new Error(`${target} server exited (${signal ?? code}):\n  ${this.tail.join('\n  ')}`);
        for (const w of this.waiters.splice(0)) w.reject(why);
        resolve();
      }),
    );
  }

  static async start(target: Target, mode: string, flags: string[] = [], env: Record<string, string> = {}): Promise<ServerProc> {
    const port = await freePort();
    const spec = TARGETS[target]!;
    const nodeArgs = ['--expose-gc', ...flags, '--import', 'tsx', spec.script, String(port), mode];
    const [cmd, args] = pinned
      ? ['taskset', ['-c', '0', process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
    const child = spawn(cmd, args as string[], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env, ...env, PORT: String(port), BENCH_MODE: mode },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const srv = new ServerProc(target, child);
    let line: string;
    try {
      line = await srv.waitLine('ready', 20000);
    } catch (e) {
      await srv.stop();
      throw e;
    }
    const n = Number(line.split(/\s+/)[1]);
    srv.port = Number.isInteger(n) && n > 0 ? n : port;
    return srv;
  }

  private onLine(line: string): void {
    const i = this.waiters.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
  }

  waitLine(prefix: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.target}: no '${prefix}' line within ${timeoutMs} ms\n  ${this.tail.join('\n  ')}`));
      }, timeoutMs);
      const waiter = {
        prefix,
        resolve: (l: string) => {
          clearTimeout(t);
          resolve(l);
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** The server's own RSS after a gc: SIGUSR2 → `rss <bytes>`. */
  async rss(): Promise<number> {
    const p = this.waitLine('rss ', 10000);
    this.child.kill('SIGUSR2');
    return Number((await p).split(/\s+/)[1]);
  }

  /** utime + stime of the server process, in seconds (Linux /proc). */
  cpuSeconds(): number {
    return cpuSecondsOf(this.child.pid);
  }

  /**
   * CPU time of the whole machine, in seconds (Linux /proc/stat): busy (user nice system irq
   * softirq steal) and, of it, steal (time the hypervisor gave to other guests while our CPUs
   * wanted to run). One read for both, so they describe the same instant.
   */
  static machineCpuSeconds(): MachineCpu {
    const [user, nice, system, , , irq, softirq, steal] = procStatCpu();
    return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, steal: steal / CLK_TCK };
  }

  async stop(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await this.exitP;
  }
}

// ---- scenarios -----------------------------------------------------------------------------
// Connections held open by hold and memory: the issue's 10 000, or what the descriptor limit allows
// (each side of a connection, server and generator, holds one descriptor; 300 spare for the rest).
const fdRoom = hardFdLimit() - 300;
const HOLD_WANT = quick ? 2000 : 10000;
const MEM_WANT = quick ? 1000 : 10000;
const holdConns = Math.min(HOLD_WANT, fdRoom);
const memConns = Math.min(MEM_WANT, fdRoom);
if (holdConns < HOLD_WANT || memConns < MEM_WANT)
  console.warn(
    `bench: WARNING: the hard descriptor limit is ${fdRoom + 300} and could not be raised: ` +
      `hold and memory use ${holdConns} and ${memConns} connections instead of ${HOLD_WANT} and ${MEM_WANT}`,
  );

const W: load.Window = quick ? { warmMs: 200, durationMs: 800 } : { warmMs: 500, durationMs: 2000 };
const CW = { warm_ms: W.warmMs, duration_ms: W.durationMs };
const LAT = quick ? { size: 32, warmMs: 300, count: 3000 } : { size: 32, warmMs: 1000, count: 20000 };

/** A bound on wspoll's figure relative to another target's: wspoll/vs ≥ ratio (≤ when lower is better). */
interface Goal {
  vs: 'ws' | 'raw';
  ratio: number;
}

/** One row of the table: a figure of a scenario (the sample's value, or one of its extras). */
interface Metric {
  unit: string;
  /** extra key of the samples; none: their value */
  key?: string;
  /** The issue's goals. "Never behind ws" is added to every metric that has no goal against ws. */
  goals: Goal[];
}

interface Scenario extends Metric {
  name: string;
  title: string;
  mode: 'echo' | 'broadcast' | 'publish' | 'deflate';
  /** the targets that take part; default: all of them */
  only?: Target[];
  /** needs the run's redis-server (REDIS_URL in every server's environment) */
  redis?: boolean;
  higherIsBetter: boolean;
  /** more rows from the same samples (latency: p99.9 besides p99) */
  also?: Metric[];
  /** raw must beat both for the figure to be about the servers, not the generator */
  ceiling: 'must' | 'info' | 'none';
  sameCore?: boolean;
  /** extra node flags for the server processes of this scenario */
  serverFlags?: string[];
  /** bench/load.ts (the JS generator, in this process) */
  run(srv: ServerProc): Promise<load.Result>;
  /** the same load from the C generator: its scenario and key=value settings; none: always JS */
  c?: { scenario: 'echo' | 'handshakes' | 'hold' | 'broadcast' | 'latency'; keys: Record<string, number> };
}

const SCENARIOS: Scenario[] = [
  {
    name: 'echo',
    title: 'echo (ping-pong), 100 conns, 32 B binary',
    mode: 'echo',
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [{ vs: 'raw', ratio: 0.97 }],
    ceiling: 'must',
    run: (s) => load.echo(s.port, { ...W, conns: 100, size: 32, depth: 1 }),
    c: { scenario: 'echo', keys: { conns: 100, size: 32, depth: 1, ...CW } },
  },
  {
    name: 'pipeline',
    title: 'pipeline, 100 conns, 512 B binary, 16 in flight',
    mode: 'echo',
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [{ vs: 'raw', ratio: 0.85 }],
    ceiling: 'must',
    run: (s) => load.echo(s.port, { ...W, conns: 100, size: 512, depth: 16 }),
    c: { scenario: 'echo', keys: { conns: 100, size: 512, depth: 16, ...CW } },
  },
  // Both generators write each 64 KiB frame with one write (one write() call in C, one
  // socket.write in JS); the kernel hands it to the server in as many reads as it likes.
  {
    name: 'large',
    title: 'echo, 10 conns, 64 KiB binary, one write per frame',
    mode: 'echo',
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [{ vs: 'raw', ratio: 0.9 }],
    ceiling: 'must',
    run: (s) => load.echo(s.port, { ...W, conns: 10, size: 65536, depth: 1 }),
    c: { scenario: 'echo', keys: { conns: 10, size: 65536, depth: 1, ...CW } },
  },
  {
    name: 'large-text',
    title: 'echo, 10 conns, 64 KiB text (printable ASCII), one write per frame',
    mode: 'echo',
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [{ vs: 'ws', ratio: 2 }],
    ceiling: 'must',
    run: (s) => load.echo(s.port, { ...W, conns: 10, size: 65536, depth: 1, text: true }),
    c: { scenario: 'echo', keys: { conns: 10, size: 65536, depth: 1, text: 1, ...CW } },
  },
  // permessage-deflate: the raw echo sits it out (it would echo the compressed bytes untouched).
  // Always the JS generator: the compressed frame is made with node:zlib.
  {
    name: 'deflate',
    title: 'echo, 100 conns, 4 KiB JSON text compressed (permessage-deflate, no context takeover)',
    mode: 'deflate',
    only: ['wspoll', 'ws', 'base'],
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [],
    ceiling: 'info',
    run: (s) => load.echo(s.port, { ...W, conns: 100, size: 4096, depth: 1, deflate: true }),
  },
  {
    name: 'handshakes',
    title: 'handshakes (open, 101, close), 50 at a time',
    mode: 'echo',
    unit: 'hs/s',
    higherIsBetter: true,
    goals: [],
    ceiling: 'info',
    run: (s) => load.handshakes(s.port, { ...W, concurrency: 50 }),
    c: { scenario: 'handshakes', keys: { concurrency: 50, ...CW } },
  },
  {
    name: 'hold',
    title: `connect and hold: ${holdConns} conns opened 256 at a time and kept open`,
    mode: 'echo',
    unit: 'hs/s',
    higherIsBetter: true,
    goals: [
      { vs: 'ws', ratio: 1.5 },
      { vs: 'raw', ratio: 0.8 },
    ],
    ceiling: 'info',
    run: (s) => load.hold(s.port, { conns: holdConns, concurrency: 256 }),
    c: { scenario: 'hold', keys: { conns: holdConns, concurrency: 256 } },
  },
  {
    name: 'memory',
    title: `idle memory per connection (${memConns} conns)`,
    mode: 'echo',
    unit: 'KiB/conn',
    higherIsBetter: false,
    goals: [{ vs: 'raw', ratio: 1 }],
    ceiling: 'none',
    // A fixed 1 MiB young generation: otherwise V8 grows its semi-spaces while thousands of connections
    // open (allocation burst), and gc() does not give that back: 2–4 KiB/conn of noise that is
    // no connection's state.
    serverFlags: ['--max-semi-space-size=1'],
    run: (s) => load.memory(s.port, { warm: 100, conns: memConns }, () => s.rss()),
  },
  {
    name: 'broadcast',
    title: `broadcast 64 B to 1000 conns, ${bcastWindow} in flight`,
    mode: 'broadcast',
    unit: 'deliv/s',
    higherIsBetter: true,
    goals: [{ vs: 'ws', ratio: 5 }],
    ceiling: 'info',
    run: (s) => load.broadcast(s.port, { ...W, conns: 1000, size: 64, window: bcastWindow }),
    c: { scenario: 'broadcast', keys: { conns: 1000, size: 64, window: bcastWindow, ...CW } },
  },
  // Two wspoll processes and one redis-server: A publishes what its one client sends, B's 100
  // clients are subscribed. wspoll only: the other targets have no broker.
  {
    name: 'cross-publish',
    title: 'publish 64 B across processes through Redis (node-redis), 100 subscribers on the other server, 64 in flight',
    mode: 'publish',
    only: ['wspoll'],
    redis: true,
    unit: 'msgs/s',
    higherIsBetter: true,
    goals: [],
    ceiling: 'none',
    async run(a) {
      const b = await ServerProc.start('wspoll', 'publish', [], { BENCH_SUBSCRIBE: '1' });
      // "server" CPU is all three: both wspoll processes and redis-server
      load.probe.serverCpuSeconds = () => a.cpuSeconds() + b.cpuSeconds() + cpuSecondsOf(redisChild?.pid);
      try {
        return await load.crossPublish(a.port, b.port, { ...W, conns: 100, size: 64, window: 64, settleMs: 300 });
      } finally {
        await b.stop();
      }
    },
  },
  {
    name: 'latency',
    title: 'RTT, 1 conn, 32 B, same core',
    mode: 'echo',
    unit: 'µs p99',
    key: 'p99',
    higherIsBetter: false,
    goals: [{ vs: 'raw', ratio: 1 }],
    // the p99.9 is the 6th to 11th slowest round trip that did not wait for a collection: shown, held only to "never behind ws"
    also: [{ unit: 'µs p99.9', key: 'p999', goals: [] }],
    ceiling: 'none',
    sameCore: true,
    run: (s) => load.latency(s.port, LAT),
    c: { scenario: 'latency', keys: { size: LAT.size, warm_ms: LAT.warmMs, count: LAT.count } },
  },
];

/** A metric's goals, with "never behind ws" added when none is against ws. */
function goalsOf(m: Metric): Goal[] {
  if ((m as Partial<Scenario>).only?.includes('ws') === false) return m.goals;
  return m.goals.some((g) => g.vs === 'ws') ? m.goals : [...m.goals, { vs: 'ws', ratio: 1 }];
}

const only = opt('--only')?.split(',');
if (only) for (const n of only) if (!SCENARIOS.some((s) => s.name === n)) die(`unknown scenario ${n}`);
const scenarios = only ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS;
const targetsOpt = opt('--targets')?.split(',') as Target[] | undefined;
if (targetsOpt)
  for (const t of targetsOpt)
    if (!ALL_TARGETS.includes(t)) die(`unknown target ${t}${t === 'base' ? ' (base needs --baseline DIR)' : ''}`);
const targets = targetsOpt ?? ALL_TARGETS;

// ---- run ------------------------------------------------------------------------------------
interface Sample {
  round: number;
  value: number;
  extra?: Record<string, number | string>;
  error?: string;
}
const samples: Record<string, Record<string, Sample[]>> = {};
/** `${target}/${mode}` that failed to start: not retried. */
const unavailable: Record<string, string> = {};

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '—';
  if (unit.startsWith('µs') || unit.startsWith('KiB')) return v.toFixed(v < 10 ? 2 : 1);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** With --wait-quiet: before a measurement, wait (bounded) until other processes use < 10 % of a core. */
async function waitQuiet(): Promise<void> {
  const deadline = Date.now() + waitQuietS * 1000;
  let warned = false;
  while (Date.now() < deadline) {
    const a = ServerProc.machineCpuSeconds().busy;
    const u = process.cpuUsage();
    await sleep(300);
    const d = process.cpuUsage(u);
    const own = (d.user + d.system) / 1e6;
    const other = (ServerProc.machineCpuSeconds().busy - a - own) / 0.3;
    if (!(other > 0.1)) return;
    if (!warned) process.stdout.write(`  (waiting for a quiet machine: others use ${Math.round(other * 100)}% of a core)\n`);
    warned = true;
  }
}

/** The C generator of the measurement in progress (killed if the measurement is abandoned). */
let genChild: ChildProcess | undefined;

/** One run of artifacts/loadgen against srv: its JSON line as a load.Result; a failure rejects. */
function runC(sc: Scenario, srv: ServerProc): Promise<load.Result> {
  const keys: Record<string, number> = { ...sc.c!.keys };
  if (srv.pid !== undefined) keys['server_pid'] = srv.pid;
  const args = [sc.c!.scenario, String(srv.port), ...Object.entries(keys).map(([k, v]) => `${k}=${v}`)];
  const [cmd, cmdArgs] = pinned ? ['taskset', ['-c', sc.sameCore ? '0' : '1', LOADGEN, ...args]] : [LOADGEN, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs as string[], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    genChild = child;
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new Error(`loadgen: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (genChild === child) genChild = undefined;
      if (code !== 0) {
        reject(new Error(err.trim() || `loadgen exited (${signal ?? code}) without a message`));
        return;
      }
      const line = out.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as load.Result;
        if (typeof r.value !== 'number') throw new Error('no value');
        resolve(r);
      } catch {
        reject(new Error(`loadgen: unexpected output: ${line.slice(0, 200)}`));
      }
    });
  });
}

async function measureOne(sc: Scenario, target: Target, round: number): Promise<Sample> {
  if (waitQuietS > 0) await waitQuiet();
  let srv: ServerProc | undefined;
  try {
    srv = await ServerProc.start(target, sc.mode, sc.serverFlags);
  } catch (e) {
    unavailable[`${target}/${sc.mode}`] = (e as Error).message;
    return { round, value: NaN, error: (e as Error).message };
  }
  const s = srv;
  load.probe.serverCpuSeconds = () => s.cpuSeconds();
  load.probe.machineCpuSeconds = ServerProc.machineCpuSeconds;
  const useC = generator === 'c' && sc.c !== undefined;
  // the JS generator moves itself next to the server; the C one is started on the right core
  if (sc.sameCore && !useC) setOwnCore(0);
  try {
    // loadgen gives up by itself after 60 s of opening or 10 s of silence, with a better message
    const r = await withTimeout(useC ? runC(sc, srv) : sc.run(srv), 90000, `${sc.name}/${target}`);
    await sleep(20);
    let error: string | undefined;
    if (srv.exited) error = `server died during the run`;
    else if (r.extra?.['lostConnections']) error = `${r.extra['lostConnections']} connection(s) lost during the run`;
    return { round, value: r.value, ...(r.extra ? { extra: r.extra } : {}), ...(error ? { error } : {}) };
  } catch (e) {
    return { round, value: NaN, error: `${(e as Error).message}${srv.exited ? ' (server died)' : ''}` };
  } finally {
    if (sc.sameCore && !useC) setOwnCore(1);
    if (genChild) {
      genChild.kill('SIGKILL');
      genChild = undefined;
    }
    load.destroyAll();
    delete load.probe.serverCpuSeconds;
    delete load.probe.machineCpuSeconds;
    await srv.stop();
    gc();
    await sleep(100);
  }
}

// ---- redis-server for the cross-process scenario: one for the whole run, no persistence --------
let redisChild: ChildProcess | undefined;
async function startRedis(): Promise<string> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
  const [cmd, cmdArgs] = pinned ? ['taskset', ['-c', '1', 'redis-server', ...args]] : ['redis-server', args];
  const child = spawn(cmd, cmdArgs as string[], { stdio: 'ignore' });
  redisChild = child;
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new Error(`redis-server: ${e.message} (apt-get install redis-server)`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}); is it installed? (apt-get install redis-server)`)));
  });
  failed.catch(() => {});
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const up = await Promise.race([
      failed,
      new Promise<boolean>((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => (sock.destroy(), resolve(true)));
        sock.once('error', () => resolve(false));
      }),
    ]);
    if (up) return `redis://127.0.0.1:${port}`;
    await sleep(50);
  }
  throw new Error('redis-server did not listen within 10 s');
}
if (scenarios.some((sc) => sc.redis)) {
  try {
    process.env.REDIS_URL = await startRedis();
  } catch (e) {
    for (const sc of scenarios.filter((x) => x.redis)) unavailable[`wspoll/${sc.mode}`] = (e as Error).message;
  }
}
process.once('exit', () => redisChild?.kill('SIGKILL'));

/** A measurement disturbed by other processes (> 15 % of a core) is taken again, a few times per run; the less disturbed one counts. */
let retriesLeft = 10;
const t0 = Date.now();
console.log(
  `wspoll bench: node ${process.version}, ${cpus} CPUs (${os.cpus()[0]?.model ?? '?'}), ` +
    `${pinned ? 'servers on core 0, load on core 1 (latency: both on core 0)' : 'UNPINNED'}, ` +
    `${rounds} round(s), window ${W.durationMs} ms after ${W.warmMs} ms warm-up, ` +
    `load generator: ${generator === 'c' ? 'C (artifacts/loadgen; memory: bench/load.ts)' : 'JS (bench/load.ts)'}` +
    (TARGETS.base ? `, base: ${path.relative(ROOT, TARGETS.base.script)} in ${TARGETS.base.cwd}` : '') +
    (TARGETS.base?.env ? ` on ${TARGETS.base.env['WSPOLL_BENCH_LIB']}` : ''),
);
for (let round = 1; round <= rounds; round++) {
  for (const sc of scenarios) {
    const order = ALL_TARGETS.map((_, i) => ALL_TARGETS[(i + round - 1) % ALL_TARGETS.length]!).filter(
      (t) => targets.includes(t) && (sc.only?.includes(t) ?? true),
    );
    for (const target of order) {
      if (unavailable[`${target}/${sc.mode}`] || (sc.only && !sc.only.includes(target))) continue;
      let smp = await measureOne(sc, target, round);
      const noisy = Number(smp.extra?.['otherCpu'] ?? 0);
      if (noisy > 15 && retriesLeft > 0) {
        retriesLeft--;
        console.log(`  r${round} ${sc.name.padEnd(10)} ${target.padEnd(6)} (others took ${noisy}% of a core: measuring again)`);
        const again = await measureOne(sc, target, round);
        // The less disturbed of the two counts: a second measurement can be noisier than the first.
        if (!again.error && Number(again.extra?.['otherCpu'] ?? 0) < noisy) smp = again;
      }
      ((samples[sc.name] ??= {})[target] ??= []).push(smp);
      const cpu =
        smp.extra?.['loadCpu'] !== undefined
          ? `  cpu: load ${smp.extra['loadCpu']}% server ${smp.extra['serverCpu'] ?? '?'}% other ${smp.extra['otherCpu'] ?? '?'}%` +
            (smp.extra['stealCpu'] !== undefined ? ` (steal ${smp.extra['stealCpu']}%)` : '')
          : '';
      const lat =
        sc.name === 'latency' && smp.extra
          ? `  (p50 ${smp.extra['p50']} p99.9 ${smp.extra['p999']} max ${smp.extra['max']} stalls ${smp.extra['stalls']})`
          : '';
      const err = smp.error ? `  ERROR ${smp.error.split('\n')[0]}` : '';
      const v = sc.key ? Number(smp.extra?.[sc.key]) : smp.value;
      console.log(
        `  r${round} ${sc.name.padEnd(10)} ${target.padEnd(6)} ${fmt(v, sc.unit).padStart(8)} ${sc.unit}${lat}${cpu}${err}`,
      );
      if (unavailable[`${target}/${sc.mode}`]) console.log(`  (${target} ${sc.mode} server does not start: skipped from now on)`);
    }
  }
}
const seconds = (Date.now() - t0) / 1000;

// ---- report ---------------------------------------------------------------------------------
function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
const medOf = (sc: string, t: Target, key?: string): number =>
  median((samples[sc]?.[t] ?? []).filter((s) => !s.error).map((s) => (key ? Number(s.extra?.[key]) : s.value)));

type Vs = Exclude<Target, 'wspoll'>;

interface Row {
  scenario: string;
  title: string;
  unit: string;
  median: Partial<Record<Target, number>>;
  /** wspoll's median over each other target's */
  ratios: Partial<Record<Vs, number>>;
  rawVsWs: number;
  goals: (Goal & { pass: boolean | null })[];
  goal: string;
  /** every goal met: true; one missed: false; otherwise (a target not measured) null */
  pass: boolean | null;
  generator: string;
  cpu: Partial<Record<Target, { load: number; server: number; other: number; steal: number }>>;
  percentiles?: Partial<Record<Target, { p50: number; p99: number; p999: number; stalls: number }>>;
}

/** raw must beat the servers for their figures to be theirs (see bench/README.md). */
function generatorVerdict(sc: Scenario, med: Row['median']): string {
  if (sc.ceiling === 'none') return '';
  const servers = (['wspoll', 'ws', 'base'] as const)
    .map((t) => med[t])
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  const raw = med.raw ?? NaN;
  if (!Number.isFinite(raw) || servers.length === 0) return 'n/a';
  const best = Math.max(...servers);
  return raw >= best * 1.1 ? 'ok' : raw > best ? 'tight' : sc.ceiling === 'must' ? 'BOTTLENECK' : 'raw<server';
}

function rowOf(sc: Scenario, m: Metric, first: boolean): Row {
  const med: Row['median'] = {};
  for (const t of targets) med[t] = medOf(sc.name, t, m.key);
  const ratios: Row['ratios'] = {};
  for (const t of targets) if (t !== 'wspoll') ratios[t] = (med.wspoll ?? NaN) / (med[t] ?? NaN);
  const sign = sc.higherIsBetter ? '≥' : '≤';
  const goals = goalsOf(m).map((g) => {
    const r = ratios[g.vs] ?? NaN;
    return { ...g, pass: Number.isFinite(r) ? (sc.higherIsBetter ? r >= g.ratio : r <= g.ratio) : null };
  });
  const cpu: Row['cpu'] = {};
  if (first && sc.ceiling !== 'none')
    for (const t of targets)
      cpu[t] = {
        load: medOf(sc.name, t, 'loadCpu'),
        server: medOf(sc.name, t, 'serverCpu'),
        other: medOf(sc.name, t, 'otherCpu'),
        steal: medOf(sc.name, t, 'stealCpu'),
      };
  return {
    scenario: sc.name,
    title: sc.title,
    unit: m.unit,
    median: med,
    ratios,
    rawVsWs: (med.raw ?? NaN) / (med.ws ?? NaN),
    goals,
    goal: goals.map((g) => `${sign}${g.ratio}× ${g.vs}`).join(', '),
    pass: goals.length === 0 ? null : goals.some((g) => g.pass === false) ? false : goals.some((g) => g.pass === null) ? null : true,
    generator: first ? generatorVerdict(sc, med) : '',
    cpu,
  };
}

const rows: Row[] = [];
for (const sc of scenarios) {
  const metrics: Metric[] = [sc, ...(sc.also ?? [])];
  metrics.forEach((m, i) => rows.push(rowOf(sc, m, i === 0)));
  if (sc.name === 'latency') {
    const row = rows[rows.length - metrics.length]!;
    row.percentiles = {};
    for (const t of targets)
      row.percentiles[t] = {
        p50: medOf(sc.name, t, 'p50'),
        p99: medOf(sc.name, t, 'p99'),
        p999: medOf(sc.name, t, 'p999'),
        stalls: medOf(sc.name, t, 'stalls'),
      };
  }
}

const ratio = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');
const withBase = targets.includes('base');
const header = [
  'scenario',
  'unit',
  'wspoll',
  'ws',
  'raw',
  ...(withBase ? ['base'] : []),
  'wspoll/ws',
  'wspoll/raw',
  ...(withBase ? ['wspoll/base'] : []),
  'goal',
  'result',
  'raw/ws',
  'generator',
];
const table = rows.map((r) => [
  r.scenario,
  r.unit,
  fmt(r.median.wspoll ?? NaN, r.unit),
  fmt(r.median.ws ?? NaN, r.unit),
  fmt(r.median.raw ?? NaN, r.unit),
  ...(withBase ? [fmt(r.median.base ?? NaN, r.unit)] : []),
  ratio(r.ratios.ws),
  ratio(r.ratios.raw),
  ...(withBase ? [ratio(r.ratios.base)] : []),
  r.goal,
  r.pass === null ? 'n/a' : r.pass ? 'PASS' : 'FAIL',
  ratio(r.rawVsWs),
  r.generator,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const goalCol = header.indexOf('goal');
const line = (cells: string[]): string =>
  cells.map((c, i) => (i < 2 || i === goalCol ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`\nmedians of ${rounds} round(s), ${seconds.toFixed(0)} s`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of table) console.log(line(row));

const lat = rows.find((r) => r.percentiles !== undefined);
if (lat?.percentiles) {
  console.log(`\nlatency, same core (µs)   p50      p99    p99.9   stalls (round trips of 300 µs or more, of ${LAT.count})`);
  for (const t of targets) {
    const p = lat.percentiles[t];
    if (p)
      console.log(
        `  ${t.padEnd(22)} ${fmt(p.p50, 'µs').padStart(6)} ${fmt(p.p99, 'µs').padStart(8)} ${fmt(p.p999, 'µs').padStart(8)} ${fmt(p.stalls, '').padStart(8)}`,
      );
  }
}
const cpuRows = rows.filter((r) => Object.keys(r.cpu).length > 0);
if (cpuRows.length) {
  console.log('\nCPU during the window, % of one core: load generator / server / anything else on the machine (of it, steal)');
  let busy = 0;
  let stolen = 0;
  for (const r of cpuRows) {
    const cells = targets.map((t) => {
      const c = r.cpu[t];
      if (!c) return '';
      if (c.other > busy) busy = c.other;
      if (c.steal > stolen) stolen = c.steal;
      const n = (x: number): string => (Number.isFinite(x) ? String(x) : '—');
      return `${t} ${n(c.load)}/${n(c.server)}/${n(c.other)}${Number.isFinite(c.steal) ? ` (${c.steal})` : ''}`;
    });
    console.log(`  ${r.scenario.padEnd(11)} ${cells.map((c) => c.padEnd(24)).join(' ')}`);
  }
  if (busy > 15) {
    console.log(
      `WARNING: up to ${busy}% of a core went to other processes or guests during the windows (steal: up to ${stolen}%): ` +
        'the machine was not quiet, figures are unreliable.',
    );
  }
}
for (const [t, why] of Object.entries(unavailable)) console.log(`\n${t} was not measured: ${why.split('\n').slice(0, 8).join('\n  ')}`);
const errors = Object.entries(samples).flatMap(([sc, byT]) =>
  Object.entries(byT).flatMap(([t, xs]) => xs.filter((x) => x.error).map((x) => `${sc}/${t} round ${x.round}: ${x.error!.split('\n')[0]}`)),
);
if (errors.length) console.log(`\nerrors:\n  ${errors.join('\n  ')}`);
const bottlenecked = rows.filter((r) => r.generator === 'BOTTLENECK' || r.generator === 'tight');
for (const r of bottlenecked) {
  const serverBound = targets
    .filter((t) => t !== 'raw' && r.cpu[t])
    .map((t) => `${t} server ${r.cpu[t]!.server}% / load ${r.cpu[t]!.load}%`)
    .join(', ');
  console.log(
    `\nWARNING: in ${r.scenario}, the raw node:net echo is ${r.generator === 'tight' ? 'less than 10 % above' : 'not above'} the best server:` +
      ` the generator is close to its limit (CPU: ${serverBound}). A server at ~100 % is still the bottleneck of its own figure.`,
  );
}

const out = path.join(ROOT, 'artifacts', 'bench.json');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpus,
      cpuModel: os.cpus()[0]?.model,
      pinned,
      rounds,
      quick,
      window: W,
      broadcastWindow: bcastWindow,
      heldConnections: { hold: holdConns, memory: memConns, hardFdLimit: fdRoom + 300 },
      ...(TARGETS.base ? { baseline: TARGETS.base } : {}),
      // 'c': artifacts/loadgen (bench/loadgen.c) for every scenario but memory; 'js': bench/load.ts
      loadGenerator: generator,
      ...(generatorFallback ? { loadGeneratorFallback: generatorFallback } : {}),
      seconds,
      unavailable,
      rows,
      samples,
    },
    null,
    2,
  ) + '\n',
);
console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
process.exit(0);
