// An echo server made of wspoll's sans-I/O protocol and a plain node:net socket: the example of
// the README's "The protocol without I/O" section.   PORT=8081 node --import tsx demo/sans-io.ts
import net from 'node:net';
import { ServerProtocol } from '../lib/protocol.js';

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  const ws = new ServerProtocol({ maxMessageSize: 1 << 20 });
  let closeTimer: NodeJS.Timeout | undefined;
  const step = (): void => {
    for (const ev of ws.eventsReceived()) {
      if (ev.type === 'request') ws.accept(); // or ws.reject(403)
      else if (ev.type === 'message') ev.binary ? ws.sendBinary(ev.data as Buffer) : ws.sendText(ev.data as string);
    }
    const out = ws.dataToSend();
    if (out.length > 0) socket.write(out);
    if (ws.shouldEndTransport && !socket.writableEnded) socket.end();
    if (ws.closeExpected) closeTimer ??= setTimeout(() => socket.destroy(), 10_000);
  };
  socket.on('data', (bytes) => (ws.receiveData(bytes), step()));
  socket.on('end', () => (ws.receiveEof(), step()));
  socket.on('error', () => {});
  socket.on('close', () => (clearTimeout(closeTimer), ws.abort('connection lost', 'peer')));
});
server.listen(Number(process.env.PORT ?? 8081), '127.0.0.1', () => {
  console.log(`ready ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
});
