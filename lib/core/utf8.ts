import { isUtf8 } from 'node:buffer';
import { bufferView } from './memory-view.js';

/**
 * UTF-8 validation of a text message that arrives in pieces (RFC 3629 §4), failing at the
 * first piece that can never become valid, even mid-frame or mid-fragment (RFC 6455 §8.1).
 * Each piece's complete code points go to the native `isUtf8` in one call; the at most three
 * bytes of a code point cut by the piece's end are carried over and checked as a prefix.
 */
export class Utf8Validator {
  /** The bytes of a code point cut by the end of the last piece (at most 3). */
  private readonly carry = new Uint8Array(4);
  private carried = 0;
  /** How many bytes the carried code point has in all. */
  private expected = 0;

  /** Feeds bytes[start, end); false as soon as they cannot be part of valid UTF-8. */
  write(bytes: Uint8Array, start: number, end: number): boolean {
    let at = start;
    if (this.carried > 0) {
      while (this.carried < this.expected && at < end) this.carry[this.carried++] = bytes[at++]!;
      if (this.carried < this.expected) return isValidPrefix(this.carry, this.carried);
      if (!isUtf8(this.carry.subarray(0, this.expected))) return false;
      this.carried = 0;
    }
    const cut = completeEnd(bytes, at, end);
    if (cut > at && !isUtf8(bufferView(bytes, at, cut - at))) return false;
    if (cut === end) return true;
    this.expected = sequenceLength(bytes[cut]!);
    for (let i = cut; i < end; i++) this.carry[this.carried++] = bytes[i]!;
    return isValidPrefix(this.carry, this.carried);
  }

  /** True when no code point is left open. */
  get complete(): boolean {
    return this.carried === 0;
  }
}

/** The length of the sequence a lead byte starts (what it claims; isValidPrefix judges it). */
function sequenceLength(lead: number): number {
  return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
}

/**
 * Where the complete code points of bytes[start, end) end: before a lead byte in the last three
 * whose sequence runs past `end`, else at `end` (isUtf8 then judges whatever is there).
 */
function completeEnd(bytes: Uint8Array, start: number, end: number): number {
  for (let back = 1; back <= 3 && end - back >= start; back++) {
    const b = bytes[end - back]!;
    if (b < 0x80) return end;
    if (b >= 0xc0) return sequenceLength(b) > back ? end - back : end;
  }
  return end;
}

/**
 * True when the first `n` bytes of a sequence (n < its length) can still become a valid code
 * point: a lead byte C2–F4, then continuation bytes, the second one narrowed after E0, ED, F0
 * and F4 (no overlongs, no surrogates, nothing past U+10FFFF).
 */
function isValidPrefix(bytes: Uint8Array, n: number): boolean {
  const lead = bytes[0]!;
  if (lead < 0xc2 || lead > 0xf4) return false;
  if (n < 2) return true;
  const second = bytes[1]!;
  const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
  const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
  if (second < low || second > high) return false;
  return n < 3 || (bytes[2]! & 0xc0) === 0x80;
}
