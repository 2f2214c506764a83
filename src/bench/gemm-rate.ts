/**
 * Raw GEMM rate of a backend on one shape: C[m, n] = A[m, k] · W[n, k]^T (weights as nn.Linear
 * stores them), f32 or bf16 weights, best of a few calls after one warm-up call.
 */
import type { Backend } from '../engine/backend.js';
import type { Tensor } from '../engine/tensor.js';

export interface GemmShape {
  m: number;
  n: number;
  k: number;
  /** weights stored as bf16 (widened by the backend) rather than f32 */
  bf16: boolean;
}

export interface GemmBuffers extends GemmShape {
  a: Float32Array;
  w: Float32Array | Tensor;
  c: Float32Array;
}

/** Operands of one shape, filled with constants (speed does not depend on the values). */
export function gemmBuffers(s: GemmShape): GemmBuffers {
  return {
    ...s,
    a: new Float32Array(s.m * s.k).fill(0.01),
    w: s.bf16 ? { dtype: 'bf16', shape: [s.n, s.k], data: new Uint16Array(s.n * s.k).fill(0x3c00) } : new Float32Array(s.n * s.k).fill(0.01),
    c: new Float32Array(s.m * s.n),
  };
}

/** GFLOP/s (2·m·n·k per call) of the fastest of `reps` calls. */
export async function gemmRate(be: Backend, s: GemmBuffers, reps = 3): Promise<number> {
  const call = () => be.gemm({ a: s.a, b: s.w, c: s.c, m: s.m, n: s.n, k: s.k, transB: true });
  await call();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await call();
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * s.m * s.n * s.k) / (best / 1000) / 1e9;
}
