/**
 * `shorten train kd` end to end on tiny models: a pruned student distilled from its teacher
 * (full weights, with the hidden-state term through pruning.json), stopped and resumed to the
 * uninterrupted run's losses and weights, a LoRA student, refused inputs (the teacher is an input
 * like the model), and iterative pruning with CPT or KD between rounds.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { trainKd, studentBlockMap, type KdOptions } from '../src/train/kd.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { pruneIteratively } from '../src/prune/iterative.js';
import { roundRetrainer, retrainInfo } from '../src/train/retrainer.js';
import { loadAdapter } from '../src/train/peft.js';
import { loadModel } from '../src/io/model-folder.js';
import { projectDir } from '../src/util/shared.js';
import { parseReportInput, type PruneFile } from '../src/report/schemas.js';
import { iterativeTable } from '../src/report/tables.js';
import { tmpDir, tinyModelDir, writeText } from './train-helpers.js';

process.env['SHORTENED_QUIET'] = '1';
const CLI = projectDir('bin', 'shorten.js');

async function setup(prefix: string, layers = 3): Promise<{ dir: string; teacher: string; student: string; data: string }> {
  const dir = tmpDir(prefix);
  const teacher = tinyModelDir(path.join(dir, 'teacher'), 'f32', false, layers);
  const student = path.join(dir, 'student');
  await pruneModelDir(teacher, student, null, {}, { blocks: [1] });
  return { dir, teacher, student, data: writeText(path.join(dir, 'd.txt'), 120) };
}

test('KD: pruned student, hidden term via kept_blocks; stopped and resumed = uninterrupted; loss falls', async () => {
  const { dir, teacher, student, data } = await setup('kd-');
  assert.deepEqual(studentBlockMap(student, 2, 3), [0, 2]);
  const base: KdOptions = {
    model: student, teacher, data: [data], out: '', seqLen: 24, valDocs: 10, valSeqs: 4, shuffleBuffer: 8, maxSteps: 6, batchSize: 4, microBatch: 2,
    lr: 3e-3, warmup: 1, saveEvery: 2, seed: 3, final: 'last', kd: { temperature: 2, alpha: 0.8, hiddenWeight: 0.5 },
  };
  const full = await trainKd({ ...base, out: path.join(dir, 'full') });
  const s = full.log.steps;
  assert.equal(s.length, 6);
  assert.ok(s[5]!.loss < s[0]!.loss, `KD loss falls: ${s[0]!.loss} -> ${s[5]!.loss}`);
  assert.equal(full.log.method, 'kd');
  assert.deepEqual((full.log.settings as Record<string, unknown>)['kd'], { temperature: 2, alpha: 0.8, hiddenWeight: 0.5 });
  assert.deepEqual((full.log.settings as Record<string, unknown>)['blockMap'], [0, 2]);
  const out = path.join(dir, 'killed');
  assert.ok((await trainKd({ ...base, out, stopAfter: 3 })).stopped);
  await assert.rejects(trainKd({ ...base, out, kd: { temperature: 1 }, resume: true }), /settings differ/);
  const resumed = await trainKd({ ...base, out, resume: true });
  for (const a of s) {
    const b = resumed.log.steps.find((x) => x.step === a.step)!;
    assert.ok(Math.abs(b.loss - a.loss) <= 1e-6 * Math.abs(a.loss), `step ${a.step}: ${b.loss} vs ${a.loss}`);
  }
  const m1 = loadModel(path.join(dir, 'full', 'model')), m2 = loadModel(path.join(out, 'model'));
  assert.deepEqual(m2.weights.blocks[1]!.down.data, m1.weights.blocks[1]!.down.data);
  assert.equal(m2.config.numLayers, 2);
  // the result still says which blocks it lost, and how it was retrained
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'model', 'pruning.json'), 'utf8')).kept_blocks, [0, 2]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'model', 'training.json'), 'utf8')).method, 'kd');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('KD with a LoRA student: adapters trained on the frozen student, merged model', async () => {
  const { dir, teacher, student, data } = await setup('kd-lora-');
  const out = path.join(dir, 'run');
  const r = await trainKd({
    model: student, teacher, data: [data], out, seqLen: 24, valDocs: 10, valSeqs: 4, maxSteps: 4, batchSize: 4, microBatch: 4, lr: 1e-2, warmup: 1, seed: 3,
    lora: { r: 2, alpha: 4, dropout: 0, targets: ['q', 'v', 'down'] }, merge: true,
  });
  assert.ok(r.log.steps[3]!.loss < r.log.steps[0]!.loss);
  const base = loadModel(student);
  const ad = loadAdapter(out, base);
  assert.equal(ad.settings.r, 2);
  assert.ok(ad.adapters[0]!.q!.B.some((x) => x !== 0), 'B moved from its zero init');
  assert.ok(fs.existsSync(path.join(out, 'merged', 'model.safetensors')));
  assert.deepEqual(loadModel(student).weights.blocks[0]!.q.data, base.weights.blocks[0]!.q.data, 'the student folder is untouched');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train kd refuses an --out inside the teacher, and --kd-hidden without a block map', async () => {
  const { dir, teacher, student, data } = await setup('kd-bad-');
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'train', 'kd', '--model', student, '--data', data, '--max-steps', '1', '--seq-len', '16', ...args],
    { env: { ...process.env, SHORTENED_QUIET: '1' }, encoding: 'utf8' });
  const inside = run(['--teacher', teacher, '--out', path.join(teacher, 'x')]);
  assert.equal(inside.status, 1);
  assert.match(inside.stderr, /^error: --out .* is inside the input .*teacher/);
  assert.ok(!fs.existsSync(path.join(teacher, 'x')));
  const other = path.join(dir, 'other');
  fs.cpSync(student, other, { recursive: true });
  fs.rmSync(path.join(other, 'pruning.json'));
  const noMap = spawnSync(process.execPath, [CLI, 'train', 'kd', '--model', other, '--teacher', teacher, '--data', data, '--out', path.join(dir, 'o'), '--kd-hidden', '1', '--max-steps', '1', '--seq-len', '16'],
    { env: { ...process.env, SHORTENED_QUIET: '1' }, encoding: 'utf8' });
  assert.equal(noMap.status, 1);
  assert.match(noMap.stderr, /--kd-hidden needs .*pruning\.json/);
  assert.equal(noMap.stderr.trim().split('\n').length, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('iterative pruning: one block a round, CPT between rounds, every round recorded; KD rounds through the CLI', async () => {
  const dir = tmpDir('iter-');
  const model = tinyModelDir(path.join(dir, 'model'), 'f32', false, 4);
  const data = writeText(path.join(dir, 'd.txt'), 120);
  const rt = { method: 'cpt' as const, steps: 2, data: [data], cpt: { seqLen: 24, valDocs: 10, valSeqs: 2, batchSize: 2, microBatch: 2, lr: 3e-3 } };
  const out = path.join(dir, 'out');
  const r = await pruneIteratively({
    model, out, criterion: 'ppl', calib: { data, n: 4, seqLen: 16 }, sel: { remove: 2, protect: [0, 0] },
    retrain: roundRetrainer(rt), retrainInfo: retrainInfo(rt), retrainInputs: [data],
  });
  assert.equal(r.rounds.length, 2);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8'));
  assert.equal(info.num_hidden_layers_before, 4);
  assert.equal(info.num_hidden_layers_after, 2);
  assert.equal(info.iterative.rounds.length, 2);
  assert.equal(info.iterative.retrain, 'cpt');
  const [a, b] = info.iterative.rounds;
  assert.equal(a.scores.length, 4);
  assert.equal(b.scores.length, 3, 'round 2 re-scores the 3 blocks left');
  // round 2's choice, in its numbering, maps onto the original numbering through round 1's kept blocks
  assert.deepEqual(b.removed_original, b.removed.map((i: number) => a.kept_blocks[i]));
  assert.deepEqual([...a.removed_original, ...b.removed_original].sort(), info.removed_blocks);
  assert.deepEqual(info.kept_blocks, [0, 1, 2, 3].filter((i) => !info.removed_blocks.includes(i)));
  for (const x of [a, b]) assert.ok(x.ppl_after_cut > 1 && x.ppl_after_retrain > 1 && x.retrain.steps === 2);
  // the PPL criterion's choice in round 1 is the block whose removal gives the lowest PPL, as scored
  assert.equal(a.removed[0], a.order[0]);
  assert.equal(loadModel(out).config.numLayers, 2);
  // the report reads the rounds from pruning.json: one table row per round
  const parsed = parseReportInput(info, 'pruning.json') as PruneFile;
  assert.equal(parsed.rounds?.length, 2);
  const table = iterativeTable([parsed]);
  assert.equal(table.rows.length, 2);
  assert.equal(table.rows[1]![4]!.text, b.removed_original.join(', '));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.rounds-')), [], 'no work folder left');

  // the CLI: KD from the original model between rounds, two blocks in one round
  const res = spawnSync(process.execPath, [CLI, 'prune', '--model', model, '--criterion', 'ppl', '--remove', '2', '--no-plus', '--data', data, '--n', '4', '--seq-len', '16',
    '--iterative', '--per-round', '2', '--retrain', 'kd', '--retrain-steps', '2', '--retrain-data', data, '--retrain-seq-len', '24', '--retrain-batch-size', '2', '--out', path.join(dir, 'kd'), '--json'],
    { env: { ...process.env, SHORTENED_QUIET: '1' }, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout);
  assert.equal(summary.rounds.length, 1);
  assert.equal(summary.rounds[0].removed.length, 2);
  const kdInfo = JSON.parse(fs.readFileSync(path.join(dir, 'kd', 'pruning.json'), 'utf8'));
  assert.equal(kdInfo.iterative.retrain, 'kd');
  assert.equal(kdInfo.iterative.teacher, path.resolve(model));
  const bad = spawnSync(process.execPath, [CLI, 'prune', '--model', model, '--criterion', 'ppl', '--remove', '1', '--iterative', '--out', path.join(dir, 'x')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--retrain-steps/);
  fs.rmSync(dir, { recursive: true, force: true });
});
