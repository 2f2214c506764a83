/**
 * Non-finite steps in training: with --on-nan stop (the default) the run ends with one line naming
 * the step and the intact checkpoint; with --on-nan skip the step's update is dropped (AdamW's
 * state untouched) and the run goes on; no checkpoint ever holds a non-finite value.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { train, type TrainSettings, type TrainTask } from '../src/train/trainer.js';
import { param, accumulateGrad } from '../src/train/adamw.js';
import { readCheckpointState } from '../src/train/checkpoint.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { UserError } from '../src/util/errors.js';
import { projectDir } from '../src/util/shared.js';
import { tmpDir, tinyModelDir, writeText } from './train-helpers.js';

const SETTINGS: TrainSettings = {
  steps: 6, batchSize: 2, microBatch: 1, lr: 0.1, warmup: 0, decay: 'constant', minLrRatio: 0, beta1: 0.9, beta2: 0.999,
  eps: 1e-8, weightDecay: 0, maxGradNorm: 0, saveEvery: 1, seed: 1,
};

/** Least squares towards a target; steps listed in `nanAt` (1-based) give a NaN loss and gradient. */
function quadraticTask(nanAt: Set<number>, poisonParamAt?: number): TrainTask & { calls: number } {
  const w = param('w', [4], Float32Array.from([1, -2, 3, 0.5]), false);
  const target = [0.5, 0.5, 0.5, 0.5];
  let row = 0;
  const task = {
    calls: 0,
    params: [w],
    nextBatch: (n: number) => ({ ids: new Int32Array(n), targets: new Int32Array(n), B: n, T: 1 }),
    dataState: () => row,
    restoreData: (s: unknown) => { row = s as number; },
    forwardBackward: async (b: { B: number }) => {
      const step = Math.floor(row / 2) + 1;
      row += b.B;
      task.calls++;
      const bad = nanAt.has(step);
      const g = Float32Array.from(w.value, (x, i) => (bad ? NaN : 2 * (x - target[i]!)));
      accumulateGrad(w, g, 1);
      const loss = bad ? NaN : w.value.reduce((a, x, i) => a + (x - target[i]!) ** 2, 0);
      return { sum: loss, count: 1 };
    },
    validate: async () => null,
    afterUpdate: () => { if (poisonParamAt !== undefined && Math.floor(row / 2) === poisonParamAt) w.value[2] = Infinity; },
    weightsFile: 'model.safetensors',
    writeExtras: () => {},
    fingerprint: {},
  };
  return task;
}

test('--on-nan stop: the run ends at the non-finite step with one line; the checkpoint before it is intact and finite', async () => {
  const dir = tmpDir('nan-stop-');
  const task = quadraticTask(new Set([4]));
  await assert.rejects(train(task, SETTINGS, { label: 't', ckptRoot: dir, resume: false, logHeader: { kind: 'train', label: 't', method: 'cpt' } }),
    (e: unknown) => e instanceof UserError && /^step 4: the loss is NaN; the last checkpoint, step-000003, is intact \(--resume continues from it\); --on-nan skip skips such steps$/.test(e.message));
  assert.equal(readCheckpointState(dir)!.latest, 'step-000003');
  const w = readSafetensors(path.join(dir, 'step-000003', 'model.safetensors')).get('w')!.data as Float32Array;
  assert.ok(w.every(Number.isFinite));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--on-nan skip: the bad step changes nothing (weights, AdamW moments and step count), later steps equal a run without it', async () => {
  const dir = tmpDir('nan-skip-');
  const skipped = quadraticTask(new Set([3]));
  const r = await train(skipped, SETTINGS, { label: 't', ckptRoot: path.join(dir, 'a'), resume: false, onNan: 'skip', logHeader: { kind: 'train', label: 't', method: 'cpt' } });
  assert.deepEqual(r.steps.map((s) => s.skipped ?? false), [false, false, true, false, false, false]);
  assert.ok(Number.isNaN(r.steps[2]!.loss));
  // weights after step 3 equal those after step 2
  const at = (root: string, step: string) => readSafetensors(path.join(root, step, 'model.safetensors')).get('w')!.data as Float32Array;
  const opt = (root: string, step: string) => readSafetensors(path.join(root, step, 'optimizer.safetensors')).get('w.exp_avg')!.data as Float32Array;
  const a = path.join(dir, 'a');
  const trainer = (step: string) => JSON.parse(fs.readFileSync(path.join(a, step, 'trainer-state.json'), 'utf8')) as { optimizerSteps: number };
  // reference: the same run whose step 3 is skipped is the clean run's first 2 steps, then 3 steps more at the same AdamW t
  const clean = quadraticTask(new Set());
  const ref = await train(clean, { ...SETTINGS, steps: 5 }, { label: 't', ckptRoot: path.join(dir, 'b'), resume: false, logHeader: { kind: 'train', label: 't', method: 'cpt' } });
  assert.equal(trainer('step-000006').optimizerSteps, 5, 'AdamW took 5 steps, not 6');
  assert.deepEqual(at(a, 'step-000006'), at(path.join(dir, 'b'), 'step-000005'));
  assert.deepEqual(opt(a, 'step-000006'), opt(path.join(dir, 'b'), 'step-000005'));
  assert.equal(ref.steps.length, 5);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--on-nan skip gives up after 10 non-finite steps in a row: the run has diverged', async () => {
  const dir = tmpDir('nan-diverged-');
  const task = quadraticTask(new Set(Array.from({ length: 30 }, (_, i) => i + 2)));
  await assert.rejects(train(task, { ...SETTINGS, steps: 40, saveEvery: 100 }, { label: 't', ckptRoot: dir, resume: false, onNan: 'skip', logHeader: { kind: 'train', label: 't', method: 'cpt' } }),
    (e: unknown) => e instanceof UserError && /^step 12: the loss is NaN, the 11th non-finite step in a row \(the run has diverged\); no checkpoint was written$/.test(e.message));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a parameter that turns non-finite is never written to a checkpoint', async () => {
  const dir = tmpDir('nan-param-');
  const task = quadraticTask(new Set(), 2);
  await assert.rejects(train(task, SETTINGS, { label: 't', ckptRoot: dir, resume: false, logHeader: { kind: 'train', label: 't', method: 'cpt' } }),
    (e: unknown) => e instanceof UserError && /^step 2: parameter w holds Infinity at \[2\] after the update; the last checkpoint, step-000001, is intact/.test(e.message));
  assert.equal(readCheckpointState(dir)!.latest, 'step-000001');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('CLI: CPT that diverges to NaN stops with one line and exit 1, writes no model, and every checkpoint it left is finite', () => {
  const dir = tmpDir('nan-cli-');
  const m = tinyModelDir(path.join(dir, 'M'));
  const data = writeText(path.join(dir, 'd.txt'), 120);
  const out = path.join(dir, 'run');
  // an absurd learning rate without clipping overflows the weights within a few steps
  const r = spawnSync(process.execPath, [projectDir('bin', 'shorten.js'), 'train', 'cpt', '--model', m, '--data', data, '--out', out, '--seq-len', '16',
    '--batch-size', '2', '--micro-batch', '2', '--max-steps', '30', '--save-every', '1', '--val-docs', '5', '--lr', '1e30', '--max-grad-norm', '0', '--warmup', '0'],
  { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' } });
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^error: step \d+: (the loss is NaN|the loss is Infinity|the gradient norm is (NaN|Infinity)|the validation loss is (NaN|Infinity)|parameter .* holds (NaN|-?Infinity) at \[\d+\] after the update); /);
  assert.ok(!fs.existsSync(path.join(out, 'model')), 'no result model');
  const st = readCheckpointState(path.join(out, 'checkpoints'));
  if (st) {
    const ck = readSafetensors(path.join(out, 'checkpoints', st.latest, 'model.safetensors'));
    for (const [name, t] of ck) assert.ok((t.data as Float32Array).every(Number.isFinite), `${name} in ${st.latest} is finite`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
