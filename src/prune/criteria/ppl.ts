/**
 * Perplexity criteria. `ppl` (Shortened LLaMA): for each block, the calibration PPL of the model
 * with that block removed. `sleb` (SLEB): remove, one at a time, the block whose removal gives the
 * lowest PPL, then re-score the rest.
 *
 * Cost: the input of every block is computed once by a full forward; removing block i then only
 * re-runs blocks i+1.., so all L removals cost about L^2/2 block passes instead of L^2.
 */
import type { LlamaRunner } from '../../model/llama.js';
import { shiftTargets } from '../../model/llama.js';
import type { CalibBatch } from '../calib-batch.js';
import { ascendingOrder, type CriterionResult } from './types.js';

/**
 * Total NLL and prediction count for each candidate removal from the block list `blocks`
 * (candidate k removes blocks[k]), summed over batches.
 */
export async function removalNll(run: LlamaRunner, batches: CalibBatch[], blocks: number[], onStep?: () => void): Promise<{ nll: number[]; count: number }> {
  const nll = new Array<number>(blocks.length).fill(0);
  let count = 0;
  for (const b of batches) {
    const N = b.B * b.T;
    const targets = shiftTargets(b.ids, b.B, b.T);
    // inputs[k] = residual stream entering blocks[k] in the current model
    const inputs: Float32Array[] = [run.embed(b.ids)];
    for (let k = 0; k < blocks.length - 1; k++) inputs.push((await run.block(blocks[k]!, inputs[k]!, b.B, b.T, 0, {})).x);
    for (let k = 0; k < blocks.length; k++) {
      let x = inputs[k]!;
      for (let j = k + 1; j < blocks.length; j++) x = (await run.block(blocks[j]!, x, b.B, b.T, 0, {})).x;
      const { xn } = run.finalNorm(x, N);
      const h = await run.headNll(xn, targets, N, false);
      nll[k]! += h.loss * h.count;
      if (k === 0) count += h.count;
      onStep?.();
    }
  }
  return { nll, count };
}

export async function pplScores(run: LlamaRunner, batches: CalibBatch[], onProgress?: (done: number, total: number) => void): Promise<CriterionResult> {
  const L = run.config.numLayers;
  const all = [...Array(L).keys()];
  let done = 0;
  const { nll, count } = await removalNll(run, batches, all, () => onProgress?.(++done, L * batches.length));
  const scores = nll.map((s) => Math.exp(s / count));
  return { criterion: 'ppl', scores, order: ascendingOrder(scores), details: { pplRemoved: scores } };
}

/**
 * SLEB-style iterative removal of up to `maxRemove` blocks (default: down to one block left),
 * never choosing a protected block. `scores[i]` is the PPL
 * reached when block i was removed (higher = removed later = more important); never-removed blocks
 * score +Infinity.
 */
export async function slebScores(run: LlamaRunner, batches: CalibBatch[], maxRemove?: number, onProgress?: (done: number, total: number) => void,
  protectedSet: Set<number> = new Set()): Promise<CriterionResult> {
  const L = run.config.numLayers;
  const steps = Math.min(maxRemove ?? L - 1, L - 1, L - protectedSet.size);
  let cur = [...Array(L).keys()];
  const order: number[] = [], pplAfter: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { nll, count } = await removalNll(run, batches, cur);
    const ppl = nll.map((v) => Math.exp(v / count));
    let best = -1;
    ppl.forEach((p, k) => { if (!protectedSet.has(cur[k]!) && (best < 0 || p < ppl[best]!)) best = k; });
    order.push(cur[best]!);
    pplAfter.push(ppl[best]!);
    cur = cur.filter((_, k) => k !== best);
    onProgress?.(s + 1, steps);
  }
  const scores = new Array<number>(L).fill(Infinity);
  order.forEach((b, k) => { scores[b] = pplAfter[k]!; });
  const rest = ascendingOrder(scores).filter((i) => !order.includes(i));
  return { criterion: 'sleb', scores, order: [...order, ...rest], details: { order, pplAfterRemoval: pplAfter } };
}
