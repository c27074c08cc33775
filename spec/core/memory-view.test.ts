import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bufferView, wordView, wordViewOffset } from '../../lib/core/memory-view.js';

describe('bufferView', () => {
  it('is a Buffer over the same bytes, as subarray would be', () => {
    const read = Buffer.from('..hello, world..'); // a pooled Buffer: byteOffset is not 0
    const view = bufferView(read, 2, 12);
    assert.ok(Buffer.isBuffer(view));
    assert.equal(view.toString(), 'hello, world');
    assert.equal(view.buffer, read.buffer);
    assert.equal(view.byteOffset, read.byteOffset + 2);
    read[2] = 0x48; // shared memory, not a copy
    assert.equal(view.toString(), 'Hello, world');
  });

  it('follows the array it is given, not the last one seen', () => {
    const first = Buffer.from('aaaaaaaa');
    const second = Buffer.from(new Uint8Array([0x62, 0x62, 0x62, 0x62]).buffer, 1, 3);
    assert.equal(bufferView(first, 0, 2).toString(), 'aa');
    const view = bufferView(second, 1, 2);
    assert.equal(view.buffer, second.buffer);
    assert.equal(view.byteOffset, 2);
    assert.equal(bufferView(first, 6, 2).byteOffset, first.byteOffset + 6);
  });
});

describe('wordView', () => {
  it('covers all of the memory, with where the array starts in it', () => {
    const memory = new ArrayBuffer(64);
    const data = new Uint8Array(memory, 8, 16);
    data.fill(0xff);
    const words = wordView(data);
    assert.equal(words.length, 8);
    assert.equal(wordViewOffset(data), 8);
    assert.equal(words[1], -1n); // bytes 8–15 of the memory: data[0..7]
    assert.equal(words[0], 0n);
    assert.equal(wordViewOffset(new Uint8Array(memory, 24)), 24);
  });
});
