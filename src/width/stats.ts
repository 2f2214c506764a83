/**
 * Calibration statistics for width pruning: for every input channel of o_proj (the attention
 * output, nH*d wide, head-major) and of down_proj (the MLP activation silu(gate)*up, I wide), the
 * sum and the sum of squares over all calibration tokens. These are what forward hooks on those
 * two projections see in the reference implementations (Wanda-sp, FLAP).
 *
 * We run the model block by block over all calibration batches (a "walker" holding the residual
 * stream of every batch at the current block boundary), so a caller can prune block i before
 * the inputs of block i+1 are computed (Wanda-sp) or not (FLAP).
 */
import type { LlamaRunner } from '../model/llama.js';
import * as wk from '../engine/wasm-kernels.js';
import type { CalibBatch } from '../prune/calib-batch.js';

/** Per-channel first and second moments of one projection's input. */
export interface ChannelStats {
  /** tokens seen */
  n: number;
  sum: Float64Array;
  sumSq: Float64Array;
}

export interface LayerStats {
  /** o_proj input: nH*d channels, query head h owns channels [h*d, (h+1)*d) */
  attn: ChannelStats;
  /** down_proj input: I channels */
  mlp: ChannelStats;
}

export function emptyStats(width: number): ChannelStats {
  return { n: 0, sum: new Float64Array(width), sumSq: new Float64Array(width) };
}

/** Add the rows of x [N, width] to the running moments. */
export function accumulate(s: ChannelStats, x: Float32Array, N: number): void {
  const w = s.sum.length;
  for (let r = 0; r < N; r++) {
    const o = r * w;
    for (let c = 0; c < w; c++) {
      const v = x[o + c]!;
      s.sum[c]! += v;
      s.sumSq[c]! += v * v;
    }
  }
  s.n += N;
}

export function channelMean(s: ChannelStats): Float64Array {
  return s.sum.map((v) => v / s.n);
}

/** ||X_c||_2 over all calibration tokens (Wanda's activation norm). */
export function channelNorm(s: ChannelStats): Float64Array {
  return s.sumSq.map(Math.sqrt);
}

/** Unbiased sample variance of each channel over tokens (FLAP's "fluctuation"). */
export function channelVariance(s: ChannelStats): Float64Array {
  const n = s.n;
  return s.sum.map((sum, c) => Math.max(0, (s.sumSq[c]! - (sum * sum) / n) / Math.max(1, n - 1)));
}

/** The residual stream of every calibration batch at one block boundary. */
export class BlockWalker {
  private xs: Float32Array[];
  next = 0;

  constructor(private readonly run: LlamaRunner, private readonly batches: CalibBatch[]) {
    this.xs = batches.map((b) => run.embed(b.ids));
  }

  /**
   * Run block `next` on every batch with the runner's current weights and return its input
   * statistics. With `advance` (default) the outputs become the inputs of the following block;
   * otherwise call `advance()` later, e.g. after pruning this block, to recompute them.
   */
  async stats(advance = true): Promise<LayerStats> {
    const li = this.next;
    const shape = this.run.config.layers[li]!;
    const st: LayerStats = { attn: emptyStats(shape.numHeads * this.run.config.headDim), mlp: emptyStats(shape.intermediateSize) };
    const outs: Float32Array[] = [];
    for (let i = 0; i < this.batches.length; i++) {
      const { B, T } = this.batches[i]!;
      const r = await this.run.block(li, this.xs[i]!, B, T, 0, { keep: true });
      accumulate(st.attn, r.acts!.att!, B * T); // block() keeps att
      const I = shape.intermediateSize, gu = r.acts!.gu;
      let act = r.acts!.act;
      if (!act) wk.siluMul(gu, gu.subarray(I), act = new Float32Array(B * T * I), B * T, I, 2 * I); // not kept: as the forward computed it from [gate | up]
      accumulate(st.mlp, act, B * T);
      outs.push(r.x);
    }
    if (advance) { this.xs = outs; this.next++; }
    return st;
  }

  /** Move past block `next`, recomputing its outputs with the runner's current weights. */
  async advance(): Promise<void> {
    const li = this.next;
    for (let i = 0; i < this.batches.length; i++) {
      const { B, T } = this.batches[i]!;
      this.xs[i] = (await this.run.block(li, this.xs[i]!, B, T, 0, {})).x;
    }
    this.next++;
  }
}

/** Statistics of every block of the unpruned model (one pass). */
export async function collectStats(run: LlamaRunner, batches: CalibBatch[], onProgress?: (done: number, total: number) => void): Promise<LayerStats[]> {
  const walker = new BlockWalker(run, batches);
  const out: LayerStats[] = [];
  const L = run.config.numLayers;
  for (let li = 0; li < L; li++) {
    out.push(await walker.stats());
    onProgress?.(li + 1, L);
  }
  return out;
}
