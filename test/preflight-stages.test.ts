/**
 * The memory preflight of every stage that loads a model: on a Llama-2-7B-shaped folder (a sparse
 * file, nothing read) told it has 8 GiB, each stage stops within seconds with one line naming
 * its estimate, what is available and what lowers it, writing nothing. LoRA picks gradient
 * checkpointing by itself when keeping activations would not fit.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { shorten } from './cli-helpers.js';
import { sparse7b } from './sparse-model.js';
import { tmpDir } from './train-helpers.js';
import { projectDir } from '../src/util/shared.js';
import { inspectModel } from '../src/io/model-folder.js';
import { loraStepMemory } from '../src/model/memory.js';
import { totalBytes } from '../src/util/memory.js';

test('every model-loading stage is refused up front on a 7B folder with 8 GiB available', () => {
  const dir = tmpDir('preflight-');
  const m = sparse7b(path.join(dir, '7b'));
  fs.copyFileSync(projectDir('assets', 'default', 'tokenizer.json'), path.join(m, 'tokenizer.json'));
  const data = path.join(dir, 'alpaca.json');
  fs.writeFileSync(data, JSON.stringify([{ instruction: 'say hi', input: '', output: 'hi there' }]));
  const out = (k: string) => path.join(dir, `out-${k}`);
  const cases: [string, string[]][] = [
    ['eval ppl', ['eval', 'ppl', '--model', m, '--datasets', 'none', '--text', data]],
    ['eval zeroshot', ['eval', 'zeroshot', '--model', m, '--limit', '1']],
    ['eval', ['eval', '--model', m, '--datasets', 'none', '--text', data]],
    ['generate', ['generate', '--model', m, '--prompt', 'Once upon a time', '--max-new-tokens', '4']],
    ['bench 7b', ['bench', '--model', m, '--batch-sizes', '1', '--prompt-len', '4', '--new-tokens', '2', '--out', out('bench')]],
    ['prune-width --method flap', ['prune-width', '--model', m, '--method', 'flap', '--ratio', '0.2', '--out', out('width')]],
    ['train lora', ['train', 'lora', '--model', m, '--data', data, '--out', out('lora')]],
    ['train kd', ['train', 'kd', '--model', m, '--teacher', m, '--out', out('kd'), '--max-steps', '1']],
    ['loading 7b', ['prune', '--model', m, '--blocks', '5,6', '--out', out('prune')]],
  ];
  const t0 = performance.now();
  for (const [stage, args] of cases) {
    const r = shorten(args, { SHORTENED_MEMORY_LIMIT: '8G' });
    assert.equal(r.code, 1, `${stage}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${stage}: one line, got ${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^error: ${stage} needs about \\d+\\.\\d GiB of memory \\(.*\\), \\d+\\.\\d GiB is available; lower .+`), stage);
    assert.match(lines[0]!, /weights 12\.6 GiB|f32 weights/, stage);
  }
  assert.ok(performance.now() - t0 < 60_000, 'refused within seconds each (no weights read)');
  for (const k of ['bench', 'width', 'lora', 'kd', 'prune']) assert.ok(!fs.existsSync(out(k)), `nothing written for ${k}`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train lora turns gradient checkpointing on by itself when kept activations would not fit', () => {
  const dir = tmpDir('ckpt-auto-');
  const model = projectDir('assets', 'default');
  const shape = inspectModel(model);
  const all = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
  const kept = totalBytes(loraStepMemory(shape.config, shape.weightBytes, { B: 4, T: 256 }, 8, all));
  const ck = totalBytes(loraStepMemory(shape.config, shape.weightBytes, { B: 4, T: 256 }, 8, all, true));
  assert.ok(ck < kept, `checkpointing needs less (${ck} < ${kept})`);
  const data = path.join(dir, 'data.json');
  fs.writeFileSync(data, JSON.stringify([...Array(4)].map((_, i) => ({ instruction: `count to ${i}`, input: '', output: 'one two three four five six' }))));
  const run = (limit: number, name: string) => {
    const out = path.join(dir, name);
    const r = shorten(['train', 'lora', '--model', model, '--data', data, '--out', out, '--max-steps', '1', '--batch-size', '4', '--val-size', '0', '--json'], { SHORTENED_MEMORY_LIMIT: String(Math.floor(limit)) });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8')).settings.gradientCheckpointing as boolean;
  };
  assert.equal(run((ck + kept) / 2, 'tight'), true);
  assert.equal(run(kept * 2, 'roomy'), false);
  const r = shorten(['train', 'lora', '--model', model, '--data', data, '--out', path.join(dir, 'none'), '--max-steps', '1'], { SHORTENED_MEMORY_LIMIT: String(Math.floor(ck / 2)) });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: train lora needs about .* lower --micro-batch or --cutoff\b/);
  fs.rmSync(dir, { recursive: true, force: true });
});
