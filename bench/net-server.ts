// Raw node:net "WebSocket" ceiling for the benchmark (not a WebSocket implementation!).
// Contract: node --expose-gc --import tsx bench/net-server.ts PORT MODE   (or PORT / BENCH_MODE env)
// Listens on 127.0.0.1, prints `ready <port>`, answers SIGUSR2 with `rss <bytes>`.
// After reading the request head (up to \r\n\r\n) it answers a valid 101 (accept key computed
// from the request's Sec-WebSocket-Key), then:
//   echo:      writes every received chunk back to the same socket, as is (frames stay masked);
//   broadcast: writes every received chunk to every upgraded socket (sender included).
// It does no framing, no unmasking, no UTF-8 check: it is the floor of server work, so its
// figures are the ceiling the load generator can drive. If it does not beat ws and wspoll,
// the generator is the bottleneck.
import net from 'node:net';
import { createHash } from 'node:crypto';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const mode = process.argv[3] ?? process.env.BENCH_MODE ?? 'echo';
if (mode !== 'echo' && mode !== 'broadcast') {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEAD = 16 * 1024;
const open = new Set<net.Socket>();

function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

function findKey(head: string): string | undefined {
  const m = /\r\nsec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r\n/i.exec(head);
  return m?.[1];
}

function onData(this: net.Socket, chunk: Buffer): void {
  if (mode === 'echo') {
    this.write(chunk);
  } else {
    for (const s of open) s.write(chunk);
  }
}

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  let head: Buffer | undefined;
  const onHead = (chunk: Buffer): void => {
    head = head ? Buffer.concat([head, chunk]) : chunk;
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) sock.destroy();
      return;
    }
    const key = findKey(head.toString('latin1', 0, end + 2));
    if (key === undefined) {
      sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    sock.off('data', onHead);
    sock.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    open.add(sock);
    sock.on('data', onData);
    const rest = head.subarray(end + 4);
    head = undefined;
    if (rest.length > 0) onData.call(sock, rest);
  };
  sock.on('data', onHead);
  sock.on('error', () => {});
  sock.on('close', () => open.delete(sock));
});

process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  console.log(`rss ${process.memoryUsage().rss}`);
});

server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  const addr = server.address() as net.AddressInfo;
  console.log(`ready ${addr.port}`);
});
