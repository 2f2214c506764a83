/**
 * The adapter in PEFT's layout: file names, adapter_config.json keys, tensor names and shapes for
 * LlamaForCausalLM; loading it back; merging it gives the logits of applying it.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LlamaRunner } from '../src/model/llama.js';
import { loadModel, saveModel } from '../src/io/model-folder.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { initLora, writeAdapterFiles, loadAdapter, mergeLora, parseTargets, type LoraSettings } from '../src/train/peft.js';
import { Rng } from '../src/util/rng.js';
import { loadFixture, assertClose, maxAbs, SKIP_SHARED } from './fixtures.js';

const PEFT_CONFIG_KEYS = ['base_model_name_or_path', 'bias', 'fan_in_fan_out', 'inference_mode', 'init_lora_weights', 'lora_alpha', 'lora_dropout', 'modules_to_save', 'peft_type', 'r', 'target_modules', 'task_type'];

test('PEFT init: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0, seeded', { skip: SKIP_SHARED }, () => {
  const f = loadFixture('llama1');
  const s: LoraSettings = { r: 8, alpha: 16, dropout: 0.05, targets: parseTargets(['q_proj', 'down']) };
  const a = initLora(f.model, s, 1), b = initLora(f.model, s, 1);
  assert.deepEqual(Object.keys(a[0]!), ['q', 'down']);
  const q = a[0]!.q!, down = a[0]!.down!;
  const H = f.model.config.hiddenSize, I = f.model.config.layers[0]!.intermediateSize;
  assert.equal(q.A.length, 8 * H);
  assert.equal(down.A.length, 8 * I);
  assert.ok(maxAbs(q.A) <= 1 / Math.sqrt(H) && maxAbs(q.A) > 0.9 / Math.sqrt(H));
  assert.ok(maxAbs(down.A) <= 1 / Math.sqrt(I));
  assert.equal(maxAbs(q.B), 0);
  assert.equal(q.scale, 2);
  assert.deepEqual(a[1]!.q!.A, b[1]!.q!.A);
});

test('adapter files, config keys and tensor names follow PEFT; merged logits = applied logits', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('llama1');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peft-'));
  const s: LoraSettings = { r: 4, alpha: 16, dropout: 0.05, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
  const adapters = initLora(f.model, s, 5);
  const rng = new Rng(9);
  for (const block of adapters) for (const p of Object.values(block)) for (let i = 0; i < p!.B.length; i++) p!.B[i] = (rng.next() - 0.5) * 0.1;
  writeAdapterFiles(dir, adapters, s, 'my/base-model');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);

  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  for (const k of PEFT_CONFIG_KEYS) assert.ok(k in cfg, `adapter_config.json has ${k}`);
  assert.equal(cfg['peft_type'], 'LORA');
  assert.equal(cfg['task_type'], 'CAUSAL_LM');
  assert.equal(cfg['bias'], 'none');
  assert.equal(cfg['fan_in_fan_out'], false);
  assert.equal(cfg['r'], 4);
  assert.equal(cfg['lora_alpha'], 16);
  assert.equal(cfg['lora_dropout'], 0.05);
  assert.equal(cfg['base_model_name_or_path'], 'my/base-model');
  assert.deepEqual(cfg['target_modules'], ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);

  const h = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
  const L = f.model.config.numLayers, H = f.model.config.hiddenSize, I = f.model.config.layers[0]!.intermediateSize;
  const q = f.model.config.layers[0]!.numHeads * f.model.config.headDim;
  assert.equal(h.tensors.size, L * 7 * 2);
  assert.equal(h.metadata['format'], 'pt');
  const expect: Record<string, [number[], number[]]> = {
    'self_attn.q_proj': [[4, H], [q, 4]], 'mlp.down_proj': [[4, I], [H, 4]], 'mlp.gate_proj': [[4, H], [I, 4]],
  };
  for (const [mod, [aShape, bShape]] of Object.entries(expect)) {
    for (const li of [0, L - 1]) {
      const a = h.tensors.get(`base_model.model.model.layers.${li}.${mod}.lora_A.weight`);
      const b = h.tensors.get(`base_model.model.model.layers.${li}.${mod}.lora_B.weight`);
      assert.ok(a && b, `layer ${li} ${mod}`);
      assert.equal(a.dtype, 'F32');
      assert.deepEqual(a.shape, aShape);
      assert.deepEqual(b.shape, bShape);
    }
  }

  // round trip
  const back = loadAdapter(dir, f.model);
  assert.deepEqual(back.settings, s);
  assert.deepEqual(back.adapters[2]!.up!.B, adapters[2]!.up!.B);
  assert.equal(back.adapters[2]!.up!.scale, 4);

  // applied (dropout is off outside training) vs merged, in memory and saved + reloaded
  const applied = new LlamaRunner(f.model);
  applied.adapters = back.adapters;
  const la = (await applied.forward(f.ids, f.B, f.T, { logits: true })).logits!;
  const merged = await mergeLora(f.model, back.adapters);
  const lm = (await new LlamaRunner(merged).forward(f.ids, f.B, f.T, { logits: true })).logits!;
  const base = (await new LlamaRunner(f.model).forward(f.ids, f.B, f.T, { logits: true })).logits!;
  let diff = 0;
  for (let i = 0; i < la.length; i++) diff = Math.max(diff, Math.abs(la[i]! - base[i]!));
  assert.ok(diff > 1e-3, `the adapter changes the logits (max change ${diff})`);
  assertClose(lm, la, 1e-4, 1e-5 * maxAbs(la), 'merged vs applied logits');
  saveModel(merged, path.join(dir, 'merged'));
  const lr = (await new LlamaRunner(loadModel(path.join(dir, 'merged'))).forward(f.ids, f.B, f.T, { logits: true })).logits!;
  assertClose(lr, lm, 0, 0, 'reloaded merged model');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('merging into bf16 weights rounds once and stays close to applying', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('llama3-scaled-bf16');
  const s: LoraSettings = { r: 4, alpha: 8, dropout: 0, targets: ['q', 'v', 'down'] };
  const adapters = initLora(f.model, s, 2);
  const rng = new Rng(4);
  for (const block of adapters) for (const p of Object.values(block)) for (let i = 0; i < p!.B.length; i++) p!.B[i] = (rng.next() - 0.5) * 0.1;
  const applied = new LlamaRunner(f.model);
  applied.adapters = adapters;
  const la = (await applied.forward(f.ids, f.B, f.T, { logits: true })).logits!;
  const merged = await mergeLora(f.model, adapters);
  assert.equal(merged.weights.blocks[0]!.q.dtype, 'bf16');
  assert.equal(merged.weights.blocks[0]!.k, f.model.weights.blocks[0]!.k, 'untargeted weights are shared');
  const lm = (await new LlamaRunner(merged).forward(f.ids, f.B, f.T, { logits: true })).logits!;
  assertClose(lm, la, 2e-2, 2e-2 * maxAbs(la), 'bf16 merged vs applied logits');
});

test('loadAdapter rejects adapters that do not fit the model', { skip: SKIP_SHARED }, () => {
  const f = loadFixture('llama1');
  const g = loadFixture('mistral-headdim');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peft-'));
  const s: LoraSettings = { r: 2, alpha: 4, dropout: 0, targets: ['q'] };
  writeAdapterFiles(dir, initLora(g.model, s, 1), s, 'x');
  assert.throws(() => loadAdapter(dir, f.model), /shape/);
  fs.rmSync(dir, { recursive: true, force: true });
});
