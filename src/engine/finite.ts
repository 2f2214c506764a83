/**
 * Finding NaN and Inf in stored tensors, cheaply enough to run on every load.
 *
 * A value is non-finite exactly when all its exponent bits are set (bf16 0x7f80, f16 0x7c00,
 * f32 0x7f800000). Masking the exponent and adding its lowest bit carries into the bit just above
 * it only then: (x & E) + lowest(E) has bit 15 (bit 31 for f32) set iff x is NaN or Inf. Two 16-bit
 * values are tested at once in one 32-bit word, and the results are OR-ed over a chunk, so the scan
 * is branch-free and reads memory at close to copy speed (a 7B bf16 model adds a few seconds to a
 * load that reads 13.5 GB from disk).
 */
import type { DType } from './dtype.js';

const CHUNK = 1 << 16;

/** Exponent mask of two packed values, its lowest bit, and the carry bits, per dtype. */
const PACKED: Record<DType, { mask: number; low: number; carry: number }> = {
  bf16: { mask: 0x7f807f80, low: 0x00800080, carry: 0x80008000 | 0 },
  f16: { mask: 0x7c007c00, low: 0x04000400, carry: 0x80008000 | 0 },
  f32: { mask: 0x7f800000, low: 0x00800000, carry: 0x80000000 | 0 },
};

/** One value's test, for the chunk that the packed scan flagged. */
function isNonFinite(dtype: DType, bits: number): boolean {
  const m = dtype === 'f32' ? PACKED.f32.mask : PACKED[dtype].mask & 0xffff;
  return (bits & m) === m;
}

/** Index of the first NaN or ±Inf in the raw data of a tensor of `dtype`, or -1 if all are finite. */
export function firstNonFinite(data: Float32Array | Uint16Array, dtype: DType): number {
  const { mask, low, carry } = PACKED[dtype];
  const perWord = dtype === 'f32' ? 1 : 2;
  const words = Math.floor(data.length / perWord);
  const aligned = data.byteOffset % 4 === 0;
  const u32 = aligned ? new Uint32Array(data.buffer, data.byteOffset, words) : null;
  const bitsOf = (i: number): number => (dtype === 'f32' ? new Uint32Array(data.buffer, data.byteOffset + 4 * i, 1)[0]! : (data as Uint16Array)[i]!);
  if (u32) {
    for (let w0 = 0; w0 < words; w0 += CHUNK) {
      const w1 = Math.min(words, w0 + CHUNK);
      let acc = 0;
      for (let w = w0; w < w1; w++) acc |= (u32[w]! & mask) + low;
      if ((acc & carry) !== 0) {
        for (let i = w0 * perWord; i < w1 * perWord; i++) if (isNonFinite(dtype, bitsOf(i))) return i;
      }
    }
  }
  for (let i = u32 ? words * perWord : 0; i < data.length; i++) if (isNonFinite(dtype, bitsOf(i))) return i;
  return -1;
}

/** Index of the first NaN or ±Inf in an f32 array, or -1. */
export function firstNonFiniteF32(a: Float32Array): number {
  return firstNonFinite(a, 'f32');
}

/** "NaN", "+Inf" or "-Inf" for the value at index i of the raw data. */
export function describeNonFinite(data: Float32Array | Uint16Array, dtype: DType, i: number): string {
  const bits = dtype === 'f32' ? new Uint32Array(data.buffer, data.byteOffset + 4 * i, 1)[0]! : (data as Uint16Array)[i]!;
  const mantissa = dtype === 'f32' ? bits & 0x7fffff : dtype === 'bf16' ? bits & 0x7f : bits & 0x3ff;
  const negative = dtype === 'f32' ? bits >>> 31 : bits >>> 15;
  return mantissa !== 0 ? 'NaN' : negative ? '-Inf' : '+Inf';
}
