/**
 * Fault injection for training: a short CPT and a short LoRA run, each SIGKILLed at seeded random
 * moments (several seeds, up to two kills a run) and then resumed with --resume until it finishes.
 * After every kill the checkpoint folder must be usable (state.json, if any, points at complete
 * checkpoints that load), and the finished run must equal an uninterrupted one: the same losses,
 * and result weights equal byte for byte.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { readCheckpointState } from '../src/train/checkpoint.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadModel } from '../src/io/model-folder.js';
import { projectDir } from '../src/util/shared.js';
import { Rng } from '../src/util/rng.js';
import { tmpDir, tinyModelDir, writeText, writeAlpaca } from './train-helpers.js';

const CLI = projectDir('bin', 'shorten.js');
const ENV = { ...process.env, SHORTENED_QUIET: '1' };

interface Method {
  name: 'cpt' | 'lora';
  args: (model: string, data: string, out: string) => string[];
  /** the files that hold the result, compared byte for byte */
  result: string[];
  /** the parameter file inside a checkpoint */
  params: string;
}

const METHODS: Method[] = [
  {
    name: 'cpt',
    args: (model, data, out) => ['train', 'cpt', '--model', model, '--data', data, '--out', out, '--seq-len', '32', '--batch-size', '4', '--micro-batch', '2',
      '--max-steps', '6', '--save-every', '1', '--val-docs', '5', '--val-seqs', '2', '--lr', '3e-3', '--final', 'last'],
    result: ['model/model.safetensors'],
    params: 'model.safetensors',
  },
  {
    name: 'lora',
    args: (model, data, out) => ['train', 'lora', '--model', model, '--data', data, '--out', out, '--r', '2', '--batch-size', '4', '--micro-batch', '2',
      '--max-steps', '6', '--save-every', '1', '--val-size', '4', '--lr', '3e-3', '--warmup', '1', '--final', 'last'],
    result: ['adapter_model.safetensors'],
    params: 'adapter_model.safetensors',
  },
];

/** The newest checkpoint step of a run folder (0 without one). */
function latestStep(out: string): number {
  try {
    return Number(/step-(\d+)/.exec(JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'state.json'), 'utf8')).latest)![1]);
  } catch {
    return 0;
  }
}

/**
 * Start a run and SIGKILL it at a seeded random moment of its progress: once it has gone past
 * checkpoint `after` (0: as soon as it starts), plus a random delay of up to `jitterMs`. Tied to
 * progress rather than to the clock, the kill lands mid-run however loaded the machine is.
 * Resolves to whether the run was still going when killed.
 */
async function runAndKill(args: string[], out: string, after: number, jitterMs: number): Promise<boolean> {
  const child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: 'ignore' });
  let exited = false;
  const done = new Promise((r) => child.once('exit', () => { exited = true; r(null); }));
  while (!exited && latestStep(out) < after) await new Promise((r) => setTimeout(r, 5));
  await Promise.race([done, new Promise((r) => setTimeout(r, jitterMs))]);
  const killed = !exited;
  if (killed) child.kill('SIGKILL');
  await done;
  return killed;
}

/** After a kill: state.json, if written, names complete checkpoints that load. */
function assertCheckpointsUsable(out: string, m: Method): void {
  const root = path.join(out, 'checkpoints');
  if (!fs.existsSync(root)) return;
  const st = readCheckpointState(root);
  if (!st) return;
  for (const name of [st.latest, st.best].filter((x): x is string => !!x)) {
    const dir = path.join(root, name);
    for (const f of [m.params, 'optimizer.safetensors', 'trainer-state.json']) assert.ok(fs.existsSync(path.join(dir, f)), `${name}/${f}`);
    const t = readSafetensors(path.join(dir, m.params));
    assert.ok(t.size > 0);
    JSON.parse(fs.readFileSync(path.join(dir, 'trainer-state.json'), 'utf8'));
    if (m.name === 'cpt') loadModel(dir);
  }
}

for (const m of METHODS) {
  test(`SIGKILL at random moments during ${m.name}, then --resume: checkpoints always usable, result equal to an uninterrupted run`, async () => {
    const dir = tmpDir(`fault-${m.name}-`);
    const model = tinyModelDir(path.join(dir, 'model'));
    const data = m.name === 'cpt' ? writeText(path.join(dir, 'd.txt'), 200) : writeAlpaca(path.join(dir, 'a.json'), 40);
    const full = spawnSync(process.execPath, [CLI, ...m.args(model, data, path.join(dir, 'full'))], { env: ENV, encoding: 'utf8' });
    assert.equal(full.status, 0, full.stderr);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'full', 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];

    let kills = 0;
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const out = path.join(dir, `run-${seed}`);
      // two kills at random points of the run's progress (before or after some of its 6 checkpoints,
      // mid-step or mid-write), then resume to the end
      for (let attempt = 0; attempt < 2; attempt++) {
        const args = [...m.args(model, data, out), ...(fs.existsSync(out) ? ['--resume'] : [])];
        const after = Math.min(5, latestStep(out) + rng.int(3));
        if (await runAndKill(args, out, after, rng.next() * 150)) kills++;
        assertCheckpointsUsable(out, m);
      }
      const fin = spawnSync(process.execPath, [CLI, ...m.args(model, data, out), '--resume'], { env: ENV, encoding: 'utf8' });
      assert.equal(fin.status, 0, fin.stderr);
      const got = JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8')).steps as { step: number; loss: number }[];
      assert.deepEqual(got.map((s) => s.step), expected.map((s) => s.step), `seed ${seed}`);
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i]!.loss - expected[i]!.loss) <= 1e-6 * Math.abs(expected[i]!.loss), `seed ${seed} step ${i + 1}`);
      for (const f of m.result) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(dir, 'full', f))), `seed ${seed}: ${f} equals the uninterrupted run's`);
    }
    assert.ok(kills >= 4, `at least 4 of the 6 attempts were killed mid-run (got ${kills})`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
