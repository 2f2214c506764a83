/**
 * Taylor+ (Shortened LLaMA): one forward/backward of the mean next-token loss over the whole
 * calibration set; a block's score is sum over its nine weight tensors of sum |W * dL/dW|.
 * Only block weight gradients are computed (embedding, head and norm gradients are skipped).
 */
import { toF32 } from '../../engine/tensor.js';
import { BLOCK_WEIGHT_NAMES, type BlockWeightName } from '../../model/weights.js';
import type { LlamaRunner } from '../../model/llama.js';
import type { CalibBatch } from '../calib-batch.js';
import { ascendingOrder, type CriterionResult } from './types.js';

export async function taylorScores(run: LlamaRunner, batches: CalibBatch[], onProgress?: (done: number, total: number) => void): Promise<CriterionResult> {
  const L = run.config.numLayers;
  // Gradient of the mean over ALL predictions = sum over batches of (count_b / total) * grad(mean_b).
  let total = 0;
  for (const b of batches) total += b.B * (b.T - 1);
  const acc: Partial<Record<BlockWeightName, Float32Array>>[] = [...Array(L)].map(() => ({}));
  for (let bi = 0; bi < batches.length; bi++) {
    const b = batches[bi]!;
    const res = await run.forward(b.ids, b.B, b.T, { keep: true });
    const g = await run.backward(res, { blocks: true });
    const wgt = res.count! / total;
    for (let l = 0; l < L; l++) {
      for (const n of BLOCK_WEIGHT_NAMES) {
        const src = g.blocks[l]![n]!;
        const dst = acc[l]![n] ?? (acc[l]![n] = new Float32Array(src.length));
        for (let i = 0; i < src.length; i++) dst[i]! += wgt * src[i]!;
      }
    }
    onProgress?.(bi + 1, batches.length);
  }
  const perTensor = run.model.weights.blocks.map((blk, l) => BLOCK_WEIGHT_NAMES.map((n) => {
    const w = toF32(blk[n]);
    const g = acc[l]![n]!;
    let s = 0;
    for (let i = 0; i < w.length; i++) s += Math.abs(w[i]! * g[i]!);
    return s;
  }));
  const scores = perTensor.map((r) => r.reduce((a, c) => a + c, 0));
  return { criterion: 'taylor', scores, order: ascendingOrder(scores), details: { perTensor, tensors: [...BLOCK_WEIGHT_NAMES] } };
}
