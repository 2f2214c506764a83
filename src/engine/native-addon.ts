/**
 * The project's Node-API addon (native/, built at install): its entry points, and loading it.
 * Optional: where it was not built (no compiler), loadNativeAddon throws and its users fall back
 * (select.ts to onnxruntime or WebAssembly, huge-pages.ts to plain ArrayBuffers).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface NativeKernels {
  gemm(a: Float32Array, aOff: number, lda: number, transA: boolean, b: Float32Array | Uint16Array, bOff: number, ldb: number, transB: boolean,
    bType: number, c: Float32Array, cOff: number, ldc: number, m: number, n: number, k: number, accumulate: boolean, threads: number, bf16: boolean): void;
  bmm(a: Float32Array, b: Float32Array, c: Float32Array, batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean, threads: number): void;
  isa(): string;
  bf16Compute(): boolean;
  copy(dst: Float32Array, src: Float32Array, threads: number): void;
  sumAbsProduct(w: Float32Array | Uint16Array, wType: number, g: Float32Array, threads: number): number;
  siluMul(gate: Float32Array, up: Float32Array, ld: number, out: Float32Array, n: number, I: number, threads: number): void;
  siluMulBackward(dOut: Float32Array, gu: Float32Array, dgu: Float32Array, rows: number, I: number, threads: number): void;
  softmaxBackward(p: Float32Array, dp: Float32Array, rows: number, S: number, scale: number, threads: number): void;
  rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array | null, n: number, h: number, threads: number): void;
  /** backs a new, all-zero buffer with huge pages from here on (its contents are dropped); bytes advised, 0 if none */
  hugePagesForNew(buffer: ArrayBuffer): number;
}

let loaded: NativeKernels | null = null;

/** The addon, loaded once; throws (one line) where it was not built. */
export function loadNativeAddon(): NativeKernels {
  if (loaded) return loaded;
  // this file runs as dist/src/engine/native-addon.js: the package root is three up
  const file = fileURLToPath(new URL('../../../native/build/Release/shortened_native.node', import.meta.url));
  if (!existsSync(file)) throw new Error('native kernels are not built (npm run build:native); using onnxruntime or WebAssembly');
  loaded = createRequire(import.meta.url)(file) as NativeKernels;
  return loaded;
}
