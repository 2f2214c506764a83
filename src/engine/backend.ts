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
 * The B operand: one matrix, or several stacked along N (with transB: weights [n_i, K] whose rows
 * are concatenated, e.g. q/k/v or gate/up projections run as one wider GEMM; C is then
 * [M, sum n_i] with each weight's outputs in its own column range).
 */
export type BOperand = Operand | Operand[];

export interface GemmArgs {
  /** A is [M,K] (or [K,M] with transA) */
  a: Float32Array;
  /** B is [K,N] (or [N,K] with transB: the nn.Linear weight layout); a list is stacked along N (transB only) */
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
