/**
 * How a publish travels between servers: one byte for the payload's type, the publishing
 * server's 16-byte id (so a server knows its own echo), then the payload as it was given:
 * a text message's UTF-8 bytes or a binary message's bytes, unchanged.
 *
 *   offset 0   1 = text, 2 = binary (other values: a format this version does not read)
 *   offset 1   the publishing server's id, 16 bytes
 *   offset 17  the payload
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';

const TEXT = 1;
const BINARY = 2;
export const SERVER_ID_BYTES = 16;
const HEADER = 1 + SERVER_ID_BYTES;

/** A fresh random server id. */
export function newServerId(): Buffer {
  return randomBytes(SERVER_ID_BYTES);
}

/** The envelope of a publish: one allocation, the payload copied once. */
export function encodeEnvelope(serverId: Buffer, data: string | Uint8Array): Buffer {
  const text = typeof data === 'string';
  const length = text ? Buffer.byteLength(data) : data.length;
  const envelope = Buffer.allocUnsafe(HEADER + length);
  envelope[0] = text ? TEXT : BINARY;
  serverId.copy(envelope, 1);
  if (text) envelope.write(data, HEADER, length, 'utf8');
  else envelope.set(data, HEADER);
  return envelope;
}

/** A message from another server. */
export interface Received {
  binary: boolean;
  payload: Buffer;
}

/** What an envelope holds: a message, this server's own echo (`'own'`), or why it is unreadable. */
export type Opened = Received | 'own' | { malformed: string };

export function openEnvelope(serverId: Buffer, envelope: Buffer): Opened {
  if (envelope.length < HEADER) return { malformed: `${envelope.length} bytes, shorter than the ${HEADER}-byte header` };
  const kind = envelope[0];
  if (kind !== TEXT && kind !== BINARY) return { malformed: `unknown payload type ${kind}` };
  if (serverId.compare(envelope, 1, HEADER) === 0) return 'own';
  const payload = envelope.subarray(HEADER);
  if (kind === TEXT && !isUtf8(payload)) return { malformed: 'a text payload that is not UTF-8' };
  return { binary: kind === BINARY, payload };
}
