/**
 * Wanda-sp (An et al. 2024's structured variant of Wanda): a unit's importance is its weights'
 * magnitudes times the norms of the activations they read,
 *
 *   s_j = mean_i |W[i, j]| * ||X_j||_2         for each input channel j of o_proj / down_proj,
 *
 * summed over the channels of a kv group (its r query heads x d) for attention. Every block loses
 * the same fraction (uniform sizing, plan.ts), and blocks are pruned in order: the statistics of
 * block i+1 are taken on the outputs of the already-pruned block i, as the reference does.
 */
import { LlamaRunner } from '../model/llama.js';
import type { LlamaModel, BlockWeights } from '../model/weights.js';
import type { LayerShape } from '../io/config.js';
import type { CalibBatch } from '../prune/calib-batch.js';
import { BlockWalker, channelNorm, type LayerStats } from './stats.js';
import { columnAbsMean } from './columns.js';
import { flagsOf, keepHighest, uniformCounts, type WidthPlan } from './plan.js';
import { shrinkBlock, widthRawConfig } from './shrink.js';

/** Wanda-sp scores of a block: per kv group and per MLP channel. */
export function wandaSpScores(w: BlockWeights, l: LayerShape, headDim: number, st: LayerStats): { groups: Float64Array; channels: Float64Array } {
  const oCol = columnAbsMean(w.o), oNorm = channelNorm(st.attn);
  const width = (l.numHeads / l.numKvHeads) * headDim;
  const groups = new Float64Array(l.numKvHeads);
  for (let j = 0; j < oCol.length; j++) groups[Math.floor(j / width)]! += oCol[j]! * oNorm[j]!;
  const dCol = columnAbsMean(w.down), dNorm = channelNorm(st.mlp);
  const channels = dCol.map((v, c) => v * dNorm[c]!);
  return { groups, channels };
}

export async function wandaSp(model: LlamaModel, batches: CalibBatch[], target: number, onProgress?: (done: number, total: number) => void): Promise<{ model: LlamaModel; plan: WidthPlan }> {
  const cfg = model.config, flags = flagsOf(cfg);
  const counts = uniformCounts(cfg, target, flags);
  // A working copy whose blocks are replaced as they are pruned; the source stays untouched.
  const work: LlamaModel = {
    config: { ...cfg, layers: [...cfg.layers] }, rawConfig: model.rawConfig,
    weights: { ...model.weights, blocks: [...model.weights.blocks] },
  };
  const walker = new BlockWalker(new LlamaRunner(work), batches);
  const plan: WidthPlan = [];
  for (let li = 0; li < cfg.numLayers; li++) {
    const st = await walker.stats(false);
    const w = work.weights.blocks[li]!, l = work.config.layers[li]!;
    const s = wandaSpScores(w, l, cfg.headDim, st);
    const p = { keepGroups: keepHighest(s.groups, counts.groups[li]!), keepChannels: keepHighest(s.channels, counts.channels[li]!) };
    const r = shrinkBlock(cfg, w, l, p, flags);
    work.weights.blocks[li] = r.w;
    work.config.layers[li] = r.shape;
    plan.push(p);
    if (li + 1 < cfg.numLayers) await walker.advance();
    onProgress?.(li + 1, cfg.numLayers);
  }
  return { model: { ...work, rawConfig: widthRawConfig(model.rawConfig, work.config) }, plan };
}
