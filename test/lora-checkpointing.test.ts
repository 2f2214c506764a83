/**
 * Gradient checkpointing for LoRA (model/checkpointed.ts): recomputing each block's activations
 * in the backward gives the kept-activations path's loss, adapter gradients and RNG stream
 * exactly (dropout on, so the replayed masks matter), and a CLI run with it writes the same adapter.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LlamaRunner } from '../src/model/llama.js';
import { checkpointedLoraStep } from '../src/model/checkpointed.js';
import { initLora } from '../src/train/peft.js';
import { Rng } from '../src/util/rng.js';
import { loadFixture, SKIP_SHARED } from './fixtures.js';
import { shorten } from './cli-helpers.js';
import { projectDir } from '../src/util/shared.js';

test('checkpointed LoRA step equals the kept-activations step bit for bit, dropout included', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('llama1');
  const run = new LlamaRunner(f.model);
  run.adapters = initLora(f.model, { r: 4, alpha: 8, dropout: 0.3, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] }, 7);
  const init = new Rng(3);
  for (const block of run.adapters) for (const p of Object.values(block)) for (let i = 0; i < p!.B.length; i++) p!.B[i] = (init.next() - 0.5) * 0.2;
  const r1 = new Rng(11), r2 = new Rng(11);
  // the kept-activations step as train lora runs it: the head's gradient from the forward's head pass
  const res = await run.forward(f.ids, f.B, f.T, { keep: true, rng: () => r1.next(), headGrad: true });
  const kept = await run.backward(res, { blocks: false, embed: false, norm: false, lmHead: false });
  const ck = await checkpointedLoraStep(run, f.ids, f.B, f.T, { rng: () => r2.next() });
  assert.equal(ck.loss, res.loss);
  assert.equal(ck.count, res.count);
  assert.equal(r2.state, r1.state, 'the RNG advanced by the same draws');
  let compared = 0;
  kept.lora.forEach((block, li) => {
    for (const [t, g] of Object.entries(block ?? {})) {
      const c = ck.lora[li]![t as keyof typeof block]!;
      assert.deepEqual(c.A, g.A, `block ${li} ${t} A`);
      assert.deepEqual(c.B, g.B, `block ${li} ${t} B`);
      compared++;
    }
  });
  assert.equal(compared, 7 * f.model.config.numLayers);
});

test('train lora --gradient-checkpointing on writes the adapter the default run writes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shortened-ckpt-'));
  try {
    const model = projectDir('assets', 'default');
    const data = path.join(dir, 'data.json');
    fs.writeFileSync(data, JSON.stringify([...Array(8)].map((_, i) => ({ instruction: `say ${i} words`, input: '', output: 'the cat sat on the mat and looked at the dog '.repeat(1 + (i % 3)) }))));
    const args = (out: string, mode: string) => ['train', 'lora', '--model', model, '--data', data, '--out', out, '--max-steps', '2', '--batch-size', '4', '--micro-batch', '2', '--val-size', '0', '--gradient-checkpointing', mode, '--json'];
    for (const mode of ['off', 'on']) { const r = shorten(args(path.join(dir, mode), mode)); assert.equal(r.code, 0, r.stderr); }
    const a = fs.readFileSync(path.join(dir, 'off', 'adapter_model.safetensors')), b = fs.readFileSync(path.join(dir, 'on', 'adapter_model.safetensors'));
    assert.ok(a.equals(b), 'byte-equal adapters');
    const log = JSON.parse(fs.readFileSync(path.join(dir, 'on', 'train-log.json'), 'utf8'));
    assert.equal(log.settings.gradientCheckpointing, true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
