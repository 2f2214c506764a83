/**
 * Storage dtypes and their exact conversions to float32.
 * Weights stay in their stored precision; kernels widen them on the fly.
 */
export type DType = 'f32' | 'bf16' | 'f16';

/** safetensors dtype names <-> ours. */
export const SAFETENSORS_DTYPE: Record<DType, string> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f32' ? 4 : 2;
}

/** bf16 bits -> f32: the bf16 bits are the high half of the f32 bits (exact). */
export function widenBf16(src: Uint16Array, dst: Float32Array, srcOffset = 0, n = dst.length): Float32Array {
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) d32[i] = src[srcOffset + i]! << 16;
  return dst;
}

const F16_TABLE = (() => {
  // All 65536 half values, exactly, so widening is a lookup.
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function widenF16(src: Uint16Array, dst: Float32Array, srcOffset = 0, n = dst.length): Float32Array {
  for (let i = 0; i < n; i++) dst[i] = F16_TABLE[src[srcOffset + i]!]!;
  return dst;
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** f32 -> bf16 bits, round to nearest even (as torch does). */
export function toBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40; // NaN stays NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 -> f16 bits, round to nearest even. */
export function toF16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) { r = 0; e++; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | r;
}

export function narrow(src: Float32Array, dtype: 'bf16' | 'f16'): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = dtype === 'bf16' ? toBf16Bits : toF16Bits;
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]!);
  return out;
}
