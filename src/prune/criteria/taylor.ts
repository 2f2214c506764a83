/**
 * Taylor+ (Shortened LLaMA): the gradient of the mean next-token loss over the whole calibration
 * set; a block's score is the sum over its nine weight tensors of sum |W * dL/dW|.
 *
 * The score needs each block's summed |W * G|, not the gradients, so the backward runs block by
 * block, last block first, over every calibration batch at once: each batch carries its gradient
 * dL/dx at the current block boundary; block l's weight gradients are summed over the batches,
 * reduced to the block's score and dropped before block l-1 starts. With one batch each weight
 * gradient is reduced a chunk of rows at a time as the GEMM produces it (it never exists whole);
 * with several, one block's gradients are summed first. No full-model gradient and no f32 copy of
 * the weights ever exists: the peak is the weights, the activations and at most one block's
 * gradients.
 *
 * Activations: kept from the forward when they fit in memory (the floor: one forward, one
 * backward), else only each block's input is kept and the block's activations are recomputed
 * just before its backward (one more forward; what a 7B model needs in 24 GB).
 */
import { rowsToF32, type Tensor } from '../../engine/tensor.js';
import * as wk from '../../engine/wasm-kernels.js';
import type { Backend } from '../../engine/backend.js';
import { BLOCK_WEIGHT_NAMES, type BlockWeightName } from '../../model/weights.js';
import { type LlamaRunner, type BlockActs, type BlockGrads, type GradSink } from '../../model/llama.js';
import { splitBatches, type CalibBatch } from '../calib-batch.js';
import { ascendingOrder, type CriterionResult } from './types.js';
import { taylorMemory } from '../../model/memory.js';
import { availableBytes, totalBytes } from '../../util/memory.js';

export interface TaylorOptions {
  onProgress?: (done: number, total: number) => void;
  /** recompute activations in the backward instead of keeping them (default: only when they do not fit) */
  recompute?: boolean;
}

/** One calibration batch during the block-by-block backward. */
interface BatchState {
  b: CalibBatch;
  /** dL/dx at the boundary above the next block to run backward */
  dx: Float32Array;
  /** kept activations per block, or (recompute) the input of each block */
  acts: (BlockActs | null)[] | null;
  inputs: (Float32Array | null)[] | null;
}

/**
 * sum |W * G| over rows [row0, row0 + g.length / cols) of a weight and their f32 gradient: bf16
 * and f32 weights at their stored width in the backend's kernel, else in WebAssembly SIMD (a
 * chunk at a time); f16 widened a chunk of rows at a time.
 */
function sumAbsProduct(be: Backend, W: Tensor, row0: number, g: Float32Array): number {
  const cols = W.shape[W.shape.length - 1]!, rows = g.length / cols;
  let s = 0;
  if (W.dtype !== 'f16') {
    const w = W.data.subarray(row0 * cols, (row0 + rows) * cols) as Float32Array | Uint16Array;
    // the backend's own kernel reads both in place on all cores; the WebAssembly one stages the
    // weights into its heap a chunk at a time
    if (be.sumAbsProduct) return be.sumAbsProduct(w, g);
    for (let i = 0; i < g.length; i += SUM_CHUNK) {
      const n = Math.min(SUM_CHUNK, g.length - i);
      s += wk.sumAbsProduct(w.subarray(i, i + n), g.subarray(i, i + n), n);
    }
    return s;
  }
  const chunk = Math.max(1, Math.min(rows, Math.floor((1 << 20) / cols)));
  const buf = new Float32Array(chunk * cols);
  for (let r = 0; r < rows; r += chunk) {
    const n = Math.min(chunk, rows - r);
    const w = rowsToF32(W, row0 + r, n, buf);
    const o = r * cols;
    for (let i = 0; i < n * cols; i++) s += Math.abs(w[i]! * g[o + i]!);
  }
  return s;
}

/** Elements per sum-of-products kernel call (bounds what is staged into the kernels' heap). */
const SUM_CHUNK = 1 << 20;

/** Calibration batches run in chunks of at most this many tokens (bounded activation heaps). */
export const TAYLOR_CHUNK_TOKENS = 2048;

export async function taylorScores(run: LlamaRunner, calibration: CalibBatch[], opts: TaylorOptions = {}): Promise<CriterionResult> {
  const L = run.config.numLayers;
  const batches = splitBatches(calibration, TAYLOR_CHUNK_TOKENS);
  const recompute = opts.recompute ?? totalBytes(taylorMemory(run.model, batches, false)) > availableBytes();
  const steps = batches.length + L;
  // Gradient of the mean over ALL predictions = sum over batches of (count_b / total) * grad(mean_b):
  // each batch's head gradient is scaled once, and everything below it is linear in it.
  let total = 0;
  for (const b of batches) total += b.B * (b.T - 1);

  const states: BatchState[] = [];
  for (const b of batches) {
    let st: BatchState;
    if (!recompute) {
      // the head's gradient comes out of the forward's own head pass (no lm_head or norm gradient is scored)
      const res = await run.forward(b.ids, b.B, b.T, { keep: true, headGrad: true });
      st = { b, dx: res.dxFinal!, acts: res.saved!.acts, inputs: null };
      scale(st.dx, res.count! / total);
    } else {
      const res = await run.forward(b.ids, b.B, b.T, { hidden: true, headGrad: true });
      st = { b, dx: res.dxFinal!, acts: null, inputs: res.hidden! };
      st.inputs![L] = null;
      scale(st.dx, res.count! / total);
    }
    states.push(st);
    opts.onProgress?.(states.length, steps);
  }

  const perTensor: number[][] = new Array(L);
  for (let l = L - 1; l >= 0; l--) {
    const w = run.model.weights.blocks[l]!;
    const total = new Map<string, number>(BLOCK_WEIGHT_NAMES.map((n) => [n, 0]));
    // one batch: each gradient chunk is reduced as it arrives; several: summed first (the score is
    // of the gradient of the whole set), into one block's worth of f32 gradients
    const sums: BlockGrads = {};
    const sink: GradSink = states.length === 1
      ? (n, row0, g) => { if (total.has(n)) total.set(n, total.get(n)! + sumAbsProduct(run.be, w[n as BlockWeightName], row0, g)); }
      : (n, row0, g) => {
        if (!total.has(n)) return;
        const W = w[n as BlockWeightName], cols = W.shape[W.shape.length - 1]!;
        const a = (sums[n] ??= new Float32Array(W.data.length)), o = row0 * cols;
        for (let i = 0; i < g.length; i++) a[o + i]! += g[i]!;
      };
    for (const st of states) {
      const { B, T } = st.b;
      const acts = st.acts ? st.acts[l]! : (await run.block(l, st.inputs![l]!, B, T, 0, { keep: true })).acts!;
      const r = await run.blockBackward(l, acts, st.dx, B, T, sink, { reuseDxOut: true });
      st.dx = r.dx;
      if (st.acts) st.acts[l] = null; else st.inputs![l] = null; // this block's activations are done with
    }
    if (states.length > 1) for (const n of BLOCK_WEIGHT_NAMES) total.set(n, sumAbsProduct(run.be, w[n], 0, sums[n]!));
    perTensor[l] = BLOCK_WEIGHT_NAMES.map((n) => total.get(n)!);
    opts.onProgress?.(batches.length + (L - l), steps);
  }
  const scores = perTensor.map((r) => r.reduce((a, c) => a + c, 0));
  return { criterion: 'taylor', scores, order: ascendingOrder(scores), details: { perTensor, tensors: [...BLOCK_WEIGHT_NAMES], recompute } };
}

function scale(a: Float32Array, s: number): void {
  for (let i = 0; i < a.length; i++) a[i]! *= s;
}
