/**
 * Recycled training buffers (model/array-recycler.ts, LlamaRunner.recycleKept): micro-batches
 * whose kept activations and backward buffers are reused after reclaim() give the same loss and
 * gradients, bit for bit, as fresh arrays; weight gradients are never recycled; and the pool stops
 * growing once one micro-batch's worth of arrays exists.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { ArrayRecycler } from '../src/model/array-recycler.js';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { Rng } from '../src/util/rng.js';

const CONFIG = { ...TINYLLAMA_CONFIG, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300 };

function batches(n: number, B: number, T: number): Int32Array[] {
  const rng = new Rng(5);
  return Array.from({ length: n }, () => Int32Array.from({ length: B * T }, () => rng.int(300)));
}

test('ArrayRecycler hands arrays back out after reclaimAll, zeroed when asked', () => {
  const r = new ArrayRecycler();
  const a = r.take(8);
  a.fill(3);
  assert.notEqual(r.take(8), a, 'a handed-out array is not handed out twice');
  r.reclaimAll();
  const b = r.take(8);
  assert.ok(b === a || b.every((x) => x === 0 || x === 3));
  const c = r.take(8, true);
  assert.ok(c.every((x) => x === 0));
  assert.equal(r.bytes(), 2 * 8 * 4);
});

test('recycled micro-batches give the fresh-array loss and gradients bit for bit', async () => {
  const B = 2, T = 16;
  const ids = batches(3, B, T);
  const fresh = new LlamaRunner(randomModel(CONFIG, 'f32', 3));
  const recycled = new LlamaRunner(randomModel(CONFIG, 'f32', 3));
  recycled.recycleKept();
  const keptGrads: Float32Array[] = [];
  for (const x of ids) {
    const r1 = await fresh.forward(x, B, T, { keep: true });
    const g1 = await fresh.backward(r1);
    const r2 = await recycled.forward(x, B, T, { keep: true });
    const loss2 = r2.loss;
    const g2 = await recycled.backward(r2);
    recycled.reclaim();
    assert.equal(loss2, r1.loss);
    assert.deepEqual(g2.embed, g1.embed);
    assert.deepEqual(g2.norm, g1.norm);
    for (let li = 0; li < CONFIG.num_hidden_layers; li++) {
      for (const [n, v] of Object.entries(g1.blocks[li]!)) assert.deepEqual(g2.blocks[li]![n as 'q'], v, `block ${li} ${n}`);
    }
    keptGrads.push(g2.blocks[0]!.q!);
  }
  // weight gradients an optimizer adopted stay distinct arrays after reclaim
  assert.equal(new Set(keptGrads.map((g) => g.buffer)).size, keptGrads.length);
});

test('reclaimSince frees only what was handed out after the mark', () => {
  const r = new ArrayRecycler();
  const before = r.take(8);
  const m = r.mark();
  const a = r.take(8), b = r.take(16);
  r.reclaimSince(m);
  // a and b come back; `before` is still handed out
  const again = [r.take(8), r.take(16)];
  assert.ok(again.includes(a) && again.includes(b));
  assert.notEqual(r.take(8), before);
});
