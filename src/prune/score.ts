/** Run a block-importance criterion by name. */
import type { LlamaRunner } from '../model/llama.js';
import type { CalibBatch } from './calib-batch.js';
import type { CriterionResult } from './criteria/types.js';
import { taylorScores } from './criteria/taylor.js';
import { magnitudeScores } from './criteria/magnitude.js';
import { pplScores, slebScores } from './criteria/ppl.js';
import { blockInfluence, angularDistance } from './criteria/hidden.js';
import { UserError } from '../util/errors.js';

export const CRITERIA = ['taylor', 'ppl', 'magnitude', 'bi', 'angular', 'sleb'] as const;
export type CriterionName = (typeof CRITERIA)[number];

export function checkCriterion(name: string): CriterionName {
  if (!(CRITERIA as readonly string[]).includes(name)) throw new UserError(`unknown criterion '${name}' (choose from ${CRITERIA.join(', ')})`);
  return name as CriterionName;
}

export interface ScoreOptions {
  /** angular: span length to pick; sleb: how many blocks to remove iteratively */
  blocksToRemove?: number;
  onProgress?: (done: number, total: number) => void;
  /** sleb: blocks it may not remove (the "+" heuristic) */
  protectedBlocks?: Set<number>;
  /** taylor: recompute activations in the backward (default: only when keeping them does not fit) */
  recompute?: boolean;
}

export async function scoreBlocks(run: LlamaRunner, criterion: CriterionName, batches: CalibBatch[], opts: ScoreOptions = {}): Promise<CriterionResult> {
  switch (criterion) {
    case 'taylor': return taylorScores(run, batches, { onProgress: opts.onProgress, recompute: opts.recompute });
    case 'magnitude': return magnitudeScores(run.model);
    case 'ppl': return pplScores(run, batches, opts.onProgress);
    case 'bi': return blockInfluence(run, batches);
    case 'angular': return angularDistance(run, batches, opts.blocksToRemove ?? 1);
    case 'sleb': return slebScores(run, batches, opts.blocksToRemove, opts.onProgress, opts.protectedBlocks);
  }
}

/** Whether the criterion needs calibration data. */
export function needsCalibration(c: CriterionName): boolean {
  return c !== 'magnitude';
}
