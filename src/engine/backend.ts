/**
 * The matrix-multiply backend: the only place where the engine's FLOPs go.
 * Everything else (norms, RoPE, softmax, SiLU) is memory-bound and lives in kernels.ts.
 *
 * Conventions: row-major; a weight operand may be a stored Tensor (f32/bf16/f16) that the
 * backend widens per call, so weights keep their stored precision in memory.
 */
import type { Tensor } from './tensor.js';

export type Operand = Float32Array | Tensor;

/**
 * The B operand: one matrix, or several whose rows are concatenated. With transB (weights
 * [n_i, K]) that stacks along N: q/k/v or gate/up projections run as one wider GEMM and C is
 * [M, sum n_i], each weight's outputs in its own column range. Without transB (weights [k_i, N])
 * it stacks along K: the backward's dx = [dq | dk | dv] [Wq; Wk; Wv] as one GEMM.
 */
export type BOperand = Operand | Operand[];

export interface GemmArgs {
  /** A is [M,K] (or [K,M] with transA) */
  a: Float32Array;
  /** B is [K,N] (or [N,K] with transB: the nn.Linear weight layout); a list is row-stacked (see BOperand) */
  b: BOperand;
  /** C is [M,N]; overwritten, or added to with accumulate */
  c: Float32Array;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
}

export interface BmmArgs {
  /** A is [batch, M, K], or [batch, K, M] with transA */
  a: Float32Array;
  /** B is [batch, K, N], or [batch, N, K] with transB */
  b: Float32Array;
  /** C is [batch, M, N], overwritten */
  c: Float32Array;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
}

export interface Backend {
  readonly name: string;
  gemm(args: GemmArgs): Promise<void>;
  bmm(args: BmmArgs): Promise<void>;
}
