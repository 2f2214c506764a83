/**
 * Data-parallel replicas (src/train/replicas.ts): micro-batches of one step on worker threads give
 * the serial loop's result bit for bit (gradients added in micro-batch order, dropout from each
 * micro-batch's own seed), for CPT (every weight, tied head) and for LoRA with dropout; the
 * weights move into shared memory without changing what the parameters point at; who gets
 * replicas.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { trainCpt, masterParams } from '../src/train/cpt.js';
import { trainLora } from '../src/train/lora.js';
import { shareWeights, replicaWorkers, REPLICA_MAX_PARAMS } from '../src/train/replicas.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { modelPerplexity } from '../src/eval/ppl.js';
import { loadModel } from '../src/io/model-folder.js';
import { TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { countParams, parseConfig } from '../src/io/config.js';
import { tmpDir, tinyModelDir, writeText, writeAlpaca } from './train-helpers.js';

process.env['SHORTENED_QUIET'] = '1';

async function withReplicas<T>(n: number, f: () => Promise<T>): Promise<T> {
  const was = process.env['SHORTENED_REPLICAS'];
  process.env['SHORTENED_REPLICAS'] = String(n);
  try { return await f(); } finally { if (was === undefined) delete process.env['SHORTENED_REPLICAS']; else process.env['SHORTENED_REPLICAS'] = was; }
}

function assertSameTensors(a: string, b: string): void {
  const x = readSafetensors(a), y = readSafetensors(b);
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  for (const [k, t] of x) assert.deepEqual(y.get(k)!.data, t.data, k);
}

test('CPT with a worker replica gives the serial run bit for bit (bf16, tied head, 3 micro-batches a step)', async () => {
  const dir = tmpDir('replicas-cpt-');
  const model = tinyModelDir(path.join(dir, 'model'), 'bf16', true);
  const data = writeText(path.join(dir, 'd.txt'), 120);
  const base = { model, data: [data], seqLen: 24, valDocs: 10, valSeqs: 4, maxSteps: 3, batchSize: 6, microBatch: 2, lr: 3e-3, warmup: 1, saveEvery: 3, seed: 3, final: 'last' as const };
  const serial = await withReplicas(0, () => trainCpt({ ...base, out: path.join(dir, 'serial') }));
  const parallel = await withReplicas(1, () => trainCpt({ ...base, out: path.join(dir, 'parallel') }));
  assert.deepEqual(parallel.log.steps.map((s) => s.loss), serial.log.steps.map((s) => s.loss));
  assert.equal(parallel.log.steps.at(-1)!.valLoss, serial.log.steps.at(-1)!.valLoss);
  assert.ok(serial.log.steps.at(-1)!.loss < serial.log.steps[0]!.loss + 1, 'a real run');
  assertSameTensors(path.join(dir, 'serial', 'model', 'model.safetensors'), path.join(dir, 'parallel', 'model', 'model.safetensors'));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('LoRA with dropout and a worker replica gives the serial run bit for bit', async () => {
  const dir = tmpDir('replicas-lora-');
  const model = tinyModelDir(path.join(dir, 'model'), 'bf16');
  const data = writeAlpaca(path.join(dir, 'a.json'), 24);
  const base = { model, data, r: 4, dropout: 0.1, cutoff: 96, valSize: 4, maxSteps: 3, batchSize: 4, microBatch: 2, warmup: 1, lr: 1e-2, saveEvery: 3, seed: 5, final: 'last' as const };
  const serial = await withReplicas(0, () => trainLora({ ...base, out: path.join(dir, 'serial') }));
  const parallel = await withReplicas(1, () => trainLora({ ...base, out: path.join(dir, 'parallel') }));
  assert.deepEqual(parallel.log.steps.map((s) => s.loss), serial.log.steps.map((s) => s.loss));
  assertSameTensors(path.join(dir, 'serial', 'adapter_model.safetensors'), path.join(dir, 'parallel', 'adapter_model.safetensors'));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('shareWeights moves every weight into shared memory; parameters and the tied head follow', () => {
  const dir = tmpDir('replicas-share-');
  const model = loadModel(tinyModelDir(path.join(dir, 'model'), 'bf16', true));
  const { params } = masterParams(model);
  const before = params.map((p) => Float32Array.from(p.value));
  shareWeights(model, params);
  const w = model.weights;
  assert.equal(w.lmHead, w.embed, 'a tied head stays the embedding');
  for (const t of [w.embed, w.norm, ...w.blocks.flatMap((b) => Object.values(b))]) assert.ok(t.data.buffer instanceof SharedArrayBuffer);
  const byName = new Map(params.map((p) => [p.name, p]));
  assert.equal(byName.get('model.embed_tokens.weight')!.value, w.embed.data, 'the parameter is the weight the runner reads');
  assert.equal(byName.get('model.layers.1.mlp.down_proj.weight')!.value, w.blocks[1]!.down.data);
  params.forEach((p, i) => assert.deepEqual(Array.from(p.value), Array.from(before[i]!), p.name));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('replicas are for small models with more than one micro-batch a step', async () => {
  const was = process.env['SHORTENED_REPLICAS'];
  delete process.env['SHORTENED_REPLICAS'];
  try {
    const est = { parts: { activations: 1 << 20 }, lower: '' };
    const dir = tmpDir('replicas-who-');
    const small = loadModel(tinyModelDir(path.join(dir, 'model'))).config;
    assert.equal(await replicaWorkers(small, 1, est, 0), 0, 'one micro-batch a step: nothing to run side by side');
    const big = parseConfig({ ...TINYLLAMA_CONFIG, num_hidden_layers: 1 });
    assert.ok(countParams(big) > REPLICA_MAX_PARAMS);
    assert.equal(await replicaWorkers(big, 8, est, 0), 0, 'large models use every core in each GEMM instead');
    const everything = { parts: { activations: 1e15 }, lower: '' };
    assert.equal(await replicaWorkers(small, 8, everything, 0), 0, 'no replica that the memory cannot hold');
    fs.rmSync(dir, { recursive: true, force: true });
  } finally {
    if (was !== undefined) process.env['SHORTENED_REPLICAS'] = was;
  }
  await withReplicas(3, async () => {
    const dir = tmpDir('replicas-forced-');
    const small = loadModel(tinyModelDir(path.join(dir, 'model'))).config;
    assert.equal(await replicaWorkers(small, 2, { parts: {}, lower: '' }, 0), 1, 'SHORTENED_REPLICAS, capped at the micro-batches');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

test('perplexity over replicas is the one-runner perplexity, to the last bit', async () => {
  const dir = tmpDir('replicas-ppl-');
  const folder = tinyModelDir(path.join(dir, 'model'), 'bf16', true);
  const rows = Array.from({ length: 11 }, (_, r) => Array.from({ length: 20 }, (_, i) => 3 + ((r * 31 + i * 7) % 4000)));
  const serial = await withReplicas(0, () => modelPerplexity(loadModel(folder), rows, 2));
  const parallel = await withReplicas(1, () => modelPerplexity(loadModel(folder), rows, 2));
  assert.equal(parallel.nll, serial.nll);
  assert.equal(parallel.tokens, 11 * 19);
  assert.ok(serial.ppl > 100 && serial.ppl < 20000, `a random model's perplexity (${serial.ppl})`);
  fs.rmSync(dir, { recursive: true, force: true });
});
