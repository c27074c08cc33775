// The `ws` baseline for the benchmark, same contract as bench/server.ts:
//   node --expose-gc --import tsx bench/ws-server.ts PORT MODE   (or PORT / BENCH_MODE env)
// Listens on 127.0.0.1, prints `ready <port>`, answers SIGUSR2 with `rss <bytes>`.
//   echo:      every message back to its sender with its type;
//   broadcast: every message to every open client (sender included), one send() per client,
//              which is how ws's own README broadcasts;
//   deflate:   echo, with permessage-deflate accepted (`perMessageDeflate: true`: its defaults).
import { WebSocketServer, WebSocket, type RawData } from 'ws';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const mode = process.argv[3] ?? process.env.BENCH_MODE ?? 'echo';
if (mode !== 'echo' && mode !== 'broadcast' && mode !== 'deflate') {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 1 << 20, backlog: 4096, perMessageDeflate: mode === 'deflate' });

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  if (mode !== 'broadcast') {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      ws.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }
    });
  }
});

process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  console.log(`rss ${process.memoryUsage().rss}`);
});

wss.on('listening', () => {
  const addr = wss.address();
  console.log(`ready ${addr !== null && typeof addr === 'object' ? addr.port : port}`);
});
