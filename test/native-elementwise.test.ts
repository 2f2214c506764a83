/**
 * The native elementwise kernels (native/src/elementwise.h) give the WebAssembly kernels' bits for
 * every input, special values included (NaN, ±Inf, ±0, subnormals, values past exp's clamp), on
 * row widths that leave vector tails, strided rows, 1 or 2 threads, and on every elementwise build
 * this CPU runs (the baseline one in a child process).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NativeBackend, nativeIsa } from '../src/engine/native-backend.js';
import { checkElementwise } from './elementwise-helpers.js';

test(`native elementwise (${nativeIsa()}): the WebAssembly kernels' bits, on 1 and 2 threads`, () => {
  checkElementwise(new NativeBackend({ threads: 1 }));
  checkElementwise(new NativeBackend({ threads: 2 }));
});

test('native elementwise: every build this CPU runs gives the same bits (baseline build in a child process)', () => {
  const script = fileURLToPath(new URL('./native-elementwise-check.js', import.meta.url));
  const builds = nativeIsa() === 'generic' ? ['generic'] : ['avx2', 'generic'];
  for (const isa of builds) {
    const r = spawnSync(process.execPath, [script], { env: { ...process.env, SHORTENED_NATIVE_ISA: isa }, encoding: 'utf8' });
    assert.equal(r.status, 0, `${isa}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^${isa} ok`), r.stdout);
  }
});

test('native elementwise: operands shorter than their shape are refused, not read past', () => {
  const be = new NativeBackend({ threads: 2 });
  const a = new Float32Array(100);
  assert.throws(() => be.siluMul(a, a, new Float32Array(100), 10, 10, 9), /out of bounds/);
  assert.throws(() => be.siluMul(a, a.subarray(5), new Float32Array(100), 10, 10, 10), /out of bounds/);
  assert.throws(() => be.siluMulBackward(a, a, a, 10, 10), /out of bounds/);
  assert.throws(() => be.softmaxBackward(a, a.subarray(1), 10, 10, 1), /out of bounds/);
  assert.throws(() => be.softmaxBackward(a, a, 11, 10, 1), /out of bounds/);
  assert.throws(() => be.rmsnormBackward(a, a, a.subarray(95), a, a, null, 10, 10), /out of bounds/);
  assert.throws(() => be.rmsnormBackward(a, a, a, a, a, a.subarray(95), 10, 10), /out of bounds/);
  assert.throws(() => be.rmsnormBackward(a, a, a, a, a.subarray(1), null, 10, 10), /out of bounds/);
});
