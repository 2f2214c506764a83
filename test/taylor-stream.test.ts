/**
 * The block-streamed Taylor+ equals the plain computation it replaced (one backward of the whole
 * model, every block's gradient accumulated over the batches, then sum |W * G|) on a model of
 * TinyLlama-1.1B's block and vocabulary shapes (two blocks, bf16), with activations kept or
 * recomputed, and with the calibration split into several batches.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { batchesFromRows, type CalibBatch } from '../src/prune/calib-batch.js';
import { taylorScores } from '../src/prune/criteria/taylor.js';
import { BLOCK_WEIGHT_NAMES } from '../src/model/weights.js';
import { toF32 } from '../src/engine/tensor.js';
import { mulberry32 } from '../src/util/rng.js';

/** The previous implementation, kept here as the reference: full per-batch backward, summed gradients. */
async function plainTaylor(run: LlamaRunner, batches: CalibBatch[]): Promise<number[][]> {
  const L = run.config.numLayers;
  let total = 0;
  for (const b of batches) total += b.B * (b.T - 1);
  const acc: Float64Array[][] = [...Array(L)].map(() => BLOCK_WEIGHT_NAMES.map(() => new Float64Array(0)));
  for (const b of batches) {
    // the head's gradient as Taylor+ makes it, in the forward's head pass (test/head-grad.test.ts
    // checks it against headBackward's and an f64 reference): this test is about the streaming
    const res = await run.forward(b.ids, b.B, b.T, { keep: true, headGrad: true });
    const g = await run.backward(res, { blocks: true });
    for (let l = 0; l < L; l++) BLOCK_WEIGHT_NAMES.forEach((n, k) => {
      const src = g.blocks[l]![n]!;
      if (acc[l]![k]!.length === 0) acc[l]![k] = new Float64Array(src.length);
      const dst = acc[l]![k]!;
      for (let i = 0; i < src.length; i++) dst[i]! += (res.count! / total) * src[i]!;
    });
  }
  return run.model.weights.blocks.map((blk, l) => BLOCK_WEIGHT_NAMES.map((n, k) => {
    const w = toF32(blk[n]), g = acc[l]![k]!;
    let s = 0;
    for (let i = 0; i < w.length; i++) s += Math.abs(w[i]! * g[i]!);
    return s;
  }));
}

test('streamed Taylor+ equals the full-gradient computation at TinyLlama shapes (kept, recomputed, several batches)', async () => {
  const model = randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: 2 }, 'bf16', 7);
  const run = new LlamaRunner(model);
  const rnd = mulberry32(3);
  const rows = [...Array(4)].map(() => [...Array(64)].map(() => Math.floor(rnd() * 32000)));
  const oneBatch = batchesFromRows(rows);
  const want = await plainTaylor(run, oneBatch);
  const cases: [string, Promise<{ details: Record<string, unknown> }>][] = [
    ['kept', taylorScores(run, oneBatch, { recompute: false })],
    ['recomputed', taylorScores(run, oneBatch, { recompute: true })],
  ];
  for (const [label, p] of cases) {
    const got = (await p).details['perTensor'] as number[][];
    got.flat().forEach((v, i) => assert.ok(Math.abs(v - want.flat()[i]!) <= 2e-5 * want.flat()[i]!, `${label} tensor ${i}: ${v} vs ${want.flat()[i]}`));
  }
  const split = rows.map((r) => batchesFromRows([r])[0]!);
  const wantSplit = await plainTaylor(run, split);
  const got = (await taylorScores(run, split, { recompute: true })).details['perTensor'] as number[][];
  got.flat().forEach((v, i) => assert.ok(Math.abs(v - wantSplit.flat()[i]!) <= 2e-5 * wantSplit.flat()[i]!, `several batches tensor ${i}: ${v} vs ${wantSplit.flat()[i]}`));
  // summing gradients per batch or in one batch is the same gradient, up to float rounding
  wantSplit.flat().forEach((v, i) => assert.ok(Math.abs(v - want.flat()[i]!) <= 1e-3 * want.flat()[i]!));
});
