/** `shorten bench` plumbing: well-formed results on tiny settings (functional only, nothing timed). */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomModel } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import { benchModel, benchPrompt, type GenBenchSettings } from '../src/bench/generation.js';
import { benchLockstep } from '../src/bench/lockstep.js';
import { copyBandwidth, weightBytesPerToken, engineBytesPerToken } from '../src/bench/membw.js';
import { countParams } from '../src/io/config.js';
import { saveModel } from '../src/io/model-folder.js';
import { parseReportInput } from '../src/report/schemas.js';
import { randomSource } from '../src/cli/commands/bench.js';

const SMALL: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 64, rms_norm_eps: 1e-5, max_position_embeddings: 64,
};
const S: GenBenchSettings = { batchSizes: [1, 3], promptLen: 4, newTokens: 5, warmup: 1, warmupTokens: 2, repeats: 2, seed: 0 };

test('bench: one result per batch size, consistent fields, valid report input', async () => {
  const m = randomModel(SMALL, 'f32');
  const r = await benchModel('small', new LlamaRunner(m), S);
  assert.equal(r.params, countParams(m.config));
  assert.deepEqual(r.results.map((x) => x.batch), [1, 3]);
  for (const x of r.results) {
    assert.equal(x.runsMs.length, 2);
    assert.ok(x.latencyMs > 0 && x.latencyStd >= 0 && x.prefillMs > 0 && x.decodeMs > 0 && x.peakMemMB > 10);
    assert.ok(Math.abs(x.tokensPerSec - (x.batch * 5) / (x.latencyMs / 1000)) < 1e-6 * x.tokensPerSec);
    assert.ok(Math.abs(x.latencyMs - (x.prefillMs + x.decodeMs)) < 1e-6 * x.latencyMs);
  }
  const parsed = parseReportInput({ kind: 'bench', models: [r], settings: { promptLen: 4 } }, 'bench.json');
  assert.equal(parsed?.kind, 'bench');
});

test('bench: lockstep runs keep models apart; prompt is deterministic', async () => {
  const a = randomModel(SMALL, 'f32', 1), b = randomModel({ ...SMALL, num_hidden_layers: 1 }, 'f32', 2);
  const r = await benchLockstep([{ name: 'a', run: new LlamaRunner(a) }, { name: 'b', run: new LlamaRunner(b) }], { ...S, batchSizes: [2] });
  assert.deepEqual(r.map((m) => m.name), ['a', 'b']);
  assert.ok(r[0]!.params > r[1]!.params);
  assert.deepEqual(benchPrompt(64, 12, 3), benchPrompt(64, 12, 3));
  assert.ok(benchPrompt(64, 100, 3).every((t) => t >= 3 && t < 64));
});

test('membw: bandwidth is positive; bytes per token count every weight but the embedding once', () => {
  const bw = copyBandwidth(1 << 23, 2);
  assert.ok(bw.gbPerSec > 0 && bw.seconds > 0);
  const m = randomModel(SMALL, 'bf16');
  const H = 32, V = 64;
  assert.equal(weightBytesPerToken(m), 2 * (countParams(m.config) - V * H));
  assert.equal(engineBytesPerToken(m), 5 * weightBytesPerToken(m));
  assert.equal(randomSource('tinyllama:3:f32').name, 'tinyllama-shape-3L-f32');
  assert.throws(() => randomSource('gpt2'), /unknown model/);
});

test('cli: shorten bench on a folder writes bench.json, bench.md and charts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'));
  saveModel(randomModel(SMALL, 'f32'), path.join(dir, 'small'));
  const out = path.join(dir, 'out');
  const stdout = execFileSync(process.execPath, ['dist/src/cli/main.js', 'bench', '--model', path.join(dir, 'small'), '--model', path.join(dir, 'small'),
    '--batch-sizes', '1,2', '--prompt-len', '3', '--new-tokens', '3', '--repeats', '1', '--warmup', '0', '--out', out, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const json = JSON.parse(stdout) as { kind: string; models: { name: string; results: unknown[] }[] };
  assert.equal(json.kind, 'bench');
  assert.deepEqual(json.models.map((m) => m.name), ['small', 'small #2']);
  assert.equal(json.models[0]!.results.length, 2);
  for (const f of ['bench.json', 'bench.md', 'latency.svg', 'throughput.svg']) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.match(fs.readFileSync(path.join(out, 'latency.svg'), 'utf8'), /<svg/);
  fs.rmSync(dir, { recursive: true, force: true });
});
