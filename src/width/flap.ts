/**
 * FLAP (An et al. 2024, "Fluctuation-based Adaptive Structured Pruning"), the AL-AM structure with
 * the WIFV metric, as its reference code does it:
 *
 *   channel j of o_proj / down_proj:  m_j = Var_tokens(X_j) * ||W[:, j]||^2   (squared again for o_proj)
 *   standardized within each block and module (z-scores), attention scores averaged over a kv
 *   group's channels; then all groups and channels of all blocks compete for removal on that one
 *   scale, each weighted by the parameters it frees (plan.ts: globalPlan).
 *
 * Bias compensation: a removed channel j is replaced by its calibration mean, so the block's output
 * gains W[:, removed] · mean(X)[removed] as a bias on o_proj / down_proj (see shrink.ts for how
 * the biases are stored). Statistics come from the unpruned model in one pass.
 */
import { LlamaRunner } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import type { CalibBatch } from '../prune/calib-batch.js';
import { collectStats, channelMean, channelVariance, type LayerStats } from './stats.js';
import { columnSqNorm, partialMatVec } from './columns.js';
import { flagsOf, globalPlan, type BiasFlags, type Unit, type WidthPlan } from './plan.js';
import { shrinkModel, type BiasCompensation } from './shrink.js';

/** (x - mean) / std over the whole vector (unbiased std, as torch.std). */
export function standardize(x: Float64Array): Float64Array {
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1);
  const std = Math.sqrt(variance) || 1;
  return x.map((v) => (v - mean) / std);
}

/** Standardized FLAP scores of every kv group and MLP channel of every block. */
export function flapUnits(model: LlamaModel, stats: LayerStats[]): Unit[] {
  const cfg = model.config;
  const units: Unit[] = [];
  cfg.layers.forEach((l, li) => {
    const w = model.weights.blocks[li]!, st = stats[li]!;
    const oVar = channelVariance(st.attn), oSq = columnSqNorm(w.o);
    const attn = standardize(oVar.map((v, j) => (v * oSq[j]!) ** 2));
    const width = (l.numHeads / l.numKvHeads) * cfg.headDim;
    for (let g = 0; g < l.numKvHeads; g++) {
      let s = 0;
      for (let j = g * width; j < (g + 1) * width; j++) s += attn[j]!;
      units.push({ layer: li, kind: 'group', index: g, score: s / width });
    }
    const dVar = channelVariance(st.mlp), dSq = columnSqNorm(w.down);
    standardize(dVar.map((v, c) => v * dSq[c]!)).forEach((score, c) => units.push({ layer: li, kind: 'channel', index: c, score }));
  });
  return units;
}

/** The bias each block's o_proj / down_proj needs to stand in for its removed channels. */
export function flapCompensation(model: LlamaModel, plan: WidthPlan, stats: LayerStats[]): BiasCompensation[] {
  const d = model.config.headDim;
  return plan.map((p, li) => {
    const l = model.config.layers[li]!, w = model.weights.blocks[li]!;
    const width = (l.numHeads / l.numKvHeads) * d;
    const keptG = new Set(p.keepGroups), keptC = new Set(p.keepChannels);
    const oCols = [...Array(l.numHeads * d).keys()].filter((j) => !keptG.has(Math.floor(j / width)));
    const dCols = [...Array(l.intermediateSize).keys()].filter((c) => !keptC.has(c));
    return {
      o: partialMatVec(w.o, oCols, channelMean(stats[li]!.attn)),
      down: partialMatVec(w.down, dCols, channelMean(stats[li]!.mlp)),
    };
  });
}

export interface FlapOptions {
  /** add the compensation biases (default true) */
  bias?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function flap(model: LlamaModel, batches: CalibBatch[], target: number, opts: FlapOptions = {}): Promise<{ model: LlamaModel; plan: WidthPlan; flags: BiasFlags }> {
  const bias = opts.bias ?? true;
  const base = flagsOf(model.config);
  const flags: BiasFlags = bias ? (model.config.modelType === 'llama' ? { qkvBias: true, oBias: true, mlpBias: true } : { ...base, oBias: true, mlpBias: true }) : base;
  const stats = await collectStats(new LlamaRunner(model), batches, opts.onProgress);
  const plan = globalPlan(model.config, flapUnits(model, stats), target, flags);
  const comp = bias ? flapCompensation(model, plan, stats) : undefined;
  return { model: shrinkModel(model, plan, flags, comp), plan, flags };
}
