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

/** Each row of x [rows, S] through a softmax (probabilities summing to 1, as attention's). */
function softmaxRows(x: Float32Array, rows: number, S: number): Float32Array {
  const out = new Float32Array(rows * S);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity, z = 0;
    for (let s = 0; s < S; s++) m = Math.max(m, x[r * S + s]!);
    for (let s = 0; s < S; s++) z += Math.exp(x[r * S + s]! - m);
    for (let s = 0; s < S; s++) out[r * S + s] = Math.exp(x[r * S + s]! - m) / z;
  }
  return out;
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
    // softmax backward over n * 2 rows of I (rows of 4 and single rows, vector tails): probabilities
    // of real softmax rows, and wide values (special ones included) as both operands
    // and cancelling sums: small integers with +2^64 and -2^64 on two columns of one f64 sum (both
    // even or both odd), so the integers between them are absorbed: any other order of the f64
    // additions gives another result
    const cancel = (seed: number) => {
      const rng = mulberry32(seed), x = Float32Array.from({ length: n * 2 * I }, () => Math.floor(rng() * 7) - 3), v = Math.floor(I / 4) * 4;
      for (let r = 0; r < n * 2 && v >= 4; r++) {
        const lane = Math.floor(rng() * 2), at = () => 2 * Math.floor(rng() * (v / 2)) + lane;
        const a = at(), b = at();
        if (a !== b) { x[r * I + Math.min(a, b)] = 2 ** 64; x[r * I + Math.max(a, b)] = -(2 ** 64); }
      }
      return x;
    };
    for (const [p, dp] of [[softmaxRows(wideValues(n * 2 * I, 3 + I).map((x) => (Number.isFinite(x) ? x % 20 : 0)), n * 2, I), wideValues(n * 2 * I, 11 + I)],
      [wideValues(n * 2 * I, 5 + I), wideValues(n * 2 * I, 13 + I)], [cancel(17 + I), new Float32Array(n * 2 * I).fill(1)]] as const) {
      const dpWant = dp.slice(), dpGot = dp.slice();
      wk.softmaxBackward(p, dpWant, n * 2, I, 0.125);
      be.softmaxBackward(p, dpGot, n * 2, I, 0.125);
      i = firstBitDifference(dpGot, dpWant);
      assert.equal(i, -1, `softmaxBackward ${n * 2}x${I}: element ${i}: ${dpGot[i]} vs ${dpWant[i]}`);
    }
    // rmsnorm backward over n * 2 rows of I, accumulating into dx and dw (and without dw), on wide
    // values and on cancelling row sums
    const R = n * 2, rstd = wideValues(R, 23 + I).map((x) => (Number.isFinite(x) ? Math.abs(x) % 4 : 1));
    const ones = (k: number) => new Float32Array(k).fill(1);
    for (const [dy, x, w] of [[wideValues(R * I, 29 + I), wideValues(R * I, 31 + I), wideValues(I, 41 + I)], [cancel(37 + I), ones(R * I), ones(I)]] as const) {
      for (const withDw of [true, false]) {
        const dxWant = wideValues(R * I, 43 + I), dxGot = dxWant.slice();
        const dwWant = withDw ? wideValues(I, 47 + I) : null, dwGot = dwWant ? dwWant.slice() : null;
        wk.rmsnormBackward(dy, x, w, rstd, dxWant, dwWant, R, I);
        be.rmsnormBackward(dy, x, w, rstd, dxGot, dwGot, R, I);
        i = firstBitDifference(dxGot, dxWant);
        assert.equal(i, -1, `rmsnormBackward ${R}x${I} dx: element ${i}: ${dxGot[i]} vs ${dxWant[i]}`);
        if (dwGot && dwWant) {
          i = firstBitDifference(dwGot, dwWant);
          assert.equal(i, -1, `rmsnormBackward ${R}x${I} dw: element ${i}: ${dwGot[i]} vs ${dwWant[i]}`);
        }
      }
    }
  }
}

