/**
 * The LLaMA-family decoder, forward and backward, written out layer by layer (llm.c style).
 *
 *   x = embed[ids]
 *   for each block:  x = x + o_proj(attn(rope(q,k), v)) of rmsnorm(x)
 *                    x = x + down(silu(gate(h)) * up(h)),   h = rmsnorm(x)
 *   logits = lm_head(rmsnorm(x))
 *
 * Activations are f32 arrays of [N = B*T, width]; weights keep their stored dtype and are widened
 * inside the GEMM backend. With `keep`, each block saves what its backward needs.
 */
import { bulkCopy, type Backend } from '../engine/backend.js';
import { getBackend } from '../engine/select.js';
import { type Tensor, toF32, rowsToF32 } from '../engine/tensor.js';
import { addBias, biasBackward, transposeInto, addTransposed, columns } from '../engine/kernels.js';
import * as wk from '../engine/wasm-kernels.js';
import { withActivationHeap, type WasmHeap } from '../engine/wasm/heap.js';
import { attentionForward, attentionBackward, attentionProbs, attentionOutput, type AttnSaved } from './attention.js';
import { ropeTables, type RopeTables } from './rope.js';
import type { LlamaModel, BlockWeights, BlockWeightName, BlockBiasName } from './weights.js';
import type { LoraAdapters, LoraPair, LoraGrads, LoraTarget } from './lora.js';
import type { KVCache } from './kv-cache.js';
import { ArrayRecycler } from './array-recycler.js';
import { UserError } from '../util/errors.js';

/** What one block saves for its backward. */
/**
 * What a block's backward needs from its forward. Above RECOMPUTE_MIN_BYTES, the normed inputs and
 * the MLP's activation are not kept: the backward recomputes them (elementwise, bit for bit the
 * forward's), which saves a third of the kept memory and of the copies into fresh pages that
 * keeping them costs. Small blocks keep them (recomputing cost the default model's training 5-10%).
 */
export interface BlockActs {
  xIn: Float32Array; rstd1: Float32Array; xn1?: Float32Array;
  /** att (the attention output, o's input): absent where the probabilities are (see blockInto) */
  attn: AttnSaved; att?: Float32Array;
  xMid: Float32Array; rstd2: Float32Array; xn2?: Float32Array;
  /** gate and up projections, rows [gate | up] */
  gu: Float32Array; act?: Float32Array;
  /** LoRA dropout masks and A-projections, per adapted projection */
  lora: Partial<Record<LoraTarget, LoraSaved>>;
}

/**
 * What a LoRA projection keeps for its backward. The dropped input h = x * mask / (1 - p) is not
 * kept: the backward rebuilds it from the block's saved input x, so a step stores one byte per
 * input element instead of two float copies (3.3 GB less at 1.1B shapes, micro-batch 4 x 256).
 */
interface LoraSaved {
  /** scale * dropout(x) A^T */
  xa: Float32Array;
  /** 1 where the input element was kept, 0 where dropped; null without dropout */
  mask: Uint8Array | null;
  /** 1 / (1 - dropout) */
  keepScale: number;
}

export type BlockGrads = Partial<Record<BlockWeightName | BlockBiasName, Float32Array>>;

/**
 * Takes a block's weight gradients as they are computed, rows [row0, row0 + g.length / cols) of
 * one tensor at a time, so a caller that reduces them (Taylor+) never holds a block's gradients:
 * `g` is reused after the call returns.
 */
export interface BackwardOptions {
  /**
   * Write dL/d(block input) into dxOut's array and return it: the caller is done with dxOut (a
   * block-by-block backward), and a fresh array would cost its first writes (page faults).
   */
  reuseDxOut?: boolean;
}

export type GradSink = (name: BlockWeightName | BlockBiasName, row0: number, g: Float32Array) => void;

/** a block's forward keeps xn1, xn2 and act when they take fewer bytes than this (see BlockActs) */
export const RECOMPUTE_MIN_BYTES = 16 << 20;

/** Elements of a weight gradient computed per GEMM when a sink takes them (64 MB at most). */
export const SINK_GRAD_ELEMENTS = 1 << 24;

export interface Grads {
  embed: Float32Array | null;
  blocks: BlockGrads[];
  norm: Float32Array | null;
  lmHead: Float32Array | null;
  lora: Partial<Record<LoraTarget, LoraGrads>>[];
}

export interface GradOptions {
  /** weight gradients for block parameters (false: frozen, none computed) */
  blocks?: boolean;
  embed?: boolean;
  norm?: boolean;
  lmHead?: boolean;
}

export interface ForwardOptions {
  /** next-token targets per position, -100 = ignore (default: ids shifted left, last ignored) */
  targets?: Int32Array;
  /** keep activations for backward */
  keep?: boolean;
  /** collect the residual stream at every block boundary ([0] = embeddings) */
  hidden?: boolean;
  /** return full logits [N, V] */
  logits?: boolean;
  /** run only these blocks, in this order (default: all) */
  blocks?: number[];
  /** KV cache to read and extend (generation) */
  cache?: KVCache;
  /** LoRA dropout randomness (training only); without it dropout is off */
  rng?: () => number;
  /**
   * Also the gradient of the mean NLL w.r.t. the last block's output (result.dxFinal), made inside
   * the forward's head pass (see headNllInto): a backward that needs no lm_head or final-norm
   * gradient (Taylor+, LoRA) starts at the last block, and the logits are never made twice.
   */
  headGrad?: boolean;
}

export interface ForwardResult {
  B: number;
  T: number;
  logits?: Float32Array;
  /** per-position NLL of the target (NaN where ignored) */
  nll?: Float32Array;
  /** mean NLL over non-ignored targets */
  loss?: number;
  count?: number;
  hidden?: Float32Array[];
  /** internal state for backward */
  saved?: { ids: Int32Array; targets: Int32Array; acts: BlockActs[]; blocks: number[]; xFinal: Float32Array; xnF: Float32Array; rstdF: Float32Array; lse?: Float64Array; logits?: Float32Array };
  /** with headGrad: dL/d(last block's output) of the mean NLL */
  dxFinal?: Float32Array;
}

/** The LM head runs over vocabulary chunks of this many rows of lm_head, for up to HEAD_ROWS tokens at once. */

/** a[off, off + n) *= f */
function scaleRow(a: Float32Array, off: number, n: number, f: number): void {
  for (let j = off; j < off + n; j++) a[j]! *= f;
}

/** LoRA dropout applied to x: x * mask * keepScale into h (a new array by default) */
function dropped(x: Float32Array, mask: Uint8Array, keepScale: number, h: Float32Array = new Float32Array(mask.length)): Float32Array {
  wk.dropoutApply(x, mask, keepScale, h, mask.length);
  return h;
}

const HEAD_VOCAB_CHUNK = 4096;
/** Up to this many rows (decoding), the head runs over the whole vocabulary at once: one GEMV instead of V / HEAD_VOCAB_CHUNK. */
const HEAD_WHOLE_ROWS = 4;
const headChunk = (N: number, V: number) => (N <= HEAD_WHOLE_ROWS ? V : Math.min(V, HEAD_VOCAB_CHUNK));
const HEAD_ROWS = 4096;
/** A forward that keeps activations also keeps its logits when they are at most this many floats (64 MB). */
export const KEEP_LOGITS_MAX = 1 << 24;

/** Default LM targets: ids[b, t+1], and -100 at each row's last position. */
export function shiftTargets(ids: Int32Array, B: number, T: number): Int32Array {
  const t = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) for (let i = 0; i + 1 < T; i++) t[b * T + i] = ids[b * T + i + 1]!;
  return t;
}

export class LlamaRunner {
  readonly be: Backend;
  adapters: LoraAdapters | null = null;
  private rope: RopeTables | null = null;
  private normCache = new Map<Tensor, Float32Array>();
  /** with recycleKept(): kept activations and backward buffers, reused after each reclaim() */
  private kept: ArrayRecycler | null = null;

  constructor(readonly model: LlamaModel, backend?: Backend) {
    this.be = backend ?? getBackend();
  }

  get config() { return this.model.config; }

  /** Norm and bias vectors widened once (they are small). Call invalidate() after changing weights. */
  vec(t: Tensor): Float32Array {
    let v = this.normCache.get(t);
    if (!v) { v = t.dtype === 'f32' ? (t.data as Float32Array) : toF32(t); this.normCache.set(t, v); }
    return v;
  }

  invalidate(): void { this.normCache.clear(); }

  /**
   * From now on, the arrays a kept forward and its backward return (saved activations, dx) are
   * recycled: after reclaim() they are reused by the next micro-batch, so the caller must be done
   * with the previous forward's result (and copy what it keeps, such as nll) before reclaiming.
   * Weight gradients are never recycled (an optimizer may adopt them).
   */
  recycleKept(): void { this.kept ??= new ArrayRecycler(); }

  /** The previous forward's kept activations and its backward's buffers are dead: reuse them. */
  reclaim(): void { this.kept?.reclaimAll(); }
  /** A point in the kept arrays handed out (with recycleKept()), for reclaimSince. */
  keptMark(): number { return this.kept?.mark() ?? 0; }
  /** The kept arrays handed out since `mark` are dead (one recomputed block's, after its backward): reuse them. */
  reclaimSince(mark: number): void { this.kept?.reclaimSince(mark); }

  /** An array for kept activations or backward buffers: recycled when recycleKept() is on. */
  private keptF32(n: number, zero = false): Float32Array {
    return this.kept ? this.kept.take(n, zero) : new Float32Array(n);
  }

  ropeFor(positions: number): RopeTables {
    if (!this.rope || this.rope.positions < positions) this.rope = ropeTables(this.config, Math.max(positions, this.rope ? this.rope.positions * 2 : 256));
    return this.rope;
  }

  checkIds(ids: Int32Array): void {
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < V)) throw new UserError(`token id ${id} out of range [0, ${V})`);
    }
  }

  embed(ids: Int32Array, keep = false): Float32Array {
    const H = this.config.hiddenSize;
    const x = keep ? this.keptF32(ids.length * H) : new Float32Array(ids.length * H);
    const row = new Float32Array(H);
    for (let i = 0; i < ids.length; i++) x.set(rowsToF32(this.model.weights.embed, ids[i]!, 1, row), i * H);
    return x;
  }

  /**
   * Adds a LoRA delta scale * dropout(x) A^T B^T into y [n, out] (row stride ldy: y may be one
   * projection's columns of a stacked output). Returns what the backward needs.
   */
  async loraForward(x: Float32Array, lora: LoraPair, n: number, y: Float32Array, ldy: number, rng: (() => number) | undefined,
    scratch: (n: number) => Float32Array = (k) => new Float32Array(k)): Promise<LoraSaved> {
    const inp = lora.A.length / lora.r, out = lora.B.length / lora.r;
    const drop = lora.dropout > 0 && rng !== undefined;
    const keepScale = drop ? 1 / (1 - lora.dropout) : 1;
    // one draw from the training RNG seeds the whole mask (a fast inline generator fills it)
    const mask = drop ? wk.keepMask(n * inp, lora.dropout, Math.floor(rng() * 4294967296)) : null;
    const h = mask ? dropped(x, mask, keepScale, scratch(n * inp)) : x;
    // xa is kept pre-scaled: y += xa B^T, and the backward's dB = dy^T xa needs no extra pass
    const xa = new Float32Array(n * lora.r);
    await this.be.gemm({ a: h, b: lora.A, c: xa, m: n, n: lora.r, k: inp, transB: true });
    for (let i = 0; i < xa.length; i++) xa[i]! *= lora.scale;
    // y += xa B^T in one pass over y (a GEMM with k = r would run at a few GFLOP/s)
    const bt = new Float32Array(lora.r * out);
    for (let j = 0; j < out; j++) for (let k = 0; k < lora.r; k++) bt[k * out + j] = lora.B[j * lora.r + k]!;
    wk.loraAdd(y, ldy, xa, bt, n, out, lora.r);
    return { xa, mask, keepScale };
  }

  /**
   * One block on x [B*T, H] (returns the new residual stream). Positions are pos0..pos0+T-1;
   * with a cache, keys/values of earlier positions come from it and the new ones are appended.
   */
  async block(li: number, x: Float32Array, B: number, T: number, pos0: number, opts: { cache?: KVCache; keep?: boolean; rng?: () => number }): Promise<{ x: Float32Array; acts?: BlockActs }> {
    return withActivationHeap(this.workspaceBytes(B, T, pos0 + T, opts.keep ?? false), async (heap) => {
      const xOut = new Float32Array(B * T * this.config.hiddenSize);
      // one block's activations are small next to a model's: att is kept (width pruning reads it)
      const acts = await this.blockInto(li, x, xOut, B, T, pos0, { ...opts, keepAtt: true }, heap);
      return acts ? { x: xOut, acts } : { x: xOut };
    });
  }

  /**
   * Bytes of activation heap a forward over B x T tokens (keys up to S) uses: one block's buffers,
   * the residual stream, the head's logits chunk, and room to stage arrays from outside the heap.
   */
  private workspaceBytes(B: number, T: number, S: number, keep: boolean): number {
    const c = this.config, N = B * T, H = c.hiddenSize;
    let block = 0, widest = H;
    for (const l of c.layers) {
      const q = l.numHeads * c.headDim, kv = l.numKvHeads * c.headDim, I = l.intermediateSize;
      // xn1 o xMid xn2 down, qkv, qh oh att, gate/up act, kh vh, probabilities
      block = Math.max(block, N * (5 * H + q + 2 * kv + 3 * q + 3 * I + 2 * kv) + B * l.numHeads * T * S + 4 * N);
      widest = Math.max(widest, 2 * I, l.numHeads * S); // per token: [gate|up], probabilities
    }
    const head = N * H + Math.min(N, HEAD_ROWS) * headChunk(N, this.config.vocabSize) + 4 * N;
    const staging = (keep ? 3 : 1) * N * widest;
    return 4 * (block + head + 2 * N * H + staging) + (1 << 20);
  }

  /**
   * The block, writing the new residual stream into xOut. Temporaries live in the activation heap
   * (GEMM outputs and kernels share them, no copies); with `keep`, what the backward needs is
   * copied out of it at the end, so it outlives the call. q/k/v and gate/up run as one stacked
   * GEMM each (LoRA deltas added into their column ranges), read in place through row strides.
   */
  private async blockInto(li: number, x: Float32Array, xOut: Float32Array, B: number, T: number, pos0: number,
    opts: { cache?: KVCache; keep?: boolean; keepAtt?: boolean; rng?: () => number }, heap: WasmHeap): Promise<BlockActs | undefined> {
    const cfg = this.config;
    const w: BlockWeights = this.model.weights.blocks[li]!;
    const shape = cfg.layers[li]!;
    const H = cfg.hiddenSize, d = cfg.headDim, nH = shape.numHeads, nKV = shape.numKvHeads, I = shape.intermediateSize;
    const N = B * T, qW = nH * d, kvW = nKV * d;
    const keep = opts.keep ?? false;
    const tmp = (n: number) => heap.f32(n);
    const lora = this.adapters?.[li] ?? {};
    const loraSave: BlockActs['lora'] = {};
    /** adds projection t's LoRA delta (if adapted) into y, row stride ld */
    const addLora = async (t: LoraTarget, inp: Float32Array, y: Float32Array, ld: number) => {
      const pair = lora[t];
      if (!pair) return;
      const mark = heap.mark();
      const ls = await this.loraForward(inp, pair, N, y, ld, opts.rng, tmp);
      heap.release(mark);
      if (keep) loraSave[t] = ls;
    };
    /**
     * y [N, sum out_i] = inp [W_1; W_2; ...]^T: one GEMM over the stacked weights (q/k/v, gate/up,
     * or a single projection), then each part's bias and LoRA delta in its own column range.
     */
    const proj = async (parts: [LoraTarget, Tensor, Tensor | undefined][], inp: Float32Array, y: Float32Array) => {
      const width = parts.reduce((s, [, W]) => s + W.shape[0]!, 0), inW = parts[0]![1].shape[1]!;
      await this.be.gemm({ a: inp, b: parts.length === 1 ? parts[0]![1] : parts.map(([, W]) => W), c: y, m: N, n: width, k: inW, transB: true });
      let off = 0;
      for (const [t, W, bias] of parts) {
        const out = W.shape[0]!, ys = off ? y.subarray(off) : y;
        if (bias) wk.addBias(ys, this.vec(bias), N, out, width);
        await addLora(t, inp, ys, width);
        off += out;
      }
      return y;
    };

    // attention
    const xn1 = tmp(N * H), rstd1 = keep ? this.keptF32(N) : tmp(N);
    wk.rmsnormForward(x, this.vec(w.inputNorm), xn1, rstd1, N, H, cfg.rmsNormEps);
    // rows of qkv are [q | k | v]
    const width = qW + 2 * kvW;
    const qkv = await proj([['q', w.q, w.qBias], ['k', w.k, w.kBias], ['v', w.v, w.vBias]], xn1, tmp(N * width));
    const q = qkv, k = qkv.subarray(qW), v = qkv.subarray(qW + kvW);
    const ldq = width, ldk = width, ldv = width;
    const S = pos0 + T;
    const tables = this.ropeFor(S);
    const pos = heap.i32(N);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = pos0 + t;
    wk.rope(q, pos, tables.cos, tables.sin, N, nH, d, false, ldq);
    wk.rope(k, pos, tables.cos, tables.sin, N, nKV, d, false, ldk);
    const qh = tmp(N * qW);
    wk.toHeads(q, qh, B, T, nH, nKV, d, ldq);
    let kh = tmp(N * kvW), vh = tmp(N * kvW);
    wk.toHeads(k, kh, B, T, nKV, nKV, d, ldk);
    wk.toHeads(v, vh, B, T, nKV, nKV, d, ldv);
    if (opts.cache) ({ kh, vh } = opts.cache.append(li, kh, vh, B, T, pos0));
    const dims = { B, T, S, pos0, nH, nKV, d };
    const oh = tmp(N * qW);
    const probs = await attentionForward(this.be, qh, kh, vh, oh, dims, tmp(B * nH * T * S));
    const att = tmp(N * qW);
    wk.fromHeads(oh, att, B, T, nH, nKV, d);
    const o = await proj([['o', w.o, w.oBias]], att, tmp(N * H));
    const xMid = tmp(N * H);
    wk.add(x, o, xMid);

    // MLP
    const xn2 = tmp(N * H), rstd2 = keep ? this.keptF32(N) : tmp(N);
    wk.rmsnormForward(xMid, this.vec(w.postNorm), xn2, rstd2, N, H, cfg.rmsNormEps);
    // rows of gu are [gate | up] (kept in this layout for the backward)
    const gu = await proj([['gate', w.gate, w.gateBias], ['up', w.up, w.upBias]], xn2, tmp(N * 2 * I));
    const act = tmp(N * I);
    this.siluMul(gu, act, N, I);
    const down = await proj([['down', w.down, w.downBias]], act, tmp(N * H));
    if (!keep) { wk.add(xMid, down, xOut); return undefined; }
    // a kept xOut is fresh memory outside the heap: the sum goes through the heap and the backend's copy
    const sum = tmp(N * H);
    wk.add(xMid, down, sum);
    bulkCopy(this.be, xOut, sum);
    // what the backward needs leaves the heap in one copy each (the kernels above ran in place)
    const own = (a: Float32Array) => { const c = this.keptF32(a.length); bulkCopy(this.be, c, a); return c; };
    return {
      // the probabilities and the attention output are recomputed in the backward (two small bmms
      // and a softmax) unless kept arrays are recycled (training): a one-shot backward (Taylor+)
      // would spend more on the first writes of fresh copies (a quarter of a block's kept bytes)
      xIn: x, rstd1, attn: { qh: own(qh), kh: own(kh), vh: own(vh), ...(this.kept ? { probs: own(probs) } : {}), dims }, ...(this.kept || opts.keepAtt ? { att: own(att) } : {}),
      xMid: own(xMid), rstd2, gu: own(gu), lora: loraSave,
      ...(4 * N * (2 * H + I) < RECOMPUTE_MIN_BYTES ? { xn1: own(xn1), xn2: own(xn2), act: own(act) } : {}),
    };
  }

  /** RMSNorm backward on the backend's threads where it has the kernel (the same bits), else WebAssembly. */
  private rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array,
    dw: Float32Array | Float64Array | null, n: number, h: number): void {
    if (this.be.rmsnormBackward && !(dw instanceof Float64Array)) this.be.rmsnormBackward(dy, x, w, rstd, dx, dw, n, h);
    else wk.rmsnormBackward(dy, x, w, rstd, dx, dw, n, h);
  }

  /** act = silu(gate) * up from the stacked rows [gate | up] of gu, on the backend's kernel where it has one (the same bits) */
  private siluMul(gu: Float32Array, act: Float32Array, N: number, I: number): void {
    if (this.be.siluMul) this.be.siluMul(gu, gu.subarray(I), act, N, I, 2 * I);
    else wk.siluMul(gu, gu.subarray(I), act, N, I, 2 * I);
  }

  /** Final norm; returns normalized states (and rstd for backward). */
  finalNorm(x: Float32Array, N: number): { xn: Float32Array; rstd: Float32Array } {
    const H = this.config.hiddenSize;
    const xn = new Float32Array(N * H), rstd = new Float32Array(N);
    wk.rmsnormForward(x, this.vec(this.model.weights.norm), xn, rstd, N, H, this.config.rmsNormEps);
    return { xn, rstd };
  }

  /** logits for rows [r0, r0+n) of xn */
  async logitsRows(xn: Float32Array, r0: number, n: number): Promise<Float32Array> {
    const H = this.config.hiddenSize, V = this.config.vocabSize;
    const out = new Float32Array(n * V);
    await this.be.gemm({ a: xn.subarray(r0 * H, (r0 + n) * H), b: this.model.weights.lmHead, c: out, m: n, n: V, k: H, transB: true });
    return out;
  }

  /**
   * NLL of `targets` under the head. The head runs over vocabulary chunks of all rows at once
   * (each lm_head row is widened once, the GEMMs stay wide) with an online log-sum-exp per row,
   * so [N, V] logits need not exist unless asked for.
   */
  async headNll(xn: Float32Array, targets: Int32Array, N: number, keepLogits: boolean): Promise<{ nll: Float32Array; loss: number; count: number; logits?: Float32Array; lse: Float64Array }> {
    const B = 1, T = N;
    return withActivationHeap(this.workspaceBytes(B, T, T, false), (heap) => this.headNllInto(xn, targets, N, keepLogits, heap));
  }

  /**
   * headNll and, from the same pass, dL/dx of the mean NLL w.r.t. the final norm's input x (whose
   * normalized rows are xn): the head's backward where no lm_head or norm gradient is wanted.
   */
  async headNllGrad(x: Float32Array, xn: Float32Array, rstd: Float32Array, targets: Int32Array, N: number): Promise<{ loss: number; count: number; dx: Float32Array }> {
    const dxn = this.keptF32(N * this.config.hiddenSize, true);
    const head = await withActivationHeap(this.workspaceBytes(1, N, N, false), (heap) => this.headNllInto(xn, targets, N, false, heap, false, dxn));
    return { loss: head.loss, count: head.count, dx: this.finalNormBackward(dxn, x, rstd, N) };
  }

  /** dL/dx of the final norm's input from dL/dxn (no gradient of the norm's weight). */
  private finalNormBackward(dxn: Float32Array, x: Float32Array, rstd: Float32Array, N: number): Float32Array {
    const H = this.config.hiddenSize;
    const dx = this.keptF32(N * H, true); // the norm's backward adds into it
    this.rmsnormBackward(dxn, x, this.vec(this.model.weights.norm), rstd, dx, null, N, H);
    return dx;
  }

  /**
   * The head's pass: NLL per row with an online log-sum-exp over vocabulary chunks. With `dxn`
   * (zero-filled [N, H]) it also leaves there the gradient of the mean NLL w.r.t. xn,
   * (softmax(logits) - onehot(target)) lm_head / count, accumulated online as flash attention does:
   * each chunk's exp(logit - running max) times its lm_head rows is added to the row's sum, which is
   * rescaled whenever the row's max grows, and divided by the row's sum of exponentials at the end.
   */
  private async headNllInto(xn: Float32Array, targets: Int32Array, N: number, keepLogits: boolean, heap: WasmHeap, recycled = false, dxn?: Float32Array): Promise<{ nll: Float32Array; loss: number; count: number; logits?: Float32Array; lse: Float64Array }> {
    const H = this.config.hiddenSize, V = this.config.vocabSize;
    const W = this.model.weights.lmHead;
    // every element is written below
    const logitsAll = keepLogits ? (recycled ? this.keptF32(N * V) : new Float32Array(N * V)) : undefined;
    const R = Math.min(N, HEAD_ROWS), VC = headChunk(N, V);
    const chunk = heap.f32(R * VC), cm = heap.f32(R);
    const cs = new Float64Array(R);
    const m = new Float64Array(N).fill(-Infinity), s = new Float64Array(N), tl = new Float64Array(N).fill(NaN);
    // the gradient's running max per row (f32, as the chunk's exponentials are taken) and unit scales
    const gm = dxn ? heap.f32(R) : null, ones = dxn ? heap.f32(R).fill(1) : null;
    for (let r0 = 0; r0 < N; r0 += R) {
      const n = Math.min(R, N - r0);
      for (let v0 = 0; v0 < V; v0 += VC) {
        const vc = Math.min(VC, V - v0);
        const rowsW: Tensor = { dtype: W.dtype, shape: [vc, H], data: W.data.subarray(v0 * H, (v0 + vc) * H) };
        await this.be.gemm({ a: xn.subarray(r0 * H, (r0 + n) * H), b: rowsW, c: chunk, m: n, n: vc, k: H, transB: true });
        wk.rowMaxSumExp(chunk, n, vc, vc, cm, cs);
        for (let i = 0; i < n; i++) {
          // merge this chunk's (max, sum) into the row's running log-sum-exp
          const r = r0 + i, mc = cm[i]!;
          const M = Math.max(m[r]!, mc);
          if (M > -Infinity) s[r] = s[r]! * Math.exp(m[r]! - M) + cs[i]! * Math.exp(mc - M);
          if (dxn && M > m[r]! && m[r]! > -Infinity) scaleRow(dxn, (r0 + i) * H, H, Math.exp(m[r]! - M));
          m[r] = M;
          if (gm) gm[i] = M;
          const tgt = targets[r]!;
          if (tgt >= v0 && tgt < v0 + vc) tl[r] = chunk[i * vc + tgt - v0]!;
          if (logitsAll) logitsAll.set(chunk.subarray(i * vc, (i + 1) * vc), r * V + v0);
        }
        if (dxn) {
          // exp(logit - running max), in place, times this chunk's lm_head rows, into the rows' sums
          wk.softmaxRowsLse(chunk, n, vc, vc, gm!, ones!);
          await this.be.gemm({ a: chunk, b: rowsW, c: dxn.subarray(r0 * H, (r0 + n) * H), m: n, n: H, k: vc, accumulate: true });
        }
      }
    }
    if (dxn) {
      let count = 0;
      for (let r = 0; r < N; r++) if (targets[r]! >= 0) count++;
      const wt = new Float32Array(H);
      for (let r = 0; r < N; r++) {
        const tgt = targets[r]!;
        // an ignored row has no loss: its gradient is zero (its sum is finite, so scaling by 0 clears it)
        scaleRow(dxn, r * H, H, tgt < 0 ? 0 : 1 / (count * s[r]!));
        if (tgt < 0) continue;
        rowsToF32(W, tgt, 1, wt);
        for (let j = 0; j < H; j++) dxn[r * H + j]! -= wt[j]! / count;
      }
    }
    const nll = new Float32Array(N), lse = new Float64Array(N);
    let sum = 0, count = 0;
    for (let r = 0; r < N; r++) {
      lse[r] = m[r]! + Math.log(s[r]!);
      if (targets[r]! < 0) { nll[r] = NaN; continue; }
      const v = lse[r]! - tl[r]!;
      nll[r] = v;
      sum += v;
      count++;
    }
    return { nll, loss: count ? sum / count : NaN, count, logits: logitsAll, lse };
  }

  /** Full forward over ids [B, T] (row-major). */
  async forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): Promise<ForwardResult> {
    this.checkIds(ids);
    const N = B * T, H = this.config.hiddenSize;
    const blocks = opts.blocks ?? [...Array(this.config.numLayers).keys()];
    const pos0 = opts.cache ? opts.cache.length : 0;
    const keep = opts.keep ?? false;
    return withActivationHeap(this.workspaceBytes(B, T, pos0 + T, keep), async (heap) => {
      let x = this.embed(ids, keep);
      const hidden = opts.hidden ? [x] : undefined;
      const acts: BlockActs[] = [];
      // the residual stream ping-pongs between two heap buffers (plain arrays when kept)
      const stream = keep ? null : [heap.f32(N * H), heap.f32(N * H)];
      for (let i = 0; i < blocks.length; i++) {
        const xOut = stream ? stream[i & 1]! : this.keptF32(N * H);
        const mark = heap.mark();
        const a = await this.blockInto(blocks[i]!, x, xOut, B, T, pos0, { cache: opts.cache, keep, rng: opts.rng }, heap);
        heap.release(mark);
        x = xOut;
        if (a) acts.push(a);
        hidden?.push(stream ? x.slice() : x);
      }
      opts.cache?.advance(T);
      const xn = keep ? this.keptF32(N * H) : heap.f32(N * H), rstd = keep ? this.keptF32(N) : heap.f32(N);
      wk.rmsnormForward(x, this.vec(this.model.weights.norm), xn, rstd, N, H, this.config.rmsNormEps);
      const res: ForwardResult = { B, T, hidden };
      const targets = opts.targets ?? (opts.cache ? new Int32Array(N).fill(-100) : shiftTargets(ids, B, T));
      // a small head's logits are kept for the backward, which then skips recomputing them
      // (not when the head's gradient is made here: then the backward never reads them)
      const headGrad = opts.headGrad ?? false;
      const keepLogits = (opts.logits ?? false) || (keep && !headGrad && N * this.config.vocabSize <= KEEP_LOGITS_MAX);
      const dxn = headGrad ? this.keptF32(N * H, true) : undefined;
      // logits only the backward reads are recycled with the other kept activations
      const head = await this.headNllInto(xn, targets, N, keepLogits, heap, keep && !opts.logits, dxn);
      Object.assign(res, { nll: head.nll, loss: head.loss, count: head.count, ...(opts.logits ? { logits: head.logits } : {}) });
      if (dxn) res.dxFinal = this.finalNormBackward(dxn, x, rstd, N);
      if (keep) res.saved = { ids, targets, acts, blocks, xFinal: x, xnF: xn, rstdF: rstd, lse: head.lse, ...(keepLogits ? { logits: head.logits } : {}) };
      return res;
    });
  }

  /** Gradients of the mean NLL (res.loss) w.r.t. the parameters selected by `want` and LoRA adapters. */
  async backward(res: ForwardResult, want: GradOptions = { blocks: true, embed: true, norm: true, lmHead: true }): Promise<Grads> {
    const s = res.saved;
    if (!s) throw new Error('backward needs a forward with keep: true');
    const cfg = this.config;
    const H = cfg.hiddenSize, V = cfg.vocabSize, N = res.B * res.T;
    const tied = cfg.tieWordEmbeddings;
    const grads: Grads = {
      embed: want.embed || (tied && want.lmHead) ? new Float32Array(V * H) : null,
      blocks: [], norm: want.norm ? new Float32Array(H) : null,
      lmHead: want.lmHead && !tied ? new Float32Array(V * H) : null, lora: [],
    };
    const lmGrad = tied ? (want.lmHead ? grads.embed : null) : grads.lmHead;
    // the forward's head pass made dL/dx already when asked to (headGrad) and nothing here needs the head's own gradients
    let dx = res.dxFinal && !grads.norm && !lmGrad ? res.dxFinal
      : await this.headBackward(res, s.xFinal, s.xnF, s.rstdF, s.targets, s.lse, { norm: grads.norm, lmHead: lmGrad }, s.logits);
    for (let bi = s.blocks.length - 1; bi >= 0; bi--) {
      const li = s.blocks[bi]!;
      const r = await this.blockBackward(li, s.acts[bi]!, dx, res.B, res.T, want.blocks ?? false);
      dx = r.dx;
      grads.blocks[li] = r.grads;
      grads.lora[li] = r.lora;
    }
    if (grads.embed) this.embedBackward(s.ids, dx, grads.embed);
    return grads;
  }

  /** Backward of the embedding lookup: each token's row of `grad` gets dL/dx at its position. */
  embedBackward(ids: Int32Array, dx: Float32Array, grad: Float32Array): void {
    const H = this.config.hiddenSize;
    for (let i = 0; i < ids.length; i++) {
      const o = ids[i]! * H;
      for (let j = 0; j < H; j++) grad[o + j]! += dx[i * H + j]!;
    }
  }

  /**
   * Backward of the LM head and the final norm: the gradient of the mean NLL (over `count`
   * targets) w.r.t. the last block's output x [N, H]. dlogits = (softmax - onehot) / count over
   * vocabulary chunks (each lm_head chunk widened for wide GEMMs, as in the forward), with the
   * forward's log-sum-exps when given, and its logits [N, V] when it kept them (no GEMM to
   * recompute them). Adds into `into.norm` / `into.lmHead` when they are given.
   */
  async headBackward(res: { B: number; T: number; count?: number }, x: Float32Array, xn: Float32Array, rstd: Float32Array, targets: Int32Array,
    lseIn: Float64Array | undefined, into: { norm?: Float32Array | null; lmHead?: Float32Array | null } = {}, logitsIn?: Float32Array): Promise<Float32Array> {
    const w = this.model.weights;
    const H = this.config.hiddenSize, V = this.config.vocabSize, N = res.B * res.T;
    const lmGrad = into.lmHead ?? null;
    const dxn = this.keptF32(N * H, true); // accumulated into
    const count = res.count!;
    const lse = lseIn ?? (await withActivationHeap(this.workspaceBytes(1, N, N, false), (heap) => this.headNllInto(xn, targets, N, false, heap))).lse;
    await withActivationHeap(this.workspaceBytes(1, Math.min(N, HEAD_ROWS), 1, false), async (heap) => {
      const R = Math.min(N, HEAD_ROWS), VC = Math.min(V, HEAD_VOCAB_CHUNK);
      const lg = heap.f32(R * VC), lseF = heap.f32(R), scale = heap.f32(R);
      // the head's gradient is computed transposed, xr^T lg [H, vc]: a plain, wide product over
      // xr transposed once per row chunk (lg^T xr would transpose every logits chunk, and
      // accumulate through a copy), then added into lm_head's rows transposed
      const xrT = lmGrad ? heap.f32(R * H) : null, gT = lmGrad ? heap.f32(H * VC) : null, gTT = lmGrad ? heap.f32(H * VC) : null;
      for (let r0 = 0; r0 < N; r0 += R) {
        const n = Math.min(R, N - r0);
        const xr = xn.subarray(r0 * H, (r0 + n) * H);
        if (xrT) transposeInto(xr, n, H, xrT);
        for (let i = 0; i < n; i++) { lseF[i] = lse[r0 + i]!; scale[i] = targets[r0 + i]! < 0 ? 0 : 1 / count; }
        for (let v0 = 0; v0 < V; v0 += VC) {
          const vc = Math.min(VC, V - v0);
          const Wc: Tensor = { dtype: w.lmHead.dtype, shape: [vc, H], data: w.lmHead.data.subarray(v0 * H, (v0 + vc) * H) };
          if (logitsIn) for (let i = 0; i < n; i++) lg.set(logitsIn.subarray((r0 + i) * V + v0, (r0 + i) * V + v0 + vc), i * vc);
          else await this.be.gemm({ a: xr, b: Wc, c: lg, m: n, n: vc, k: H, transB: true });
          wk.softmaxRowsLse(lg, n, vc, vc, lseF, scale);
          for (let i = 0; i < n; i++) {
            const tgt = targets[r0 + i]!;
            if (tgt >= v0 && tgt < v0 + vc) lg[i * vc + tgt - v0]! -= 1 / count;
          }
          await this.be.gemm({ a: lg, b: Wc, c: dxn.subarray(r0 * H, (r0 + n) * H), m: n, n: H, k: vc, accumulate: true });
          if (lmGrad) {
            await this.be.gemm({ a: xrT!, b: lg, c: gT!, m: H, n: vc, k: n });
            addTransposed(gT!, H, vc, lmGrad.subarray(v0 * H, (v0 + vc) * H), gTT!);
          }
        }
      }
    });
    const dx = this.keptF32(N * H, true); // the norm's backward adds into it
    this.rmsnormBackward(dxn, x, this.vec(w.norm), rstd, dx, into.norm ?? null, N, H);
    return dx;
  }

  /**
   * Backward of a LoRA delta (see loraForward) given dy [n, out], the projection's output
   * gradient: returns dA, dB and adds the input gradient of the LoRA path into dx.
   */
  private async loraBackward(dy: Float32Array, x: Float32Array, n: number, dx: Float32Array, lora: LoraPair, ls: LoraSaved): Promise<LoraGrads> {
    const r = lora.r, inp = lora.A.length / r, out = lora.B.length / r;
    const dB = new Float32Array(out * r), dA = new Float32Array(r * inp);
    // y += xa B^T with xa pre-scaled: dB = dy^T xa ; dxa = scale * dy B
    await this.be.gemm({ a: dy, b: ls.xa, c: dB, m: out, n: r, k: n, transA: true });
    const dxa = new Float32Array(n * r);
    await this.be.gemm({ a: dy, b: lora.B, c: dxa, m: n, n: r, k: out });
    for (let i = 0; i < dxa.length; i++) dxa[i]! *= lora.scale;
    // xa / scale = h A^T with h = dropout(x) rebuilt from the saved input: dA = dxa^T h ; dh = dxa A
    const h = ls.mask ? dropped(x, ls.mask, ls.keepScale) : x;
    await this.be.gemm({ a: dxa, b: h, c: dA, m: r, n: inp, k: n, transA: true });
    if (ls.mask) {
      // dx += (dxa A) * mask * keepScale, reusing h's buffer for dh
      await this.be.gemm({ a: dxa, b: lora.A, c: h, m: n, n: inp, k: r });
      wk.dropoutAdd(dx, h, ls.mask, ls.keepScale, h.length);
    } else {
      await this.be.gemm({ a: dxa, b: lora.A, c: dx, m: n, n: inp, k: r, accumulate: true });
    }
    return { A: dA, B: dB };
  }

  /**
   * Backward of block li from its saved activations, given dL/d(block output); returns dL/d(block
   * input) and, if asked, weight gradients: `true` returns them, a sink is handed them in row
   * chunks instead (nothing of them is returned or kept).
   */
  async blockBackward(li: number, a: BlockActs, dxOut: Float32Array, B: number, T: number, wantGrads: boolean | GradSink,
    opts: BackwardOptions = {}): Promise<{ dx: Float32Array; grads: BlockGrads; lora: Partial<Record<LoraTarget, LoraGrads>> }> {
    return withActivationHeap(this.backwardWorkspaceBytes(li, B, T, a.attn.dims.S), (heap) => this.blockBackwardIn(li, a, dxOut, B, T, wantGrads, heap, opts));
  }

  /**
   * Bytes of activation heap one block's backward uses for its temporaries (dAct, d[gate|up],
   * the projections' input gradients, attention's score gradients, column copies, a weight
   * gradient chunk for a sink) plus room to stage the saved activations the kernels read.
   */
  private backwardWorkspaceBytes(li: number, B: number, T: number, S: number): number {
    const c = this.config, l = c.layers[li]!, N = B * T, H = c.hiddenSize, I = l.intermediateSize;
    const q = l.numHeads * c.headDim, kv = l.numKvHeads * c.headDim, P = B * l.numHeads * T * S;
    // + the recomputed xn1, xn2, act and rstd rows, attention probabilities and output (heads and rows)
    const temps = N * (3 * I + 2 * H + 3 * q + 2 * (q + 2 * kv) + 1) + 2 * P + N * (2 * H + I + 2) + 2 * N * q;
    const columns = N * Math.max(I, q, kv, H);
    // gate|up, x_mid, x_in and dx_mid copied in; room to stage kept probabilities (training)
    const staging = N * (2 * I + 3 * H) + P;
    return 4 * (temps + columns + staging + SINK_GRAD_ELEMENTS) + (1 << 20);
  }

  private async blockBackwardIn(li: number, a: BlockActs, dxOut: Float32Array, B: number, T: number, wantGrads: boolean | GradSink, heap: WasmHeap,
    opts: BackwardOptions = {}): Promise<{ dx: Float32Array; grads: BlockGrads; lora: Partial<Record<LoraTarget, LoraGrads>> }> {
    /** temporaries live in the activation heap (no allocation, kernels run in place); they are overwritten before being read */
    const tmp = (n: number) => heap.f32(n);
    const cfg = this.config;
    const w = this.model.weights.blocks[li]!;
    const shape = cfg.layers[li]!;
    const H = cfg.hiddenSize, d = cfg.headDim, nH = shape.numHeads, nKV = shape.numKvHeads, I = shape.intermediateSize;
    const N = B * T, qW = nH * d, kvW = nKV * d;
    const g: BlockGrads = {};
    const weightGrads = wantGrads !== false;
    const sink = typeof wantGrads === 'function' ? wantGrads : null;
    /** a small gradient (norm, bias) computed whole: kept, or handed to the sink */
    const hand = (name: BlockWeightName | BlockBiasName, v: Float32Array) => { if (sink) sink(name, 0, v); else g[name] = v; };
    const lora = this.adapters?.[li] ?? {};
    const lg: Partial<Record<LoraTarget, LoraGrads>> = {};
    /**
     * Backward of the forward's proj(): dx = dY [W_1; W_2; ...] as one GEMM over the stacked
     * weights; with weight gradients d[W_1; W_2; ...] = dY^T x as one GEMM too (each weight's
     * gradient a view of it); each part's bias and LoRA gradients from its columns of dY.
     */
    const projBack = async (parts: [LoraTarget, Tensor, BlockBiasName, Tensor | undefined][], dY: Float32Array, x: Float32Array, dx: Float32Array) => {
      const width = parts.reduce((s, [, W]) => s + W.shape[0]!, 0), inW = parts[0]![1].shape[1]!;
      await this.be.gemm({ a: dY, b: parts.length === 1 ? parts[0]![1] : parts.map(([, W]) => W), c: dx, m: N, n: inW, k: width });
      if (weightGrads) {
        // d[W_1; W_2; ...] = dY^T x as transA products over dY read in place: rows [r0, r0 + rc)
        // of dW are columns [r0, r0 + rc) of dY (lda = width), so no part needs a transposed or
        // column copy. Without a sink, one product writes all of dW; a sink takes it in chunks of
        // at most SINK_GRAD_ELEMENTS, one buffer reused, each handed over part by part.
        const mark = heap.mark();
        const chunks = sink ? Math.ceil((width * inW) / SINK_GRAD_ELEMENTS) : 1;
        const rows = Math.ceil(width / chunks);
        const dW = sink ? tmp(Math.min(rows, width) * inW) : new Float32Array(width * inW);
        for (let r0 = 0; r0 < width; r0 += rows) {
          const rc = Math.min(rows, width - r0), dWc = sink ? dW.subarray(0, rc * inW) : dW.subarray(r0 * inW, (r0 + rc) * inW);
          await this.be.gemm({ a: r0 ? dY.subarray(r0) : dY, lda: width, b: x, c: dWc, m: rc, n: inW, k: N, transA: true });
          if (!sink) continue;
          let off = 0;
          for (const [t, W] of parts) {
            const out = W.shape[0]!, lo = Math.max(r0, off), hi = Math.min(r0 + rc, off + out);
            if (lo < hi) sink(t, lo - off, dWc.subarray((lo - r0) * inW, (hi - r0) * inW));
            off += out;
          }
        }
        if (!sink) {
          let off = 0;
          for (const [t, W] of parts) { g[t] = dW.subarray(off * inW, (off + W.shape[0]!) * inW); off += W.shape[0]!; }
        }
        heap.release(mark);
      }
      let off = 0;
      for (const [t, W, bName, bias] of parts) {
        const out = W.shape[0]!, pair = lora[t], ls = a.lora[t];
        if ((weightGrads && bias) || (pair && ls)) {
          const mark = heap.mark();
          const dy = parts.length === 1 ? dY : columns(dY, N, width, off, out, tmp(N * out));
          if (weightGrads && bias) { const v = new Float32Array(out); biasBackward(dy, v, N, out); hand(bName, v); }
          if (pair && ls) lg[t] = await this.loraBackward(dy, x, N, dx, pair, ls);
          heap.release(mark);
        }
        off += out;
      }
    };

    // the saved activations the elementwise kernels read (the large ones twice: recompute and
    // backward) and the residual gradient they update, copied into the heap once on all cores;
    // outside it each kernel call would stage them in and out on this thread
    const inHeap = (x: Float32Array) => { const h = tmp(x.length); bulkCopy(this.be, h, x); return h; };
    const gu = inHeap(a.gu), xMid = inHeap(a.xMid), xIn = inHeap(a.xIn), dxMid = inHeap(dxOut);

    // what the forward did not keep, recomputed by the same kernels on the same inputs
    const eps = cfg.rmsNormEps;
    let { xn1, xn2, act } = a;
    if (!xn1) wk.rmsnormForward(xIn, this.vec(w.inputNorm), xn1 = tmp(N * H), tmp(N), N, H, eps);
    if (!xn2) wk.rmsnormForward(xMid, this.vec(w.postNorm), xn2 = tmp(N * H), tmp(N), N, H, eps);
    if (!act) this.siluMul(gu, act = tmp(N * I), N, I);

    // MLP: x_out = x_mid + down(act)
    const dAct = tmp(N * I);
    await projBack([['down', w.down, 'downBias', w.downBias]], dxOut, act, dAct);
    const dGU = tmp(N * 2 * I);
    if (this.be.siluMulBackward) this.be.siluMulBackward(dAct, gu, dGU, N, I); else wk.siluMulBackward(dAct, gu, dGU, N, I);
    const dxn2 = tmp(N * H);
    await projBack([['gate', w.gate, 'gateBias', w.gateBias], ['up', w.up, 'upBias', w.upBias]], dGU, xn2, dxn2);
    const dPost = weightGrads ? new Float32Array(H) : null;
    this.rmsnormBackward(dxn2, xMid, this.vec(w.postNorm), a.rstd2, dxMid, dPost, N, H);
    if (dPost) hand('postNorm', dPost);

    // attention: x_mid = x_in + o(att); what the forward did not keep, recomputed (same kernels, same bits)
    const P = B * nH * T * a.attn.dims.S;
    const attn = { ...a.attn, probs: a.attn.probs ?? (await attentionProbs(this.be, a.attn.qh, a.attn.kh, a.attn.dims, tmp(P))) };
    let att = a.att;
    if (!att) {
      const oh = tmp(N * qW);
      await attentionOutput(this.be, attn.probs, attn.vh, oh, attn.dims);
      wk.fromHeads(oh, att = tmp(N * qW), B, T, nH, nKV, d);
    }
    const dAtt = tmp(N * qW);
    await projBack([['o', w.o, 'oBias', w.oBias]], dxMid, att, dAtt);
    const dOh = tmp(N * qW);
    wk.toHeads(dAtt, dOh, B, T, nH, nKV, d);
    const dqh = tmp(N * qW), dkh = tmp(N * kvW), dvh = tmp(N * kvW);
    await attentionBackward(this.be, dOh, attn, dqh, dkh, dvh, tmp(P));
    // rows of dQKV are [dq | dk | dv], the layout of the forward's stacked projection
    const width = qW + 2 * kvW;
    const dQKV = tmp(N * width);
    wk.fromHeads(dqh, dQKV, B, T, nH, nKV, d, false, width);
    wk.fromHeads(dkh, dQKV.subarray(qW), B, T, nKV, nKV, d, false, width);
    wk.fromHeads(dvh, dQKV.subarray(qW + kvW), B, T, nKV, nKV, d, false, width);
    const tables = this.ropeFor(a.attn.dims.S);
    const pos = heap.i32(N);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = a.attn.dims.pos0 + t;
    wk.rope(dQKV, pos, tables.cos, tables.sin, N, nH, d, true, width);
    wk.rope(dQKV.subarray(qW), pos, tables.cos, tables.sin, N, nKV, d, true, width);
    const dxn1 = tmp(N * H);
    await projBack([['q', w.q, 'qBias', w.qBias], ['k', w.k, 'kBias', w.kBias], ['v', w.v, 'vBias', w.vBias]], dQKV, xn1, dxn1);
    // residual path carries dx_mid through; add the norm branch, then out of the heap
    const dIn = weightGrads ? new Float32Array(H) : null;
    this.rmsnormBackward(dxn1, xIn, this.vec(w.inputNorm), a.rstd1, dxMid, dIn, N, H);
    if (dIn) hand('inputNorm', dIn);
    const dxIn = opts.reuseDxOut ? dxOut : this.keptF32(N * H);
    bulkCopy(this.be, dxIn, dxMid);
    return { dx: dxIn, grads: g, lora: lg };
  }

}
