/**
 * Resume is exact: a run stopped after step k (its last checkpoint a step or more earlier) and
 * resumed from the checkpoint folder reproduces the uninterrupted run's loss at every later
 * step, and its result. LoRA with dropout (RNG state) and accumulation; CPT of a bf16 model
 * (f32 masters) with a shuffle buffer (data state).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { trainLora, type LoraOptions } from '../src/train/lora.js';
import { trainCpt, type CptOptions } from '../src/train/cpt.js';
import { trainCptLora } from '../src/train/cpt-lora.js';
import { loadAdapter } from '../src/train/peft.js';
import { loadModel } from '../src/io/model-folder.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { tmpDir, tinyModelDir, writeText, writeAlpaca } from './train-helpers.js';

process.env['SHORTENED_QUIET'] = '1';

function assertSameLosses(a: { step: number; loss: number; valLoss?: number }[], b: { step: number; loss: number; valLoss?: number }[], from: number): void {
  const tail = a.filter((s) => s.step > from);
  assert.ok(tail.length > 0);
  for (const s of tail) {
    const r = b.find((x) => x.step === s.step);
    assert.ok(r, `step ${s.step} missing after resume`);
    assert.ok(Math.abs(r.loss - s.loss) <= 1e-6 * Math.abs(s.loss), `step ${s.step}: loss ${r.loss} resumed vs ${s.loss} uninterrupted`);
    if (s.valLoss !== undefined) assert.ok(Math.abs(r.valLoss! - s.valLoss) <= 1e-6 * s.valLoss, `step ${s.step}: validation loss`);
  }
}

test('LoRA: stopped at step 4 (checkpoint at 3), resumed, reproduces the uninterrupted run', async () => {
  const dir = tmpDir('resume-lora-');
  const model = tinyModelDir(path.join(dir, 'model'), 'bf16');
  const data = writeAlpaca(path.join(dir, 'a.json'), 24);
  const base: LoraOptions = {
    model, data, out: '', r: 4, dropout: 0.1, cutoff: 96, valSize: 4, maxSteps: 6, batchSize: 4, microBatch: 2,
    warmup: 2, lr: 1e-2, saveEvery: 3, seed: 5, final: 'last',
  };
  const full = await trainLora({ ...base, out: path.join(dir, 'full') });
  assert.equal(full.log.steps.length, 6);
  const out = path.join(dir, 'killed');
  const part = await trainLora({ ...base, out, stopAfter: 4 });
  assert.ok(part.stopped);
  assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'step-000003', 'adapter_model.safetensors')));
  assert.throws(() => fs.statSync(path.join(out, 'adapter_model.safetensors')));
  await assert.rejects(trainLora({ ...base, out }), /--resume/);
  const resumed = await trainLora({ ...base, out, resume: true });
  assert.equal(resumed.log.steps.length, 6);
  assertSameLosses(full.log.steps, resumed.log.steps, 3);
  // identical adapters: exact, since every input to every step is the same
  const a = readSafetensors(path.join(dir, 'full', 'adapter_model.safetensors'));
  const b = readSafetensors(path.join(out, 'adapter_model.safetensors'));
  for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, k);
  assert.ok(!fs.existsSync(path.join(out, 'checkpoints')), 'checkpoints removed after success');
  const log = JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8'));
  assert.equal(log.kind, 'train');
  assert.equal(log.method, 'lora');
  assert.equal(typeof log.label, 'string');
  assert.ok(log.steps.every((s: Record<string, unknown>) => typeof s['step'] === 'number' && typeof s['loss'] === 'number' && typeof s['lr'] === 'number'));
  assert.deepEqual(log.steps.filter((s: Record<string, unknown>) => s["valLoss"] !== undefined).map((s: Record<string, unknown>) => s["step"]), [3, 6]);
  // a finished run is left as it is by --resume
  const again = await trainLora({ ...base, out, resume: true });
  assert.equal(again.log.steps.length, 6);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('CPT of a bf16 model: stopped, resumed, same losses and same saved weights', async () => {
  const dir = tmpDir('resume-cpt-');
  const model = tinyModelDir(path.join(dir, 'model'), 'bf16', true);
  const data = writeText(path.join(dir, 'd.txt'), 120);
  const base: CptOptions = {
    model, data: [data], out: '', seqLen: 24, valDocs: 10, valSeqs: 4, shuffleBuffer: 8, maxSteps: 5, batchSize: 4, microBatch: 2,
    lr: 3e-3, warmup: 1, saveEvery: 2, seed: 3, final: 'last',
  };
  const full = await trainCpt({ ...base, out: path.join(dir, 'full') });
  const out = path.join(dir, 'killed');
  const part = await trainCpt({ ...base, out, stopAfter: 3 });
  assert.ok(part.stopped);
  const resumed = await trainCpt({ ...base, out, resume: true });
  assertSameLosses(full.log.steps, resumed.log.steps, 2);
  const m1 = loadModel(path.join(dir, 'full', 'model')), m2 = loadModel(path.join(out, 'model'));
  assert.equal(m2.weights.blocks[0]!.q.dtype, 'bf16', 'saved in the original dtype');
  assert.equal(m2.weights.lmHead, m2.weights.embed, 'tied embeddings stay tied');
  assert.deepEqual(m2.weights.blocks[1]!.down.data, m1.weights.blocks[1]!.down.data);
  assert.notDeepEqual(m2.weights.blocks[1]!.down.data, loadModel(model).weights.blocks[1]!.down.data, 'weights were trained');
  assert.ok(full.log.steps[4]!.loss < full.log.steps[0]!.loss, 'loss goes down');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('CPT⇒LoRA: one command, both stages, a loadable adapter on the CPT model', async () => {
  const dir = tmpDir('cpt-lora-');
  const model = tinyModelDir(path.join(dir, 'model'));
  const text = writeText(path.join(dir, 'd.txt'), 60);
  const data = writeAlpaca(path.join(dir, 'a.json'), 12);
  const out = path.join(dir, 'run');
  const r = await trainCptLora({
    model, out,
    cpt: { data: [text], seqLen: 24, valDocs: 5, valSeqs: 2, maxSteps: 2, batchSize: 2, microBatch: 2, saveEvery: 10 },
    lora: { data, r: 2, cutoff: 96, valSize: 2, maxSteps: 2, batchSize: 2, microBatch: 2, warmup: 1, saveEvery: 10, merge: true },
  });
  assert.ok(r);
  assert.equal(r.log.method, 'cpt+lora');
  assert.deepEqual(r.log.steps.map((s) => s.step), [1, 2, 3, 4]);
  const cptModel = loadModel(path.join(out, 'cpt', 'model'));
  const ad = loadAdapter(path.join(out, 'lora'), cptModel);
  assert.equal(ad.settings.r, 2);
  assert.equal(ad.baseModel, path.resolve(out, 'cpt', 'model'));
  assert.ok(fs.existsSync(path.join(out, 'lora', 'merged', 'model.safetensors')));
  // lineage for eval's labels: the merged model says it was retrained by CPT then LoRA
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'lora', 'merged', 'training.json'), 'utf8')).method, 'cpt+lora');
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'cpt', 'model', 'training.json'), 'utf8')).method, 'cpt');
  assert.ok(fs.existsSync(path.join(out, 'train-log.json')));
  fs.rmSync(dir, { recursive: true, force: true });
});
