/**
 * The Client's echo check, shared by the suites that run it against our Server and against
 * peers nobody here wrote: text and binary messages of every size class go out and must come
 * back intact. Structural types only: the helpers import nothing from lib/.
 */
import assert from 'node:assert/strict';

/** Sizes across every length form of RFC 6455 §5.2, up to the default 1 MiB limit. */
export const ECHO_SIZES = [0, 125, 126, 65535, 65536, 1 << 20];

export interface EchoClient {
  sendText(text: string): unknown;
  sendBinary(data: Uint8Array): unknown;
}

export interface EchoedMessage {
  binary: boolean;
  message: string | Buffer;
}

/** Sends text and binary messages of every size and checks each echo (`serve` lets a server of ours answer). */
export async function assertEchoSizes(
  client: EchoClient,
  nextMessage: () => Promise<EchoedMessage>,
  label: string,
  serve: () => Promise<void> = async () => {},
): Promise<void> {
  for (const size of ECHO_SIZES) {
    const text = 'é'.repeat(size >> 1) + 'x'.repeat(size & 1);
    assert.equal(Buffer.byteLength(text), size);
    client.sendText(text);
    await serve();
    const textEcho = await nextMessage();
    assert.equal(textEcho.binary, false, `${label}: text ${size}`);
    assert.ok(textEcho.message === text, `${label}: text of ${size} bytes comes back intact`);
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31) & 0xff;
    client.sendBinary(bytes);
    await serve();
    const binaryEcho = await nextMessage();
    assert.equal(binaryEcho.binary, true, `${label}: binary ${size}`);
    assert.ok(bytes.equals(binaryEcho.message as Buffer), `${label}: binary of ${size} bytes comes back intact`);
  }
}
