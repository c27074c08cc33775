/**
 * Streaming UTF-8 validator (RFC 3629 §4), so a text message can be failed at the first byte
 * that can never become valid, even mid-frame or mid-fragment (RFC 6455 §8.1).
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current sequence. */
  private need = 0;
  /** Bounds of the next continuation byte; narrower after E0, ED, F0, F4 (overlongs, surrogates, > U+10FFFF). */
  private low = 0x80;
  private high = 0xbf;

  /** Feeds bytes[start, end); false as soon as they cannot be part of valid UTF-8. */
  write(bytes: Uint8Array, start: number, end: number): boolean {
    let need = this.need;
    let low = this.low;
    let high = this.high;
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (need === 0) {
        if (b < 0x80) continue;
        if (b >= 0xc2 && b <= 0xdf) need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
          need = 2;
          if (b === 0xe0) low = 0xa0;
          else if (b === 0xed) high = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3;
          if (b === 0xf0) low = 0x90;
          else if (b === 0xf4) high = 0x8f;
        } else return false;
      } else {
        if (b < low || b > high) return false;
        low = 0x80;
        high = 0xbf;
        need--;
      }
    }
    this.need = need;
    this.low = low;
    this.high = high;
    return true;
  }

  /** True when no multi-byte sequence is left open. */
  get complete(): boolean {
    return this.need === 0;
  }

  reset(): void {
    this.need = 0;
    this.low = 0x80;
    this.high = 0xbf;
  }
}
