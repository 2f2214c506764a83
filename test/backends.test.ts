/**
 * The GEMM backends (onnxruntime, WebAssembly on worker threads) against the plain TypeScript
 * GEMM, on every transpose/accumulate combination, stored-dtype weights and stacked operands.
 * Sizes are above the tiny-product cutoffs so the native/WASM paths really run.
 */
import test from 'node:test';
import { gemmF32, jsBackend, operandF32 } from '../src/engine/js-backend.js';
import { OrtBackend } from '../src/engine/ort-backend.js';
import { WasmBackend } from '../src/engine/wasm-backend.js';
import { NativeBackend } from '../src/engine/native-backend.js';
import type { Backend, BOperand } from '../src/engine/backend.js';
import { fromF32, type Tensor } from '../src/engine/tensor.js';
import { assertClose } from './fixtures.js';
import { mulberry32 } from '../src/util/rng.js';

const rng = mulberry32(7);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng() * 2 - 1);

const backends: [string, () => Backend][] = [
  ['native, 2 threads', () => new NativeBackend({ threads: 2 })],
  ['native, 1 thread', () => new NativeBackend({ threads: 1 })],
  ['onnxruntime', () => new OrtBackend()],
  ['wasm, 2 threads', () => new WasmBackend({ threads: 2 })],
  ['wasm, 1 thread', () => new WasmBackend({ threads: 1 })],
];

for (const [name, make] of backends) {
  const be = make();
  for (const [m, n, k] of [[67, 45, 130], [129, 260, 33]] as const) {
    for (const transA of [false, true]) for (const transB of [false, true]) for (const acc of [false, true]) {
      test(`${name}: gemm ${m}x${n}x${k} transA=${transA} transB=${transB} accumulate=${acc}`, async () => {
        const a = rand(m * k), b = rand(n * k), c0 = rand(m * n);
        const exp = Float32Array.from(c0);
        gemmF32(a, b, exp, m, n, k, transA, transB, acc);
        const got = Float32Array.from(c0);
        await be.gemm({ a, b, c: got, m, n, k, transA, transB, accumulate: acc });
        assertClose(got, exp, 1e-4, 1e-5, 'C');
      });
    }
  }

  for (const dtype of ['bf16', 'f16', 'f32'] as const) {
    test(`${name}: gemm with ${dtype} weights, single and stacked (q/k/v-style)`, async () => {
      const m = 70, k = 96, ns = [64, 16, 24];
      const ws: Tensor[] = ns.map((n) => fromF32(rand(n * k), [n, k], dtype));
      const a = rand(m * k);
      for (const b of [ws[0]!, ws] as BOperand[]) {
        const n = Array.isArray(b) ? ns.reduce((s, x) => s + x, 0) : ns[0]!;
        const exp = new Float32Array(m * n);
        gemmF32(a, operandF32(b), exp, m, n, k, false, true, false);
        const got = new Float32Array(m * n);
        await be.gemm({ a, b, c: got, m, n, k, transB: true });
        assertClose(got, exp, 1e-4, 1e-5, Array.isArray(b) ? 'stacked' : 'single');
      }
    });
  }

  for (const dtype of ['bf16', 'f32'] as const) {
    test(`${name}: gemm with ${dtype} weights stacked along K (backward's dx = [dq | dk | dv] [Wq; Wk; Wv])`, async () => {
      const m = 70, n = 96, ks = [64, 16, 24], K = 104;
      const ws: Tensor[] = ks.map((k) => fromF32(rand(k * n), [k, n], dtype));
      const a = rand(m * K);
      // expected: the sum over parts of A[:, cols of part] W_part, each a separate product
      const exp = new Float32Array(m * n);
      let off = 0;
      for (const [i, k] of ks.entries()) {
        const ai = new Float32Array(m * k);
        for (let r = 0; r < m; r++) ai.set(a.subarray(r * K + off, r * K + off + k), r * k);
        gemmF32(ai, operandF32(ws[i]!), exp, m, n, k, false, false, true);
        off += k;
      }
      const got = new Float32Array(m * n);
      await be.gemm({ a, b: ws, c: got, m, n, k: K });
      assertClose(got, exp, 1e-4, 1e-5, 'K-stacked');
    });
  }

  for (const transA of [false, true]) for (const transB of [false, true]) {
    test(`${name}: bmm transA=${transA} transB=${transB}`, async () => {
      const batch = 5, m = 40, n = 36, k = 24;
      const a = rand(batch * m * k), b = rand(batch * n * k);
      const exp = new Float32Array(batch * m * n), got = new Float32Array(batch * m * n);
      await jsBackend.bmm({ a, b, c: exp, batch, m, n, k, transA, transB });
      await be.bmm({ a, b, c: got, batch, m, n, k, transA, transB });
      assertClose(got, exp, 1e-4, 1e-5, 'C');
    });
  }
}

test('wasm backend: the shared heap grows under live worker threads', async () => {
  const be = new WasmBackend({ threads: 2 });
  const small = rand(64 * 64);
  await be.gemm({ a: small, b: small, c: new Float32Array(64 * 64), m: 64, n: 64, k: 64, transB: true }); // workers up
  const m = 8, n = 4096, k = 4200; // B alone is 69 MB: past the initial 64 MB
  const a = rand(m * k), b = rand(n * k);
  const exp = new Float32Array(m * n), got = new Float32Array(m * n);
  gemmF32(a, b, exp, m, n, k, false, true, false);
  await be.gemm({ a, b, c: got, m, n, k, transB: true });
  assertClose(got, exp, 1e-4, 1e-3, 'C'); // k = 4200 terms summed in f32
});

for (const [name, make] of [['native', () => new NativeBackend({ threads: 2 })], ['onnxruntime', () => new OrtBackend()], ['wasm', () => new WasmBackend({ threads: 2 })]] as const) for (const dtype of ['bf16', 'f16', 'f32'] as const) {
  test(`${name}: small-M products from stored ${dtype} weights (decode path), single and stacked`, async () => {
    const be = make();
    const k = 300, ns = [700, 50];
    const ws: Tensor[] = ns.map((n) => fromF32(rand(n * k), [n, k], dtype));
    for (const m of [1, 3, 8]) {
      const a = rand(m * k);
      for (const b of [ws[0]!, ws] as BOperand[]) {
        const n = Array.isArray(b) ? ns.reduce((s, x) => s + x, 0) : ns[0]!;
        const exp = new Float32Array(m * n), got = new Float32Array(m * n);
        gemmF32(a, operandF32(b), exp, m, n, k, false, true, false);
        await be.gemm({ a, b, c: got, m, n, k, transB: true });
        assertClose(got, exp, 1e-4, 1e-5, `m=${m}`);
      }
    }
  });
}

test('onnxruntime: concurrent calls with widened weights do not corrupt each other', async () => {
  const be = new OrtBackend();
  const m = 33, k = 80, n = 200;
  const jobs = [0, 1, 2, 3].map(() => {
    const a = rand(m * k), w = fromF32(rand(n * k), [n, k], 'bf16');
    const exp = new Float32Array(m * n);
    gemmF32(a, operandF32(w), exp, m, n, k, false, true, false);
    return { a, w, exp, got: new Float32Array(m * n) };
  });
  await Promise.all(jobs.map((j) => be.gemm({ a: j.a, b: j.w, c: j.got, m, n, k, transB: true })));
  for (const j of jobs) assertClose(j.got, j.exp, 1e-4, 1e-5, 'C');
});

test('onnxruntime: decode products over a resident weight, views of it, and past the resident budget', async () => {
  const k = 300, n = 700, m = 2;
  const w = fromF32(rand(n * k), [n, k], 'bf16');
  const view: Tensor = { dtype: 'bf16', shape: [300, k], data: (w.data as Uint16Array).subarray(100 * k, 400 * k) };
  const a = rand(m * k);
  for (const be of [new OrtBackend(), new OrtBackend({ residentMaxBytes: 1000 }), new OrtBackend({ threads: 1 })]) {
    for (const b of [view, w, view]) {
      const rows = b.shape[0]!;
      const exp = new Float32Array(m * rows), got = new Float32Array(m * rows);
      gemmF32(a, operandF32(b), exp, m, rows, k, false, true, false);
      await be.gemm({ a, b, c: got, m, n: rows, k, transB: true });
      assertClose(got, exp, 1e-4, 1e-5, `rows=${rows}`);
    }
  }
});
