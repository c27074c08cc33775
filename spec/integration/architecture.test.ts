/**
 * DESIGN §6 and §8: the layers of lib/ and the empty runtime dependencies, checked from the
 * sources. The pure core imports nothing of the I/O layer, no sockets, timers or process;
 * every import in lib/ points to a lower layer; package.json has no `dependencies`.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

/** The pure core (DESIGN §6, below the line). */
const CORE = ['connection', 'frame', 'handshake', 'request-head', 'constants', 'errors', 'utf8', 'memory-view'];
/** The I/O layer the core must not reach. */
const IO = ['server', 'client', 'peer', 'heartbeat', 'listener', 'net-front', 'event-queue', 'write-arena', 'socket-reader', 'options', 'clock', 'events', 'index'];

/**
 * Every module of lib/ and its layer: a module may import only from lower layers. A new file
 * must be placed here (that is the point: its place in the architecture is a decision).
 */
const LAYER: Record<string, number> = {
  constants: 0,
  errors: 1,
  utf8: 1,
  'mask-pool': 1, // random mask keys: node:crypto only
  'memory-view': 1, // cheap views into a read's memory
  frame: 2,
  handshake: 2,
  'request-head': 2,
  connection: 3,
  // ---- I/O layer ----
  clock: 4,
  events: 4,
  options: 5,
  'event-queue': 5,
  'write-arena': 5, // shared memory for outgoing frames
  'socket-reader': 5, // routes a socket's events to its reader
  peer: 6,
  heartbeat: 7,
  listener: 6,
  'net-front': 7,
  server: 8,
  client: 8,
  index: 9,
};

/** Node built-ins that mean I/O, timers or process state: not for the core. */
const FORBIDDEN_IN_CORE = /^(node:)?(net|http|https|http2|tls|dgram|dns|timers|timers\/promises|process|child_process|worker_threads|fs|fs\/promises)$/;
/** Globals that mean timers or process state: not for the core. */
const FORBIDDEN_GLOBALS = /\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|clearImmediate|queueMicrotask|process)\b/;

function modules(): string[] {
  return readdirSync(LIB)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Source without comments and string contents other than import specifiers. */
function code(name: string): string {
  return readFileSync(`${LIB}${name}.ts`, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Every module specifier imported or re-exported, static or dynamic. */
function importsOf(name: string): string[] {
  const source = code(name);
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

function localTarget(specifier: string): string | undefined {
  const match = /^\.\/([\w-]+)\.js$/.exec(specifier);
  return match?.[1];
}

describe('architecture (DESIGN §6)', () => {
  it('finds the imports it checks (the scanner works)', () => {
    assert.deepEqual(importsOf('connection').filter((s) => s.startsWith('./')).sort(), ['./constants.js', './errors.js', './frame.js', './memory-view.js', './utf8.js']);
    assert.ok(importsOf('server').includes('node:http'));
    assert.ok(importsOf('index').includes('./server.js'), 'export … from is an import too');
  });

  it('every module of lib/ has a layer', () => {
    const unplaced = modules().filter((m) => !(m in LAYER));
    assert.deepEqual(unplaced, [], `place these modules in LAYER of spec/integration/architecture.test.ts: ${unplaced.join(', ')}`);
    for (const m of CORE) assert.ok(LAYER[m]! < LAYER.clock!, `${m} sits below the I/O layer`);
    for (const m of IO) assert.ok(LAYER[m]! >= LAYER.clock!, `${m} sits in the I/O layer`);
  });

  it('local imports are relative ".js" paths to modules that exist', () => {
    const existing = new Set(modules());
    for (const m of modules()) {
      for (const specifier of importsOf(m)) {
        if (!specifier.startsWith('.')) continue;
        const target = localTarget(specifier);
        assert.ok(target !== undefined && existing.has(target), `lib/${m}.ts imports "${specifier}"`);
      }
    }
  });

  it('every import in lib/ points down', () => {
    const upward: string[] = [];
    for (const m of modules()) {
      for (const specifier of importsOf(m)) {
        const target = localTarget(specifier);
        if (target === undefined || !(m in LAYER) || !(target in LAYER)) continue;
        if (LAYER[target]! >= LAYER[m]!) upward.push(`lib/${m}.ts (layer ${LAYER[m]}) imports ${target} (layer ${LAYER[target]})`);
      }
    }
    assert.deepEqual(upward, []);
  });

  for (const m of CORE) {
    it(`the core module ${m}.ts uses no I/O, timers or process`, () => {
      for (const specifier of importsOf(m)) {
        const target = localTarget(specifier);
        if (target !== undefined) assert.ok(CORE.includes(target), `${m}.ts imports ${target}, which is not pure core`);
        else assert.doesNotMatch(specifier, FORBIDDEN_IN_CORE, `${m}.ts imports ${specifier}`);
      }
      const globals = code(m).match(FORBIDDEN_GLOBALS);
      assert.equal(globals, null, `${m}.ts uses ${globals?.[0]}`);
    });
  }

  it('the core rule catches a violation (self-check of the patterns)', () => {
    assert.match('node:net', FORBIDDEN_IN_CORE);
    assert.match('timers', FORBIDDEN_IN_CORE);
    assert.doesNotMatch('node:crypto', FORBIDDEN_IN_CORE);
    assert.doesNotMatch('node:buffer', FORBIDDEN_IN_CORE);
    assert.match('const t = setTimeout(f, 1);', FORBIDDEN_GLOBALS);
    assert.match('process.nextTick(f)', FORBIDDEN_GLOBALS);
  });
});

describe('package.json (DESIGN §1: no runtime dependencies)', () => {
  const pkg = JSON.parse(readFileSync(PACKAGE, 'utf8')) as Record<string, unknown>;

  it('has no dependencies, peerDependencies, optionalDependencies or bundled ones', () => {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies', 'bundledDependencies']) {
      const value = pkg[field];
      assert.ok(value === undefined || Object.keys(value as object).length === 0, `package.json has ${field}: ${JSON.stringify(value)}`);
    }
  });

  it('lib/ imports only node: built-ins and its own modules', () => {
    for (const m of modules()) {
      for (const specifier of importsOf(m)) {
        assert.ok(specifier.startsWith('node:') || specifier.startsWith('./'), `lib/${m}.ts imports the package "${specifier}"`);
      }
    }
  });
});
