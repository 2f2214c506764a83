/**
 * Gradient checkpointing for adapter training on a frozen base: the forward keeps only each
 * block's input (the residual stream at every boundary), and each block's activations are
 * recomputed just before its backward, last block first. Peak activations drop from every
 * block's (2.7 GB at Llama-3-8B shapes, micro-batch 1×256) to one block's plus the boundaries,
 * for one more forward.
 *
 * LoRA dropout draws one number per adapted projection from the training RNG; the forward
 * records each block's draws and the recompute replays them, so the masks, the loss, the
 * gradients and the RNG's state afterwards are those of the kept-activations path exactly.
 */
import type { LoraGrads, LoraTarget } from './lora.js';
import { shiftTargets, type LlamaRunner } from './llama.js';

export interface CheckpointedResult {
  loss: number;
  count: number;
  /** LoRA gradients per block (the base gets none) */
  lora: Partial<Record<LoraTarget, LoraGrads>>[];
}

/** Mean NLL of `targets` over ids [B, T] and the adapters' gradients, recomputing block activations. */
export async function checkpointedLoraStep(run: LlamaRunner, ids: Int32Array, B: number, T: number,
  opts: { targets?: Int32Array; rng?: () => number }): Promise<CheckpointedResult> {
  run.checkIds(ids);
  const L = run.config.numLayers, N = B * T;
  const targets = opts.targets ?? shiftTargets(ids, B, T);
  // forward: block inputs kept, each block's RNG draws recorded
  const inputs: (Float32Array | null)[] = [run.embed(ids)];
  const draws: number[][] = [];
  for (let l = 0; l < L; l++) {
    const d: number[] = [];
    draws.push(d);
    const rng = opts.rng ? () => { const v = opts.rng!(); d.push(v); return v; } : undefined;
    inputs.push((await run.block(l, inputs[l]!, B, T, 0, { rng })).x);
  }
  const x = inputs[L]!;
  inputs[L] = null;
  const { xn, rstd } = run.finalNorm(x, N);
  // the loss and its gradient at the last block's output in one pass over the head
  const head = await run.headNllGrad(x, xn, rstd, targets, N);
  const lora: Partial<Record<LoraTarget, LoraGrads>>[] = new Array(L);
  if (head.count === 0) return { loss: head.loss, count: 0, lora };
  let dx = head.dx;
  for (let l = L - 1; l >= 0; l--) {
    const d = draws[l]!;
    let k = 0;
    const replay = opts.rng ? () => d[k++]! : undefined;
    // this block's recomputed activations (and any backward buffers) are dead after its backward:
    // they go back to the runner's recycler for the next block, so one block's worth exists at a
    // time (held until the step ends, they were every block's: +1.85 GB at 7B shapes, 1x256)
    const mark = run.keptMark();
    const acts = (await run.block(l, inputs[l]!, B, T, 0, { keep: true, rng: replay })).acts!;
    inputs[l] = null;
    const r = await run.blockBackward(l, acts, dx, B, T, false, { reuseDxOut: true });
    dx = r.dx;
    lora[l] = r.lora;
    run.reclaimSince(mark);
  }
  return { loss: head.loss, count: head.count, lora };
}
