/**
 * GEMMs in the project's own native kernels (native/, a Node-API addon built at install): AVX-512,
 * AVX2+FMA or plain-vector builds of one packed GEMM, picked for the CPU at load. Operands are read
 * in place from the JS arrays (plain or SharedArrayBuffer-backed), 16-bit weights are widened
 * while they are packed, and products with at most 4 rows (decoding) stream the stored weights on
 * all threads. Calls are synchronous: each costs a few microseconds, not onnxruntime's ~120.
 * Opt-in bf16 compute (SHORTENED_COMPUTE=bf16) runs products with bf16 weights on AMX tiles.
 *
 * The addon is optional: where it was not built (no compiler) this module throws on import and
 * select.ts falls back to onnxruntime, then WebAssembly.
 */
import { availableParallelism } from 'node:os';
import type { Backend, GemmArgs, BmmArgs, Operand } from './backend.js';
import { jsBackend } from './js-backend.js';
import { UserError } from '../util/errors.js';
import { loadNativeAddon } from './native-addon.js';

/** Below this many multiply-adds the JS kernel is as fast as any call out. */
const SMALL_MACS = 1 << 12;

const kernels = loadNativeAddon();

/** The instruction set the native kernels run on here: avx512, avx2 or generic. */
export function nativeIsa(): string { return kernels.isa(); }

/** Whether products can run in bf16 here (AMX-BF16, and the OS granted its state). */
export function nativeBf16Compute(): boolean { return kernels.bf16Compute(); }

/**
 * The arithmetic of products with bf16 weights. 'f32' (the default): the weights are widened and
 * nothing is rounded. 'bf16': the activations are rounded to bf16 (to nearest even) and the tile
 * unit sums the products in fp32, as PyTorch's bf16 does on the same CPU; 3-4x the f32 rate.
 * Products it does not take stay f32: f32 weights, transposed A, decoding (at most 4 rows) and
 * tiny products (under SMALL_MACS multiply-adds).
 */
export type Compute = 'f32' | 'bf16';

const B_TYPE = { f32: 0, bf16: 1, f16: 2 } as const;

function operandData(p: Operand): { data: Float32Array | Uint16Array; bType: number } {
  if (p instanceof Float32Array) return { data: p, bType: 0 };
  return { data: p.data, bType: B_TYPE[p.dtype] };
}

export interface NativeBackendOptions {
  /** threads per product (default: all cores) */
  threads?: number;
  /** see Compute (default 'f32') */
  compute?: Compute;
}

export class NativeBackend implements Backend {
  readonly name: string;
  private threads: number;
  private bf16: boolean;

  constructor(opts: NativeBackendOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
    this.bf16 = opts.compute === 'bf16';
    if (this.bf16 && !kernels.bf16Compute()) throw new UserError('bf16 compute needs a CPU with AMX-BF16 (Intel Sapphire Rapids or later); this one has none, run in f32');
    this.name = this.bf16 ? 'native, bf16 compute' : 'native';
  }

  gemm(x: GemmArgs): Promise<void> {
    if (x.m * x.n * x.k < SMALL_MACS) return jsBackend.gemm(x);
    const { m, n, k } = x, transA = x.transA ?? false, transB = x.transB ?? false;
    const parts = Array.isArray(x.b) ? x.b : [x.b];
    const stacked = transB ? n : k;  // the dimension stacked operands split
    if (parts.length > 1) {
      const covered = parts.reduce((s, p) => s + (p instanceof Float32Array ? p.length : p.data.length), 0) / (transB ? k : n);
      if (covered !== stacked) throw new Error(`gemm: stacked operands cover ${covered} of ${stacked} ${transB ? 'columns' : 'rows'}`);
    }
    const lda = x.lda ?? (transA ? m : k);
    if (lda < (transA ? m : k)) throw new Error(`gemm: lda ${lda} is narrower than A's ${transA ? m : k} columns`);
    let off = 0;
    parts.forEach((p, i) => {
      const { data, bType } = operandData(p);
      if (transB) {
        // [n_i, k] weights side by side along N: part i fills its own column range of C
        const ni = parts.length === 1 ? n : data.length / k;
        kernels.gemm(x.a, 0, lda, transA, data, 0, k, true, bType, x.c, off, n, m, ni, k, x.accumulate ?? false, this.threads, this.bf16);
        off += ni;
      } else {
        // [k_i, n] weights stacked along K: C (+)= A[:, k0:k0+k_i] W_i, the first one sets C
        const ki = parts.length === 1 ? k : data.length / n;
        kernels.gemm(x.a, transA ? off * lda : off, lda, transA, data, 0, n, false, bType, x.c, 0, n, m, n, ki, i > 0 || (x.accumulate ?? false), this.threads, this.bf16);
        off += ki;
      }
    });
    return Promise.resolve();
  }

  copy(dst: Float32Array, src: Float32Array): void {
    kernels.copy(dst, src, this.threads);
  }

  sumAbsProduct(w: Float32Array | Uint16Array, g: Float32Array): number {
    return kernels.sumAbsProduct(w, w instanceof Float32Array ? B_TYPE.f32 : B_TYPE.bf16, g, this.threads);
  }

  siluMul(gate: Float32Array, up: Float32Array, out: Float32Array, n: number, I: number, ld: number): void {
    kernels.siluMul(gate, up, ld, out, n, I, this.threads);
  }

  siluMulBackward(dOut: Float32Array, gu: Float32Array, dgu: Float32Array, rows: number, I: number): void {
    kernels.siluMulBackward(dOut, gu, dgu, rows, I, this.threads);
  }

  softmaxBackward(p: Float32Array, dp: Float32Array, rows: number, S: number, scale: number): void {
    kernels.softmaxBackward(p, dp, rows, S, scale, this.threads);
  }

  rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array | null, n: number, h: number): void {
    kernels.rmsnormBackward(dy, x, w, rstd, dx, dw, n, h, this.threads);
  }

  bmm(x: BmmArgs): Promise<void> {
    if (x.batch * x.m * x.n * x.k < SMALL_MACS) return jsBackend.bmm(x);
    kernels.bmm(x.a, x.b, x.c, x.batch, x.m, x.n, x.k, x.transA ?? false, x.transB ?? false, this.threads);
    return Promise.resolve();
  }
}
