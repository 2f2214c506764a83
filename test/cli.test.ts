/**
 * The CLI end to end on fixture models: pruning a block and scoring the result reproduces the
 * fixture's ppl_removed; every kind of bad input gives one line on stderr, a non-zero exit, no
 * stack trace and no partial output.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sharedDir } from '../src/util/shared.js';
import { shorten, expectUserError } from './cli-helpers.js';
import { bf16ComputeAvailable } from '../src/engine/select.js';

const nativeBf16 = await bf16ComputeAvailable();
const nativeBf16Compute = () => nativeBf16;
import { fixtureNames, SKIP_SHARED } from './fixtures.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shorten-cli-'));
}

function copyModel(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  for (const f of fs.readdirSync(dst)) fs.chmodSync(path.join(dst, f), 0o644);
}

test('prune block i with the CLI, then `shorten ppl --ids` gives the fixture ppl_removed[i]', { skip: SKIP_SHARED }, () => {
  for (const name of fixtureNames().slice(0, 3)) {
    const fx = sharedDir('fixtures', name);
    const expected = JSON.parse(fs.readFileSync(path.join(fx, 'expected.json'), 'utf8'));
    const dir = tmp();
    for (const i of [0, 3]) {
      const out = path.join(dir, `pruned-${i}`);
      const p = shorten(['prune', '--model', path.join(fx, 'model'), '--blocks', String(i), '--out', out, '--json']);
      assert.equal(p.code, 0, p.stderr);
      const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      assert.equal(cfg.num_hidden_layers, expected.model.num_hidden_layers - 1);
      const info = JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8'));
      assert.deepEqual(info.removed_blocks, [i]);
      const r = shorten(['ppl', '--model', out, '--ids', path.join(fx, 'input_ids.json'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const ppl = JSON.parse(r.stdout).ppl as number;
      const exp = expected.ppl_criterion.ppl_removed[i] as number;
      assert.ok(Math.abs(ppl - exp) <= 1e-5 * exp, `${name} block ${i}: ${ppl} vs ${exp}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('score --json on a fixture with --calib-ids prints criterion, scores and order', { skip: SKIP_SHARED }, () => {
  const fx = sharedDir('fixtures', fixtureNames()[0]!);
  const expected = JSON.parse(fs.readFileSync(path.join(fx, 'expected.json'), 'utf8'));
  const r = shorten(['score', '--model', path.join(fx, 'model'), '--criterion', 'ppl', '--calib-ids', path.join(fx, 'input_ids.json'), '--no-plus', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.criterion, 'ppl');
  assert.deepEqual(j.order, expected.ppl_criterion.block_order);
  j.scores.forEach((s: number, i: number) => assert.ok(Math.abs(s - expected.ppl_criterion.ppl_removed[i]) <= 1e-5 * s));
});

test('--compute bf16: the same scores where nothing is bf16 (f32 fixture weights), or one line where the CPU has no AMX-BF16; an unknown mode is refused', { skip: SKIP_SHARED }, () => {
  const fx = sharedDir('fixtures', fixtureNames()[0]!);
  const args = ['score', '--model', path.join(fx, 'model'), '--criterion', 'ppl', '--calib-ids', path.join(fx, 'input_ids.json'), '--no-plus', '--json'];
  const base = shorten(args), bf16 = shorten(['--compute', 'bf16', ...args]);
  assert.equal(base.code, 0, base.stderr);
  if (nativeBf16Compute()) {
    assert.equal(bf16.code, 0, bf16.stderr);
    assert.deepEqual(JSON.parse(bf16.stdout).scores, JSON.parse(base.stdout).scores);
  } else {
    expectUserError(['--compute', 'bf16', ...args], /AMX-BF16/);
  }
  // a bad option value: commander's one error line, then the usage (as for every option)
  const bad = shorten(['--compute', 'fp8', ...args]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr.split('\n')[0]!, /^error: .*'fp8' is invalid/);
});

test('bad model input: one clear line, non-zero exit, no partial output', { skip: SKIP_SHARED }, () => {
  const fx = sharedDir('fixtures', 'llama1');
  const dir = tmp();
  // truncated safetensors
  const trunc = path.join(dir, 'trunc');
  copyModel(path.join(fx, 'model'), trunc);
  const st = path.join(trunc, 'model.safetensors');
  fs.truncateSync(st, fs.statSync(st).size - 1000);
  expectUserError(['ppl', '--model', trunc, '--ids', path.join(fx, 'input_ids.json')], /truncated/);
  // header shapes contradict config.json
  const bad = path.join(dir, 'badcfg');
  copyModel(path.join(fx, 'model'), bad);
  const cfg = JSON.parse(fs.readFileSync(path.join(bad, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: cfg.intermediate_size + 8 }));
  expectUserError(['ppl', '--model', bad, '--ids', path.join(fx, 'input_ids.json')], /do not match config\.json/);
  // unknown model_type
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt2' }));
  expectUserError(['ppl', '--model', bad, '--ids', path.join(fx, 'input_ids.json')], /unsupported model_type 'gpt2'/);
  // missing tokenizer
  expectUserError(['generate', '--model', path.join(fx, 'model'), '--prompt', 'hello'], /no tokenizer\.json/);
  // token ids out of range
  const ids = path.join(dir, 'ids.json');
  fs.writeFileSync(ids, JSON.stringify({ input_ids: [[1, 2, 99999]] }));
  expectUserError(['ppl', '--model', path.join(fx, 'model'), '--ids', ids], /token id 99999 out of range/);
  // empty data (on a model with a tokenizer: stories260K imported)
  const s260 = path.join(dir, 's260');
  const imp = shorten(['import', 'llama2c', '--model', sharedDir('models/stories260K/stories260K.bin'), '--tokenizer', sharedDir('models/stories260K/tok512.bin'), '--out', s260]);
  assert.equal(imp.code, 0, imp.stderr);
  const empty = path.join(dir, 'empty.txt');
  fs.writeFileSync(empty, '\n\n');
  expectUserError(['score', '--model', s260, '--criterion', 'ppl', '--data', empty], /no documents \(empty file\)/);
  expectUserError(['ppl', '--model', s260, '--text', empty], /no text \(empty file\)/);
  fs.writeFileSync(ids, JSON.stringify({ input_ids: [] }));
  expectUserError(['ppl', '--model', s260, '--ids', ids], /at least one row/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('impossible pruning requests fail cleanly and leave nothing behind', { skip: SKIP_SHARED }, () => {
  const fx = sharedDir('fixtures', 'llama1');
  const model = path.join(fx, 'model');
  const ids = path.join(fx, 'input_ids.json');
  const dir = tmp();
  const out = path.join(dir, 'out');
  expectUserError(['prune', '--model', model, '--blocks', '0,1,2,3,4,5', '--out', out], /at least one block must remain|cannot remove all/);
  expectUserError(['prune', '--model', model, '--blocks', '6', '--out', out], /out of range/);
  expectUserError(['prune', '--model', model, '--criterion', 'ppl', '--calib-ids', ids, '--ratio', '1', '--no-plus', '--out', out], /--ratio must be in \(0, 1\)/);
  expectUserError(['prune', '--model', model, '--criterion', 'ppl', '--calib-ids', ids, '--remove', '6', '--no-plus', '--out', out], /at least one block must remain/);
  expectUserError(['prune', '--model', model, '--criterion', 'ppl', '--calib-ids', ids, '--remove', '1', '--out', out], /unprotected by the "\+" heuristic/);
  expectUserError(['prune', '--model', model, '--criterion', 'nope', '--remove', '1', '--out', out], /unknown criterion/);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing left behind');
  fs.mkdirSync(out);
  expectUserError(['prune', '--model', model, '--blocks', '1', '--out', out], /exists.*--force/);
  const ok = shorten(['prune', '--model', model, '--blocks', '1', '--out', out, '--force']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(fs.readdirSync(dir), ['out']);
  fs.rmSync(dir, { recursive: true, force: true });
});
