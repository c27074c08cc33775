import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the CSPRNG at a time: 1024 mask keys per system call. */
const POOL_BYTES = 4096;

let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A fresh, unpredictable 4-byte mask key (RFC 6455 §5.3). Keys are cut from a pool of random
 * bytes that is replaced, never overwritten, when used up: a key handed out never changes.
 */
export function randomMaskKey(): Uint8Array {
  if (offset === pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  offset += 4;
  return pool.subarray(offset - 4, offset);
}
