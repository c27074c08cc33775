/**
 * Views into the memory of a read, made cheaply. The frames of one read share its memory, so
 * what every view needs (the read's ArrayBuffer and offset) is read once per read: reading
 * `buffer` and `byteOffset` costs more than unmasking a small frame.
 */

type BufferViewConstructor = new (memory: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

/**
 * Buffer's species: the constructor that Uint8Array methods such as `subarray` use to make
 * Buffers. Calling it directly skips `Buffer#subarray`'s argument handling: half the cost.
 */
const BufferView = (Buffer as unknown as { [Symbol.species]: BufferViewConstructor })[Symbol.species];

let seen: Uint8Array | undefined;
let seenMemory: ArrayBufferLike = new ArrayBuffer(0);
let seenOffset = 0;
let seenWords: BigInt64Array<ArrayBufferLike> | undefined;

function see(data: Uint8Array): void {
  if (data === seen) return;
  seen = data;
  seenMemory = data.buffer;
  seenOffset = data.byteOffset;
  seenWords = undefined;
}

/** A Buffer over data[start, start + length), sharing its memory (as `data.subarray` would). */
export function bufferView(data: Uint8Array, start: number, length: number): Buffer {
  see(data);
  return new BufferView(seenMemory, seenOffset + start, length);
}

/**
 * A BigInt64Array over all of data's memory, and where data starts in it: word w covers bytes
 * [8w, 8w + 8) of the memory, i.e. data[8w - offset, …).
 */
export function wordView(data: Uint8Array): BigInt64Array {
  see(data);
  return (seenWords ??= new BigInt64Array(seenMemory, 0, seenMemory.byteLength >>> 3));
}

/** Where data starts in the memory of `wordView(data)`, in bytes. */
export function wordViewOffset(data: Uint8Array): number {
  see(data);
  return seenOffset;
}
