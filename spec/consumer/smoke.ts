/**
 * A program using the published package, as a user's would: a Server and a Client exchange text
 * and binary messages over loopback and close cleanly, then a ServerProtocol and a ClientProtocol
 * (wspoll/protocol) talk with no socket. Prints one line per step and exits 0, or throws.
 * spec/integration/package.test.ts compiles it against the packed package (TypeScript 5 and 7)
 * and runs it on Node, Bun and Deno.
 */
import { Client, CloseCode, Event, SendStatus, Server, type ClientEvent, type ServerEvent } from 'wspoll';
import { ClientProtocol, ServerProtocol, type ClientProtocolEvent, type ServerProtocolEvent } from 'wspoll/protocol';
import pkg from 'wspoll/package.json' with { type: 'json' };

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`smoke: ${what}`);
}

const step = (what: string): void => console.log(`ok ${what}`);

const server = new Server<{ name: string }>({ pingInterval: 0 });
await server.start('127.0.0.1', 0);
const client = await Client.connect(`ws://127.0.0.1:${server.port}/play?name=ada`, { pingInterval: 0 });
const opened: ServerEvent = await server.next(5000);
check(opened.type === Event.NewConnection && opened.query.name === 'ada', 'NewConnection with the query');
server.setData(opened.connId, { name: opened.query.name ?? '' });
step(`${pkg.name} ${pkg.version}: connected as #${opened.connId}`);

check(client.send('hello') === SendStatus.SUCCESS, 'client send');
const text = await server.next(5000);
check(text.type === Event.Message && text.message === 'hello' && !text.binary, 'text message');
check(server.send(text.connId, `hello ${server.getData(text.connId)?.name}`) === SendStatus.SUCCESS, 'server send');
const reply: ClientEvent = await client.next(5000);
check(reply.type === Event.Message && reply.message === 'hello ada', 'text reply');
client.send(Uint8Array.of(1, 2, 3));
const bytes = await server.next(5000);
check(bytes.type === Event.Message && bytes.binary && Buffer.from(bytes.message).equals(Buffer.of(1, 2, 3)), 'binary message');
step('text and binary messages, both ways');

client.close(CloseCode.NORMAL_CLOSE, 'bye');
const left = await server.next(5000);
check(left.type === Event.Disconnect && left.code === 1000 && left.reason === 'bye' && left.wasClean, 'server Disconnect');
const gone = await client.next(5000);
check(gone.type === Event.Disconnect && gone.code === 1000 && gone.wasClean, 'client Disconnect');
await server.stop();
step('closed cleanly (1000), server stopped');

const serverSide = new ServerProtocol();
const clientSide = new ClientProtocol('ws://example.test/', { maskKey: () => Uint8Array.of(1, 2, 3, 4) });
serverSide.receiveData(clientSide.dataToSend());
const request = serverSide.eventsReceived()[0] as ServerProtocolEvent;
check(request.type === 'request' && request.request.path === '/', 'sans-I/O request');
serverSide.accept();
clientSide.receiveData(serverSide.dataToSend());
check((clientSide.eventsReceived()[0] as ClientProtocolEvent).type === 'open', 'sans-I/O open');
clientSide.sendText('no sockets');
serverSide.receiveData(clientSide.dataToSend());
const message = serverSide.eventsReceived()[0] as ServerProtocolEvent;
check(message.type === 'message' && message.data === 'no sockets', 'sans-I/O message');
step('wspoll/protocol without sockets');
