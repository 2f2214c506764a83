/**
 * Load → calibrate → plan → slice → save: the width-pruning pipeline behind `shorten prune-width`.
 * Methods: wanda-sp and flap (calibrated), and `uniform` (no calibration: every block drops its
 * last kv groups and channels; for speed runs on random weights, where only shapes matter).
 */
import { checkOutputFolder } from '../io/output-guard.js';
import path from 'node:path';
import { loadModel, saveModel, inspectModel } from '../io/model-folder.js';
import { forwardMemory, paramElements } from '../model/memory.js';
import { preflight } from '../util/memory.js';
import { countParams } from '../io/config.js';
import type { LlamaModel } from '../model/weights.js';
import type { CalibBatch } from '../prune/calib-batch.js';
import { calibrationSet, type CalibSource } from '../prune/pipeline.js';
import { UserError } from '../util/errors.js';
import { progressCallback } from '../util/progress.js';
import { flagsOf, targetParams, uniformCounts, uniformPlanByPosition, type WidthPlan, type WidthTarget } from './plan.js';
import { shrinkModel } from './shrink.js';
import { wandaSp } from './wanda-sp.js';
import { flap } from './flap.js';

export const WIDTH_METHODS = ['wanda-sp', 'flap', 'uniform'] as const;
export type WidthMethod = (typeof WIDTH_METHODS)[number];

export interface WidthOptions {
  method: WidthMethod;
  target: WidthTarget;
  /** FLAP bias compensation (default true) */
  bias?: boolean;
}

export interface WidthResult {
  pruned: LlamaModel;
  plan: WidthPlan;
  paramsBefore: number;
  paramsAfter: number;
  target: number;
  /** per block, the source's kv groups and MLP channels that were removed */
  removedGroups: number[][];
  removedChannels: number[][];
}

/** Width-prune an in-memory model (calibration batches are needed by wanda-sp and flap). */
export async function pruneWidth(model: LlamaModel, batches: CalibBatch[], o: WidthOptions): Promise<WidthResult> {
  const target = targetParams(model.config, o.target);
  const before = countParams(model.config);
  if (target >= before) throw new UserError(`the model has ${before} parameters, not more than the target ${target}`);
  if (o.method !== 'uniform' && batches.length === 0) throw new UserError(`${o.method} needs calibration data`);
  let pruned: LlamaModel, plan: WidthPlan;
  if (o.method === 'uniform') {
    const flags = flagsOf(model.config);
    plan = uniformPlanByPosition(model.config, uniformCounts(model.config, target, flags));
    pruned = shrinkModel(model, plan, flags);
  } else if (o.method === 'wanda-sp') {
    ({ model: pruned, plan } = await wandaSp(model, batches, target, progressCallback('wanda-sp', 'blocks')));
  } else {
    ({ model: pruned, plan } = await flap(model, batches, target, { bias: o.bias, onProgress: progressCallback('flap statistics', 'blocks') }));
  }
  const removed = (n: number, keep: number[]) => {
    const k = new Set(keep);
    return [...Array(n).keys()].filter((i) => !k.has(i));
  };
  return {
    pruned, plan, paramsBefore: before, paramsAfter: countParams(pruned.config), target,
    removedGroups: plan.map((p, i) => removed(model.config.layers[i]!.numKvHeads, p.keepGroups)),
    removedChannels: plan.map((p, i) => removed(model.config.layers[i]!.intermediateSize, p.keepChannels)),
  };
}

/** What pruning.json records for a width-pruned folder. */
export function widthInfo(modelDir: string, o: WidthOptions, r: WidthResult, calibration: Record<string, unknown> | null): Record<string, unknown> {
  return {
    method: `width pruning (${o.method})`,
    source_model: path.resolve(modelDir),
    target: o.target,
    bias_compensation: o.method === 'flap' && (o.bias ?? true),
    params_before: r.paramsBefore,
    params_target: r.target,
    params_after: r.paramsAfter,
    layer_shapes: r.pruned.config.layers.map((l) => ({ num_attention_heads: l.numHeads, num_key_value_heads: l.numKvHeads, intermediate_size: l.intermediateSize })),
    removed_kv_groups: r.removedGroups,
    removed_channels: r.removedChannels,
    calibration,
  };
}

/** Prune `modelDir` into `out` (written atomically; the source is never touched). */
export async function pruneWidthDir(modelDir: string, out: string, o: WidthOptions, calib: CalibSource, force = false): Promise<WidthResult> {
  checkOutputFolder(out, force, [modelDir, calib.data, calib.ids]);
  const shape = inspectModel(modelDir);
  // the source, its calibration forward with every block boundary, and the sliced copy of the blocks
  const kept = 'ratio' in o.target ? 1 - o.target.ratio : Math.min(1, o.target.params / paramElements(shape.config));
  const fwd = forwardMemory(shape.config, shape.weightBytes, { B: Math.min(calib.n ?? 10, 8), T: calib.seqLen ?? 128 }, true);
  preflight(`prune-width --method ${o.method}`, { parts: { ...fwd.parts, 'pruned copy': kept * shape.weightBytes }, lower: '--n or --seq-len, or a larger --ratio' });
  const model = loadModel(modelDir);
  const cs = o.method === 'uniform' ? null : calibrationSet(modelDir, calib);
  const r = await pruneWidth(model, cs?.batches ?? [], o);
  saveModel(r.pruned, out, { sourceDir: modelDir, force, extraFiles: { 'pruning.json': widthInfo(modelDir, o, r, cs?.settings ?? null) } });
  return r;
}
