import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner, shiftTargets } from '../src/model/llama.js';
import { toF32 } from '../src/engine/tensor.js';

// The head's gradient made inside the forward's head pass (online softmax over vocabulary chunks,
// rescaled as each row's max grows) against the two-pass headBackward (logits recomputed, softmax
// from the finished log-sum-exp): a vocabulary of three chunks (4096, 4096, 808), bf16 lm_head,
// and ignored targets inside rows as well as at their ends.
test('forward({ headGrad }) gives headBackward\'s dL/dx of the last block', async () => {
  const V = 9000, H = 48;
  const model = randomModel({ ...TINYLLAMA_CONFIG, hidden_size: H, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: V, max_position_embeddings: 64 }, 'bf16', 3);
  const run = new LlamaRunner(model);
  const B = 3, T = 7;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 2711 + 17) % V);
  const targets = shiftTargets(ids, B, T);
  targets[2] = -100; targets[T + 4] = -100;
  const fused = await run.forward(ids, B, T, { keep: true, headGrad: true, targets });
  const plain = await run.forward(ids, B, T, { keep: true, targets });
  assert.equal(fused.loss, plain.loss);
  const s = plain.saved!;
  const want = await run.headBackward(plain, s.xFinal, s.xnF, s.rstdF, s.targets, s.lse, {}, s.logits);
  const got = fused.dxFinal!;
  assert.equal(got.length, want.length);
  let scale = 0;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  assert.ok(scale > 0);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * scale, `element ${i}: ${got[i]} vs ${want[i]}`);
  // both against the gradient in f64 from the same xn: the fused pass adds the target's -W row
  // once at the end instead of inside a chunk's f32 sums, so it is the more accurate of the two
  const ref = f64HeadGrad(model, s.xnF, s.xFinal, s.rstdF, targets);
  const err = (a: Float32Array) => a.reduce((e, v, i) => Math.max(e, Math.abs(v - ref[i]!)), 0) / scale;
  assert.ok(err(got) <= 1e-6, `fused: ${err(got)}`);
  assert.ok(err(got) <= err(want), `fused ${err(got)} vs two-pass ${err(want)}`);
  // rows with ignored targets have no loss: their gradient is exactly zero
  for (const r of [2, T - 1, T + 4, 2 * T - 1]) for (let j = 0; j < H; j++) assert.equal(got[r * H + j], 0, `row ${r}`);
  assert.ok(fused.saved!.logits === undefined, 'the fused head keeps no logits');
});

/** dL/dx of the mean NLL through lm_head and the final RMSNorm, in f64 from the forward's xn, x and rstd. */
function f64HeadGrad(model: ReturnType<typeof randomModel>, xn: Float32Array, x: Float32Array, rstd: Float32Array, targets: Int32Array): Float64Array {
  const H = model.config.hiddenSize, V = model.config.vocabSize, N = targets.length;
  const W = toF32(model.weights.lmHead), g = toF32(model.weights.norm);
  const count = targets.filter((t) => t >= 0).length;
  const out = new Float64Array(N * H), l = new Float64Array(V), dxn = new Float64Array(H);
  for (let r = 0; r < N; r++) {
    if (targets[r]! < 0) continue;
    let max = -Infinity, sum = 0;
    for (let v = 0; v < V; v++) {
      let a = 0;
      for (let j = 0; j < H; j++) a += xn[r * H + j]! * W[v * H + j]!;
      l[v] = a; max = Math.max(max, a);
    }
    for (let v = 0; v < V; v++) sum += Math.exp(l[v]! - max);
    dxn.fill(0);
    for (let v = 0; v < V; v++) {
      const p = (Math.exp(l[v]! - max) / sum - (v === targets[r] ? 1 : 0)) / count;
      for (let j = 0; j < H; j++) dxn[j]! += p * W[v * H + j]!;
    }
    // y = x rstd g: dx = rstd (dy g) - x rstd^3 (sum dy g x) / H
    let dot = 0;
    for (let j = 0; j < H; j++) dot += dxn[j]! * g[j]! * x[r * H + j]!;
    const rs = rstd[r]!;
    for (let j = 0; j < H; j++) out[r * H + j] = rs * dxn[j]! * g[j]! - (x[r * H + j]! * rs * rs * rs * dot) / H;
  }
  return out;
}
