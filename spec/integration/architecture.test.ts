/**
 * The layers of lib/, checked from the sources: lib/core (pure RFC code), lib/io (moves bytes),
 * lib/api (the poll face), and the entry points at the top, which only re-export. Imports point
 * down only; the core reads no clock, sets no timer and touches no socket; package.json has no
 * runtime dependencies.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

/** The layers, lowest first: a module may import its own layer and those below. */
const LAYERS = ['core', 'io', 'api'] as const;
type Layer = (typeof LAYERS)[number] | 'entry';
/** The only files directly in lib/: the package's entry points. */
const ENTRY_POINTS = ['index.ts', 'protocol.ts', 'testing.ts', 'redis.ts'];
/** Node built-ins the core may use: bytes, hashes and randomness, compression. */
const CORE_BUILTINS = new Set(['node:buffer', 'node:crypto', 'node:zlib']);
/** Globals that mean timers, the clock or process state: not for the core. */
const FORBIDDEN_IN_CORE = /\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|clearImmediate|queueMicrotask|process|performance|Date)\b/;

/** Every .ts file of lib/, as a path relative to lib/ ("core/frame.ts"). */
function files(dir = ''): string[] {
  return readdirSync(LIB + dir).flatMap((name) => {
    const path = dir + name;
    if (statSync(LIB + path).isDirectory()) return files(`${path}/`);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function layerOf(path: string): Layer {
  const folder = path.split('/')[0]!;
  return (LAYERS as readonly string[]).includes(folder) ? (folder as Layer) : 'entry';
}

/** Source without comments. */
function code(path: string): string {
  return readFileSync(LIB + path, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Every module specifier imported or re-exported, static or dynamic. */
function importsOf(path: string): string[] {
  const source = code(path);
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

/** The lib/-relative path a relative specifier of `from` names, with .ts for .js. */
function resolve(from: string, specifier: string): string {
  const url = new URL(specifier, `file:///lib/${from}`);
  return url.pathname.slice('/lib/'.length).replace(/\.js$/, '.ts');
}

/** What `path` imports from lib/, as lib/-relative paths. */
function localImports(path: string): string[] {
  return importsOf(path)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(path, s));
}

describe('architecture: three layers in three folders', () => {
  const all = files();

  it('finds the files and imports it checks (the scanner works)', () => {
    assert.ok(all.includes('core/frame.ts') && all.includes('io/peer.ts') && all.includes('api/server.ts'));
    assert.ok(localImports('index.ts').includes('api/server.ts'), 'export … from is an import too');
    assert.ok(importsOf('io/listening.ts').includes('node:http'));
  });

  it('nothing sits directly in lib/ but the entry points', () => {
    const loose = all.filter((f) => !f.includes('/') && !ENTRY_POINTS.includes(f));
    assert.deepEqual(loose, [], `move these into lib/core, lib/io or lib/api: ${loose.join(', ')}`);
    for (const f of all) assert.ok(layerOf(f) !== 'entry' || !f.includes('/'), `${f} is in an unknown folder`);
  });

  it('the entry points only re-export', () => {
    for (const entry of all.filter((f) => layerOf(f) === 'entry')) {
      const statements = code(entry).split(';').map((s) => s.trim()).filter(Boolean);
      for (const statement of statements) assert.match(statement, /^export\b[\s\S]*\bfrom\s*['"]/, `${entry}: ${statement.slice(0, 60)}`);
    }
  });

  it('local imports are relative ".js" paths to files that exist', () => {
    const existing = new Set(all);
    for (const f of all) {
      for (const specifier of importsOf(f).filter((s) => s.startsWith('.'))) {
        assert.match(specifier, /\.js$/, `lib/${f} imports "${specifier}"`);
        assert.ok(existing.has(resolve(f, specifier)), `lib/${f} imports "${specifier}", which does not exist`);
      }
    }
  });

  it('imports point down only: api → io → core, never up, and nothing below imports an entry point', () => {
    const rank: Record<Layer, number> = { core: 0, io: 1, api: 2, entry: 3 };
    const upward: string[] = [];
    for (const f of all) {
      for (const target of localImports(f)) {
        if (rank[layerOf(target)] > rank[layerOf(f)]) upward.push(`lib/${f} imports lib/${target}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  for (const f of all.filter((path) => layerOf(path) === 'core')) {
    it(`the core file ${f} uses only the core, bytes, hashes and zlib: no I/O, timers, clock or process`, () => {
      for (const specifier of importsOf(f)) {
        if (specifier.startsWith('.')) assert.equal(layerOf(resolve(f, specifier)), 'core', `${f} imports ${specifier}`);
        else assert.ok(CORE_BUILTINS.has(specifier), `${f} imports ${specifier}`);
      }
      const globals = code(f).match(FORBIDDEN_IN_CORE);
      assert.equal(globals, null, `${f} uses ${globals?.[0]}`);
    });
  }

  it('the core rule catches a violation (self-check of the patterns)', () => {
    assert.match('const t = setTimeout(f, 1);', FORBIDDEN_IN_CORE);
    assert.match('process.nextTick(f)', FORBIDDEN_IN_CORE);
    assert.match('performance.now()', FORBIDDEN_IN_CORE);
    assert.match('Date.now()', FORBIDDEN_IN_CORE);
    assert.doesNotMatch('const dated = 1; // updated', FORBIDDEN_IN_CORE);
    assert.equal(CORE_BUILTINS.has('node:net'), false);
  });
});

describe('package.json: no runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(PACKAGE, 'utf8')) as Record<string, unknown>;

  it('has no dependencies, peerDependencies, optionalDependencies or bundled ones', () => {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies', 'bundledDependencies']) {
      const value = pkg[field];
      assert.ok(value === undefined || Object.keys(value as object).length === 0, `package.json has ${field}: ${JSON.stringify(value)}`);
    }
  });

  it('lib/ imports only node: built-ins and its own files', () => {
    for (const f of files()) {
      for (const specifier of importsOf(f)) {
        assert.ok(specifier.startsWith('node:') || specifier.startsWith('.'), `lib/${f} imports the package "${specifier}"`);
      }
    }
  });
});
