/**
 * External peers: programs nobody here wrote that some tests talk to, installed from Debian or,
 * for other runtimes and compilers, from npm into a cache (`.ci/run` installs them all: apt-get,
 * `.ci/runtime`). On a bare machine the suites that need a missing one are SKIPPED,
 * with a message naming what to install; with WSPOLL_REQUIRE_PEERS=1 (CI) they FAIL instead.
 *
 *   describe('the demo in headless Chromium', { skip: chromium.skip }, () => {
 *     before(() => chromium.require());
 *     ...
 *
 * `skip` is the skip message when the peer is missing (false when it is there, or when peers are
 * required); `require()` throws when it is missing, so a required suite fails at once, saying why.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What a suite needing a peer does. */
export type Decision = 'run' | 'skip' | 'fail';

/** The whole rule: a present peer runs; a missing one is skipped, or fails when peers are required. */
export function decide(present: boolean, required: boolean): Decision {
  if (present) return 'run';
  return required ? 'fail' : 'skip';
}

/** WSPOLL_REQUIRE_PEERS=1: every peer must be there. */
export function peersRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.WSPOLL_REQUIRE_PEERS === '1';
}

export interface Peer {
  /** What is missing when the check fails, e.g. "/usr/bin/chromium". */
  readonly what: string;
  /** How to install it, e.g. "apt-get install chromium". */
  readonly install: string;
  /** The check, run once, on first use. */
  readonly present: boolean;
  readonly decision: Decision;
  /** For `describe(name, { skip: peer.skip }, ...)`: the message when skipped, else false. */
  readonly skip: string | false;
  /** Throws when the peer is missing (call it in a `before` hook of the suites that need it). */
  require(): void;
}

/**
 * A peer found by `check`. `env` decides whether peers are required (the real environment,
 * except in the helper's own test).
 */
export function peer(what: string, check: () => boolean, install: string, env: NodeJS.ProcessEnv = process.env): Peer {
  let present: boolean | undefined;
  const isPresent = (): boolean => (present ??= check());
  return {
    what,
    install,
    get present() {
      return isPresent();
    },
    get decision() {
      return decide(isPresent(), peersRequired(env));
    },
    get skip() {
      return this.decision === 'skip' ? `skipped: ${what} missing (${install}); WSPOLL_REQUIRE_PEERS=1 makes this a failure` : false;
    },
    require() {
      if (isPresent()) return;
      const why = peersRequired(env) ? 'WSPOLL_REQUIRE_PEERS=1, but ' : '';
      throw new Error(`${why}${what} is missing (${install})`);
    },
  };
}

/** True when `name` is an executable file in a directory of PATH. */
export function onPath(name: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Debian's chromium, driven by playwright-core (spec/integration/demo-browser.test.ts). */
export const chromium = peer('/usr/bin/chromium', () => existsSync('/usr/bin/chromium'), 'apt-get install chromium');

/** Python's websockets for the system interpreter (the Python peers in spec/interop/peers/). */
export const pythonWebsockets = peer(
  "Python's websockets for /usr/bin/python3",
  () => spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore', timeout: 10_000 }).status === 0,
  'apt-get install python3-websockets',
);

/** redis-server on PATH (spec/interop/redis.test.ts, spec/integration/demo-cluster.test.ts). */
export const redisServer = peer('redis-server (on PATH)', () => onPath('redis-server'), 'apt-get install redis-server');

/** TypeScript 7's compiler, named by WSPOLL_TSC7 (the package test compiles a consumer with it). */
export const typescript7 = peer(
  'TypeScript 7 (WSPOLL_TSC7, the path of its tsc)',
  () => existsSync(process.env.WSPOLL_TSC7 || '/nonexistent'),
  'WSPOLL_TSC7=$(bash .ci/runtime typescript7)',
);

/** Bun on PATH (the package test runs its consumer with it). */
export const bun = peer('bun (on PATH)', () => onPath('bun'), 'PATH=$(dirname $(bash .ci/runtime bun)):$PATH');

/** Deno on PATH (the package test runs its consumer with it). */
export const deno = peer('deno (on PATH)', () => onPath('deno'), 'PATH=$(dirname $(bash .ci/runtime deno)):$PATH');
