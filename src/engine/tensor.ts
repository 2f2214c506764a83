import { type DType, widenBf16, widenF16, narrow } from './dtype.js';

/**
 * A dense row-major tensor. f32 tensors hold a Float32Array; bf16/f16 hold their raw 16-bit
 * patterns in a Uint16Array, so weights keep their stored precision in memory.
 */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: Float32Array | Uint16Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function f32Tensor(shape: number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  if (data && data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape ${shape} needs ${n}`);
  return { dtype: 'f32', shape, data: data ?? new Float32Array(n) };
}

/** Float32 view (f32 tensors) or widened copy (bf16/f16) of a tensor's values. */
export function toF32(t: Tensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  const out = new Float32Array(t.data.length);
  return t.dtype === 'bf16' ? widenBf16(t.data as Uint16Array, out) : widenF16(t.data as Uint16Array, out);
}

/** Widen rows [row0, row0+nRows) of a 2-D tensor into `dst` (no allocation for f32 sources beyond a copy). */
export function rowsToF32(t: Tensor, row0: number, nRows: number, dst: Float32Array): Float32Array {
  const cols = t.shape[t.shape.length - 1]!;
  const off = row0 * cols;
  const n = nRows * cols;
  if (t.dtype === 'f32') dst.set((t.data as Float32Array).subarray(off, off + n));
  else if (t.dtype === 'bf16') widenBf16(t.data as Uint16Array, dst, off, n);
  else widenF16(t.data as Uint16Array, dst, off, n);
  return dst;
}

/** A tensor of `dtype` holding `values` (rounded to nearest even for 16-bit dtypes). */
export function fromF32(values: Float32Array, shape: number[], dtype: DType): Tensor {
  if (dtype === 'f32') return { dtype, shape, data: values };
  return { dtype, shape, data: narrow(values, dtype) };
}
