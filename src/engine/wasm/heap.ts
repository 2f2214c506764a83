/**
 * WebAssembly memories the SIMD kernels (assembly/kernels.ts) run in, with a bump allocator.
 *
 * A kernel can only touch its own linear memory, so buffers it works on must live there.
 * Two kinds of heap:
 *  - plain (non-shared) memory: onnxruntime-node accepts views of it as tensors (it rejects
 *    SharedArrayBuffers), so GEMM outputs can land straight in buffers the kernels then read.
 *    Growing a plain memory DETACHES every existing view: grow only through reserve(), at points
 *    where no view is live; alloc() never grows.
 *  - shared memory (SharedArrayBuffer): worker threads run kernels on it; growing keeps old views.
 */
import { KERNELS_WASM, KERNELS_SHARED_WASM, KERNELS_SHARED_RELAXED_WASM } from './kernels-wasm.js';

/** The compiled kernels' exports (pointers are byte addresses in the heap). */
export interface KernelExports {
  init(): void;
  widen_bf16(src: number, dst: number, n: number): void;
  widen_f16(src: number, dst: number, n: number): void;
  rmsnorm_fwd(x: number, w: number, out: number, rstd: number, n: number, h: number, eps: number): void;
  rope(x: number, ld: number, pos: number, cos: number, sin: number, n: number, nHeads: number, d: number, inverse: number): void;
  softmax_causal(p: number, nBatch: number, rows: number, S: number, T: number, pos0: number, scale: number): void;
  softmax_backward(p: number, dp: number, n: number, S: number, scale: number): void;
  sum_abs_prod(w: number, wtype: number, g: number, n: number): number;
  silu_mul(gate: number, up: number, ld: number, out: number, n: number, I: number): void;
  silu_mul_bwd(dOut: number, gu: number, dgu: number, rows: number, I: number): void;
  rmsnorm_bwd(dy: number, x: number, w: number, rstd: number, dx: number, dw: number, n: number, h: number): void;
  add(a: number, b: number, out: number, n: number): void;
  add_bias(y: number, ld: number, b: number, n: number, d: number): void;
  adamw(w: number, g: number, m: number, v: number, n: number, gs: number, b1: number, c1: number, b2: number, c2: number, eps: number, decay: number, stepSize: number, bc2: number): void;
  lora_add(y: number, ldy: number, xa: number, bt: number, n: number, out: number, r: number): void;
  keep_mask(mask: number, n: number, threshold: bigint, seed: number): void;
  dropout_apply(x: number, mask: number, s: number, out: number, n: number): void;
  dropout_add(dx: number, dh: number, mask: number, s: number, n: number): void;
  to_heads(x: number, ldx: number, out: number, B: number, T: number, nHeads: number, nKV: number, d: number): void;
  from_heads(x: number, out: number, ldo: number, B: number, T: number, nHeads: number, nKV: number, d: number, accumulate: number): void;
  row_max_sumexp(x: number, rows: number, cols: number, ld: number, mOut: number, sOut: number): void;
  softmax_rows_lse(x: number, rows: number, cols: number, ld: number, lse: number, scale: number): void;
  gemm(a: number, lda: number, b: number, ldb: number, btype: number, transB: number, c: number, ldc: number,
    m: number, n0: number, n1: number, k: number, accumulate: number, work: number): void;
  gemm_work_floats(m: number): number;
  transpose(a: number, rows: number, cols: number, out: number): void;
  gemv_nt(a: number, m: number, k: number, w: number, btype: number, rows: number, c: number, ldc: number): void;
  deinterleave8(a: number, m: number, k: number, out: number): void;
  gemv_bf16_eo(a: number, ae: number, m: number, k: number, w: number, rows: number, c: number, ldc: number): void;
}

/**
 * The slice of the WebAssembly JS API used here, typed locally: the project's `lib` setting
 * (ES2022, no DOM) does not declare the WebAssembly namespace.
 */
export interface WasmMemory { readonly buffer: ArrayBuffer | SharedArrayBuffer; grow(pages: number): number }
export type WasmModule = object;
interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: object) => { exports: object };
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
/** Low addresses stay unused: pointer 0 means "none" to the kernels. */
const BASE = 1024;
const ALIGN = 64;

function decode(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

let plainModule: WasmModule | null = null;
let sharedModule: WasmModule | null = null;

/**
 * The compiled kernels module (compiled once per thread). The shared build prefers the relaxed
 * SIMD variant (FMA in the GEMM micro-kernel) where the engine supports it (Node 22+).
 */
export function kernelsModule(shared: boolean): WasmModule {
  if (shared) {
    if (!sharedModule) {
      try { sharedModule = new WA.Module(decode(KERNELS_SHARED_RELAXED_WASM)); } catch { sharedModule = new WA.Module(decode(KERNELS_SHARED_WASM)); }
    }
    return sharedModule;
  }
  return (plainModule ??= new WA.Module(decode(KERNELS_WASM)));
}

export type HeapArray = Float32Array | Float64Array | Int32Array | Uint16Array | Uint8Array;

export class WasmHeap {
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  private top = BASE;
  /** allocations that did not fit and became plain arrays (their kernels then copy) */
  fallbacks = 0;

  /** A new heap; or, with `memory`, kernels over an existing (shared) memory (worker threads). */
  constructor(readonly shared = false, initialBytes = 16 << 20, memory?: WasmMemory, module?: WasmModule) {
    const pages = Math.max(1, Math.ceil(initialBytes / PAGE));
    this.memory = memory ?? new WA.Memory(shared ? { initial: pages, maximum: MAX_PAGES, shared: true } : { initial: pages, maximum: MAX_PAGES });
    const inst = new WA.Instance(module ?? kernelsModule(shared), { env: { memory: this.memory } });
    this.k = inst.exports as unknown as KernelExports;
    this.k.init(); // constant tables in low memory (below BASE)
  }

  get capacity(): number { return this.memory.buffer.byteLength; }
  get used(): number { return this.top; }

  /**
   * Make room for `bytes` more above the current top. On a plain heap this detaches every
   * existing view when it grows: call it only where no view into the heap is live.
   */
  reserve(bytes: number): void {
    const need = this.top + bytes + ALIGN;
    if (need <= this.capacity) return;
    const pages = Math.ceil(need / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (this.memory.buffer.byteLength / PAGE + pages > MAX_PAGES) throw new RangeError(`wasm heap: ${need} bytes exceed 4 GiB`);
    this.memory.grow(pages);
  }

  /** Pointer to `bytes` bytes (64-byte aligned), or -1 when they do not fit (never grows). */
  tryAlloc(bytes: number): number {
    const p = (this.top + ALIGN - 1) & ~(ALIGN - 1);
    if (p + bytes > this.capacity) return -1;
    this.top = p + bytes;
    return p;
  }

  /** Pointer to `bytes` bytes, growing the heap if needed (see reserve() for what that implies). */
  alloc(bytes: number): number {
    let p = this.tryAlloc(bytes);
    if (p < 0) { this.reserve(bytes); p = this.tryAlloc(bytes); }
    return p;
  }

  /** Float32Array of n floats in the heap, or a plain array when the heap is full. */
  f32(n: number): Float32Array {
    const p = this.tryAlloc(n * 4);
    if (p < 0) { this.fallbacks++; return new Float32Array(n); }
    return new Float32Array(this.memory.buffer, p, n);
  }

  /** Int32Array of n ints in the heap, or a plain array when the heap is full. */
  i32(n: number): Int32Array {
    const p = this.tryAlloc(n * 4);
    if (p < 0) { this.fallbacks++; return new Int32Array(n); }
    return new Int32Array(this.memory.buffer, p, n);
  }

  mark(): number { return this.top; }
  release(mark: number): void { this.top = mark; }

  /** Byte address of an array that lives in this heap, or -1. */
  ptrOf(a: HeapArray): number {
    return a.buffer === this.memory.buffer ? a.byteOffset : -1;
  }

  viewF32(ptr: number, n: number): Float32Array { return new Float32Array(this.memory.buffer, ptr, n); }
  viewU16(ptr: number, n: number): Uint16Array { return new Uint16Array(this.memory.buffer, ptr, n); }

  /** A view of the same type as `like`, of n elements at ptr. */
  viewLike(like: HeapArray, ptr: number, n: number): HeapArray {
    const C = like.constructor as new (b: ArrayBufferLike, o: number, n: number) => HeapArray;
    return new C(this.memory.buffer, ptr, n);
  }
}

let mainHeap: WasmHeap | null = null;
let scratchHeap: WasmHeap | null = null;

/**
 * The process-wide activation heap: the forward pass allocates its temporaries here (mark/release
 * per block) so GEMM outputs and kernels share buffers with no copies.
 */
export function activationHeap(): WasmHeap {
  return (mainHeap ??= new WasmHeap(false, 64 << 20));
}

/** The most a workspace reservation asks for; beyond it buffers fall back to plain arrays. */
const MAX_RESERVE = 3 * 2 ** 30;
let heapQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs `f` with the activation heap to itself: earlier callers finish first (async forwards would
 * otherwise interleave their allocations at every await), `bytes` are reserved up front (the only
 * point where the heap grows), and everything allocated inside is released afterwards.
 * Never nest: a call from inside `f` would wait for itself.
 */
export function withActivationHeap<T>(bytes: number, f: (H: WasmHeap) => Promise<T>): Promise<T> {
  const body = async (): Promise<T> => {
    const H = activationHeap();
    const mark = H.mark();
    try {
      H.reserve(Math.min(bytes, MAX_RESERVE));
      return await f(H);
    } finally {
      H.release(mark);
    }
  };
  const r = heapQueue.then(body, body);
  heapQueue = r.catch(() => undefined);
  return r;
}

/** Where kernels run on arrays that live outside the activation heap (copied in and out). */
export function copyHeap(): WasmHeap {
  return (scratchHeap ??= new WasmHeap(false, 16 << 20));
}
