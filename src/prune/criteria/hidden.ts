/**
 * Criteria read off the residual stream at block boundaries: ShortGPT's Block Influence and
 * Gromov et al.'s angular distance. One forward collects every boundary.
 */
import type { LlamaRunner } from '../../model/llama.js';
import type { CalibBatch } from '../calib-batch.js';
import { ascendingOrder, type CriterionResult } from './types.js';

function cosine(a: Float32Array, ao: number, b: Float32Array, bo: number, H: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let j = 0; j < H; j++) { const x = a[ao + j]!, y = b[bo + j]!; ab += x * y; aa += x * x; bb += y * y; }
  return ab / Math.sqrt(aa * bb);
}

/** bi[i] = 1 - mean over all tokens of cos(h_i, h_{i+1}). */
export async function blockInfluence(run: LlamaRunner, batches: CalibBatch[]): Promise<CriterionResult> {
  const L = run.config.numLayers, H = run.config.hiddenSize;
  const sum = new Float64Array(L);
  let count = 0;
  for (const b of batches) {
    const { hidden } = await run.forward(b.ids, b.B, b.T, { hidden: true });
    const N = b.B * b.T;
    for (let l = 0; l < L; l++) for (let i = 0; i < N; i++) sum[l]! += cosine(hidden![l]!, i * H, hidden![l + 1]!, i * H, H);
    count += N;
  }
  const scores = [...sum].map((s) => 1 - s / count);
  return { criterion: 'bi', scores, order: ascendingOrder(scores), details: {} };
}

/**
 * angular[n-1][l] = mean over rows of arccos(cos(h_l, h_{l+n}) at the last token) / pi (NaN where
 * l+n > L). For n blocks, the span starting at argmin_l angular[n-1][l] is removed. `scores` are the
 * n=1 distances (per block), `order` the span chosen for `span` blocks, then the rest by score.
 */
export async function angularDistance(run: LlamaRunner, batches: CalibBatch[], span = 1): Promise<CriterionResult> {
  const L = run.config.numLayers, H = run.config.hiddenSize;
  const sums = [...Array(L - 1)].map(() => new Float64Array(L));
  let rows = 0;
  for (const b of batches) {
    const { hidden } = await run.forward(b.ids, b.B, b.T, { hidden: true });
    for (let r = 0; r < b.B; r++) {
      const o = (r * b.T + b.T - 1) * H;
      for (let n = 1; n < L; n++) {
        for (let l = 0; l + n <= L; l++) {
          const c = Math.min(1, Math.max(-1, cosine(hidden![l]!, o, hidden![l + n]!, o, H)));
          sums[n - 1]![l]! += Math.acos(c) / Math.PI;
        }
      }
    }
    rows += b.B;
  }
  const angular = sums.map((row, n1) => [...row].map((s, l) => (l + n1 + 1 <= L ? s / rows : NaN)));
  const bestStart = angular.map((row) => {
    let best = 0;
    row.forEach((v, l) => { if (!Number.isNaN(v) && v < row[best]!) best = l; });
    return best;
  });
  const scores = angular[0]!.slice(0, L);
  const s0 = bestStart[Math.min(span, L - 1) - 1]!;
  const spanBlocks = [...Array(Math.min(span, L - 1)).keys()].map((i) => s0 + i);
  const order = [...spanBlocks, ...ascendingOrder(scores).filter((i) => !spanBlocks.includes(i))];
  return { criterion: 'angular', scores, order, details: { angular: angular.map((r) => r.map((v) => (Number.isNaN(v) ? null : v))), bestStart, span } };
}
