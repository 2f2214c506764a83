/**
 * Which backend runs the GEMMs: the project's native kernels (native/, built at install) when
 * they load, else onnxruntime-node (MLAS), else the portable WebAssembly backend.
 * SHORTENED_BACKEND=native|ort|wasm|js forces one. SHORTENED_COMPUTE=bf16 runs the products with
 * bf16 weights in bf16 (the activations rounded, as PyTorch's bf16; native kernels on AMX only,
 * refused with one line elsewhere); the default, f32, rounds nothing.
 *
 * Both native backends are imported lazily (on the first GEMM), so a platform without them still
 * runs everything, on WebAssembly.
 */
import type { Backend, GemmArgs, BmmArgs } from './backend.js';
import { jsBackend } from './js-backend.js';
import { WasmBackend } from './wasm-backend.js';
import { UserError } from '../util/errors.js';

class AutoBackend implements Backend {
  private be: Backend | null = null;
  private loading: Promise<Backend> | null = null;

  /** threads: GEMM threads (default: all cores); compute: see native-backend's Compute (default: SHORTENED_COMPUTE, else f32) */
  constructor(private threads?: number, private compute?: 'f32' | 'bf16') {}

  get name(): string { return this.be?.name ?? 'auto'; }

  private resolve(): Promise<Backend> {
    return (this.loading ??= (async () => {
      const want = process.env['SHORTENED_BACKEND'];
      const compute = this.compute ?? computeFromEnv();
      if (compute === 'bf16') {
        if (want && want !== 'native') throw new UserError(`SHORTENED_COMPUTE=bf16 runs on the native kernels only, not SHORTENED_BACKEND=${want}`);
        const { NativeBackend } = await import('./native-backend.js');
        return (this.be = new NativeBackend({ threads: this.threads, compute }));
      }
      if (want === 'js') return (this.be = jsBackend);
      const threads = this.threads;
      if (want === 'wasm') return (this.be = new WasmBackend({ threads }));
      if (want === undefined || want === '' || want === 'native') {
        try {
          const { NativeBackend } = await import('./native-backend.js');
          return (this.be = new NativeBackend({ threads }));
        } catch (e) {
          if (want === 'native') throw e;
        }
      }
      try {
        const { OrtBackend } = await import('./ort-backend.js');
        return (this.be = new OrtBackend({ threads }));
      } catch (e) {
        if (want === 'ort') throw e;
        return (this.be = new WasmBackend({ threads }));
      }
    })());
  }

  async gemm(x: GemmArgs): Promise<void> { return (this.be ?? (await this.resolve())).gemm(x); }
  async bmm(x: BmmArgs): Promise<void> { return (this.be ?? (await this.resolve())).bmm(x); }
  // synchronous: before the first product has settled the backend, a plain copy
  copy(dst: Float32Array, src: Float32Array): void { if (this.be?.copy) this.be.copy(dst, src); else dst.set(src); }
  get sumAbsProduct(): ((w: Float32Array | Uint16Array, g: Float32Array) => number) | undefined {
    const be = this.be;
    return be?.sumAbsProduct ? (w, g) => be.sumAbsProduct!(w, g) : undefined;
  }
  get siluMul(): Backend['siluMul'] {
    const be = this.be;
    return be?.siluMul ? (g, u, o, n, I, ld) => be.siluMul!(g, u, o, n, I, ld) : undefined;
  }
  get siluMulBackward(): Backend['siluMulBackward'] {
    const be = this.be;
    return be?.siluMulBackward ? (d, gu, dgu, rows, I) => be.siluMulBackward!(d, gu, dgu, rows, I) : undefined;
  }
  get rmsnormBackward(): Backend['rmsnormBackward'] {
    const be = this.be;
    return be?.rmsnormBackward ? (dy, x, w, rstd, dx, dw, n, h) => be.rmsnormBackward!(dy, x, w, rstd, dx, dw, n, h) : undefined;
  }
  get softmaxBackward(): Backend['softmaxBackward'] {
    const be = this.be;
    return be?.softmaxBackward ? (p, dp, rows, S, scale) => be.softmaxBackward!(p, dp, rows, S, scale) : undefined;
  }
}

function computeFromEnv(): 'f32' | 'bf16' {
  const c = process.env['SHORTENED_COMPUTE'];
  if (c === undefined || c === '' || c === 'f32') return 'f32';
  if (c === 'bf16') return 'bf16';
  throw new UserError(`SHORTENED_COMPUTE must be f32 or bf16, not '${c}'`);
}

let defaultBackend: Backend | null = null;

/** The process-wide default backend. */
export function getBackend(): Backend {
  return (defaultBackend ??= new AutoBackend());
}

/** Whether SHORTENED_COMPUTE=bf16 can run here (native kernels that load, on a CPU with AMX-BF16). */
export async function bf16ComputeAvailable(): Promise<boolean> {
  try {
    const { nativeBf16Compute } = await import('./native-backend.js');
    return nativeBf16Compute();
  } catch {
    return false;
  }
}

/** A backend of its own whose products run in `compute` (bench:vs-torch's bf16 rows). */
export function backendWithCompute(compute: 'f32' | 'bf16'): Backend {
  return new AutoBackend(undefined, compute);
}

/** A backend of its own that runs each GEMM on `threads` threads (data-parallel replicas use 1 each). */
export function backendWithThreads(threads: number): Backend {
  return new AutoBackend(threads);
}

/** Whether a native GEMM backend (our kernels or onnxruntime-node) can load here. */
export async function nativeBackendLoads(): Promise<boolean> {
  if (process.env['SHORTENED_BACKEND'] === 'wasm' || process.env['SHORTENED_BACKEND'] === 'js') return false;
  for (const load of [() => import('./native-backend.js'), () => import('./ort-backend.js')]) {
    try { await load(); return true; } catch { /* try the next */ }
  }
  return false;
}
