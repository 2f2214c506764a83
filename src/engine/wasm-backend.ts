/**
 * The portable backend: GEMMs in WebAssembly SIMD (assembly/kernels.ts: packed, 4x8
 * register-blocked) on all cores through a worker pool sharing one WebAssembly memory.
 * Needs nothing native, so it is the fallback wherever onnxruntime-node does not load.
 *
 * Operands are copied into the shared heap per call (memcpy speed; a GEMM reads each element
 * many times, so this is noise), bf16/f16 weights are copied as stored and widened while
 * packing. Threads split C by columns (gemm) or by batch (bmm), so they never share outputs.
 */
import { denseA, type Backend, type GemmArgs, type BmmArgs, type BOperand } from './backend.js';
import { jsBackend } from './js-backend.js';
import { ThreadPool } from './wasm/pool.js';
import { OP_GEMM, OP_BMM, OP_GEMV } from './wasm/jobs.js';
import type { WasmHeap } from './wasm/heap.js';
import { toF32 } from './tensor.js';

/** Below this many multiply-adds the plain JS kernel wins (no copies, no thread wake-up). */
const SMALL_MACS = 1 << 15;
const NR = 8;
/** Up to this many rows of A, products run as dot products straight from the stored weights (no packing). */
const GEMV_MAX_M = 4;

export interface WasmBackendOptions {
  /** threads, the calling one included (default: all cores) */
  threads?: number;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  private poolInst: ThreadPool | null = null;

  constructor(private opts: WasmBackendOptions = {}) {}

  private get pool(): ThreadPool {
    return (this.poolInst ??= new ThreadPool(this.opts.threads));
  }

  /** Copy B (stacked parts concatenated) into the heap as stored; returns pointer and dtype code. */
  private copyB(H: WasmHeap, b: BOperand): { ptr: number; btype: number } {
    const parts = Array.isArray(b) ? b : [b];
    const arrays = parts.map((p) => (p instanceof Float32Array ? p : p.data));
    const dtypes = parts.map((p) => (p instanceof Float32Array ? 'f32' : p.dtype));
    // mixed stored dtypes (rare): widen everything to f32 first
    if (new Set(dtypes).size > 1) {
      const f = new Float32Array(arrays.reduce((s, a) => s + a.length, 0));
      let o = 0;
      parts.forEach((p) => { const w = p instanceof Float32Array ? p : toF32(p); f.set(w, o); o += w.length; });
      return this.copyB(H, f);
    }
    const bytes = arrays[0] instanceof Float32Array ? 4 : 2;
    const total = arrays.reduce((s, a) => s + a.length, 0);
    const ptr = H.alloc(total * bytes);
    let o = ptr;
    for (const a of arrays) {
      if (a instanceof Float32Array) H.viewF32(o, a.length).set(a);
      else H.viewU16(o, a.length).set(a);
      o += a.length * bytes;
    }
    return { ptr, btype: dtypes[0] === 'bf16' ? 1 : dtypes[0] === 'f16' ? 2 : 0 };
  }

  /** Copy A into the heap as [m, k] (transposing a [k, m] operand). */
  private copyA(H: WasmHeap, a: Float32Array, m: number, k: number, transA: boolean): number {
    const ptr = H.alloc(m * k * 4);
    if (!transA) { H.viewF32(ptr, m * k).set(a.subarray(0, m * k)); return ptr; }
    const src = H.alloc(m * k * 4);
    H.viewF32(src, m * k).set(a.subarray(0, m * k));
    H.k.transpose(src, k, m, ptr);
    return ptr;
  }

  async gemm(args: GemmArgs): Promise<void> {
    if (args.m * args.n * args.k < SMALL_MACS) return jsBackend.gemm(args);
    const x = denseA(args);
    const { m, n, k } = x;
    const transB = x.transB ?? false, acc = x.accumulate ?? false;
    const pool = this.pool, H = pool.heap;
    H.release(pool.base);
    try {
      const pa = this.copyA(H, x.a, m, k, x.transA ?? false);
      const { ptr: pb, btype } = this.copyB(H, x.b);
      const pc = H.alloc(m * n * 4);
      if (m <= GEMV_MAX_M && transB && !acc && !(x.transA ?? false)) {
        // decode-sized: weight rows split across threads, each read once
        const per = Math.ceil(n / pool.threads);
        const jobs: (number[] | null)[] = [];
        for (let t = 0; t < pool.threads; t++) {
          const j0 = t * per, j1 = Math.min(n, j0 + per);
          jobs.push(j0 < j1 ? [OP_GEMV, pa, m, k, pb, btype, j0, j1, pc, n] : null);
        }
        pool.run(jobs);
        x.c.set(H.viewF32(pc, m * n));
        return;
      }
      if (acc) H.viewF32(pc, m * n).set(x.c.subarray(0, m * n));
      // columns split in multiples of the micro-kernel width; each thread gets its own scratch
      const threads = Math.max(1, Math.min(pool.threads, Math.ceil(n / (4 * NR))));
      const per = Math.ceil(n / threads / NR) * NR;
      const workFloats = H.k.gemm_work_floats(m);
      const jobs: (number[] | null)[] = [];
      for (let t = 0; t < pool.threads; t++) {
        const n0 = t * per, n1 = Math.min(n, n0 + per);
        if (t >= threads || n0 >= n1) { jobs.push(null); continue; }
        const work = H.alloc(workFloats * 4);
        jobs.push([OP_GEMM, pa, k, pb, transB ? k : n, btype, transB ? 1 : 0, pc, n, m, n0, n1, k, acc ? 1 : 0, work]);
      }
      pool.run(jobs);
      x.c.set(H.viewF32(pc, m * n));
    } finally {
      H.release(pool.base);
    }
  }

  async bmm(x: BmmArgs): Promise<void> {
    if (x.batch * x.m * x.n * x.k < SMALL_MACS) return jsBackend.bmm(x);
    const { batch, m, n, k } = x;
    const transA = x.transA ?? false, transB = x.transB ?? false;
    const pool = this.pool, H = pool.heap;
    H.release(pool.base);
    try {
      let pa = H.alloc(batch * m * k * 4);
      H.viewF32(pa, batch * m * k).set(x.a.subarray(0, batch * m * k));
      if (transA) {
        const t = H.alloc(batch * m * k * 4);
        for (let i = 0; i < batch; i++) H.k.transpose(pa + i * m * k * 4, k, m, t + i * m * k * 4);
        pa = t;
      }
      const pb = H.alloc(batch * k * n * 4);
      H.viewF32(pb, batch * k * n).set(x.b.subarray(0, batch * k * n));
      const pc = H.alloc(batch * m * n * 4);
      const threads = Math.min(pool.threads, batch);
      const per = Math.ceil(batch / threads);
      const workFloats = H.k.gemm_work_floats(m);
      const jobs: (number[] | null)[] = [];
      for (let t = 0; t < pool.threads; t++) {
        const b0 = t * per, b1 = Math.min(batch, b0 + per);
        if (b0 >= b1) { jobs.push(null); continue; }
        jobs.push([OP_BMM, pa, pb, pc, m, n, k, transB ? 1 : 0, b0, b1, H.alloc(workFloats * 4)]);
      }
      pool.run(jobs);
      x.c.set(H.viewF32(pc, batch * m * n));
    } finally {
      H.release(pool.base);
    }
  }
}
