/**
 * start({ reusePort: true }): several servers on one port where Node has SO_REUSEPORT in
 * listen() (22.12 and later); a clear error elsewhere.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { reusePortSupported } from '../../lib/io/listening.js';
import { Server } from '../../lib/index.js';
import { freePort } from '../helpers/free-port.js';

test('reusePort is there from Node 22.12 and 23.1, on Linux and the BSDs', () => {
  assert.equal(reusePortSupported('20.20.2', 'linux'), false);
  assert.equal(reusePortSupported('22.11.0', 'linux'), false);
  assert.equal(reusePortSupported('22.12.0', 'linux'), true);
  assert.equal(reusePortSupported('23.1.0', 'freebsd'), true);
  assert.equal(reusePortSupported('24.0.0', 'win32'), false);
});

test(`start({ reusePort: true }) on this Node (${process.versions.node}): ${reusePortSupported() ? 'two servers share a port' : 'an error with a code'}`, async () => {
  const port = await freePort();
  const first = new Server();
  if (!reusePortSupported()) {
    await assert.rejects(first.start({ host: '127.0.0.1', port, reusePort: true }), {
      code: 'ERR_REUSEPORT_UNSUPPORTED',
      message: /reusePort needs Node 22\.12 or later/,
    });
    assert.equal(first.port, 0, 'nothing listens');
    await new Promise<void>((resolve, reject) => createServer().once('error', reject).listen(port, '127.0.0.1', function (this: ReturnType<typeof createServer>) {
      this.close(() => resolve());
    }));
    return;
  }
  const second = new Server();
  await first.start({ host: '127.0.0.1', port, reusePort: true });
  await second.start({ host: '127.0.0.1', port, reusePort: true });
  assert.equal(first.port, port);
  assert.equal(second.port, port);
  await assert.rejects(new Server().start({ host: '127.0.0.1', port }), { code: 'EADDRINUSE' });
  await Promise.all([first.stop(), second.stop()]);
});
