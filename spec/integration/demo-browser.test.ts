/**
 * The demo end to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * `demo/server.ts` runs as `npm start` would run it, two pages log in as alice and bob, and every
 * workflow is used through the page, the arena with the keyboard. Saves screenshots to
 * artifacts/ (git-ignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromium as chromiumPeer } from '../helpers/peers.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));

interface DemoProcess {
  child: ChildProcess;
  url: string;
  port: number;
}

/** Runs demo/server.ts and waits for its "ready http://HOST:PORT/" line. */
async function startServer(port: number): Promise<DemoProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 15 s:\n${output}`)), 15_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /^ready (http:\/\/\S+)$/m.exec(output);
      if (!ready) return;
      clearTimeout(timer);
      resolve(ready[1]!);
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`demo/server.ts exited (${code}) before ready:\n${output}`)));
  });
  return { child, url, port: Number(new URL(url).port) };
}

async function stopServer({ child }: DemoProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Waits until the element with this data-testid shows text matching `pattern`. */
async function shows(page: Page, testId: string, pattern: RegExp, timeout = 5000): Promise<string> {
  const element = page.getByTestId(testId);
  try {
    await page.waitForFunction(
      ([id, source, flags]) => new RegExp(source!, flags).test(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? ''),
      [testId, pattern.source, pattern.flags],
      { timeout },
    );
  } catch {
    assert.fail(`${testId} never showed ${pattern}; it shows "${await element.textContent()}"`);
  }
  return (await element.textContent()) ?? '';
}

async function number(page: Page, testId: string): Promise<number> {
  return Number(await page.getByTestId(testId).textContent());
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the demo in headless Chromium', { timeout: 60_000, skip: chromiumPeer.skip }, () => {
  let demo: DemoProcess;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  before(async () => {
    chromiumPeer.require();
    mkdirSync(ARTIFACTS, { recursive: true });
    demo = await startServer(0);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const open = async () => {
      const page = await (await browser.newContext({ viewport: { width: 820, height: 720 } })).newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(demo.url);
      return page;
    };
    [alice, bob] = await Promise.all([open(), open()]);
  });

  after(async () => {
    await browser?.close();
    if (demo) await stopServer(demo);
  });

  test('both log in; a taken name shows an error', async () => {
    await shows(alice, 'status', /^connected — pick a name$/);
    await alice.getByTestId('login-name').fill('alice');
    await alice.getByTestId('login-submit').click();
    await shows(alice, 'status', /^online as alice$/);

    await bob.getByTestId('login-name').fill('alice');
    await bob.getByTestId('login-submit').click();
    await shows(bob, 'login-error', /name "alice" is taken/);
    assert.ok(await bob.getByTestId('login-form').isVisible(), 'the login box stays');
    await bob.getByTestId('login-name').fill('bob');
    await bob.getByTestId('login-submit').click();
    await shows(bob, 'status', /^online as bob$/);
    await shows(bob, 'login-error', /^$/);
    await shows(alice, 'users', /^alice \(you\), bob$/);
  });

  test('echo: the text comes back', async () => {
    await alice.getByTestId('echo-text').fill('hello echo');
    await alice.getByTestId('echo-send').click();
    await shows(alice, 'echo-log', /echo: hello echo/);
  });

  test('routed: alice writes to bob, and only bob gets it', async () => {
    await alice.getByTestId('tab-routed').click();
    await alice.getByTestId('route-to').selectOption('bob');
    await alice.getByTestId('route-text').fill('hi bob');
    await alice.getByTestId('route-send').click();
    await bob.getByTestId('tab-routed').click();
    await shows(bob, 'route-log', /alice → you: hi bob/);
    await shows(alice, 'route-log', /you → bob: hi bob/);
  });

  test('group: both join g1, alice publishes, both see it; after bob leaves, only alice does', async () => {
    for (const page of [alice, bob]) {
      await page.getByTestId('tab-group').click();
      await page.getByTestId('group-name').fill('g1');
      await page.getByTestId('group-join').click();
      await shows(page, 'group-list', /^g1$/);
    }
    await alice.getByTestId('group-text').fill('hello group');
    await alice.getByTestId('group-publish').click();
    for (const page of [alice, bob]) await shows(page, 'group-log', /\[g1\] alice: hello group/);

    await bob.getByTestId('group-leave').click();
    await shows(bob, 'group-list', /^none$/);
    await alice.getByTestId('group-text').fill('second');
    await alice.getByTestId('group-publish').click();
    await shows(alice, 'group-log', /\[g1\] alice: second/);
    await sleep(200);
    assert.doesNotMatch((await bob.getByTestId('group-log').textContent()) ?? '', /second/);
  });

  test('stream: bob subscribes, sees seq increase and the chart, then unsubscribes and it stops', async () => {
    await bob.getByTestId('tab-stream').click();
    await bob.getByTestId('stream-subscribe').click();
    await shows(bob, 'stream-state', /^subscribed$/);
    await shows(bob, 'stream-seq', /^\d+$/);
    // Read together: on a slow machine several points may have arrived before this read.
    const [first, firstPoints] = await bob.evaluate(() => [
      Number(document.querySelector('[data-testid="stream-seq"]')!.textContent),
      Number(document.querySelector('[data-testid="stream-chart"]')!.getAttribute('data-points')),
    ]);
    await bob.waitForFunction(
      (points) => Number(document.querySelector('[data-testid="stream-chart"]')!.getAttribute('data-points')) >= points + 29,
      firstPoints,
      { timeout: 5000 },
    );
    assert.ok((await number(bob, 'stream-seq')) >= first + 29, 'seq increases');
    await shows(bob, 'stream-rate', /^(1\d|[2-9]\d)\/s$/);
    const inked = await bob.getByTestId('stream-chart').evaluate((canvas: HTMLCanvasElement) => {
      const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let blue = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 2]! > 150 && pixels[i]! < 120) blue++;
      return blue;
    });
    assert.ok(inked > 200, `the chart has its line (${inked} blue pixels)`);
    assert.equal(await alice.getByTestId('stream-seq').textContent(), '—', 'alice did not subscribe');
    await bob.screenshot({ path: `${ARTIFACTS}demo.png`, fullPage: true });

    await bob.getByTestId('stream-unsubscribe').click();
    await shows(bob, 'stream-state', /^not subscribed$/);
    const last = await number(bob, 'stream-seq');
    await sleep(500);
    assert.equal(await number(bob, 'stream-seq'), last, 'no sample after unsubscribing');
  });

  test('arena: both enter; alice holds the right arrow key and both pages see her dot move, then stop; round trips show', async () => {
    for (const page of [alice, bob]) {
      await page.getByTestId('tab-arena').click();
      await page.getByTestId('arena-enter').click();
      await shows(page, 'arena-state', /^inside$/);
    }
    const row = (name: string) => `[data-testid="arena-players"] tr[data-name="${name}"]`;
    const xOf = async (page: Page, name: string) => Number(await page.locator(row(name)).getAttribute('data-x'));
    await bob.waitForSelector(row('alice'));
    await alice.waitForSelector(row('bob'));
    const start = await xOf(bob, 'alice');

    await alice.keyboard.down('ArrowRight');
    await bob.waitForFunction(([selector, from]) => Number(document.querySelector(selector!)?.getAttribute('data-x')) >= Number(from) + 60, [row('alice'), String(start)], {
      timeout: 5000,
    });
    await alice.keyboard.up('ArrowRight');
    await sleep(300); // the release reaches the server, the last states reach the pages
    const stopped = await xOf(bob, 'alice');
    await sleep(300);
    assert.equal(await xOf(bob, 'alice'), stopped, 'the dot stops when the key is released');
    assert.equal(await xOf(alice, 'alice'), stopped, 'alice sees herself where bob sees her: the server places both');
    assert.equal(await alice.evaluate(() => window.scrollY), 0, 'the arrow keys did not scroll the page');

    // Silent for 2 s, each page is pinged by the server's heartbeat: its round trip shows.
    for (const page of [alice, bob]) {
      await page.waitForFunction((selector) => /^\d+(\.\d)? ms$/.test(document.querySelector(selector)?.lastElementChild?.textContent ?? ''), row('alice'), { timeout: 8000 });
      await page.waitForFunction((selector) => /^\d+(\.\d)? ms$/.test(document.querySelector(selector)?.lastElementChild?.textContent ?? ''), row('bob'), { timeout: 8000 });
    }
    assert.equal(await alice.getByTestId('arena-canvas').getAttribute('data-players'), '2');
    await alice.screenshot({ path: `${ARTIFACTS}arena.png`, fullPage: true });
  });

  test('Chromium negotiates permessage-deflate; a compressed reply of over 1 KiB arrives intact', async () => {
    // A string, not a function: tsx would wrap named functions in a helper the page lacks.
    const url = `${demo.url.replace(/^http/, 'ws')}ws`;
    const seen = (await alice.evaluate(`(async () => {
      const ws = new WebSocket(${JSON.stringify(url)});
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      const replies = [];
      ws.onmessage = (event) => replies.push(JSON.parse(event.data));
      const reply = (type) => new Promise((resolve) => {
        const check = () => { const found = replies.find((r) => r.type === type); if (found) resolve(found); else setTimeout(check, 10); };
        check();
      });
      ws.send(JSON.stringify({ type: 'login', name: 'carol' }));
      await reply('welcome');
      const text = 'ünïcödé and a long line of text '.repeat(31).slice(0, 1000);
      ws.send(JSON.stringify({ type: 'echo', text }));
      const echo = await reply('echo');
      ws.close();
      return { extensions: ws.extensions, intact: echo.text === text, length: new TextEncoder().encode(JSON.stringify(echo)).length };
    })()`)) as { extensions: string; intact: boolean; length: number };
    assert.equal(seen.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.ok(seen.intact, 'the echoed text is the one sent');
    assert.ok(seen.length > 1024, `the reply is ${seen.length} bytes of UTF-8: over the compression threshold`);
  });

  test('after a server restart both pages reconnect, log in again and rejoin their groups', async () => {
    await stopServer(demo);
    for (const page of [alice, bob]) await shows(page, 'status', /^(disconnected — retrying in \d+ s|connecting…)$/);
    demo = await startServer(demo.port);
    await shows(alice, 'status', /^online as alice$/, 10_000);
    await shows(bob, 'status', /^online as bob$/, 10_000);
    await alice.getByTestId('tab-group').click();
    await alice.getByTestId('group-text').fill('after restart');
    await alice.getByTestId('group-publish').click();
    await shows(alice, 'group-log', /\[g1\] alice: after restart/);
    await bob.waitForSelector('[data-testid="arena-players"] tr[data-name="alice"]', { timeout: 5000 }); // both entered the arena again
    await alice.screenshot({ path: `${ARTIFACTS}demo-alice.png`, fullPage: true });
    assert.deepEqual(pageErrors, []);
  });
});
