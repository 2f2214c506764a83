/**
 * The matrix-multiply backend: the only place where the engine's FLOPs go.
 * Everything else (norms, RoPE, softmax, SiLU) is memory-bound and lives in kernels.ts.
 *
 * Conventions: row-major; a weight operand may be a stored Tensor (f32/bf16/f16) that the
 * backend widens per call, so weights keep their stored precision in memory.
 */
import type { Tensor } from './tensor.js';
import { columns } from './kernels.js';

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
  /**
   * Row stride of A as stored (default: its width, K, or M with transA): A may be a column range
   * of a wider matrix, e.g. one weight's columns of a stacked gradient, read in place.
   */
  lda?: number;
}

/**
 * The same product with A copied dense when it is strided (lda wider than A): for backends whose
 * kernels take only dense operands.
 */
export function denseA(x: GemmArgs): GemmArgs {
  const rows = x.transA ? x.k : x.m, width = x.transA ? x.m : x.k;
  if (x.lda === undefined || x.lda === width) return x;
  if (x.lda < width) throw new Error(`gemm: lda ${x.lda} is narrower than A's ${width} columns`);
  return { ...x, a: columns(x.a, rows, x.lda, 0, width), lda: undefined };
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
  /**
   * dst[0, src.length) = src, on the backend's threads where it has them. For the large copies
   * into freshly allocated arrays (a forward's kept activations): their first writes fault page
   * by page, and faults taken on all cores at once take a fraction of the time (2.4x on 2 cores).
   */
  copy?(dst: Float32Array, src: Float32Array): void;
  /**
   * sum |w_i g_i| over g's elements, w f32 or bf16 bits (a Uint16Array): Taylor+'s reduction of a
   * weight and its gradient, on the backend's threads, read in place; products in f32, the sum in
   * f64, the same bits on any thread count.
   */
  sumAbsProduct?(w: Float32Array | Uint16Array, g: Float32Array): number;
  /**
   * out[i, j] = silu(gate[i, j]) * up[i, j] over n rows of I (gate and up rows at stride ld), on
   * the backend's threads, read in place: the same bits as the WebAssembly kernel (wasm-kernels.ts),
   * which runs where a backend has none.
   */
  siluMul?(gate: Float32Array, up: Float32Array, out: Float32Array, n: number, I: number, ld: number): void;
  /** The backward of siluMul on the stacked [gate | up] layout; the same bits as wasm-kernels.ts's. */
  siluMulBackward?(dOut: Float32Array, gu: Float32Array, dgu: Float32Array, rows: number, I: number): void;
  /**
   * Softmax backward in place over `rows` rows of S: dp = p (dp - sum(dp p)) scale, read in place on
   * the backend's threads; the same bits as wasm-kernels.ts's softmaxBackward.
   */
  softmaxBackward?(p: Float32Array, dp: Float32Array, rows: number, S: number, scale: number): void;
  /**
   * RMSNorm backward over n rows of h, accumulating: dx += ..., and dw += ... when given (dx split by
   * rows, dw by columns, each element's sum in row order); the same bits as wasm-kernels.ts's.
   */
  rmsnormBackward?(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array | null, n: number, h: number): void;
}

/** dst[0, src.length) = src through the backend's parallel copy, or a plain one. */
export function bulkCopy(be: Backend, dst: Float32Array, src: Float32Array): void {
  if (be.copy && src.length >= BULK_COPY_MIN) be.copy(dst, src);
  else dst.set(src);
}
/** below this many floats (1 MB) a plain copy costs less than a call out */
const BULK_COPY_MIN = 1 << 18;
