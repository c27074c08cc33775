/**
 * The package as npm publishes it: built, packed with `npm pack`, unpacked into a consumer's
 * node_modules, and checked the way its users meet it: what the tarball holds, source maps that
 * resolve, public types free of internal plumbing, TSDoc with every option's @default and every
 * send's @returns, publint and attw (esm-only) clean, a program
 * (spec/consumer/) compiled with TypeScript 5 and 7 under strict settings, then run on Node (ESM
 * and require), Bun and Deno. TypeScript 7, Bun and Deno are external peers (spec/helpers/peers.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { bun, deno, typescript7 } from '../helpers/peers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const bin = (name: string): string => join(ROOT, 'node_modules', '.bin', name);
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Runs a program to completion; fails the test with its output unless it exits 0. Returns its stdout. */
function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, ...options });
  assert.equal(child.status, 0, `${command} ${args.join(' ')} exited ${child.status ?? child.signal}:\n${child.error ?? ''}${child.stdout}${child.stderr}`);
  return String(child.stdout);
}

/** A JS tool of node_modules/.bin, run by this Node. */
const tool = (name: string, args: string[], options: SpawnSyncOptions = {}): string => run(process.execPath, [bin(name), ...args], options);

/** npm itself: the one running `npm test`, else the one on PATH. */
const npm = (args: string[], options: SpawnSyncOptions): string =>
  process.env.npm_execpath ? run(process.execPath, [process.env.npm_execpath, ...args], options) : run('npm', args, options);

/** The .d.ts files of the installed package that its entry points reach, following relative imports. */
function publicDeclarations(): Set<string> {
  const reached = new Set<string>();
  const todo = ['dist/index.d.ts', 'dist/protocol.d.ts', 'dist/testing.d.ts', 'dist/redis.d.ts'];
  for (let file; (file = todo.pop()); ) {
    if (reached.has(file)) continue;
    reached.add(file);
    for (const [, from] of readFileSync(join(installed, file), 'utf8').matchAll(/from '(\.[^']+)\.js'/g)) todo.push(join(dirname(file), `${from}.d.ts`));
  }
  return reached;
}

let scratch: string;
let tarball: string;
let packed: string[];
/** The consumer: a folder with the package in node_modules/wspoll, and spec/consumer's files. */
let consumer: string;
let installed: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'wspoll-package-'));
  // As `npm publish` would: its prepare script builds dist/ here, then the files of `files` are packed.
  const [pack] = JSON.parse(npm(['pack', '--json', '--pack-destination', scratch], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })) as [
    { filename: string; files: { path: string }[] },
  ];
  tarball = join(scratch, pack.filename);
  packed = pack.files.map((f) => f.path).sort();

  consumer = join(scratch, 'consumer');
  installed = join(consumer, 'node_modules', 'wspoll');
  mkdirSync(installed, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  symlinkSync(join(ROOT, 'node_modules', '@types'), join(consumer, 'node_modules', '@types'), 'dir');
  for (const file of readdirSync(join(ROOT, 'spec', 'consumer'))) copyFileSync(join(ROOT, 'spec', 'consumer', file), join(consumer, file));
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
});

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('the tarball', () => {
  it('holds the build (JavaScript, types, source maps), package.json, README.md and LICENSE, nothing else', () => {
    const stray = packed.filter((path) => !/^(package\.json|README\.md|LICENSE|dist\/[\w/-]+\.(js|d\.ts|js\.map))$/.test(path));
    assert.deepEqual(stray, []);
    for (const path of ['LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/protocol.js', 'dist/protocol.d.ts']) assert.ok(packed.includes(path), path);
  });

  it('package.json: ESM only, every export resolves to a shipped file, no side effects, Node ^20.19 || >=22.12', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      type: string;
      sideEffects: boolean;
      engines: { node: string };
      exports: Record<string, string | Record<string, string>>;
    };
    assert.equal(manifest.type, 'module');
    assert.equal(manifest.sideEffects, false);
    assert.equal(manifest.engines.node, '^20.19.0 || >=22.12.0');
    for (const subpath of ['.', './protocol', './testing', './redis', './package.json']) assert.ok(subpath in manifest.exports, subpath);
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) assert.ok(existsSync(join(installed, file)), `${subpath}: ${file}`);
    }
  });

  it('every source map resolves: each source is embedded and is the source of lib/ it names', () => {
    const maps = packed.filter((path) => path.endsWith('.js.map'));
    assert.equal(maps.length, packed.filter((path) => path.endsWith('.js')).length, 'one map per script');
    for (const path of maps) {
      const script = readFileSync(join(installed, path.slice(0, -'.map'.length)), 'utf8');
      assert.ok(script.trimEnd().endsWith(`//# sourceMappingURL=${path.split('/').pop()}`), `${path}: referenced by its script`);
      const map = JSON.parse(readFileSync(join(installed, path), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      assert.equal(map.sources.length, 1, path);
      const source = resolve(dirname(join(ROOT, path)), map.sources[0]!);
      assert.equal(relative(ROOT, source).split('/')[0], 'lib', `${path}: ${map.sources[0]}`);
      assert.equal(map.sourcesContent?.[0], readFileSync(source, 'utf8'), `${path}: the source is embedded`);
    }
  });

  it('its public types reach no internal plumbing (peers, sessions, their callbacks)', () => {
    const reached = publicDeclarations();
    const io = [...reached].filter((file) => file.startsWith('dist/io/')).sort();
    const memoryNetwork = ['memory-network', 'memory-path', 'memory-socket', 'seeded-random', 'virtual-clock'].map((name) => `dist/io/${name}.d.ts`);
    assert.deepEqual(io, ['dist/io/clock.d.ts', ...memoryNetwork], 'of lib/io, only the Clock and the memory network (wspoll/testing) are public');
    const api = [...reached].filter((file) => file.startsWith('dist/api/')).sort();
    assert.deepEqual(api, ['dist/api/broker.d.ts', 'dist/api/client.d.ts', 'dist/api/constants.d.ts', 'dist/api/events.d.ts', 'dist/api/options.d.ts', 'dist/api/redis-broker.d.ts', 'dist/api/server.d.ts']);
    for (const file of reached) {
      const text = readFileSync(join(installed, file), 'utf8');
      assert.doesNotMatch(text, /\b(PeerOwner|PeerEvent|SessionHost|ReceiverSink)\b/, file);
      assert.doesNotMatch(text, /^ {4}(sessionEvent|sessionGone|peerEvent|peerGone|message|control)\(/m, `${file}: a callback is public`);
    }
  });

  it('its TSDoc gives every optional option its @default and every send its @returns', () => {
    const missing: string[] = [];
    for (const file of publicDeclarations()) {
      const source = ts.createSourceFile(file, readFileSync(join(installed, file), 'utf8'), ts.ScriptTarget.Latest, true);
      const tags = (node: ts.Node): string[] => ts.getJSDocTags(node).map((tag) => tag.tagName.text);
      const visit = (node: ts.Node, owner: string): void => {
        if (ts.isInterfaceDeclaration(node) && node.name.text.endsWith('Options')) {
          for (const member of node.members) {
            if (ts.isPropertySignature(member) && member.questionToken !== undefined && !tags(member).includes('default')) missing.push(`${file}: ${node.name.text}.${member.name.getText()} has no @default`);
          }
        }
        if ((ts.isMethodDeclaration(node) || ts.isMethodSignature(node)) && node.type?.getText() === 'SendStatus' && !tags(node).includes('returns')) {
          missing.push(`${file}: ${owner}.${node.name.getText()} has no @returns`);
        }
        ts.forEachChild(node, (child) => visit(child, ts.isClassDeclaration(node) && node.name ? node.name.text : owner));
      };
      visit(source, '');
    }
    assert.deepEqual(missing, []);
  });

  it('publint finds nothing, even with --strict', () => {
    assert.match(tool('publint', ['run', installed, '--strict']), /All good!/);
  });

  it('attw (are the types wrong?) finds nothing for an ESM-only package', () => {
    tool('attw', [tarball, '--profile', 'esm-only']); // exits 1 on any problem the profile counts
  });
});

describe('a consumer', () => {
  it('compiles with TypeScript 5 (strict, exactOptionalPropertyTypes, NodeNext, skipLibCheck off)', () => {
    run(process.execPath, [TSC, '-p', join(consumer, 'tsconfig.json')]);
  });

  it('runs on Node: a Server and a Client talk and close, the sans-I/O protocol without sockets', () => {
    const output = run(process.execPath, [join(consumer, 'out', 'smoke.js')], { cwd: consumer });
    assert.match(output, /ok wspoll \d+\.\d+\.\d+: connected as #1\n(ok .*\n){3}/);
    assert.match(output, /ok wspoll\/protocol without sockets/);
  });

  it("runs on Node as CommonJS: require('wspoll') is import('wspoll')", () => {
    assert.match(run(process.execPath, [join(consumer, 'out', 'require.cjs')], { cwd: consumer }), /ok require\('wspoll'\) is import\('wspoll'\)/);
  });

  describe('with TypeScript 7', { skip: typescript7.skip }, () => {
    before(() => typescript7.require());
    it('compiles', () => {
      run(process.execPath, [process.env.WSPOLL_TSC7!, '-p', join(consumer, 'tsconfig.json'), '--noEmit']);
    });
  });

  describe('on Bun', { skip: bun.skip }, () => {
    before(() => bun.require());
    it('runs the same program from its TypeScript', () => {
      assert.match(run('bun', ['smoke.ts'], { cwd: consumer }), /ok wspoll\/protocol without sockets/);
    });
  });

  describe('on Deno', { skip: deno.skip }, () => {
    before(() => deno.require());
    it('runs the same program from its TypeScript', () => {
      assert.match(run('deno', ['run', '--allow-net=127.0.0.1', '--allow-read', '--allow-env', 'smoke.ts'], { cwd: consumer }), /ok wspoll\/protocol without sockets/);
    });
  });
});
