/**
 * GEMMs through onnxruntime-node (MLAS kernels, multi-threaded): the fastest fp32 matmul
 * reachable from Node here. Each distinct op shape family gets one tiny ONNX graph with symbolic
 * dimensions, built once and reused. Outputs are written straight into the caller's C (ORT
 * pre-allocated outputs), so no result is copied.
 *
 * bf16/f16 weights are widened per call by the WebAssembly SIMD kernels into a scratch heap (ORT's
 * JS API has no bfloat16 tensors); several row-stacked weights (q/k/v, gate/up) are widened into
 * one buffer and run as one GEMM, wider (transB) or deeper (backward's dx). f32 weights are passed
 * as they are.
 * Tiny products go to the JS kernel, where a native call would cost more than the arithmetic.
 *
 * session.run() is synchronous on the calling thread (the binding defers it with setImmediate),
 * so widening cannot overlap a running GEMM; it is made cheap instead (one SIMD pass at memory
 * speed). Calls are serialized: the scratch heap holds one call's widened weights at a time.
 */
import ort from 'onnxruntime-node';
import onnxPkg from 'onnx-proto';
import { transposeInto } from './kernels.js';
import { denseA, type Backend, type GemmArgs, type BmmArgs, type BOperand } from './backend.js';
import { jsBackend } from './js-backend.js';
import { WasmHeap } from './wasm/heap.js';
import { ThreadPool } from './wasm/pool.js';
import { OP_GEMV_PARTS, GEMV_MAX_PARTS } from './wasm/jobs.js';
import { RESIDENT_MAX_BYTES } from './resident.js';

const { onnx } = onnxPkg;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT = onnx.AttributeProto.AttributeType.INT;

/** Below this many multiply-adds the JS kernel wins over a native call. */
const SMALL_MACS = 1 << 17;

function valueInfo(name: string, dims: (string | number)[], elemType: number = FLOAT) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
}

function encodeModel(nodes: InstanceType<typeof onnx.NodeProto>[], inputs: ReturnType<typeof valueInfo>[], outputs: ReturnType<typeof valueInfo>[]): Uint8Array {
  const graph = onnx.GraphProto.create({ name: 'g', node: nodes, input: inputs, output: outputs });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

function gemmGraph(transA: boolean, transB: boolean, accumulate: boolean): Uint8Array {
  const node = onnx.NodeProto.create({
    opType: 'Gemm', input: accumulate ? ['A', 'B', 'C'] : ['A', 'B'], output: ['Y'],
    attribute: [{ name: 'transA', i: transA ? 1 : 0, type: INT }, { name: 'transB', i: transB ? 1 : 0, type: INT }, { name: 'beta', f: 1, type: onnx.AttributeProto.AttributeType.FLOAT }],
  });
  const inputs = [valueInfo('A', transA ? ['k', 'm'] : ['m', 'k']), valueInfo('B', transB ? ['n', 'k'] : ['k', 'n'])];
  if (accumulate) inputs.push(valueInfo('C', ['m', 'n']));
  return encodeModel([node], inputs, [valueInfo('Y', ['m', 'n'])]);
}

/** Batched matmul with transposes folded into MLAS packing (com.microsoft FusedMatMul, no Transpose copies). */
function bmmGraph(transA: boolean, transB: boolean): Uint8Array {
  const node = onnx.NodeProto.create({
    opType: 'FusedMatMul', domain: 'com.microsoft', input: ['A', 'B'], output: ['Y'],
    attribute: [{ name: 'transA', i: transA ? 1 : 0, type: INT }, { name: 'transB', i: transB ? 1 : 0, type: INT }],
  });
  return encodeModel([node], [valueInfo('A', transA ? ['b', 'k', 'm'] : ['b', 'm', 'k']), valueInfo('B', transB ? ['b', 'n', 'k'] : ['b', 'k', 'n'])], [valueInfo('Y', ['b', 'm', 'n'])]);
}

export interface OrtBackendOptions {
  /** intra-op threads (default: all cores) */
  threads?: number;
  /** largest M that takes the stored-weight GEMV path (default GEMV_MAX_M; 0 disables it) */
  gemvMaxM?: number;
  /** 16-bit weights up to this many bytes in all are kept resident for multi-threaded GEMVs (default RESIDENT_MAX_BYTES; 0 disables) */
  residentMaxBytes?: number;
}



/** bf16/f16 elements widened per step through a small bounce buffer that stays in cache. */
const WIDEN_CHUNK = 1 << 16;
/**
 * Up to this many rows of A (decoding), products with 16-bit weights skip widening and ORT: a
 * WebAssembly kernel reads each weight once at its stored width (widening would write and ORT
 * re-read it at twice that), which is what bounds small-M products.
 */
const GEMV_MAX_M = 4;
/**
 * transA products of at least TRANSPOSE_MIN_MACS whose A has up to TRANSPOSE_MAX_FLOATS elements
 * run as A^T (one copy) times B. Below it the copy costs more than it saves: the default model's
 * training (weight gradients of 0.2G multiply-adds) was 10% slower with it.
 */
const TRANSPOSE_MIN_MACS = 1 << 28;
const TRANSPOSE_MAX_FLOATS = 1 << 24;

/** bytes of weight rows staged per GEMV step */
const GEMV_CHUNK_BYTES = 256 << 10;

export class OrtBackend implements Backend {
  readonly name = 'onnxruntime';
  private sessions = new Map<string, Promise<ort.InferenceSession>>();
  /** widened weights; its views live only during one gemm call, so it may grow freely */
  private heap = new WasmHeap(false, 64 << 20);

  /** decode GEMVs on all cores, over weights resident in its shared heap */
  private pool: ThreadPool | null = null;
  /** a weight's storage (its ArrayBuffer) -> the address of its resident copy; views of it map by offset */
  private resident = new WeakMap<ArrayBufferLike, number>();
  private residentBytes = 0;

  /** A^T for transA products (reused; calls are serialized) */
  private transposed = new Float32Array(0);

  /** plain copies of SharedArrayBuffer-backed operands (A, B, C), reused; see plain() */
  private staging: Float32Array[] = [new Float32Array(0), new Float32Array(0), new Float32Array(0)];

  /** tail of the queue of calls (the scratch heap is reused by each) */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private opts: OrtBackendOptions = {}) {}

  /** Run calls one after another: the scratch heap must not change under a pending session.run. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(f, f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  private session(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      // ORT's pool threads sleep between calls instead of spinning: a spinning thread takes the
      // core our WebAssembly kernels (and their worker) run on between GEMMs. Measured on 2 cores:
      // TinyLlama-shape forward 15% faster, default-model training step 1.5-1.8x faster, raw
      // GEMM unchanged. SHORTENED_ORT_SPINNING=1 turns spinning back on.
      const spin = process.env['SHORTENED_ORT_SPINNING'] === '1' ? '1' : '0';
      s = ort.InferenceSession.create(build(), {
        intraOpNumThreads: this.opts.threads ?? 0,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: spin } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * `a` itself, or a copy in a reused plain array when it lives in a SharedArrayBuffer (weights
   * shared with data-parallel replicas): onnxruntime-node's tensors take only plain ArrayBuffers.
   */
  private plain(a: Float32Array, slot: 0 | 1 | 2, copy = true): Float32Array {
    if (!(a.buffer instanceof SharedArrayBuffer)) return a;
    let s = this.staging[slot]!;
    if (s.length < a.length) s = this.staging[slot] = new Float32Array(a.length);
    const v = s.subarray(0, a.length);
    if (copy) v.set(a);
    return v;
  }

  /** The B operand as f32: an f32 array as is, anything else widened/stacked into the scratch heap. */
  private weightF32(b: BOperand): Float32Array {
    if (b instanceof Float32Array) return this.plain(b, 1);
    const parts = Array.isArray(b) ? b : [b];
    if (parts.length === 1 && !(parts[0] instanceof Float32Array) && parts[0]!.dtype === 'f32') return this.plain(parts[0]!.data as Float32Array, 1);
    const total = parts.reduce((s, p) => s + (p instanceof Float32Array ? p.length : p.data.length), 0);
    const H = this.heap;
    H.release(0);
    H.reserve(total * 4 + WIDEN_CHUNK * 2 + 256); // may grow (and detach) only this heap's views
    const dst = H.alloc(total * 4), bounce = H.alloc(WIDEN_CHUNK * 2);
    let off = dst;
    for (const p of parts) {
      const data = p instanceof Float32Array ? p : p.data;
      if (data instanceof Float32Array) H.viewF32(off, data.length).set(data);
      else {
        const widen = (p as { dtype: string }).dtype === 'bf16' ? H.k.widen_bf16 : H.k.widen_f16;
        for (let i = 0; i < data.length; i += WIDEN_CHUNK) {
          const n = Math.min(WIDEN_CHUNK, data.length - i);
          H.viewU16(bounce, n).set(data.subarray(i, i + n));
          widen(bounce, off + i * 4, n);
        }
      }
      off += data.length * 4;
    }
    return H.viewF32(dst, total);
  }

  /** Whether every B operand is a 16-bit stored weight (the GEMV path's case). */
  private static halfWeights(b: BOperand): boolean {
    const parts = Array.isArray(b) ? b : [b];
    return parts.every((p) => !(p instanceof Float32Array) && p.dtype !== 'f32');
  }

  /**
   * Address of a 16-bit weight's resident copy (made on first use), or -1 when it does not fit
   * under the resident budget. The copy is of the weight's whole storage, so any view of it (the
   * LM head's vocabulary chunks) maps by offset. Weights are read-only here: a 16-bit tensor
   * changed in place after its first GEMV would not be seen (nothing in this project does that).
   */
  private residentPtr(data: Uint16Array): number {
    const buf = data.buffer;
    let base = this.resident.get(buf);
    if (base === undefined) {
      const limit = this.opts.residentMaxBytes ?? RESIDENT_MAX_BYTES;
      if (this.residentBytes + buf.byteLength > limit) return -1;
      const pool = (this.pool ??= new ThreadPool(this.opts.threads));
      base = pool.allocResident(buf.byteLength);
      new Uint8Array(pool.heap.memory.buffer, base, buf.byteLength).set(new Uint8Array(buf));
      this.resident.set(buf, base);
      this.residentBytes += buf.byteLength;
    }
    return base + data.byteOffset;
  }

  /** gemvStored over resident weights, each part's rows split across the pool's threads; false when a part is not resident. */
  private gemvResident(x: GemmArgs, parts: { dtype: string; data: Uint16Array }[]): boolean {
    if (parts.length > GEMV_MAX_PARTS) return false;
    const ptrs = parts.map((p) => this.residentPtr(p.data));
    if (ptrs.some((p) => p < 0)) return false;
    const { m, n, k } = x;
    const pool = this.pool!, H = pool.heap;
    H.release(pool.base);
    try {
      const pa = H.alloc(m * k * 4), pc = H.alloc(m * n * 4);
      H.viewF32(pa, m * k).set(x.a.subarray(0, m * k));
      // one dispatch for all parts (q/k/v, gate/up): each thread takes its share of every part's rows
      // one row at a time, bf16 weights widen cheaper against A de-interleaved once (gemv_bf16_eo)
      let pae = 0;
      if (m < 4 && k >= 8 && parts.some((p) => p.dtype === 'bf16')) {
        pae = H.alloc(m * (k & ~7) * 4);
        H.k.deinterleave8(pa, m, k, pae);
      }
      const jobs: number[][] = Array.from({ length: pool.threads }, () => [OP_GEMV_PARTS, pa, pae, m, k, n, parts.length]);
      let col = 0;
      parts.forEach((p, i) => {
        const rows = p.data.length / k, btype = p.dtype === 'bf16' ? 1 : 2;
        const per = Math.ceil(rows / pool.threads);
        for (let t = 0; t < pool.threads; t++) jobs[t]!.push(ptrs[i]!, btype, Math.min(rows, t * per), Math.min(rows, (t + 1) * per), pc + col * 4);
        col += rows;
      });
      pool.run(jobs);
      x.c.set(H.viewF32(pc, m * n));
    } finally {
      H.release(pool.base);
    }
    return true;
  }

  /** C [m, n] = A [m, k] * stacked W^T for small m, from the stored 16-bit weights. */
  private gemvStored(x: GemmArgs): void {
    const { m, n, k } = x;
    const parts = (Array.isArray(x.b) ? x.b : [x.b]) as { dtype: string; data: Uint16Array }[];
    if (this.gemvResident(x, parts)) return;
    const H = this.heap;
    const rowsPer = Math.max(1, Math.floor(GEMV_CHUNK_BYTES / (2 * k)));
    H.release(0);
    H.reserve((m * k + m * n) * 4 + rowsPer * k * 2 + 256);
    const pa = H.alloc(m * k * 4), pc = H.alloc(m * n * 4), pw = H.alloc(rowsPer * k * 2);
    H.viewF32(pa, m * k).set(x.a.subarray(0, m * k));
    let col = 0;
    for (const p of parts) {
      const rows = p.data.length / k, btype = p.dtype === 'bf16' ? 1 : 2;
      for (let r0 = 0; r0 < rows; r0 += rowsPer) {
        const nr = Math.min(rowsPer, rows - r0);
        H.viewU16(pw, nr * k).set(p.data.subarray(r0 * k, (r0 + nr) * k));
        H.k.gemv_nt(pa, m, k, pw, btype, nr, pc + (col + r0) * 4, n);
      }
      col += rows;
    }
    x.c.set(H.viewF32(pc, m * n));
  }

  gemm(x: GemmArgs): Promise<void> {
    if (x.m * x.n * x.k < SMALL_MACS) return jsBackend.gemm(x);
    return this.serial(() => this.gemmNow(denseA(x)));
  }

  private async gemmNow(x: GemmArgs): Promise<void> {
    if (x.m <= (this.opts.gemvMaxM ?? GEMV_MAX_M) && x.transB && !x.transA && !x.accumulate && OrtBackend.halfWeights(x.b)) return this.gemvStored(x);
    if (x.transA && x.m * x.k <= TRANSPOSE_MAX_FLOATS && x.m * x.n * x.k >= TRANSPOSE_MIN_MACS) {
      // MLAS transposes a block of A for every column block of B it packs; one transpose up front
      // makes it a plain product. Measured for weight gradients (k = 1280 tokens, AVX2 Zen): 48-75
      // GFLOP/s with transA, 90-115 with the transpose counted. Same k order, so the same sums.
      const at = (this.transposed.length >= x.m * x.k ? this.transposed : (this.transposed = new Float32Array(x.m * x.k))).subarray(0, x.m * x.k);
      transposeInto(x.a, x.k, x.m, at);
      x = { ...x, a: at, transA: false };
    }
    const transA = x.transA ?? false, transB = x.transB ?? false, acc = x.accumulate ?? false;
    const sess = await this.session(`gemm:${+transA}${+transB}${+acc}`, () => gemmGraph(transA, transB, acc));
    const b = this.weightF32(x.b);
    const feeds: Record<string, ort.Tensor> = {
      A: new ort.Tensor('float32', this.plain(x.a.subarray(0, x.m * x.k), 0), transA ? [x.k, x.m] : [x.m, x.k]),
      B: new ort.Tensor('float32', b.subarray(0, x.n * x.k), transB ? [x.n, x.k] : [x.k, x.n]),
    };
    const c = x.c.subarray(0, x.m * x.n);
    if (acc) {
      // Y = A B + C: C is an input here, so the result cannot be written over it in place
      feeds['C'] = new ort.Tensor('float32', this.plain(c, 2), [x.m, x.n]);
      const out = await sess.run(feeds);
      c.set(out['Y']!.data as Float32Array);
    } else {
      const y = this.plain(c, 2, false);
      await sess.run(feeds, { Y: new ort.Tensor('float32', y, [x.m, x.n]) });
      if (y !== c) c.set(y);
    }
  }

  bmm(x: BmmArgs): Promise<void> {
    if (x.batch * x.m * x.n * x.k < SMALL_MACS) return jsBackend.bmm(x);
    return this.serial(() => this.bmmNow(x));
  }

  private async bmmNow(x: BmmArgs): Promise<void> {
    const transA = x.transA ?? false, transB = x.transB ?? false;
    const sess = await this.session(`bmm:${+transA}${+transB}`, () => bmmGraph(transA, transB));
    const c = x.c.subarray(0, x.batch * x.m * x.n), y = this.plain(c, 2, false);
    await sess.run({
      A: new ort.Tensor('float32', this.plain(x.a.subarray(0, x.batch * x.m * x.k), 0), transA ? [x.batch, x.k, x.m] : [x.batch, x.m, x.k]),
      B: new ort.Tensor('float32', this.plain(x.b.subarray(0, x.batch * x.k * x.n), 1), transB ? [x.batch, x.n, x.k] : [x.batch, x.k, x.n]),
    }, { Y: new ort.Tensor('float32', y, [x.batch, x.m, x.n]) });
    if (y !== c) c.set(y);
  }
}

/** The process-wide default backend (kept here for existing imports; see select.ts). */
export { getBackend } from './select.js';
