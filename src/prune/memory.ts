/** The peak memory of scoring a model with a criterion (for the preflight; see model/memory.ts). */
import type { LlamaConfig } from '../io/config.js';
import { forwardMemory, taylorMemoryFor, RUNTIME_BYTES, type BatchShape } from '../model/memory.js';
import { splitBatches, type CalibBatch } from './calib-batch.js';
import { TAYLOR_CHUNK_TOKENS } from './criteria/taylor.js';
import type { CriterionName } from './score.js';
import { availableBytes, totalBytes, type MemoryEstimate } from '../util/memory.js';

export function criterionMemory(criterion: CriterionName, cfg: LlamaConfig, weightBytes: number, batches: CalibBatch[], recompute?: boolean): MemoryEstimate {
  if (criterion === 'magnitude') return { parts: { weights: weightBytes, runtime: RUNTIME_BYTES }, lower: 'nothing (magnitude reads the weights only)' };
  if (criterion === 'taylor') {
    // as asked, else what taylor picks: kept activations when they fit, recomputed ones otherwise
    const chunks: BatchShape[] = splitBatches(batches, TAYLOR_CHUNK_TOKENS);
    const keep = taylorMemoryFor(cfg, weightBytes, chunks, false), rec = taylorMemoryFor(cfg, weightBytes, chunks, true);
    if (recompute !== undefined) return recompute ? rec : keep;
    return totalBytes(keep) <= availableBytes() ? keep : rec;
  }
  // ppl, sleb, bi, angular: one batch at a time, with the residual stream at every block boundary
  const each = batches.map((b) => forwardMemory(cfg, weightBytes, b, true));
  const worst = each.reduce((a, e) => (totalBytes(e) > totalBytes(a) ? e : a), each[0]!);
  return { ...worst, lower: '--n or --seq-len' };
}
