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
import type { Backend } from '../engine/backend.js';
import { getBackend } from '../engine/ort-backend.js';
import { type Tensor, toF32, rowsToF32 } from '../engine/tensor.js';
import {
  rmsnormForward, rmsnormBackward, addBias, biasBackward, rope, siluMulForward, siluMulBackward, addInPlace, logSumExp,
} from '../engine/kernels.js';
import { attentionForward, attentionBackward, toHeads, fromHeads, type AttnSaved } from './attention.js';
import { ropeTables, type RopeTables } from './rope.js';
import type { LlamaModel, BlockWeights, BlockWeightName, BlockBiasName } from './weights.js';
import type { LoraAdapters, LoraPair, LoraGrads, LoraTarget } from './lora.js';
import type { KVCache } from './kv-cache.js';
import { UserError } from '../util/errors.js';

/** What one block saves for its backward. */
interface BlockActs {
  xIn: Float32Array; xn1: Float32Array; rstd1: Float32Array;
  attn: AttnSaved; att: Float32Array;
  xMid: Float32Array; xn2: Float32Array; rstd2: Float32Array;
  gate: Float32Array; up: Float32Array; act: Float32Array;
  /** LoRA inputs after dropout and their A-projections, per adapted projection */
  lora: Partial<Record<LoraTarget, { h: Float32Array; xa: Float32Array; mask: Float32Array | null }>>;
}

export type BlockGrads = Partial<Record<BlockWeightName | BlockBiasName, Float32Array>>;

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
  saved?: { ids: Int32Array; targets: Int32Array; acts: BlockActs[]; blocks: number[]; xFinal: Float32Array; xnF: Float32Array; rstdF: Float32Array };
}

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

  embed(ids: Int32Array): Float32Array {
    const H = this.config.hiddenSize;
    const x = new Float32Array(ids.length * H);
    const row = new Float32Array(H);
    for (let i = 0; i < ids.length; i++) x.set(rowsToF32(this.model.weights.embed, ids[i]!, 1, row), i * H);
    return x;
  }

  /** y [n, out] = x W^T + b (+ LoRA). Saves LoRA intermediates into `save` when given. */
  async linear(x: Float32Array, W: Tensor, bias: Tensor | undefined, n: number, lora: LoraPair | undefined, rng: (() => number) | undefined,
    save?: { h: Float32Array; xa: Float32Array; mask: Float32Array | null }[]): Promise<Float32Array> {
    const [out, inp] = W.shape as [number, number];
    const y = new Float32Array(n * out);
    await this.be.gemm({ a: x, b: W, c: y, m: n, n: out, k: inp, transB: true });
    if (bias) addBias(y, this.vec(bias), n, out);
    if (lora) {
      let h = x, mask: Float32Array | null = null;
      if (lora.dropout > 0 && rng) {
        mask = new Float32Array(n * inp);
        h = new Float32Array(n * inp);
        const keepScale = 1 / (1 - lora.dropout);
        for (let i = 0; i < h.length; i++) { const m = rng() >= lora.dropout ? keepScale : 0; mask[i] = m; h[i] = x[i]! * m; }
      }
      const xa = new Float32Array(n * lora.r);
      await this.be.gemm({ a: h, b: lora.A, c: xa, m: n, n: lora.r, k: inp, transB: true });
      const d = new Float32Array(n * out);
      await this.be.gemm({ a: xa, b: lora.B, c: d, m: n, n: out, k: lora.r, transB: true });
      for (let i = 0; i < y.length; i++) y[i]! += lora.scale * d[i]!;
      save?.push({ h, xa, mask });
    }
    return y;
  }

  /**
   * One block on x [B*T, H] (returns the new residual stream). Positions are pos0..pos0+T-1;
   * with a cache, keys/values of earlier positions come from it and the new ones are appended.
   */
  async block(li: number, x: Float32Array, B: number, T: number, pos0: number, opts: { cache?: KVCache; keep?: boolean; rng?: () => number }): Promise<{ x: Float32Array; acts?: BlockActs }> {
    const cfg = this.config;
    const w: BlockWeights = this.model.weights.blocks[li]!;
    const shape = cfg.layers[li]!;
    const H = cfg.hiddenSize, d = cfg.headDim, nH = shape.numHeads, nKV = shape.numKvHeads, I = shape.intermediateSize;
    const N = B * T;
    const lora = this.adapters?.[li] ?? {};
    const loraSave: BlockActs['lora'] = {};
    const saveFor = (t: LoraTarget) => {
      if (!opts.keep || !lora[t]) return undefined;
      const arr: { h: Float32Array; xa: Float32Array; mask: Float32Array | null }[] = [];
      return { arr, done: () => { if (arr[0]) loraSave[t] = arr[0]; } };
    };
    const lin = async (t: LoraTarget, inp: Float32Array, W: Tensor, bias: Tensor | undefined) => {
      const s = saveFor(t);
      const y = await this.linear(inp, W, bias, N, lora[t], opts.rng, s?.arr);
      s?.done();
      return y;
    };

    // attention
    const xn1 = new Float32Array(N * H), rstd1 = new Float32Array(N);
    rmsnormForward(x, this.vec(w.inputNorm), xn1, rstd1, N, H, cfg.rmsNormEps);
    const q = await lin('q', xn1, w.q, w.qBias);
    const k = await lin('k', xn1, w.k, w.kBias);
    const v = await lin('v', xn1, w.v, w.vBias);
    const S = pos0 + T;
    const tables = this.ropeFor(S);
    const pos = new Int32Array(N);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = pos0 + t;
    rope(q, pos, tables.cos, tables.sin, N, nH, d);
    rope(k, pos, tables.cos, tables.sin, N, nKV, d);
    const qh = new Float32Array(N * nH * d);
    toHeads(q, qh, B, T, nH, nKV, d);
    let kh: Float32Array = new Float32Array(N * nKV * d), vh: Float32Array = new Float32Array(N * nKV * d);
    toHeads(k, kh, B, T, nKV, nKV, d);
    toHeads(v, vh, B, T, nKV, nKV, d);
    if (opts.cache) ({ kh, vh } = opts.cache.append(li, kh, vh, B, T, pos0));
    const dims = { B, T, S, pos0, nH, nKV, d };
    const oh = new Float32Array(N * nH * d);
    const probs = await attentionForward(this.be, qh, kh, vh, oh, dims);
    const att = new Float32Array(N * nH * d);
    fromHeads(oh, att, B, T, nH, nKV, d);
    const o = await lin('o', att, w.o, w.oBias);
    const xMid = new Float32Array(N * H);
    for (let i = 0; i < xMid.length; i++) xMid[i] = x[i]! + o[i]!;

    // MLP
    const xn2 = new Float32Array(N * H), rstd2 = new Float32Array(N);
    rmsnormForward(xMid, this.vec(w.postNorm), xn2, rstd2, N, H, cfg.rmsNormEps);
    const gate = await lin('gate', xn2, w.gate, w.gateBias);
    const up = await lin('up', xn2, w.up, w.upBias);
    const act = new Float32Array(N * I);
    siluMulForward(gate, up, act, N * I);
    const down = await lin('down', act, w.down, w.downBias);
    const xOut = new Float32Array(N * H);
    for (let i = 0; i < xOut.length; i++) xOut[i] = xMid[i]! + down[i]!;
    if (!opts.keep) return { x: xOut };
    return { x: xOut, acts: { xIn: x, xn1, rstd1, attn: { qh, kh, vh, probs, dims }, att, xMid, xn2, rstd2, gate, up, act, lora: loraSave } };
  }

  /** Final norm; returns normalized states (and rstd for backward). */
  finalNorm(x: Float32Array, N: number): { xn: Float32Array; rstd: Float32Array } {
    const H = this.config.hiddenSize;
    const xn = new Float32Array(N * H), rstd = new Float32Array(N);
    rmsnormForward(x, this.vec(this.model.weights.norm), xn, rstd, N, H, this.config.rmsNormEps);
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
   * NLL of `targets` under the head, computed in row chunks so [N, V] logits need not exist at once.
   */
  async headNll(xn: Float32Array, targets: Int32Array, N: number, keepLogits: boolean): Promise<{ nll: Float32Array; loss: number; count: number; logits?: Float32Array }> {
    const V = this.config.vocabSize;
    const nll = new Float32Array(N);
    const logitsAll = keepLogits ? new Float32Array(N * V) : undefined;
    const chunk = Math.max(1, Math.floor((1 << 22) / V));
    let sum = 0, count = 0;
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const n = Math.min(chunk, N - r0);
      const lg = await this.logitsRows(xn, r0, n);
      if (logitsAll) logitsAll.set(lg, r0 * V);
      for (let i = 0; i < n; i++) {
        const tgt = targets[r0 + i]!;
        if (tgt < 0) { nll[r0 + i] = NaN; continue; }
        const v = logSumExp(lg, i * V, V) - lg[i * V + tgt]!;
        nll[r0 + i] = v;
        sum += v;
        count++;
      }
    }
    return { nll, loss: count ? sum / count : NaN, count, logits: logitsAll };
  }

  /** Full forward over ids [B, T] (row-major). */
  async forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): Promise<ForwardResult> {
    this.checkIds(ids);
    const N = B * T;
    const blocks = opts.blocks ?? [...Array(this.config.numLayers).keys()];
    const pos0 = opts.cache ? opts.cache.length : 0;
    let x = this.embed(ids);
    const hidden = opts.hidden ? [x] : undefined;
    const acts: BlockActs[] = [];
    for (const li of blocks) {
      const r = await this.block(li, x, B, T, pos0, { cache: opts.cache, keep: opts.keep, rng: opts.rng });
      x = r.x;
      if (r.acts) acts.push(r.acts);
      hidden?.push(x);
    }
    opts.cache?.advance(T);
    const { xn, rstd } = this.finalNorm(x, N);
    const res: ForwardResult = { B, T, hidden };
    const targets = opts.targets ?? (opts.cache ? new Int32Array(N).fill(-100) : shiftTargets(ids, B, T));
    const head = await this.headNll(xn, targets, N, opts.logits ?? false);
    Object.assign(res, { nll: head.nll, loss: head.loss, count: head.count, logits: head.logits });
    if (opts.keep) res.saved = { ids, targets, acts, blocks, xFinal: x, xnF: xn, rstdF: rstd };
    return res;
  }

  /** Gradients of the mean NLL (res.loss) w.r.t. the parameters selected by `want` and LoRA adapters. */
  async backward(res: ForwardResult, want: GradOptions = { blocks: true, embed: true, norm: true, lmHead: true }): Promise<Grads> {
    const s = res.saved;
    if (!s) throw new Error('backward needs a forward with keep: true');
    const cfg = this.config, w = this.model.weights;
    const H = cfg.hiddenSize, V = cfg.vocabSize, N = res.B * res.T;
    const tied = cfg.tieWordEmbeddings;
    const grads: Grads = {
      embed: want.embed || (tied && want.lmHead) ? new Float32Array(V * H) : null,
      blocks: [], norm: want.norm ? new Float32Array(H) : null,
      lmHead: want.lmHead && !tied ? new Float32Array(V * H) : null, lora: [],
    };
    const lmGrad = tied ? (want.lmHead ? grads.embed : null) : grads.lmHead;

    // head: dlogits = (softmax - onehot) / count, chunked over rows
    const dxn = new Float32Array(N * H);
    const count = res.count!;
    const chunk = Math.max(1, Math.floor((1 << 22) / V));
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const n = Math.min(chunk, N - r0);
      const lg = await this.logitsRows(s.xnF, r0, n);
      for (let i = 0; i < n; i++) {
        const tgt = s.targets[r0 + i]!;
        const o = i * V;
        if (tgt < 0) { lg.fill(0, o, o + V); continue; }
        const lse = logSumExp(lg, o, V);
        for (let j = 0; j < V; j++) lg[o + j] = Math.exp(lg[o + j]! - lse) / count;
        lg[o + tgt]! -= 1 / count;
      }
      await this.be.gemm({ a: lg, b: w.lmHead, c: dxn.subarray(r0 * H, (r0 + n) * H), m: n, n: H, k: V });
      if (lmGrad) await this.be.gemm({ a: lg, b: s.xnF.subarray(r0 * H, (r0 + n) * H), c: lmGrad, m: V, n: H, k: n, transA: true, accumulate: true });
    }
    let dx: Float32Array = new Float32Array(N * H);
    rmsnormBackward(dxn, s.xFinal, this.vec(w.norm), s.rstdF, dx, grads.norm, N, H);

    for (let bi = s.blocks.length - 1; bi >= 0; bi--) {
      const li = s.blocks[bi]!;
      const r = await this.blockBackward(li, s.acts[bi]!, dx, res.B, res.T, want.blocks ?? false);
      dx = r.dx;
      grads.blocks[li] = r.grads;
      grads.lora[li] = r.lora;
    }
    if (grads.embed) {
      for (let i = 0; i < N; i++) {
        const o = s.ids[i]! * H;
        for (let j = 0; j < H; j++) grads.embed[o + j]! += dx[i * H + j]!;
      }
    }
    return grads;
  }

  /** Backward of one linear: dx (+)= dy W (+ LoRA path); dW, db, LoRA grads as requested. */
  private async linearBackward(dy: Float32Array, x: Float32Array, W: Tensor, n: number, dx: Float32Array, accumulate: boolean,
    dW: Float32Array | null, db: Float32Array | null, lora: LoraPair | undefined, ls: { h: Float32Array; xa: Float32Array; mask: Float32Array | null } | undefined): Promise<LoraGrads | undefined> {
    const [out, inp] = W.shape as [number, number];
    await this.be.gemm({ a: dy, b: W, c: dx, m: n, n: inp, k: out, accumulate });
    if (dW) await this.be.gemm({ a: dy, b: x, c: dW, m: out, n: inp, k: n, transA: true, accumulate: true });
    if (db) biasBackward(dy, db, n, out);
    if (!lora || !ls) return undefined;
    const r = lora.r;
    const dB = new Float32Array(out * r), dA = new Float32Array(r * inp);
    // y += scale * xa B^T: dB = scale * dy^T xa ; dxa = scale * dy B
    await this.be.gemm({ a: dy, b: ls.xa, c: dB, m: out, n: r, k: n, transA: true });
    for (let i = 0; i < dB.length; i++) dB[i]! *= lora.scale;
    const dxa = new Float32Array(n * r);
    await this.be.gemm({ a: dy, b: lora.B, c: dxa, m: n, n: r, k: out });
    for (let i = 0; i < dxa.length; i++) dxa[i]! *= lora.scale;
    // xa = h A^T: dA = dxa^T h ; dh = dxa A
    await this.be.gemm({ a: dxa, b: ls.h, c: dA, m: r, n: inp, k: n, transA: true });
    const dh = new Float32Array(n * inp);
    await this.be.gemm({ a: dxa, b: lora.A, c: dh, m: n, n: inp, k: r });
    if (ls.mask) for (let i = 0; i < dh.length; i++) dh[i]! *= ls.mask[i]!;
    addInPlace(dx, dh);
    return { A: dA, B: dB };
  }

  private async blockBackward(li: number, a: BlockActs, dxOut: Float32Array, B: number, T: number, weightGrads: boolean): Promise<{ dx: Float32Array; grads: BlockGrads; lora: Partial<Record<LoraTarget, LoraGrads>> }> {
    const cfg = this.config;
    const w = this.model.weights.blocks[li]!;
    const shape = cfg.layers[li]!;
    const H = cfg.hiddenSize, d = cfg.headDim, nH = shape.numHeads, nKV = shape.numKvHeads, I = shape.intermediateSize;
    const N = B * T;
    const g: BlockGrads = {};
    const wg = (name: BlockWeightName, W: Tensor) => (weightGrads ? (g[name] = new Float32Array(W.data.length)) : null);
    const bg = (name: BlockBiasName, bias: Tensor | undefined) => (weightGrads && bias ? (g[name] = new Float32Array(bias.data.length)) : null);
    const lora = this.adapters?.[li] ?? {};
    const lg: Partial<Record<LoraTarget, LoraGrads>> = {};
    const lb = async (t: LoraTarget, dy: Float32Array, x: Float32Array, W: Tensor, dx: Float32Array, acc: boolean, bias: BlockBiasName, bT: Tensor | undefined) => {
      const r = await this.linearBackward(dy, x, W, N, dx, acc, wg(t, W), bg(bias, bT), lora[t], a.lora[t]);
      if (r) lg[t] = r;
    };

    // MLP: x_out = x_mid + down(act)
    const dxMid = Float32Array.from(dxOut);
    const dAct = new Float32Array(N * I);
    await lb('down', dxOut, a.act, w.down, dAct, false, 'downBias', w.downBias);
    const dGate = new Float32Array(N * I), dUp = new Float32Array(N * I);
    siluMulBackward(dAct, a.gate, a.up, dGate, dUp, N * I);
    const dxn2 = new Float32Array(N * H);
    await lb('gate', dGate, a.xn2, w.gate, dxn2, false, 'gateBias', w.gateBias);
    await lb('up', dUp, a.xn2, w.up, dxn2, true, 'upBias', w.upBias);
    rmsnormBackward(dxn2, a.xMid, this.vec(w.postNorm), a.rstd2, dxMid, wg('postNorm', w.postNorm), N, H);

    // attention: x_mid = x_in + o(att)
    const dAtt = new Float32Array(N * nH * d);
    await lb('o', dxMid, a.att, w.o, dAtt, false, 'oBias', w.oBias);
    const dOh = new Float32Array(N * nH * d);
    toHeads(dAtt, dOh, B, T, nH, nKV, d);
    const dqh = new Float32Array(N * nH * d), dkh = new Float32Array(N * nKV * d), dvh = new Float32Array(N * nKV * d);
    await attentionBackward(this.be, dOh, a.attn, dqh, dkh, dvh);
    const dq = new Float32Array(N * nH * d), dk = new Float32Array(N * nKV * d), dv = new Float32Array(N * nKV * d);
    fromHeads(dqh, dq, B, T, nH, nKV, d);
    fromHeads(dkh, dk, B, T, nKV, nKV, d);
    fromHeads(dvh, dv, B, T, nKV, nKV, d);
    const tables = this.ropeFor(a.attn.dims.S);
    const pos = new Int32Array(N);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = a.attn.dims.pos0 + t;
    rope(dq, pos, tables.cos, tables.sin, N, nH, d, true);
    rope(dk, pos, tables.cos, tables.sin, N, nKV, d, true);
    const dxn1 = new Float32Array(N * H);
    await lb('q', dq, a.xn1, w.q, dxn1, false, 'qBias', w.qBias);
    await lb('k', dk, a.xn1, w.k, dxn1, true, 'kBias', w.kBias);
    await lb('v', dv, a.xn1, w.v, dxn1, true, 'vBias', w.vBias);
    const dxIn = dxMid; // residual path carries dx_mid through; add the norm branch
    rmsnormBackward(dxn1, a.xIn, this.vec(w.inputNorm), a.rstd1, dxIn, wg('inputNorm', w.inputNorm), N, H);
    return { dx: dxIn, grads: g, lora: lg };
  }
}
