/**
 * Causal grouped-query attention, forward and backward, as two batched GEMMs around a softmax.
 *
 * Layout trick for GQA: the `group` query heads that share kv head j are stacked into one matrix
 * of group*T rows, so scores for the whole group are ONE product with that kv head's keys:
 *   qh [B*nKV, group*T, d] · kh[B*nKV, S, d]^T -> scores [B*nKV, group*T, S]
 * Row r of a group block is query head (j*group + r / T) at time r % T.
 */
import type { Backend } from '../engine/backend.js';
import { softmaxCausal, softmaxBackward } from '../engine/wasm-kernels.js';

export interface AttnDims {
  B: number;     // batch rows
  T: number;     // new (query) tokens per row
  S: number;     // key length (= pos0 + T)
  pos0: number;  // position of the first query token
  nH: number;
  nKV: number;
  d: number;     // head dim
}

/** [B*T, nHeads*d] -> [B*nKV, group*T, d] (group = nHeads/nKV). */
export function toHeads(x: Float32Array, out: Float32Array, B: number, T: number, nHeads: number, nKV: number, d: number): void {
  const group = nHeads / nKV;
  const width = nHeads * d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const j = (h / group) | 0, g = h % group;
      const dst0 = ((b * nKV + j) * group * T + g * T) * d;
      for (let t = 0; t < T; t++) {
        const src = (b * T + t) * width + h * d;
        out.set(x.subarray(src, src + d), dst0 + t * d);
      }
    }
  }
}

/** Inverse of toHeads; with `accumulate`, adds into `out`. */
export function fromHeads(x: Float32Array, out: Float32Array, B: number, T: number, nHeads: number, nKV: number, d: number, accumulate = false): void {
  const group = nHeads / nKV;
  const width = nHeads * d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const j = (h / group) | 0, g = h % group;
      const src0 = ((b * nKV + j) * group * T + g * T) * d;
      for (let t = 0; t < T; t++) {
        const dst = (b * T + t) * width + h * d;
        const src = src0 + t * d;
        if (accumulate) for (let e = 0; e < d; e++) out[dst + e]! += x[src + e]!;
        else out.set(x.subarray(src, src + d), dst);
      }
    }
  }
}

export interface AttnSaved {
  qh: Float32Array;     // [B*nKV, group*T, d]
  kh: Float32Array;     // [B*nKV, S, d]
  vh: Float32Array;     // [B*nKV, S, d]
  /** [B*nKV, group*T, S]; absent: the backward recomputes them from qh and kh (same kernels, same bits) */
  probs?: Float32Array;
  dims: AttnDims;
}

/** softmax(qh kh^T / sqrt(d) + causal) into p [B*nKV, group*T, S] */
export async function attentionProbs(be: Backend, qh: Float32Array, kh: Float32Array, dims: AttnDims, p: Float32Array): Promise<Float32Array> {
  const { B, T, S, pos0, nH, nKV, d } = dims;
  const rows = (nH / nKV) * T;
  await be.bmm({ a: qh, b: kh, c: p, batch: B * nKV, m: rows, n: S, k: d, transB: true });
  softmaxCausal(p, B * nKV, rows, S, T, pos0, 1 / Math.sqrt(d));
  return p;
}

/**
 * out [B*nKV, group*T, d] = softmax(qh kh^T / sqrt(d) + causal) vh. Returns the probabilities
 * (written into `probs` [B*nKV, group*T, S] when given).
 */
export async function attentionForward(be: Backend, qh: Float32Array, kh: Float32Array, vh: Float32Array, out: Float32Array, dims: AttnDims,
  probs?: Float32Array): Promise<Float32Array> {
  const { B, T, S, nH, nKV, d } = dims;
  const rows = (nH / nKV) * T;
  const p = await attentionProbs(be, qh, kh, dims, probs ?? new Float32Array(B * nKV * rows * S));
  await attentionOutput(be, p, vh, out, dims);
  return p;
}

/** out [B*nKV, group*T, d] = probs vh */
export async function attentionOutput(be: Backend, probs: Float32Array, vh: Float32Array, out: Float32Array, dims: AttnDims): Promise<void> {
  const { B, T, S, nH, nKV, d } = dims;
  await be.bmm({ a: probs, b: vh, c: out, batch: B * nKV, m: (nH / nKV) * T, n: d, k: S });
}

/**
 * Gradients of qh, kh, vh from the gradient of the attention output (all in heads layout), given
 * the probabilities (saved, or recomputed by attentionProbs). `dP` is scratch for the score
 * gradients ([B*nKV, group*T, S]; allocated when not given).
 */
export async function attentionBackward(be: Backend, dOut: Float32Array, s: AttnSaved & { probs: Float32Array }, dqh: Float32Array, dkh: Float32Array, dvh: Float32Array,
  dPScratch?: Float32Array): Promise<void> {
  const { B, T, S, nH, nKV, d } = s.dims;
  const rows = (nH / nKV) * T;
  const batch = B * nKV;
  const dP = dPScratch ?? new Float32Array(batch * rows * S);
  const probs = s.probs;
  await be.bmm({ a: dOut, b: s.vh, c: dP, batch, m: rows, n: S, k: d, transB: true });
  await be.bmm({ a: probs, b: dOut, c: dvh, batch, m: S, n: d, k: rows, transA: true });
  // softmax backward, with the 1/sqrt(d) scale folded in: dS = P * (dP - sum(dP*P)) / sqrt(d)
  if (be.softmaxBackward) be.softmaxBackward(probs, dP, batch * rows, S, 1 / Math.sqrt(d));
  else softmaxBackward(probs, dP, batch * rows, S, 1 / Math.sqrt(d));
  await be.bmm({ a: dP, b: s.kh, c: dqh, batch, m: rows, n: d, k: S });
  await be.bmm({ a: dP, b: s.qh, c: dkh, batch, m: S, n: d, k: rows, transA: true });
}
