/**
 * Counts the synchronous raw deflate and inflate calls made in this process, at node:zlib
 * itself: the builtin's exports are replaced with counting wrappers and synced to every ES
 * module that imported them (module.syncBuiltinESMExports), so the library needs no hook.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type * as Zlib from 'node:zlib';

const zlib = createRequire(import.meta.url)('node:zlib') as typeof Zlib;

export interface ZlibCalls {
  deflates: number;
  inflates: number;
  /** Puts the original functions back. */
  stop(): void;
}

export function countZlibCalls(): ZlibCalls {
  const deflate = zlib.deflateRawSync;
  const inflate = zlib.inflateRawSync;
  const calls: ZlibCalls = {
    deflates: 0,
    inflates: 0,
    stop() {
      zlib.deflateRawSync = deflate;
      zlib.inflateRawSync = inflate;
      syncBuiltinESMExports();
    },
  };
  zlib.deflateRawSync = ((...args: Parameters<typeof deflate>) => (calls.deflates++, deflate(...args))) as typeof deflate;
  zlib.inflateRawSync = ((...args: Parameters<typeof inflate>) => (calls.inflates++, inflate(...args))) as typeof inflate;
  syncBuiltinESMExports();
  return calls;
}

/** The raw deflate calls made while `fn` runs (synchronously). */
export function deflatesDuring(fn: () => void): number {
  const calls = countZlibCalls();
  try {
    fn();
  } finally {
    calls.stop();
  }
  return calls.deflates;
}
