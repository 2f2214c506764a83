/**
 * A run killed with SIGKILL at an arbitrary moment: the checkpoint folder is intact (state.json
 * points at a complete, loadable checkpoint), --resume finishes the run, and every step's loss
 * equals the uninterrupted run's.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { loadModel } from '../src/io/model-folder.js';
import { projectDir } from '../src/util/shared.js';
import { tmpDir, tinyModelDir, writeText } from './train-helpers.js';

const CLI = projectDir('bin', 'shorten.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGKILL during CPT, then --resume: intact checkpoints, same losses as an uninterrupted run', async () => {
  const dir = tmpDir('sigkill-');
  const model = tinyModelDir(path.join(dir, 'model'));
  const data = writeText(path.join(dir, 'd.txt'), 200);
  const args = (out: string) => ['train', 'cpt', '--model', model, '--data', data, '--out', out, '--seq-len', '32', '--batch-size', '4', '--micro-batch', '2',
    '--max-steps', '8', '--save-every', '1', '--val-docs', '5', '--val-seqs', '2', '--lr', '3e-3', '--json'];
  const env = { ...process.env, SHORTENED_QUIET: '1' };

  const out = path.join(dir, 'killed');
  const child = spawn(process.execPath, [CLI, ...args(out)], { env, stdio: 'ignore' });
  const state = path.join(out, 'checkpoints', 'state.json');
  // wait for the second checkpoint, then kill at once: most likely mid-step or mid-write
  for (let i = 0; i < 600; i++) {
    await sleep(25);
    if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, 'utf8')).latest >= 'step-000002') break;
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(!fs.existsSync(path.join(out, 'model')), 'the run did not finish before the kill');

  const st = JSON.parse(fs.readFileSync(state, 'utf8')) as { latest: string };
  const ck = path.join(out, 'checkpoints', st.latest);
  const ckModel = loadModel(ck); // a checkpoint is a complete f32 model folder
  assert.equal(ckModel.weights.blocks[0]!.q.dtype, 'f32');
  assert.ok(fs.existsSync(path.join(ck, 'optimizer.safetensors')) && fs.existsSync(path.join(ck, 'trainer-state.json')));
  const killedAt = JSON.parse(fs.readFileSync(path.join(ck, 'trainer-state.json'), 'utf8')).step as number;

  const res = spawnSync(process.execPath, [CLI, ...args(out), '--resume'], { env, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const full = spawnSync(process.execPath, [CLI, ...args(path.join(dir, 'full'))], { env, encoding: 'utf8' });
  assert.equal(full.status, 0, full.stderr);
  const a = JSON.parse(fs.readFileSync(path.join(dir, 'full', 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];
  const b = JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];
  assert.deepEqual(b.map((s) => s.step), a.map((s) => s.step));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]!.loss - b[i]!.loss) <= 1e-6 * a[i]!.loss, `step ${a[i]!.step}: ${b[i]!.loss} vs ${a[i]!.loss}`);
  assert.ok(killedAt >= 2 && killedAt < 8);
  const m1 = loadModel(path.join(dir, 'full', 'model')), m2 = loadModel(path.join(out, 'model'));
  assert.deepEqual(m2.weights.blocks[1]!.up.data, m1.weights.blocks[1]!.up.data);
  fs.rmSync(dir, { recursive: true, force: true });
});
