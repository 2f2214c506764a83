import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import { KVCache } from '../src/model/kv-cache.js';

// A small GQA model (2 kv heads of 4 query heads), two rows, decoded through a cache that is never
// full, so every layer reads the cache's reused contiguous views: each step's logits must be those
// of one full forward over the same tokens.
test('decoding through the KV cache (reused views, every layer) gives the full forward\'s logits', async () => {
  const model = randomModel({ ...TINYLLAMA_CONFIG, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 50, max_position_embeddings: 64 }, 'f32');
  const run = new LlamaRunner(model);
  const B = 2, T0 = 5, steps = 4, V = 50;
  const rows = [[3, 7, 11, 2, 9, 4, 8, 1, 6], [5, 1, 12, 30, 2, 17, 3, 44, 21]];
  const cache = new KVCache(run.config, B, T0 + steps + 3);
  await run.forward(Int32Array.from(rows.flatMap((r) => r.slice(0, T0))), B, T0, { cache, logits: true });
  for (let s = 0; s < steps; s++) {
    const step = await run.forward(Int32Array.from(rows.map((r) => r[T0 + s]!)), B, 1, { cache, logits: true });
    const T = T0 + s + 1;
    const full = await run.forward(Int32Array.from(rows.flatMap((r) => r.slice(0, T))), B, T, { logits: true });
    for (let b = 0; b < B; b++)
      for (let j = 0; j < V; j++) {
        const want = full.logits![(b * T + T - 1) * V + j]!, got = step.logits![b * V + j]!;
        assert.ok(Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want)), `step ${s} row ${b} logit ${j}: ${got} vs ${want}`);
      }
  }
});
