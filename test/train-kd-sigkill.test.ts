/**
 * A KD run killed with SIGKILL: once right after its second checkpoint, once at a seeded random
 * moment. Each time the checkpoint folder stays usable, --resume finishes the run, and every
 * step's loss and the result's weights equal the uninterrupted run's.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { loadModel } from '../src/io/model-folder.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { readCheckpointState } from '../src/train/checkpoint.js';
import { projectDir } from '../src/util/shared.js';
import { Rng } from '../src/util/rng.js';
import { tmpDir, tinyModelDir, writeText } from './train-helpers.js';

const CLI = projectDir('bin', 'shorten.js');
const ENV = { ...process.env, SHORTENED_QUIET: '1' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGKILL during KD, then --resume: intact checkpoints, same losses and weights as an uninterrupted run', async () => {
  const dir = tmpDir('kd-sigkill-');
  const teacher = tinyModelDir(path.join(dir, 'teacher'), 'bf16', false, 3);
  const student = path.join(dir, 'student');
  process.env['SHORTENED_QUIET'] = '1';
  await pruneModelDir(teacher, student, null, {}, { blocks: [1] });
  const data = writeText(path.join(dir, 'd.txt'), 200);
  const args = (out: string) => ['train', 'kd', '--model', student, '--teacher', teacher, '--data', data, '--out', out, '--seq-len', '32', '--batch-size', '4',
    '--micro-batch', '2', '--max-steps', '8', '--save-every', '1', '--val-docs', '5', '--val-seqs', '2', '--lr', '3e-3', '--kd-temp', '2', '--kd-alpha', '0.9',
    '--kd-hidden', '0.5', '--final', 'last'];
  const t0 = performance.now();
  const full = spawnSync(process.execPath, [CLI, ...args(path.join(dir, 'full'))], { env: ENV, encoding: 'utf8' });
  assert.equal(full.status, 0, full.stderr);
  const wall = performance.now() - t0;
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'full', 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];
  const fullModel = loadModel(path.join(dir, 'full', 'model'));

  const rng = new Rng(16);
  for (const [name, kill] of [['after checkpoint 2', 'checkpoint'], ['at a random moment', 'random']] as const) {
    const out = path.join(dir, `killed-${kill}`);
    const child = spawn(process.execPath, [CLI, ...args(out)], { env: ENV, stdio: 'ignore' });
    let exited = false;
    child.once('exit', () => { exited = true; });
    const state = path.join(out, 'checkpoints', 'state.json');
    if (kill === 'checkpoint') {
      for (let i = 0; i < 800 && !exited; i++) {
        await sleep(25);
        if (fs.existsSync(state) && (JSON.parse(fs.readFileSync(state, 'utf8')) as { latest: string }).latest >= 'step-000002') break;
      }
    } else {
      await sleep(200 + rng.next() * wall * 0.8);
    }
    assert.ok(!exited, `${name}: the run was still going when killed`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(!fs.existsSync(path.join(out, 'model')), `${name}: the run did not finish`);
    const st = readCheckpointState(path.join(out, 'checkpoints'));
    if (st) loadModel(path.join(out, 'checkpoints', st.latest)); // the latest checkpoint is a complete f32 model folder

    const res = spawnSync(process.execPath, [CLI, ...args(out), '--resume'], { env: ENV, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const got = JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];
    assert.deepEqual(got.map((s) => s.step), expected.map((s) => s.step), name);
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i]!.loss - expected[i]!.loss) <= 1e-6 * Math.abs(expected[i]!.loss), `${name}, step ${i + 1}: ${got[i]!.loss} vs ${expected[i]!.loss}`);
    const m = loadModel(path.join(out, 'model'));
    assert.equal(m.weights.blocks[0]!.q.dtype, 'bf16');
    for (let li = 0; li < 2; li++) assert.deepEqual(m.weights.blocks[li]!.up.data, fullModel.weights.blocks[li]!.up.data, `${name}: block ${li}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
