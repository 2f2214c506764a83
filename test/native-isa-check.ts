// Child process of native-kernels.test.ts: runs products on the ISA build SHORTENED_NATIVE_ISA
// selects and prints "<isa> ok" when all match the JS GEMM (not a test file itself).
import { gemmF32, operandF32 } from '../src/engine/js-backend.js';
import { NativeBackend, nativeIsa } from '../src/engine/native-backend.js';
import { fromF32 } from '../src/engine/tensor.js';
import { assertClose } from './fixtures.js';
import { mulberry32 } from '../src/util/rng.js';

const rng = mulberry32(5);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng() * 2 - 1);
const be = new NativeBackend({ threads: 2 });
for (const [m, n, k] of [[150, 270, 300], [2, 90, 70], [4, 33, 9]] as const) {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) for (const transA of [false, true]) {
    const a = rand(m * k), w = fromF32(rand(n * k), [n, k], dtype);
    const exp = new Float32Array(m * n), got = new Float32Array(m * n);
    gemmF32(a, operandF32(w), exp, m, n, k, transA, true, false);
    await be.gemm({ a, b: w, c: got, m, n, k, transA, transB: true });
    assertClose(got, exp, 1e-4, 1e-4, `${dtype} ${m}x${n}x${k} tA=${transA}`);
  }
}
console.log(`${nativeIsa()} ok`);
