/**
 * Width-pruning plans: which units of every block survive, and how many to remove to reach a
 * parameter target. A unit is a kv group (one key/value head with the query heads that share it,
 * i.e. nH/nKV query heads: q, k, v rows and o columns go together) or one MLP channel (a row of
 * gate and up, a column of down).
 *
 * Two ways to size a plan:
 *  - uniform (Wanda-sp, and the random-weight speed runs): every block loses the same fraction,
 *    attention and MLP as nearly at the same ratio as whole kv groups allow, with the MLP channel
 *    count tuned so the whole model lands on the parameter target;
 *  - global (FLAP): units of all blocks compete on one standardized score, each weighted by the
 *    parameters it frees, until the target is reached.
 */
import { UserError } from '../util/errors.js';
import { countParams, type LayerShape, type LlamaConfig } from '../io/config.js';

/** Surviving units per block, ascending indices. */
export interface LayerPlan {
  keepGroups: number[];
  keepChannels: number[];
}

export type WidthPlan = LayerPlan[];

/** Bias flags of the pruned model (FLAP's compensation turns on o_proj and down_proj biases). */
export interface BiasFlags {
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
}

/** How much to prune: a fraction of the model's parameters, or an absolute parameter count to keep. */
export type WidthTarget = { ratio: number } | { params: number };

export function flagsOf(cfg: LlamaConfig): BiasFlags {
  return { qkvBias: cfg.qkvBias, oBias: cfg.oBias, mlpBias: cfg.mlpBias };
}

/** Shape of one block after keeping `g` kv groups and `c` channels. */
export function keptShape(l: LayerShape, g: number, c: number): LayerShape {
  return { numHeads: g * (l.numHeads / l.numKvHeads), numKvHeads: g, intermediateSize: c };
}

/** The config the plan produces (shapes and bias flags only). */
export function plannedConfig(cfg: LlamaConfig, shapes: LayerShape[], flags: BiasFlags): LlamaConfig {
  return { ...cfg, ...flags, layers: shapes };
}

export function planShapes(cfg: LlamaConfig, plan: WidthPlan): LayerShape[] {
  return plan.map((p, i) => keptShape(cfg.layers[i]!, p.keepGroups.length, p.keepChannels.length));
}

/** Parameters to keep for a target. */
export function targetParams(cfg: LlamaConfig, t: WidthTarget): number {
  if ('ratio' in t) {
    if (!(t.ratio > 0 && t.ratio < 1)) throw new UserError(`--ratio must be in (0, 1) (got ${t.ratio})`);
    return Math.round((1 - t.ratio) * countParams(cfg));
  }
  if (!(t.params > 0)) throw new UserError(`target parameter count must be positive (got ${t.params})`);
  return t.params;
}

/** Removed-unit counts per block: kv groups and MLP channels. */
export interface RemovalCounts {
  groups: number[];
  channels: number[];
}

/**
 * Uniform removal counts reaching `target` parameters: for each possible fraction of kv groups
 * removed (g/nKV), the MLP fraction that lands closest to the target; among those within 1% of
 * the target, the one whose attention and MLP fractions are closest (Wanda-sp prunes both at
 * one ratio). At least one kv group and one channel stay in every block.
 */
export function uniformCounts(cfg: LlamaConfig, target: number, flags: BiasFlags): RemovalCounts {
  const layers = cfg.layers;
  const nKV0 = layers[0]!.numKvHeads;
  const countsFor = (fa: number, fm: number): RemovalCounts => ({
    groups: layers.map((l) => Math.min(l.numKvHeads - 1, Math.round(fa * l.numKvHeads))),
    channels: layers.map((l) => Math.min(l.intermediateSize - 1, Math.round(fm * l.intermediateSize))),
  });
  const paramsOf = (c: RemovalCounts) => countParams(plannedConfig(cfg, layers.map((l, i) => keptShape(l, l.numKvHeads - c.groups[i]!, l.intermediateSize - c.channels[i]!)), flags));
  const candidates: { counts: RemovalCounts; err: number; gap: number }[] = [];
  for (let g = 0; g < nKV0; g++) {
    const fa = g / nKV0;
    // parameters fall monotonically with the MLP fraction: bisect for the target
    let lo = 0, hi = 1;
    for (let it = 0; it < 40; it++) {
      const mid = (lo + hi) / 2;
      if (paramsOf(countsFor(fa, mid)) > target) lo = mid; else hi = mid;
    }
    for (const fm of [lo, hi]) {
      const counts = countsFor(fa, fm);
      candidates.push({ counts, err: Math.abs(paramsOf(counts) - target) / target, gap: Math.abs(fa - fm) });
    }
  }
  const ok = candidates.filter((c) => c.err <= 0.01).sort((a, b) => a.gap - b.gap || a.err - b.err);
  if (ok.length === 0) {
    const closest = Math.min(...candidates.map((c) => c.err));
    throw new UserError(`cannot reach ${target} parameters by uniform width pruning (closest is ${(100 * closest).toFixed(1)}% off)`);
  }
  return ok[0]!.counts;
}

/** Indices 0..n-1 without the `remove` lowest-scoring ones, ascending (ties: lower index removed first). */
export function keepHighest(scores: ArrayLike<number>, remove: number): number[] {
  const idx = [...Array(scores.length).keys()].sort((a, b) => scores[a]! - scores[b]! || a - b);
  return idx.slice(remove).sort((a, b) => a - b);
}

/** Uniform plan without scores: drop the last units of every block (random-weight speed runs). */
export function uniformPlanByPosition(cfg: LlamaConfig, counts: RemovalCounts): WidthPlan {
  return cfg.layers.map((l, i) => ({
    keepGroups: [...Array(l.numKvHeads - counts.groups[i]!).keys()],
    keepChannels: [...Array(l.intermediateSize - counts.channels[i]!).keys()],
  }));
}

/** One removable unit, for global allocation. */
export interface Unit {
  layer: number;
  kind: 'group' | 'channel';
  index: number;
  score: number;
}

/**
 * Global allocation: remove units in ascending score order while the parameter count stays at or
 * above `target`; a unit that would overshoot is skipped and smaller ones keep filling the gap, so
 * the result lands within one MLP channel of the target. Every block keeps a kv group and a channel.
 */
export function globalPlan(cfg: LlamaConfig, units: Unit[], target: number, flags: BiasFlags): WidthPlan {
  const H = cfg.hiddenSize, d = cfg.headDim;
  const groupCost = (l: LayerShape) => {
    const q = (l.numHeads / l.numKvHeads) * d;
    return 2 * H * q + 2 * H * d + (flags.qkvBias ? q + 2 * d : 0);
  };
  const chanCost = 3 * H + (flags.mlpBias ? 2 : 0);
  let params = countParams(plannedConfig(cfg, cfg.layers, flags));
  if (params <= target) throw new UserError(`the model already has ${params} <= ${target} parameters`);
  const groupsLeft = cfg.layers.map((l) => l.numKvHeads), chansLeft = cfg.layers.map((l) => l.intermediateSize);
  const removed = cfg.layers.map(() => ({ g: new Set<number>(), c: new Set<number>() }));
  const sorted = [...units].sort((a, b) => a.score - b.score || a.layer - b.layer || a.index - b.index);
  for (const u of sorted) {
    if (params - target < chanCost) break;
    const cost = u.kind === 'group' ? groupCost(cfg.layers[u.layer]!) : chanCost;
    if (params - cost < target) continue;
    if (u.kind === 'group') {
      if (groupsLeft[u.layer]! <= 1) continue;
      groupsLeft[u.layer]!--; removed[u.layer]!.g.add(u.index);
    } else {
      if (chansLeft[u.layer]! <= 1) continue;
      chansLeft[u.layer]!--; removed[u.layer]!.c.add(u.index);
    }
    params -= cost;
  }
  return cfg.layers.map((l, i) => ({
    keepGroups: [...Array(l.numKvHeads).keys()].filter((g) => !removed[i]!.g.has(g)),
    keepChannels: [...Array(l.intermediateSize).keys()].filter((c) => !removed[i]!.c.has(c)),
  }));
}
