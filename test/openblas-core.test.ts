import test from 'node:test';
import assert from 'node:assert/strict';
import { bestCoreForFlags } from '../src/torchjob/openblas-core.js';

test('the OpenBLAS core named for a CPU is the best its flags support', () => {
  assert.equal(bestCoreForFlags(new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl'])), 'SkylakeX');
  assert.equal(bestCoreForFlags(new Set(['avx2', 'fma', 'avx512f'])), 'Haswell'); // AVX-512 without BW/VL: SkylakeX's kernels need them
  assert.equal(bestCoreForFlags(new Set(['avx2', 'fma'])), 'Haswell');
  assert.equal(bestCoreForFlags(new Set(['sse3', 'avx'])), null);
});
