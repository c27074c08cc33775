/** lib/utf8.ts: the streaming validator agrees with Node's isUtf8, fed whole, split or byte by byte. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Utf8Validator } from '../../lib/core/utf8.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Valid as a whole message: every write accepted and nothing left open. */
function validate(bytes: Uint8Array, pieces: number[] = [bytes.length]): boolean {
  const v = new Utf8Validator();
  let pos = 0;
  for (const n of pieces) {
    if (!v.write(bytes, pos, pos + n)) return false;
    pos += n;
  }
  return v.complete;
}

/** Index of the first byte at which the validator refuses, fed one byte at a time; -1 if none. */
function failsAt(bytes: Uint8Array): number {
  const v = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) if (!v.write(bytes, i, i + 1)) return i;
  return -1;
}

const valid: [string, Buffer][] = [
  ['empty', hex('')],
  ['ASCII', Buffer.from('Hello, world')],
  ['U+0080 and U+07FF', hex('c2 80 df bf')],
  ['U+0800 (smallest after E0)', hex('e0 a0 80')],
  ['U+D7FF (just below the surrogates)', hex('ed 9f bf')],
  ['U+E000 (just above the surrogates)', hex('ee 80 80')],
  ['U+FFFF', hex('ef bf bf')],
  ['U+10000 (smallest after F0)', hex('f0 90 80 80')],
  ['U+10FFFF (largest)', hex('f4 8f bf bf')],
  ['mixed', Buffer.from('κόσμε €𝄞 ok')],
];

const invalid: [string, Buffer, number][] = [
  // [name, bytes, index of the first byte that makes it invalid]
  ['lone continuation', hex('80'), 0],
  ['continuation after ASCII', hex('41 bf'), 1],
  ['C0 overlong lead', hex('c0 80'), 0],
  ['C1 overlong lead', hex('c1 bf'), 0],
  ['overlong 3-byte (E0 80..9F)', hex('e0 9f bf'), 1],
  ['overlong 4-byte (F0 80..8F)', hex('f0 8f bf bf'), 1],
  ['surrogate U+D800', hex('ed a0 80'), 1],
  ['surrogate U+DFFF', hex('ed bf bf'), 1],
  ['above U+10FFFF (F4 90)', hex('f4 90 80 80'), 1],
  ['F5 lead', hex('f5 80 80 80'), 0],
  ['FF', hex('ff'), 0],
  ['FE', hex('fe'), 0],
  ['lead then ASCII', hex('c3 41'), 1],
  ['3-byte sequence broken at its third byte', hex('e2 82 41'), 2],
  ['4-byte sequence broken at its fourth byte', hex('f0 9f 98 41'), 3],
  ['invalid after valid text', Buffer.concat([Buffer.from('κόσμε'), hex('ed a0 80')]), 11],
];

describe('Utf8Validator', () => {
  for (const [name, bytes] of valid) {
    test(`valid: ${name}, whole and byte by byte`, () => {
      assert.equal(validate(bytes), true);
      assert.equal(failsAt(bytes), -1);
      assert.equal(validate(bytes, Array.from(bytes, () => 1)), true);
    });
  }
  for (const [name, bytes, at] of invalid) {
    test(`invalid: ${name} — refused at byte ${at}, not later`, () => {
      assert.equal(validate(bytes), false);
      assert.equal(failsAt(bytes), at);
    });
  }
  test('truncated sequences are accepted so far but not complete', () => {
    for (const t of [hex('c3'), hex('e2 82'), hex('f0 9f 98'), hex('e0 a0'), hex('f4 8f bf')]) {
      const v = new Utf8Validator();
      assert.equal(v.write(t, 0, t.length), true);
      assert.equal(v.complete, false, t.toString('hex'));
    }
  });
  test('the narrowed bounds after E0/ED/F0/F4 apply only to the next byte', () => {
    // ED 9F BF is fine; its third byte (BF) is above ED's narrowed bound 9F.
    assert.equal(validate(hex('ed 9f bf')), true);
    assert.equal(validate(hex('f4 8f bf bf')), true);
    assert.equal(validate(hex('e0 a0 80 e0 a0 bf')), true);
  });
  test('a split at every byte agrees with the whole, for every valid and invalid vector', () => {
    for (const [, bytes] of [...valid, ...invalid.map(([n, b]) => [n, b] as [string, Buffer])]) {
      const whole = validate(bytes);
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.equal(validate(bytes, [cut, bytes.length - cut]), whole, `${bytes.toString('hex')} cut at ${cut}`);
      }
    }
  });
  const SEED = 0x5eed1;
  test(`agrees with buffer.isUtf8 on 20000 random near-UTF-8 strings, random splits (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const interesting = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
    const seeds = valid.map(([, b]) => b).filter((b) => b.length > 0);
    for (let n = 0; n < 20000; n++) {
      let bytes: Buffer;
      if (rand() < 0.5) {
        bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 12) }, () => interesting[Math.floor(rand() * interesting.length)]!));
      } else {
        bytes = Buffer.concat(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => seeds[Math.floor(rand() * seeds.length)]!));
        if (rand() < 0.7 && bytes.length > 0) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8);
      }
      const pieces: number[] = [];
      for (let left = bytes.length; left > 0; ) {
        const k = 1 + Math.floor(rand() * left);
        pieces.push(k);
        left -= k;
      }
      assert.equal(validate(bytes, pieces), isUtf8(bytes), `${bytes.toString('hex')} in pieces ${pieces.join(',')}`);
    }
  });
});
