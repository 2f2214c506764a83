/**
 * Width pruning: slicing is the same function as masking, FLAP's compensation cancels the mean
 * error, plans hit the parameter target, and pruned folders round-trip with identical logits.
 * Most checks use a small random model (no ../shared needed); the fixtures add bias and bf16 cases.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import type { LlamaModel } from '../src/model/weights.js';
import { loadModel, saveModel } from '../src/io/model-folder.js';
import { countParams, parseConfig, LAYER_SHAPES_KEY } from '../src/io/config.js';
import { batchesFromRows, type CalibBatch } from '../src/prune/calib-batch.js';
import { shrinkModel } from '../src/width/shrink.js';
import { flagsOf, uniformCounts, keepHighest, type WidthPlan } from '../src/width/plan.js';
import { collectStats } from '../src/width/stats.js';
import { flapCompensation } from '../src/width/flap.js';
import { pruneWidth } from '../src/width/pipeline.js';
import { mulberry32 } from '../src/util/rng.js';
import { fixtureNames, loadFixture, assertClose, SKIP_SHARED } from './fixtures.js';

const SMALL: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 3,
  num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 64, rms_norm_eps: 1e-5, max_position_embeddings: 128,
};

function small(seed = 1): LlamaModel {
  return randomModel(SMALL, 'f32', seed);
}

function calib(V: number, B = 4, T = 16, seed = 7): CalibBatch[] {
  const rng = mulberry32(seed);
  return batchesFromRows(Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rng() * V))));
}

async function logits(model: LlamaModel, b: CalibBatch): Promise<Float32Array> {
  return (await new LlamaRunner(model).forward(b.ids, b.B, b.T, { logits: true })).logits!;
}

const all = (n: number) => [...Array(n).keys()];
const keepAll = (m: LlamaModel): WidthPlan => m.config.layers.map((l) => ({ keepGroups: all(l.numKvHeads), keepChannels: all(l.intermediateSize) }));

/** The same model with the removed units' o / down input columns zeroed (pruning as a mask). */
function masked(m: LlamaModel, plan: WidthPlan): LlamaModel {
  const d = m.config.headDim;
  const blocks = m.weights.blocks.map((w, li) => {
    const l = m.config.layers[li]!, width = (l.numHeads / l.numKvHeads) * d;
    const o = { ...w.o, data: w.o.data.slice() }, down = { ...w.down, data: w.down.data.slice() };
    const [Ho, nq] = o.shape as [number, number], [, I] = down.shape as [number, number];
    const kg = new Set(plan[li]!.keepGroups), kc = new Set(plan[li]!.keepChannels);
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < nq; j++) if (!kg.has(Math.floor(j / width))) o.data[i * nq + j] = 0;
      for (let c = 0; c < I; c++) if (!kc.has(c)) down.data[i * I + c] = 0;
    }
    return { ...w, o, down };
  });
  return { ...m, weights: { ...m.weights, blocks } };
}

test('width: keeping every unit changes nothing', async () => {
  const m = small();
  const b = calib(64)[0]!;
  const s = shrinkModel(m, keepAll(m), flagsOf(m.config));
  assert.deepEqual(await logits(s, b), await logits(m, b));
});

test('width: slicing kv groups and channels equals masking them', async () => {
  const m = small(2);
  const b = calib(64)[0]!;
  const plan: WidthPlan = [
    { keepGroups: [1], keepChannels: all(48).filter((c) => c % 3 !== 0) },
    { keepGroups: [0], keepChannels: all(30) },
    { keepGroups: [0, 1], keepChannels: [5, 7, 40] },
  ];
  const s = shrinkModel(m, plan, flagsOf(m.config));
  assert.deepEqual(s.config.layers, [
    { numHeads: 2, numKvHeads: 1, intermediateSize: 32 }, { numHeads: 2, numKvHeads: 1, intermediateSize: 30 }, { numHeads: 4, numKvHeads: 2, intermediateSize: 3 },
  ]);
  assertClose(await logits(s, b), await logits(masked(m, plan), b), 1e-4, 1e-5, 'logits');
});

test('flap: compensation makes the mean block-output error zero on the calibration data', async () => {
  const m = small(3);
  const batches = calib(64, 4, 16);
  const stats = await collectStats(new LlamaRunner(m), batches);
  // prune only block 0, MLP channels only, so its input is exactly the original
  const plan = keepAll(m);
  plan[0] = { keepGroups: [0, 1], keepChannels: keepHighest(stats[0]!.mlp.sumSq, 20) };
  const flags = { qkvBias: true, oBias: true, mlpBias: true };
  const comp = flapCompensation(m, plan, stats);
  const withBias = shrinkModel(m, plan, flags, comp), without = shrinkModel(m, plan, flags);
  const meanErr = async (p: LlamaModel) => {
    const H = m.config.hiddenSize, acc = new Float64Array(H);
    let n = 0;
    for (const b of batches) {
      const x = new LlamaRunner(m).embed(b.ids);
      const ref = (await new LlamaRunner(m).block(0, x, b.B, b.T, 0, {})).x;
      const got = (await new LlamaRunner(p).block(0, x, b.B, b.T, 0, {})).x;
      for (let i = 0; i < ref.length; i++) acc[i % H]! += ref[i]! - got[i]!;
      n += b.B * b.T;
    }
    return Math.max(...acc.map((v) => Math.abs(v / n)));
  };
  const e1 = await meanErr(withBias), e0 = await meanErr(without);
  assert.ok(e1 < 1e-5 && e0 > 100 * e1, `mean error with compensation ${e1}, without ${e0}`);
});

test('width: plans land within 1% of the parameter target', async () => {
  const m = randomModel({ ...SMALL, num_hidden_layers: 4, intermediate_size: 96, hidden_size: 48, num_attention_heads: 8, num_key_value_heads: 4 }, 'f32', 4);
  const batches = calib(64);
  for (const method of ['wanda-sp', 'flap', 'uniform'] as const) {
    for (const ratio of [0.2, 0.35]) {
      const r = await pruneWidth(m, batches, { method, target: { ratio } });
      assert.ok(Math.abs(r.paramsAfter - r.target) / r.target <= 0.01, `${method} ${ratio}: ${r.paramsAfter} vs ${r.target}`);
      assert.equal(r.paramsAfter, countParams(r.pruned.config));
      if (method !== 'flap') assert.ok(r.pruned.config.layers.every((l) => l.numKvHeads === r.pruned.config.layers[0]!.numKvHeads), `${method}: uniform kv groups`);
    }
  }
  // TinyLlama shapes: whole kv groups are a quarter of the attention, channels fill the rest
  const tl = parseConfig(TINYLLAMA_CONFIG);
  for (const ratio of [0.2, 0.35]) {
    const target = Math.round((1 - ratio) * countParams(tl));
    const c = uniformCounts(tl, target, flagsOf(tl));
    assert.ok(c.groups.every((g) => g === c.groups[0]) && c.channels.every((x) => x === c.channels[0]));
    const after = countParams({ ...tl, layers: tl.layers.map((l, i) => ({ numHeads: (l.numKvHeads - c.groups[i]!) * 8, numKvHeads: l.numKvHeads - c.groups[i]!, intermediateSize: l.intermediateSize - c.channels[i]! })) });
    assert.ok(Math.abs(after - target) / target < 0.01);
  }
});

test('width: pruned folders round-trip through save and load with identical logits', async () => {
  const m = small(5);
  const batches = calib(64);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'width-'));
  for (const method of ['flap', 'wanda-sp'] as const) {
    const r = await pruneWidth(m, batches, { method, target: { ratio: 0.3 } });
    const out = path.join(dir, method);
    saveModel(r.pruned, out);
    const raw = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(raw['head_dim'], 8);
    if (method === 'flap') {
      assert.equal(raw['attention_bias'], true);
      assert.equal(raw['mlp_bias'], true);
    }
    const uniform = r.pruned.config.layers.every((l) => JSON.stringify(l) === JSON.stringify(r.pruned.config.layers[0]));
    if (uniform) assert.equal(raw['intermediate_size'], r.pruned.config.layers[0]!.intermediateSize);
    else assert.equal((raw[LAYER_SHAPES_KEY] as unknown[]).length, 3);
    const back = loadModel(out);
    assert.deepEqual(back.config.layers, r.pruned.config.layers);
    for (const b of batches) assert.deepEqual(await logits(back, b), await logits(r.pruned, b));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('width: bias compensation needs llama; --no-bias works for other types', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('mistral-headdim');
  const batches = batchesFromRows([[...f.ids.subarray(0, f.T)]]);
  await assert.rejects(pruneWidth(f.model, batches, { method: 'flap', target: { ratio: 0.2 } }), /model_type 'llama'/);
  const r = await pruneWidth(f.model, batches, { method: 'flap', target: { ratio: 0.2 }, bias: false });
  assert.ok(r.paramsAfter < r.paramsBefore);
});

for (const name of fixtureNames()) {
  test(`width: masking equivalence and round trip on fixture ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const m = f.model, b: CalibBatch = { ids: f.ids, B: f.B, T: f.T };
    const plan: WidthPlan = m.config.layers.map((l, i) => ({ keepGroups: all(l.numKvHeads).filter((g) => g !== i % l.numKvHeads), keepChannels: all(l.intermediateSize).filter((c) => (c + i) % 4 !== 0) }));
    const s = shrinkModel(m, plan, flagsOf(m.config));
    const bf16 = m.weights.blocks[0]!.q.dtype !== 'f32';
    assertClose(await logits(s, b), await logits(masked(m, plan), b), bf16 ? 1e-3 : 1e-4, 1e-4, 'logits');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'width-fx-'));
    saveModel(s, path.join(dir, 'm'));
    assert.deepEqual(await logits(loadModel(path.join(dir, 'm')), b), await logits(s, b));
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test('cli: shorten prune-width writes a loadable folder with pruning.json', { skip: SKIP_SHARED }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'width-cli-'));
  const out = path.join(dir, 'flap');
  const fx = path.join(process.env['SHORTENED_SHARED'] ?? path.resolve('..', 'shared'), 'fixtures', 'llama1');
  const res = execFileSync(process.execPath, ['dist/src/cli/main.js', 'prune-width', '--model', path.join(fx, 'model'), '--method', 'flap', '--ratio', '0.25',
    '--calib-ids', path.join(fx, 'input_ids.json'), '--out', out, '--json'], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' } });
  const summary = JSON.parse(res) as { params_after: number; params_target: number };
  assert.ok(Math.abs(summary.params_after - summary.params_target) / summary.params_target <= 0.01);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8')) as { method: string; bias_compensation: boolean };
  assert.equal(info.method, 'width pruning (flap)');
  assert.equal(info.bias_compensation, true);
  assert.equal(countParams(loadModel(out).config), summary.params_after);
  fs.rmSync(dir, { recursive: true, force: true });
});
