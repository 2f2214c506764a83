/**
 * Every WebAssembly kernel against its straightforward TypeScript reference, on odd sizes (vector
 * tails), through both paths: arrays in the activation heap (run in place) and plain arrays
 * (copied in and out).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as ref from '../src/engine/kernels.js';
import * as wk from '../src/engine/wasm-kernels.js';
import { toHeads as toHeadsRef, fromHeads as fromHeadsRef } from '../src/model/attention.js';
import { widenBf16 as widenBf16Ref, widenF16 as widenF16Ref, toBf16Bits } from '../src/engine/dtype.js';
import { activationHeap } from '../src/engine/wasm/heap.js';
import { assertClose } from './fixtures.js';
import { mulberry32, keepMask } from '../src/util/rng.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { KERNELS_SOURCE_SHA256 } from '../src/engine/wasm/kernels-wasm.js';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const rng = mulberry32(42);
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);

/** Runs `f` twice: with plain arrays, then with the same inputs copied into the activation heap. */
function bothPaths(name: string, f: (alloc: (src: Float32Array) => Float32Array) => void): void {
  test(`${name} (plain arrays)`, () => f((s) => Float32Array.from(s)));
  test(`${name} (activation heap)`, () => {
    const H = activationHeap();
    const mark = H.mark();
    try {
      f((s) => { const v = H.f32(s.length); assert.ok(H.ptrOf(v) >= 0, 'heap array'); v.set(s); return v; });
    } finally { H.release(mark); }
  });
}

test('widen bf16 matches the reference on every bit pattern', () => {
  const src = Uint16Array.from({ length: 65536 + 5 }, (_, i) => i & 0xffff);
  const a = new Float32Array(src.length), b = new Float32Array(src.length);
  wk.widenBf16(src, a);
  widenBf16Ref(src, b);
  assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(b.buffer));
});

test('widen f16 matches the reference on every bit pattern (subnormals, inf, NaN)', () => {
  const src = Uint16Array.from({ length: 65536 + 3 }, (_, i) => i & 0xffff);
  const a = new Float32Array(src.length), b = new Float32Array(src.length);
  wk.widenF16(src, a);
  widenF16Ref(src, b);
  for (let i = 0; i < src.length; i++) {
    if (Number.isNaN(b[i]!)) assert.ok(Number.isNaN(a[i]!), `f16 ${src[i]} -> NaN`);
    else assert.ok(Object.is(a[i], b[i]), `f16 ${src[i]}: ${a[i]} vs ${b[i]}`);
  }
});

for (const [n, h] of [[3, 37], [5, 64], [2, 1]] as const) {
  bothPaths(`rmsnorm ${n}x${h}`, (al) => {
    const x = rand(n * h, 3), w = rand(h);
    const o1 = new Float32Array(n * h), r1 = new Float32Array(n);
    ref.rmsnormForward(x, w, o1, r1, n, h, 1e-5);
    const o2 = al(new Float32Array(n * h)), r2 = al(new Float32Array(n));
    wk.rmsnormForward(al(x), al(w), o2, r2, n, h, 1e-5);
    assertClose(o2, o1, 1e-6, 1e-7, 'out');
    assertClose(r2, r1, 1e-6, 0, 'rstd');
  });
}

for (const d of [8, 64, 6]) {
  bothPaths(`rope d=${d}, forward and inverse, row stride`, (al) => {
    const n = 7, nH = 3, ld = nH * d + 5, half = d / 2;
    const cos = rand(20 * half), sin = rand(20 * half);
    const pos = Int32Array.from({ length: n }, (_, i) => (i * 3) % 20);
    for (const inverse of [false, true]) {
      const x = rand(n * ld);
      const exp = Float32Array.from(x);
      // reference works on packed rows: pack, rotate, unpack
      const packed = new Float32Array(n * nH * d);
      for (let i = 0; i < n; i++) packed.set(x.subarray(i * ld, i * ld + nH * d), i * nH * d);
      ref.rope(packed, pos, cos, sin, n, nH, d, inverse);
      for (let i = 0; i < n; i++) exp.set(packed.subarray(i * nH * d, (i + 1) * nH * d), i * ld);
      const got = al(x);
      wk.rope(got, pos, al(cos), al(sin), n, nH, d, inverse, ld);
      assertClose(got, exp, 1e-6, 1e-7, 'rope');
    }
  });
}

for (const [T, pos0, S] of [[5, 0, 5], [3, 4, 7], [9, 0, 9], [1, 12, 13]] as const) {
  bothPaths(`causal softmax T=${T} pos0=${pos0}`, (al) => {
    const nBatch = 2, rows = 3 * T;
    const p = rand(nBatch * rows * S, 8);
    const exp = Float32Array.from(p);
    ref.softmaxCausal(exp, nBatch, rows, S, T, pos0, 0.3);
    const got = al(p);
    wk.softmaxCausal(got, nBatch, rows, S, T, pos0, 0.3);
    assertClose(got, exp, 1e-6, 1e-8, 'probs');
  });
}

for (const S of [1, 7, 16]) {
  bothPaths(`softmax backward S=${S}`, (al) => {
    const n = 5;
    const p = rand(n * S, 3).map(Math.abs), dp = rand(n * S, 4);
    const exp = Float32Array.from(dp);
    ref.softmaxBackward(p, exp, n, S, 0.25);
    const got = al(dp);
    wk.softmaxBackward(al(p), got, n, S, 0.25);
    assertClose(got, exp, 1e-6, 1e-8, 'dS');
  });
}

test('sum |w * g| over bf16 and f32 weights matches the f64 reference', () => {
  for (const n of [1, 7, 8, 37, 1000]) {
    const w = rand(n, 5), g = rand(n, 6);
    const bits = new Uint16Array(n);
    const w16 = new Float32Array(n);
    for (let i = 0; i < n; i++) { bits[i] = new Uint32Array(Float32Array.of(w[i]!).buffer)[0]! >>> 16; w16[i] = new Float32Array(Uint32Array.of(bits[i]! << 16).buffer)[0]!; }
    let e32 = 0, e16 = 0;
    for (let i = 0; i < n; i++) { e32 += Math.abs(Math.fround(w[i]! * g[i]!)); e16 += Math.abs(Math.fround(w16[i]! * g[i]!)); }
    assert.ok(Math.abs(wk.sumAbsProduct(w, g, n) - e32) <= 1e-12 * e32, `f32 n=${n}`);
    assert.ok(Math.abs(wk.sumAbsProduct(bits, g, n) - e16) <= 1e-12 * e16, `bf16 n=${n}`);
  }
});

bothPaths('silu * up, separate and fused [gate|up] rows', (al) => {
  const n = 5, I = 23;
  const g = rand(n * I, 12), u = rand(n * I, 2);
  g[3] = -200; g[4] = 200; g[5] = 0;
  const exp = new Float32Array(n * I);
  ref.siluMulForward(g, u, exp, n * I);
  const o = al(new Float32Array(n * I));
  wk.siluMul(al(g), al(u), o, n, I);
  assertClose(o, exp, 2e-6, 1e-7, 'separate');
  const fused = new Float32Array(n * 2 * I);
  for (let i = 0; i < n; i++) { fused.set(g.subarray(i * I, (i + 1) * I), i * 2 * I); fused.set(u.subarray(i * I, (i + 1) * I), i * 2 * I + I); }
  const f = al(fused), o2 = al(new Float32Array(n * I));
  wk.siluMul(f, f.subarray(I), o2, n, I, 2 * I);
  assertClose(o2, exp, 2e-6, 1e-7, 'fused');
});

bothPaths('silu * up backward (stacked [gate | up] rows)', (al) => {
  const rows = 5, I = 23; // I not a multiple of 4: the scalar tail runs too
  const d = rand(rows * I, 2), gu = rand(rows * 2 * I, 12);
  gu[0] = -200; gu[1] = 200;
  // the derivative written out: y = g*sig(g)*u; dy/du = g*sig(g); dy/dg = u*sig(g)*(1 + g*(1 - sig(g)))
  const expect = new Float32Array(rows * 2 * I);
  for (let r = 0; r < rows; r++) for (let j = 0; j < I; j++) {
    const g = gu[r * 2 * I + j]!, u = gu[r * 2 * I + I + j]!, dy = d[r * I + j]!, sig = 1 / (1 + Math.exp(-g));
    expect[r * 2 * I + j] = dy * u * sig * (1 + g * (1 - sig));
    expect[r * 2 * I + I + j] = dy * g * sig;
  }
  const viaRef = new Float32Array(rows * 2 * I);
  ref.siluMulBackward(d, gu, viaRef, rows, I);
  assertClose(viaRef, expect, 1e-6, 1e-7, 'reference');
  const dgu = al(new Float32Array(rows * 2 * I));
  wk.siluMulBackward(al(d), al(gu), dgu, rows, I);
  assertClose(dgu, expect, 2e-6, 1e-7, 'wasm');
});

for (const [n, h] of [[3, 37], [4, 64]] as const) {
  bothPaths(`rmsnorm backward ${n}x${h} (accumulating dx, dw)`, (al) => {
    const dy = rand(n * h), x = rand(n * h, 3), w = rand(h);
    const rstd = Float32Array.from({ length: n }, () => 0.5 + rng());
    const dx0 = rand(n * h), dw0 = rand(h);
    const edx = Float32Array.from(dx0), edw = Float32Array.from(dw0);
    ref.rmsnormBackward(dy, x, w, rstd, edx, edw, n, h);
    const gdx = al(dx0), gdw = al(dw0);
    wk.rmsnormBackward(al(dy), al(x), al(w), al(rstd), gdx, gdw, n, h);
    assertClose(gdx, edx, 1e-5, 1e-6, 'dx');
    assertClose(gdw, edw, 1e-5, 1e-6, 'dw');
    const gdx2 = al(dx0);
    wk.rmsnormBackward(al(dy), al(x), al(w), al(rstd), gdx2, null, n, h);
    assertClose(gdx2, edx, 1e-5, 1e-6, 'dx without dw');
  });
}

bothPaths('add and bias', (al) => {
  const a = rand(37), b = rand(37);
  const exp = Float32Array.from(a);
  ref.addInPlace(exp, b);
  const out = al(new Float32Array(37));
  wk.add(al(a), al(b), out);
  assertClose(out, exp, 0, 0, 'add');
  const y = rand(4 * 11), bias = rand(9);
  const yExp = Float32Array.from(y);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 9; j++) yExp[i * 11 + j]! += bias[j]!;
  const yGot = al(y);
  wk.addBias(yGot, al(bias), 4, 9, 11);
  assertClose(yGot, yExp, 0, 0, 'bias');
});

for (const d of [4, 6]) {
  bothPaths(`toHeads / fromHeads (GQA, row stride) d=${d}`, (al) => {
    const B = 2, T = 3, nH = 4, nKV = 2, w = nH * d, ld = w + 3;
    const x = rand(B * T * ld);
    const packed = new Float32Array(B * T * w);
    for (let i = 0; i < B * T; i++) packed.set(x.subarray(i * ld, i * ld + w), i * w);
    const exp = new Float32Array(B * T * w);
    toHeadsRef(packed, exp, B, T, nH, nKV, d);
    const got = al(new Float32Array(B * T * w));
    wk.toHeads(al(x), got, B, T, nH, nKV, d, ld);
    assertClose(got, exp, 0, 0, 'toHeads');
    // back, into strided rows, overwrite then accumulate
    const base = rand(B * T * ld);
    for (const acc of [false, true]) {
      const expRows = Float32Array.from(packed);
      const start = new Float32Array(B * T * w);
      for (let i = 0; i < B * T; i++) start.set(base.subarray(i * ld, i * ld + w), i * w);
      if (acc) expRows.set(start);
      fromHeadsRef(exp, expRows, B, T, nH, nKV, d, acc);
      const out = al(base);
      wk.fromHeads(al(exp), out, B, T, nH, nKV, d, acc, ld);
      for (let i = 0; i < B * T; i++) {
        assertClose(out.subarray(i * ld, i * ld + w), expRows.subarray(i * w, (i + 1) * w), 0, 0, `fromHeads acc=${acc}`);
        assertClose(out.subarray(i * ld + w, (i + 1) * ld), base.subarray(i * ld + w, (i + 1) * ld), 0, 0, 'untouched');
      }
    }
  });
}

bothPaths('row max / sum-exp (log-sum-exp of logits rows)', (al) => {
  const rows = 4, cols = 1001, ld = 1010;
  const x = rand(rows * ld, 20);
  const m = al(new Float32Array(rows)), s = new Float64Array(rows);
  wk.rowMaxSumExp(al(x), rows, cols, ld, m, s);
  for (let i = 0; i < rows; i++) {
    const lse = ref.logSumExp(x, i * ld, cols);
    assertClose([m[i]! + Math.log(s[i]!)], [lse], 1e-6, 1e-6, `lse row ${i}`);
  }
});

bothPaths('softmax rows from known log-sum-exps, scaled', (al) => {
  const rows = 3, cols = 517, ld = 520;
  const x = rand(rows * ld, 15);
  const lse = Float32Array.from({ length: rows }, (_, i) => ref.logSumExp(x, i * ld, cols));
  const scale = Float32Array.of(0.5, 0, 2);
  const exp = Float32Array.from(x);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) exp[i * ld + j] = Math.exp(x[i * ld + j]! - lse[i]!) * scale[i]!;
  const got = al(x);
  wk.softmaxRowsLse(got, rows, cols, ld, al(lse), al(scale));
  assertClose(got, exp, 2e-6, 1e-9, 'softmax');
});

test('bf16 rounding helper agrees with widening (sanity)', () => {
  const v = Uint16Array.of(toBf16Bits(1.5), toBf16Bits(-3.25));
  const out = new Float32Array(2);
  wk.widenBf16(v, out);
  assert.deepEqual([...out], [1.5, -3.25]);
});

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
test('the embedded wasm was built from the current assembly/ sources (else: node assembly/build.mjs)', () => {
  const hash = createHash('sha256').update(readFileSync(join(root, 'assembly', 'kernels.ts'))).update(readFileSync(join(root, 'assembly', 'build.mjs'))).digest('hex');
  assert.equal(hash, KERNELS_SOURCE_SHA256);
});

bothPaths('LoRA delta y += xa B^T into a strided output', (al) => {
  const n = 7, out = 77, r = 8, ldy = 80; // 2 x 32 + 8 + 5 columns: every path of the kernel runs
  const y0 = rand(n * ldy), xa = rand(n * r), B = rand(out * r); // B [out, r]
  const bt = new Float32Array(r * out);
  for (let j = 0; j < out; j++) for (let k = 0; k < r; k++) bt[k * out + j] = B[j * r + k]!;
  const expect = Float32Array.from(y0);
  for (let i = 0; i < n; i++) for (let j = 0; j < out; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += xa[i * r + k]! * B[j * r + k]!;
    expect[i * ldy + j]! += s; // columns out..ldy stay as they were
  }
  const viaRef = Float32Array.from(y0);
  ref.loraAdd(viaRef, ldy, xa, bt, n, out, r);
  assertClose(viaRef, expect, 1e-6, 1e-6, 'reference');
  const y = al(y0);
  wk.loraAdd(y, ldy, al(xa), al(bt), n, out, r);
  assertClose(y, expect, 1e-6, 1e-6, 'wasm');
});

test('the WebAssembly keep-mask is util/rng keepMask, byte for byte', () => {
  for (const [n, drop, seed] of [[1000, 0.05, 7], [4099, 0.3, 4294967295], [64, 0, 1], [64, 1, 2], [333, 0.5, 0]] as const) {
    const want = keepMask(n, drop, seed), got = wk.keepMask(n, drop, seed);
    assert.deepEqual(got, want, `n ${n} drop ${drop} seed ${seed}`);
  }
  assert.equal(wk.keepMask(64, 1, 3).reduce((a, b) => a + b, 0), 0, 'drop 1: nothing kept');
});

bothPaths('LoRA dropout and its backward with a byte mask', (al) => {
  const n = 4 * 19 + 3;
  const x = rand(n), dh = rand(n, 2), dx0 = rand(n, 3), s = 1 / 0.7;
  const mask = Uint8Array.from({ length: n }, () => (rng() < 0.3 ? 0 : 1));
  const expOut = Float32Array.from(x, (v, i) => (mask[i] ? v * s : 0));
  const expDx = Float32Array.from(dx0, (v, i) => v + (mask[i] ? dh[i]! * s : 0));
  const o1 = new Float32Array(n), d1 = Float32Array.from(dx0);
  ref.dropoutApply(x, mask, s, o1, n);
  ref.dropoutAdd(d1, dh, mask, s, n);
  assertClose(o1, expOut, 1e-6, 1e-7, 'reference dropout');
  assertClose(d1, expDx, 1e-6, 1e-7, 'reference backward');
  const o2 = al(new Float32Array(n)), d2 = al(dx0);
  wk.dropoutApply(al(x), mask, s, o2, n);
  wk.dropoutAdd(d2, al(dh), mask, s, n);
  assertClose(o2, expOut, 1e-6, 1e-7, 'wasm dropout');
  assertClose(d2, expDx, 1e-6, 1e-7, 'wasm backward');
});

test('transposeInto and addTransposed: out [cols, rows] (+)= a^T, rows not a multiple of 8', () => {
  const rows = 13, cols = 70;
  const a = rand(rows * cols), base = rand(rows * cols, 5);
  const t = ref.transposeInto(a, rows, cols, new Float32Array(rows * cols));
  const sum = ref.addTransposed(a, rows, cols, Float32Array.from(base));
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    assert.equal(t[j * rows + i], a[i * cols + j]);
    assert.equal(sum[j * rows + i], Math.fround(base[j * rows + i]! + a[i * cols + j]!));
  }
});
