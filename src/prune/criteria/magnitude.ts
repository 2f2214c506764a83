/** Magnitude criterion: sum |W| over a block's nine weight tensors (float64 accumulation). */
import { toF32 } from '../../engine/tensor.js';
import { BLOCK_WEIGHT_NAMES } from '../../model/weights.js';
import type { LlamaModel } from '../../model/weights.js';
import { ascendingOrder, type CriterionResult } from './types.js';

export function magnitudeScores(model: LlamaModel): CriterionResult {
  const perTensor = model.weights.blocks.map((b) => BLOCK_WEIGHT_NAMES.map((n) => {
    const w = toF32(b[n]);
    let s = 0;
    for (let i = 0; i < w.length; i++) s += Math.abs(w[i]!);
    return s;
  }));
  const scores = perTensor.map((r) => r.reduce((a, b) => a + b, 0));
  return { criterion: 'magnitude', scores, order: ascendingOrder(scores), details: { perTensor, tensors: [...BLOCK_WEIGHT_NAMES] } };
}
