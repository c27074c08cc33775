/**
 * demo/: the five-workflow server (DemoApp behind a real Server on port 0) driven by clients
 * nobody here wrote: the `ws` package and Python's `websockets`. Every message type, every
 * error reason, the static files and the /ws-only endpoint. Bots playing the arena over a
 * memory network: spec/integration/demo-arena.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { DemoPeer as Peer, type Message } from '../helpers/demo-peer.js';
import { startDemo, type RunningDemo } from '../../demo/demo.js';
import { pythonWebsockets } from '../helpers/peers.js';

let demo: RunningDemo;
let base: string;
let url: string;
const peers: Peer[] = [];

async function login(name: string): Promise<Peer> {
  const peer = await Peer.login(url, name);
  peers.push(peer);
  return peer;
}

before(async () => {
  demo = await startDemo({ port: 0 });
  base = `http://127.0.0.1:${demo.port}`;
  url = `ws://127.0.0.1:${demo.port}/ws`;
});

after(async () => {
  await Promise.all(peers.filter((p) => p.open).map((p) => p.close()));
  await demo.stop();
});

describe('login', () => {
  test('welcome, then the users list goes to every logged-in user', async () => {
    const ann = await login('ann');
    const ben = await login('ben');
    assert.deepEqual((await ann.take('users')).names, ['ann', 'ben']);
    await ben.close();
    assert.deepEqual((await ann.take('users')).names, ['ann']);
  });

  test('a request before login is refused and the connection stays open', async () => {
    const peer = await Peer.open(url);
    peers.push(peer);
    for (const type of ['echo', 'route', 'join', 'leave', 'publish', 'subscribe', 'unsubscribe', 'enter', 'exit']) {
      await peer.refused({ type, text: 'x', to: 'x', group: 'x' }, 'log in first', type);
    }
    peer.send({ type: 'login', name: 'late' });
    assert.equal((await peer.take('welcome')).name, 'late');
  });

  test('a taken name is refused; the name comes free when its user leaves', async () => {
    const first = await Peer.login(url, 'cleo');
    const second = await Peer.open(url);
    peers.push(second);
    await second.refused({ type: 'login', name: 'cleo' }, 'name "cleo" is taken', 'login');
    await first.close();
    second.send({ type: 'login', name: 'cleo' });
    assert.equal((await second.take('welcome')).name, 'cleo');
    await second.refused({ type: 'login', name: 'other' }, 'already logged in as "cleo"', 'login');
  });

  test('invalid names are refused', async () => {
    const peer = await Peer.open(url);
    peers.push(peer);
    for (const name of ['', 'x'.repeat(33), ' pad', 'pad ', 'tab\there', 42, null, undefined]) {
      await peer.refused({ type: 'login', name }, /^invalid "name": 1–32 characters/, 'login');
    }
    peer.send({ type: 'login', name: '🦊'.repeat(32) });
    assert.equal((await peer.take('welcome')).name, '🦊'.repeat(32), 'length counts code points');
  });
});

describe('malformed input keeps the connection open', () => {
  test('each refusal has its reason', async () => {
    const peer = await login('mal');
    await peer.refused('{not json', 'malformed JSON');
    await peer.refused('[1,2]', 'expected an object with a string "type"');
    await peer.refused('"echo"', 'expected an object with a string "type"');
    await peer.refused({ type: 7 }, 'expected an object with a string "type"');
    await peer.refused({ type: 'dance' }, 'unknown type "dance"', 'dance');
    await peer.refused({ type: 'toString' }, 'unknown type "toString"', 'toString');
    await peer.refused(Buffer.from('{"type":"echo","text":"hi"}'), 'binary messages are not supported');
    peer.send({ type: 'echo', text: 'still here' });
    assert.equal((await peer.take('echo')).text, 'still here');
    assert.ok(peer.open);
  });
});

describe('echo', () => {
  test('the text comes back; empty and over-long texts are refused', async () => {
    const peer = await login('echo-user');
    const text = `héllo ${'z'.repeat(990)}`;
    peer.send({ type: 'echo', text, extra: 'ignored' });
    assert.deepEqual(await peer.take('echo'), { type: 'echo', text });
    await peer.refused({ type: 'echo', text: '' }, 'invalid "text": 1–1000 characters', 'echo');
    await peer.refused({ type: 'echo', text: 'x'.repeat(1001) }, 'invalid "text": 1–1000 characters', 'echo');
    await peer.refused({ type: 'echo' }, 'invalid "text": 1–1000 characters', 'echo');
  });
});

describe('routed', () => {
  test('reaches the named user with the sender; unknown and departed recipients are refused', async () => {
    const dan = await login('dan');
    const eve = await login('eve');
    dan.send({ type: 'route', to: 'eve', text: 'psst' });
    assert.deepEqual(await eve.take('routed'), { type: 'routed', from: 'dan', text: 'psst' });
    await dan.none('routed', 100);
    await dan.refused({ type: 'route', to: 'nobody', text: 'hi' }, 'unknown recipient "nobody"', 'route');
    await eve.close();
    await dan.take('users');
    await dan.refused({ type: 'route', to: 'eve', text: 'hi' }, 'unknown recipient "eve"', 'route');
    await dan.refused({ type: 'route', to: 5, text: 'hi' }, /^invalid "to"/, 'route');
  });
});

describe('group', () => {
  test('members get what anyone in the group publishes; leaving stops it', async () => {
    const fay = await login('fay');
    const gus = await login('gus');
    const hal = await login('hal');
    for (const peer of [fay, gus]) {
      peer.send({ type: 'join', group: 'g1' });
      assert.deepEqual(await peer.take('joined'), { type: 'joined', group: 'g1' });
    }
    fay.send({ type: 'publish', group: 'g1', text: 'hello group' });
    const expected = { type: 'group', group: 'g1', from: 'fay', text: 'hello group' };
    assert.deepEqual(await fay.take('group'), expected);
    assert.deepEqual(await gus.take('group'), expected);
    await hal.none('group', 100);

    gus.send({ type: 'leave', group: 'g1' });
    assert.deepEqual(await gus.take('left'), { type: 'left', group: 'g1' });
    fay.send({ type: 'publish', group: 'g1', text: 'again' });
    assert.equal((await fay.take('group')).text, 'again');
    await gus.none('group', 100);
  });

  test('publishing to a group one is not in, and bad group names, are refused', async () => {
    const ivy = await login('ivy');
    await ivy.refused({ type: 'publish', group: 'g2', text: 'hi' }, 'not in group "g2"', 'publish');
    await ivy.refused({ type: 'join', group: 'g'.repeat(33) }, /^invalid "group": 1–32 characters/, 'join');
    await ivy.refused({ type: 'leave', group: '' }, /^invalid "group"/, 'leave');
    await ivy.refused({ type: 'publish', group: 'g2', text: '' }, /^invalid "text"/, 'publish');
  });

  test('one publish reaches every member', async () => {
    const members = await Promise.all(['m1', 'm2', 'm3'].map(login));
    for (const peer of members) {
      peer.send({ type: 'join', group: 'many' });
      await peer.take('joined');
    }
    members[0]!.send({ type: 'publish', group: 'many', text: 'all of you' });
    for (const peer of members) assert.equal((await peer.take('group')).text, 'all of you');
  });
});

describe('stream', () => {
  test('subscribers get samples at 10 Hz or more with seq increasing; unsubscribe stops them', async () => {
    const jo = await login('jo');
    const kim = await login('kim');
    jo.send({ type: 'subscribe' });
    assert.deepEqual(await jo.take('subscribed'), { type: 'subscribed' });
    const samples: Message[] = [];
    while (samples.length < 11) samples.push(await jo.take('stream'));
    for (const sample of samples) {
      assert.deepEqual(Object.keys(sample), ['type', 'seq', 't', 'value']);
      assert.equal(typeof sample.value, 'number');
    }
    for (let i = 1; i < samples.length; i++) assert.ok(samples[i]!.seq > samples[i - 1]!.seq, 'seq increases');
    const periodMs = (samples.at(-1)!.t - samples[0]!.t) / (samples.length - 1);
    assert.ok(periodMs <= 100, `one sample every ${periodMs} ms`);
    await kim.none('stream', 50);

    jo.send({ type: 'unsubscribe' });
    const ack = await jo.take('unsubscribed');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sinceAck = jo.history.slice(jo.history.indexOf(ack) + 1);
    assert.deepEqual(sinceAck.filter((m) => m.type === 'stream'), [], 'no sample after the unsubscribe');
  });
});

describe('arena', () => {
  /** The first new state in which `condition` holds for the player `name` (undefined: not in the arena). */
  async function stateWhere(peer: Peer, name: string, condition: (player: Message | undefined) => boolean): Promise<Message> {
    for (const deadline = Date.now() + 3000; Date.now() < deadline; ) {
      const state = await peer.latest('arena');
      if (condition(state.players.find((p: Message) => p.name === name))) return state;
    }
    throw new Error(`no state where ${name} matches ${condition}`);
  }

  test('enter, a state every tick with every player, held keys move a dot, exit takes it off the field', async () => {
    const ann = await login('arena-ann');
    const ben = await login('arena-ben');
    for (const peer of [ann, ben]) {
      peer.send({ type: 'enter' });
      assert.deepEqual(await peer.take('entered'), { type: 'entered', name: peer === ann ? 'arena-ann' : 'arena-ben', width: 640, height: 400 });
    }
    const state = await stateWhere(ben, 'arena-ann', (ann) => ann !== undefined);
    assert.deepEqual(Object.keys(state), ['type', 'tick', 'players']);
    assert.deepEqual(
      state.players.map((p: Message) => [p.name, Object.keys(p)]),
      [['arena-ann', ['name', 'x', 'y', 'rtt']], ['arena-ben', ['name', 'x', 'y', 'rtt']]],
    );
    const next = await ben.latest('arena');
    assert.ok(next.tick > state.tick, 'the tick counts up');
    const start = state.players[0];

    ann.send({ type: 'move', dx: 1, dy: 1 });
    await stateWhere(ben, 'arena-ann', (p) => p!.x >= start.x + 40 && p!.y >= start.y + 40);
    ann.send({ type: 'move', dx: 0, dy: 0 });
    const stopped = (await stateWhere(ben, 'arena-ann', (p) => p!.x > start.x)).players[0];
    const later = (await stateWhere(ben, 'arena-ann', (p) => p!.x === stopped.x)).players[0];
    assert.deepEqual([later.x, later.y], [stopped.x, stopped.y], 'released keys: the dot stays');

    ann.send({ type: 'exit' });
    assert.deepEqual(await ann.take('exited'), { type: 'exited' });
    ann.discard('arena'); // the states sent before the exit
    const without = await stateWhere(ben, 'arena-ann', (p) => p === undefined);
    assert.deepEqual(without.players.map((p: Message) => p.name), ['arena-ben']);
    await ann.none('arena', 100);
  });

  test('a move outside the arena and bad directions are refused', async () => {
    const peer = await login('arena-cid');
    await peer.refused({ type: 'move', dx: 1, dy: 0 }, 'enter the arena first', 'move');
    peer.send({ type: 'enter' });
    await peer.take('entered');
    await peer.refused({ type: 'move', dx: 2, dy: 0 }, 'invalid "dx": -1, 0 or 1', 'move');
    await peer.refused({ type: 'move', dx: 0 }, 'invalid "dy": -1, 0 or 1', 'move');
    await peer.refused({ type: 'move', dx: '1', dy: 0 }, 'invalid "dx": -1, 0 or 1', 'move');
  });
});

describe('endpoints', () => {
  test('the page and its files are served with their content types', async () => {
    for (const [path, type, text] of [
      ['/', 'text/html; charset=utf-8', '<title>'],
      ['/index.html', 'text/html; charset=utf-8', 'data-testid="status"'],
      ['/app.js', 'text/javascript; charset=utf-8', 'import'],
      ['/style.css', 'text/css; charset=utf-8', ':root'],
    ] as const) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.ok((await res.text()).includes(text), path);
    }
  });

  test('nothing outside demo/public/ is reachable; other methods get 405', async () => {
    for (const path of ['/../package.json', '/..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', '/..%5c..%5cpackage.json', '/%00', '/%zz', '/.hidden', '/nope.js', '/public/index.html']) {
      assert.equal((await raw('GET', path)).status, 404, path);
    }
    const post = await raw('POST', '/');
    assert.equal(post.status, 405);
    assert.equal(post.allow, 'GET, HEAD');
    assert.equal((await raw('HEAD', '/app.js')).status, 200);
    assert.equal((await raw('GET', '/ws')).status, 426);
  });

  test('a WebSocket handshake on any path but /ws is refused with 404', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${demo.port}/chat`);
    const status = await new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('open', () => reject(new Error('opened')));
    });
    assert.equal(status, 404);
  });
});

describe('a Python websockets client', { skip: pythonWebsockets.skip }, () => {
  test('speaks the documented protocol', async () => {
    pythonWebsockets.require();
    const script = fileURLToPath(new URL('../interop/peers/python-demo-client.py', import.meta.url));
    const { stdout } = await promisify(execFile)('/usr/bin/python3', [script, url], { timeout: 10_000 });
    assert.equal(stdout.trim(), 'ok');
  });
});

/** A request the way a hostile client would write it: the path exactly as given. */
function raw(method: string, path: string): Promise<{ status: number; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: demo.port, method, path }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, allow: res.headers.allow });
    });
    req.once('error', reject).end();
  });
}
