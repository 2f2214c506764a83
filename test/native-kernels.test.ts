/**
 * The native kernels beyond backends.test.ts: products spanning several K slices and row/column
 * blocks, results that do not depend on the thread count (data-parallel replicas rely on it),
 * SharedArrayBuffer operands, every ISA build this CPU can run agreeing with the JS GEMM, a
 * clear error for an operand too short for its shape, strided A (lda), denormals flushed inside
 * the kernels only, and the bulk copy.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gemmF32, jsBackend } from '../src/engine/js-backend.js';
import { bulkCopy } from '../src/engine/backend.js';
import { NativeBackend, nativeIsa, nativeBf16Compute } from '../src/engine/native-backend.js';
import { fromF32 } from '../src/engine/tensor.js';
import { assertClose } from './fixtures.js';
import { mulberry32 } from '../src/util/rng.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import { taylorScores } from '../src/prune/criteria/taylor.js';
import { pplScores } from '../src/prune/criteria/ppl.js';
import { projectDir } from '../src/util/shared.js';

const rng = mulberry32(11);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng() * 2 - 1);
const one = new NativeBackend({ threads: 1 }), two = new NativeBackend({ threads: 2 });

test(`native (${nativeIsa()}): products over several K slices and row/column blocks match the JS GEMM`, async () => {
  for (const [m, n, k] of [[300, 530, 600], [7, 4200, 40], [1000, 19, 513]] as const) {
    for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = rand(m * k), b = rand(n * k), c0 = rand(m * n);
      const exp = Float32Array.from(c0);
      gemmF32(a, b, exp, m, n, k, transA, transB, true);
      const got = Float32Array.from(c0);
      await two.gemm({ a, b, c: got, m, n, k, transA, transB, accumulate: true });
      assertClose(got, exp, 1e-4, 1e-4, `${m}x${n}x${k} tA=${transA} tB=${transB}`);
    }
  }
});

test('native: results are the same bits on 1 and 2 threads (GEMM, bf16 weights, GEMV, bmm)', async () => {
  const m = 333, n = 700, k = 520;
  const a = rand(m * k), w = fromF32(rand(n * k), [n, k], 'bf16');
  for (const rows of [m, 3]) {
    const c1 = new Float32Array(rows * n), c2 = new Float32Array(rows * n);
    await one.gemm({ a, b: w, c: c1, m: rows, n, k, transB: true });
    await two.gemm({ a, b: w, c: c2, m: rows, n, k, transB: true });
    assert.deepEqual(c2, c1, `rows=${rows}`);
  }
  const batch = 6, bm = 64, bn = 80, bk = 48;
  const x = rand(batch * bm * bk), y = rand(batch * bk * bn);
  const d1 = new Float32Array(batch * bm * bn), d2 = new Float32Array(batch * bm * bn);
  await one.bmm({ a: x, b: y, c: d1, batch, m: bm, n: bn, k: bk, transB: false });
  await two.bmm({ a: x, b: y, c: d2, batch, m: bm, n: bn, k: bk, transB: false });
  assert.deepEqual(d2, d1);
});

test('native: operands in SharedArrayBuffers are read and written in place', async () => {
  const m = 40, n = 50, k = 60;
  const a = new Float32Array(new SharedArrayBuffer(m * k * 4)), b = new Float32Array(new SharedArrayBuffer(n * k * 4));
  a.set(rand(m * k)); b.set(rand(n * k));
  const c = new Float32Array(new SharedArrayBuffer(m * n * 4)), exp = new Float32Array(m * n);
  gemmF32(a, b, exp, m, n, k, false, true, false);
  await two.gemm({ a, b, c, m, n, k, transB: true });
  assertClose(c, exp, 1e-5, 1e-5, 'C');
});

test('native: an operand shorter than its shape is refused with an error, not read past', async () => {
  const a = rand(100 * 64), b = rand(64 * 64), c = new Float32Array(100 * 64);
  await assert.rejects(async () => two.gemm({ a: a.subarray(0, 99 * 64), b, c, m: 100, n: 64, k: 64 }), /out of bounds/);
  await assert.rejects(async () => two.gemm({ a, b, c: c.subarray(0, 10), m: 100, n: 64, k: 64 }), /out of bounds/);
});

test('native: every ISA build this CPU runs agrees with the JS GEMM', () => {
  const script = fileURLToPath(new URL('./native-isa-check.js', import.meta.url));
  const builds = nativeIsa() === 'avx512' ? ['avx512', 'avx2', 'generic'] : nativeIsa() === 'avx2' ? ['avx2', 'generic'] : ['generic'];
  for (const isa of builds) {
    const r = spawnSync(process.execPath, [script], { env: { ...process.env, SHORTENED_NATIVE_ISA: isa === 'avx512' ? '' : isa }, encoding: 'utf8' });
    assert.equal(r.status, 0, `${isa}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^${isa} ok`), r.stdout);
  }
});

test('native: A read in place at a row stride (lda) matches the product of its dense copy, stacked parts too', async () => {
  const N = 70, width = 300, inW = 90, r0 = 37, rc = 150;
  const dY = rand(N * width), x = rand(N * inW);
  // rows [r0, r0 + rc) of dY^T x: columns of dY read at stride `width`
  const exp = new Float32Array(rc * inW), got = new Float32Array(rc * inW);
  const cols = new Float32Array(N * rc);
  for (let i = 0; i < N; i++) cols.set(dY.subarray(i * width + r0, i * width + r0 + rc), i * rc);
  gemmF32(cols, x, exp, rc, inW, N, true, false, false);
  await two.gemm({ a: dY.subarray(r0), lda: width, b: x, c: got, m: rc, n: inW, k: N, transA: true });
  assertClose(got, exp, 1e-5, 1e-5, 'transA, lda');
  // the same through the dense fallback every other backend uses
  const viaJs = new Float32Array(rc * inW);
  await jsBackend.gemm({ a: dY.subarray(r0), lda: width, b: x, c: viaJs, m: rc, n: inW, k: N, transA: true });
  assert.deepEqual(viaJs, exp);
  // K-stacked parts (dx = dY [W1; W2]) with a strided A: part i starts at column off_i of A's rows
  const m = 40, lda = 130, k1 = 50, k2 = 70, n = 60;
  const a = rand(m * lda), w1 = rand(k1 * n), w2 = rand(k2 * n);
  const dense = new Float32Array(m * (k1 + k2));
  for (let i = 0; i < m; i++) dense.set(a.subarray(i * lda, i * lda + k1 + k2), i * (k1 + k2));
  const e2 = new Float32Array(m * n), g2 = new Float32Array(m * n);
  gemmF32(dense, Float32Array.from([...w1, ...w2]), e2, m, n, k1 + k2, false, false, false);
  await two.gemm({ a, lda, b: [w1, w2], c: g2, m, n, k: k1 + k2 });
  assertClose(g2, e2, 1e-5, 1e-5, 'stacked, lda');
  await assert.rejects(async () => two.gemm({ a, lda: 10, b: w1, c: g2, m, n, k: k1 }), /narrower/);
});

test('native: denormal operands count as zero inside the kernels, and JS arithmetic keeps its denormals', async () => {
  const m = 64, n = 64, k = 64;
  const a = rand(m * k), b = rand(k * n);
  for (let i = 0; i < a.length; i += 3) a[i] = 1e-39; // below 2^-126: flushed
  const zeroed = a.map((v) => (Math.abs(v) < 1.1754944e-38 ? 0 : v));
  const got = new Float32Array(m * n), exp = new Float32Array(m * n);
  await two.gemm({ a, b, c: got, m, n, k });
  await two.gemm({ a: zeroed, b, c: exp, m, n, k });
  assert.deepEqual(got, exp);
  // the calling thread's floating-point mode is restored on return: denormal doubles still exist
  const tiny = Number.MIN_VALUE;
  assert.ok(tiny * 1.5 > 0 && tiny / 2 === 0 && 1e-310 * 0.5 > 0, 'denormals survive in JS after a native call');
});

test('native: the bulk copy copies exactly, on any length, and refuses a short destination', () => {
  for (const n of [0, 1, 1023, (1 << 18) + 7, 3_000_001]) {
    const src = rand(n), dst = new Float32Array(n + 5).fill(7);
    two.copy(dst, src);
    assert.deepEqual(dst.subarray(0, n), src);
    assert.deepEqual(dst.subarray(n), new Float32Array(5).fill(7));
    const viaHelper = new Float32Array(n);
    bulkCopy(two, viaHelper, src);
    assert.deepEqual(viaHelper, src);
  }
  assert.throws(() => two.copy(new Float32Array(3), rand(4)), /longer/);
});

// bf16 compute (AMX): A rounded to bf16 (nearest even), bf16 weights as stored, fp32 sums
const roundBf16 = (a: Float32Array) => {
  const u = new Uint32Array(Float32Array.from(a).buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(u.buffer);
};

test(`native: bf16 compute ${nativeBf16Compute() ? 'matches the JS GEMM of the rounded activations' : 'is refused with one line on a CPU without AMX-BF16'}`, async () => {
  if (!nativeBf16Compute()) {
    assert.throws(() => new NativeBackend({ compute: 'bf16' }), /AMX-BF16/);
    return;
  }
  const one16 = new NativeBackend({ threads: 1, compute: 'bf16' }), two16 = new NativeBackend({ threads: 2, compute: 'bf16' });
  // edges of every block: m, n, k off the 32-tiles, k over one 512 slice, n over one 1024 slice
  for (const [m, n, k] of [[5, 40, 33], [70, 45, 100], [33, 1100, 530], [130, 64, 1031]] as const) {
    const a = rand(m * k), wf = roundBf16(rand(n * k)), w = fromF32(wf, [n, k], 'bf16'), c0 = rand(m * n);
    const exp = Float32Array.from(c0);
    gemmF32(roundBf16(a), wf, exp, m, n, k, false, true, true);
    const got = Float32Array.from(c0), got1 = Float32Array.from(c0);
    await two16.gemm({ a, b: w, c: got, m, n, k, transB: true, accumulate: true });
    await one16.gemm({ a, b: w, c: got1, m, n, k, transB: true, accumulate: true });
    assertClose(got, exp, 1e-5, 1e-5, `${m}x${n}x${k}`);
    assert.deepEqual(got, got1, `${m}x${n}x${k}: same bits on 1 and 2 threads`);
  }
  // what AMX does not take (f32 weights, transA, decoding rows) runs in f32, exactly as the default
  const m = 40, n = 70, k = 90, a = rand(m * k), wf = rand(n * k);
  for (const x of [{ b: wf, m, transB: true }, { b: fromF32(wf, [n, k], 'bf16'), m: 3, transB: true }]) {
    const c16 = new Float32Array(x.m * n), c32 = new Float32Array(x.m * n);
    await two16.gemm({ a, c: c16, n, k, ...x });
    await two.gemm({ a, c: c32, n, k, ...x });
    assert.deepEqual(c16, c32);
  }
});

test('native: sum |w g| (Taylor+) matches an f64 reference on f32 and bf16 weights, the same bits on 1 and 2 threads', () => {
  for (const n of [0, 5, 1000, (1 << 16) * 3 + 17]) {
    const g = rand(n), wf = rand(n), wb = fromF32(wf, [n], 'bf16');
    for (const w of [wf, wb.data as Uint16Array]) {
      let exp = 0;
      for (let i = 0; i < n; i++) {
        const wi = w instanceof Float32Array ? w[i]! : new Float32Array(new Uint32Array([w[i]! << 16]).buffer)[0]!;
        exp += Math.abs(Math.fround(wi * g[i]!));
      }
      const got1 = one.sumAbsProduct(w, g), got2 = two.sumAbsProduct(w, g);
      assert.equal(got2, got1, `n=${n}: same bits on 1 and 2 threads`);
      assert.ok(Math.abs(got2 - exp) <= 1e-12 * Math.max(1, exp), `n=${n} ${w.constructor.name}: ${got2} vs ${exp}`);
    }
  }
  assert.throws(() => two.sumAbsProduct(rand(3), rand(4)), /shorter/);
});

test(`bf16 compute on the trained default model: ${nativeBf16Compute() ? 'Taylor+ and PPL orders as in f32, scores within 0.1%' : 'refused (no AMX-BF16 here)'}`, async () => {
  if (!nativeBf16Compute()) {
    assert.throws(() => new NativeBackend({ compute: 'bf16' }), /AMX-BF16/);
    return;
  }
  const model = loadModel(projectDir('assets', 'default'));
  const V = model.config.vocabSize, B = 4, T = 128, r = mulberry32(5);
  const ids = Int32Array.from({ length: B * T }, () => 2 + Math.floor(r() * (V - 2)));
  for (const crit of [taylorScores, pplScores]) {
    const f32 = await crit(new LlamaRunner(model, two), [{ ids, B, T }]);
    const b16 = await crit(new LlamaRunner(model, new NativeBackend({ compute: 'bf16' })), [{ ids, B, T }]);
    assert.deepEqual(b16.order, f32.order, f32.criterion);
    f32.scores.forEach((s, i) => assert.ok(Math.abs(b16.scores[i]! - s) <= 1e-3 * Math.abs(s), `${f32.criterion} block ${i}: ${b16.scores[i]} vs ${s}`));
    assert.notDeepEqual(b16.scores, f32.scores, 'the bf16 path ran (its scores differ in the last digits)');
  }
});
