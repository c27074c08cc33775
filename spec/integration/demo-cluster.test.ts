/**
 * Two demo processes (demo/server.ts, as `REDIS_URL=… npm start` runs it) on two ports and one
 * real redis-server: every promise of demo/protocol.ts across the processes (a name is taken
 * cluster-wide, `users` lists everyone, routed messages, groups, one stream), then Redis killed
 * and brought back (empty): each process serves its own users meanwhile, and routing resumes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DemoPeer, type Message } from '../helpers/demo-peer.js';
import { redisServer } from '../helpers/peers.js';
import { RedisServer } from '../helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface DemoProcess {
  child: ChildProcess;
  ws: string;
  /** Everything it wrote to stderr (its error log). */
  log: string[];
  /** What it printed up to its ready line. */
  output: string;
}

/** Runs demo/server.ts with REDIS_URL and waits for its "ready http://HOST:PORT/" line. */
async function startDemo(redisUrl: string): Promise<DemoProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', REDIS_URL: redisUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => log.push(...chunk.split('\n').filter(Boolean)));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 15 s:\n${output}${log.join('\n')}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const ready = /^ready (http:\/\/\S+)$/m.exec(output);
      if (!ready) return;
      clearTimeout(timer);
      resolve(ready[1]!);
    });
    child.once('exit', (code) => reject(new Error(`demo/server.ts exited (${code}) before ready:\n${output}${log.join('\n')}`)));
  });
  return { child, ws: `${url.replace(/^http/, 'ws')}ws`, log, output };
}

async function stopDemo({ child }: DemoProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

const sorted = (names: string[]) => (m: Message) => JSON.stringify(m.names) === JSON.stringify(names);

describe('two demo processes sharing one Redis', { skip: redisServer.skip }, () => {
  let redis: RedisServer;
  let a: DemoProcess;
  let b: DemoProcess;
  const peers: DemoPeer[] = [];

  async function login(on: DemoProcess, name: string): Promise<DemoPeer> {
    const peer = await DemoPeer.login(on.ws, name);
    peers.push(peer);
    return peer;
  }

  before(async () => {
    redisServer.require();
    redis = await RedisServer.launch();
    [a, b] = await Promise.all([startDemo(redis.url), startDemo(redis.url)]);
  });

  after(async () => {
    await Promise.all(peers.filter((p) => p.open).map((p) => p.close()));
    await Promise.all([a && stopDemo(a), b && stopDemo(b)]);
    await redis?.close();
  });

  test('each process says where it shares its users, on its own port', () => {
    assert.notEqual(a.ws, b.ws);
    for (const demo of [a, b]) assert.ok(demo.output.includes(`sharing users, routes, groups and the stream through ${redis.url}`), demo.output);
  });

  test('a name is taken cluster-wide; users lists everyone, on every login and logout', async () => {
    const ann = await login(a, 'ann');
    const ben = await login(b, 'ben');
    await ann.until('users', sorted(['ann', 'ben']));
    await ben.until('users', sorted(['ann', 'ben']));
    const second = await DemoPeer.open(b.ws);
    peers.push(second);
    await second.refused({ type: 'login', name: 'ann' }, 'name "ann" is taken', 'login');
    await ann.close();
    await ben.until('users', sorted(['ben']));
    second.send({ type: 'login', name: 'ann' });
    assert.equal((await second.take('welcome')).name, 'ann', 'the name came free when its user left');
    await ben.until('users', sorted(['ann', 'ben']));
    await ben.close();
    await second.close();
  });

  test('two logins of one name at once on two processes: one wins', async () => {
    const [one, two] = await Promise.all([DemoPeer.open(a.ws), DemoPeer.open(b.ws)]);
    peers.push(one, two);
    one.send({ type: 'login', name: 'race' });
    two.send({ type: 'login', name: 'race' });
    const outcome = (peer: DemoPeer) => peer.history.find((m) => m.type === 'welcome' || m.type === 'error');
    const deadline = Date.now() + 5000;
    while (!(outcome(one) && outcome(two)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const outcomes = [one, two].map((peer) => (outcome(peer)?.type === 'welcome' ? 'welcome' : outcome(peer)?.reason));
    assert.deepEqual(outcomes.sort(), ['name "race" is taken', 'welcome']);
    await Promise.all([one.close(), two.close()]);
  });

  test('routed messages reach a user on the other process; unknown recipients are refused', async () => {
    const dan = await login(a, 'dan');
    const eve = await login(b, 'eve');
    await dan.until('users', (m) => m.names.includes('eve'));
    dan.send({ type: 'route', to: 'eve', text: 'psst' });
    assert.deepEqual(await eve.take('routed'), { type: 'routed', from: 'dan', text: 'psst' });
    eve.send({ type: 'route', to: 'dan', text: 'back' });
    assert.deepEqual(await dan.take('routed'), { type: 'routed', from: 'eve', text: 'back' });
    await dan.none('routed', 100);
    await dan.refused({ type: 'route', to: 'nobody', text: 'hi' }, 'unknown recipient "nobody"', 'route');
    await eve.close();
    await dan.until('users', (m) => !m.names.includes('eve'));
    await dan.refused({ type: 'route', to: 'eve', text: 'hi' }, 'unknown recipient "eve"', 'route');
    await dan.close();
  });

  test('a group spans the processes: every member gets what anyone publishes; leaving stops it', async () => {
    const fay = await login(a, 'fay');
    const gus = await login(b, 'gus');
    const hal = await login(b, 'hal');
    for (const peer of [fay, gus]) {
      peer.send({ type: 'join', group: 'g1' });
      assert.deepEqual(await peer.take('joined'), { type: 'joined', group: 'g1' });
    }
    // joined promises that what is published next arrives: no wait between the two.
    gus.send({ type: 'publish', group: 'g1', text: 'from b' });
    fay.send({ type: 'publish', group: 'g1', text: 'from a' });
    for (const peer of [fay, gus]) {
      const texts = [(await peer.take('group')).text, (await peer.take('group')).text];
      assert.deepEqual(texts.sort(), ['from a', 'from b']);
    }
    await hal.none('group', 100);
    gus.send({ type: 'leave', group: 'g1' });
    assert.deepEqual(await gus.take('left'), { type: 'left', group: 'g1' });
    fay.send({ type: 'publish', group: 'g1', text: 'again' });
    assert.equal((await fay.take('group')).text, 'again');
    await gus.none('group', 200);
    await Promise.all([fay.close(), gus.close(), hal.close()]);
  });

  test('one stream: subscribers on both processes get the same samples, seq increasing', async () => {
    const jo = await login(a, 'jo');
    const kim = await login(b, 'kim');
    for (const peer of [jo, kim]) {
      peer.send({ type: 'subscribe' });
      await peer.take('subscribed');
    }
    const samples = async (peer: DemoPeer): Promise<Message[]> => {
      const got: Message[] = [];
      while (got.length < 15) got.push(await peer.take('stream'));
      return got;
    };
    const [fromA, fromB] = await Promise.all([samples(jo), samples(kim)]);
    for (const got of [fromA, fromB]) {
      for (let i = 1; i < got.length; i++) assert.ok(got[i]!.seq > got[i - 1]!.seq, 'seq increases');
      const periodMs = (got.at(-1)!.t - got[0]!.t) / (got.length - 1);
      assert.ok(periodMs <= 100, `one sample every ${periodMs} ms`);
    }
    const seqsA = new Set(fromA.map((m) => m.seq));
    const common = fromB.filter((m) => seqsA.has(m.seq));
    assert.ok(common.length >= 10, `the same samples on both sides (${common.length} of 15 in common)`);
    for (const sample of common) assert.deepEqual(sample, fromA.find((m) => m.seq === sample.seq));
    jo.send({ type: 'unsubscribe' });
    await jo.take('unsubscribed');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const since = jo.history.slice(jo.history.findIndex((m) => m.type === 'unsubscribed') + 1);
    assert.deepEqual(since.filter((m) => m.type === 'stream'), []);
    await Promise.all([jo.close(), kim.close()]);
  });

  test('Redis killed: each process serves its own users; back (empty): routing resumes within seconds', async () => {
    const [ivy, ike] = [await login(a, 'ivy'), await login(a, 'ike')];
    const [uma, ugo] = [await login(b, 'uma'), await login(b, 'ugo')];
    await ivy.until('users', sorted(['ike', 'ivy', 'ugo', 'uma']));
    for (const peer of [ivy, ike, uma, ugo]) {
      peer.send({ type: 'subscribe' });
      await peer.take('subscribed');
    }
    for (const peer of [ivy, ike]) {
      peer.send({ type: 'join', group: 'local-a' });
      await peer.take('joined');
    }
    const logged = [a.log.length, b.log.length];
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));

    // Each process goes on serving its own users: echo, routes and groups within it, the stream.
    for (const [from, to] of [[ivy, ike], [uma, ugo]] as const) {
      from.send({ type: 'echo', text: 'still here' });
      assert.equal((await from.take('echo')).text, 'still here');
      to.send({ type: 'route', to: (await nameOf(from))!, text: 'local route' });
      assert.equal((await from.take('routed')).text, 'local route');
    }
    ike.send({ type: 'publish', group: 'local-a', text: 'local group' });
    assert.equal((await ivy.take('group')).text, 'local group');
    for (const peer of [ivy, uma]) await peer.take('stream', 1000);
    const redisDownAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // reconnection attempts: still one line each
    for (const [demo, from] of [[a, logged[0]!], [b, logged[1]!]] as const) {
      const lines = demo.log.slice(from).filter((line) => line.includes('redis broker'));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /Redis unreachable/);
    }

    await redis.start();
    const back = Date.now();
    for (let n = 0; ; n++) {
      ivy.send({ type: 'route', to: 'uma', text: `probe ${n}` });
      const got = await uma.take('routed', 200).catch(() => undefined);
      if (got) break;
      assert.ok(Date.now() - back < 10_000, 'routing resumed within 10 s of Redis coming back');
    }
    console.log(`# routing between the processes resumed ${((Date.now() - back) / 1000).toFixed(2)} s after Redis came back (down ${((back - redisDownAt) / 1000 + 0.5).toFixed(1)} s)`);
    // Redis came back empty: the processes wrote their names back, so they are taken again.
    const late = await DemoPeer.open(b.ws);
    peers.push(late);
    await late.refused({ type: 'login', name: 'ivy' }, 'name "ivy" is taken', 'login');
    await uma.until('users', sorted(['ike', 'ivy', 'ugo', 'uma']));
    // The stream never went backwards for anyone, through the outage and back.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const peer of [ivy, ike, uma, ugo]) {
      const seqs = peer.history.filter((m) => m.type === 'stream').map((m) => m.seq as number);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq increasing: ${seqs[i - 1]} then ${seqs[i]}`);
    }
    await Promise.all([ivy, ike, uma, ugo, late].map((p) => p.close()));
  });
});

/** The name a peer logged in with (its welcome). */
async function nameOf(peer: DemoPeer): Promise<string | undefined> {
  return peer.history.find((m) => m.type === 'welcome')?.name;
}
