// What native-elementwise.test.ts and its child process (native-elementwise-check.ts) share.
import assert from 'node:assert/strict';
import type { NativeBackend } from '../src/engine/native-backend.js';
import * as wk from '../src/engine/wasm-kernels.js';
import { mulberry32 } from '../src/util/rng.js';

/** Values spread over many magnitudes, with special values sprinkled in. */
export function wideValues(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -3e-39, 1e-45, 90, -90, 88.7, -87.5, 200, -200, 1e-20];
  return Float32Array.from({ length: n }, () => (rng() < 0.03 ? special[Math.floor(rng() * special.length)]! : (rng() * 2 - 1) * 10 ** (rng() * 6 - 3)));
}

/** The first index where two arrays differ in bits, or -1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

/** Every elementwise kernel on `be` against WebAssembly, bit for bit; throws on the first difference. */
export function checkElementwise(be: NativeBackend): void {
  for (const [n, I, pad] of [[5, 37, 3], [3, 12, 0], [150, 1000, 8], [2, 3, 1]] as const) {
    const ld = 2 * I + pad, gu = wideValues(n * ld, n * 31 + I);
    const want = new Float32Array(n * I), got = new Float32Array(n * I);
    wk.siluMul(gu, gu.subarray(I + pad), want, n, I, ld);
    be.siluMul(gu, gu.subarray(I + pad), got, n, I, ld);
    let i = firstBitDifference(got, want);
    assert.equal(i, -1, `siluMul ${n}x${I}: element ${i}: ${got[i]} vs ${want[i]} (gate ${gu[Math.floor(i / I) * ld + (i % I)]})`);
    const stacked = wideValues(n * 2 * I, I), dOut = wideValues(n * I, 7 + I);
    const dw = new Float32Array(n * 2 * I), dg = new Float32Array(n * 2 * I);
    wk.siluMulBackward(dOut, stacked, dw, n, I);
    be.siluMulBackward(dOut, stacked, dg, n, I);
    i = firstBitDifference(dg, dw);
    assert.equal(i, -1, `siluMulBackward ${n}x${I}: element ${i}: ${dg[i]} vs ${dw[i]}`);
  }
}

