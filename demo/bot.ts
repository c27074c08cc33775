/**
 * A scripted bot: connects, sends a few text and binary messages, prints each reply, then
 * closes with 1000 and prints the Disconnect. Point it at any echo server, e.g. `npm start`:
 *   node --import tsx demo/bot.ts ws://127.0.0.1:8080
 * Exits with 1 when the handshake fails (printing its ErrorCode) or the server goes away.
 */
import { Client, type ClientEvent, ErrorCode, Event, HandshakeError } from '../lib/index.js';

const url = process.argv[2] ?? 'ws://127.0.0.1:8080';
const script: (string | Uint8Array)[] = ['hello', 'how many players are online?', Uint8Array.of(0xca, 0xfe, 0xba, 0xbe), 'ünïcödé 🎲', new Uint8Array(0)];
const REPLY_TIMEOUT = 5_000;

function describe(event: ClientEvent): string {
  if (event.type === Event.Disconnect) {
    const reason = event.reason ? ` "${event.reason}"` : '';
    return `disconnected: ${event.code}${reason}, ${event.wasClean ? 'clean' : 'not clean'}, started by ${event.initiator}`;
  }
  return event.binary ? `binary reply: <${(event.message as Buffer).toString('hex')}>` : `text reply: ${event.message}`;
}

function errorCodeName(code: number): string {
  return Object.entries(ErrorCode).find(([, value]) => value === code)?.[0] ?? String(code);
}

let client: Client;
try {
  client = await Client.connect(url, { handshakeTimeout: REPLY_TIMEOUT });
} catch (err) {
  if (err instanceof HandshakeError) console.error(`handshake refused: ${errorCodeName(err.code)}, HTTP ${err.status}: ${err.message}`);
  else console.error(`cannot connect to ${url}: ${(err as Error).message}`);
  process.exit(1);
}
console.log(`connected to ${url}${client.protocol ? ` with subprotocol ${client.protocol}` : ''}`);

for (const message of script) {
  client.send(message);
  const reply = await client.next(REPLY_TIMEOUT);
  console.log(describe(reply));
  if (reply.type === Event.Disconnect) process.exit(1);
}

client.close(1000, 'bot done');
for (;;) {
  const event = await client.next(REPLY_TIMEOUT);
  console.log(describe(event));
  if (event.type === Event.Disconnect) break;
}
