/**
 * --engine torch: the job folder holds exactly the rows our trainer consumes, in its order, and our
 * initial adapters (no torch needed); where Debian's python3-torch is installed, the emitted CPT
 * and LoRA jobs on stories260K with one block removed, run as 2 CPU processes over gloo for 50
 * steps, give per-step losses within 1e-4 relative of our trainer on the same settings (LoRA with
 * dropout 0: with dropout the masks come from each engine's own RNG), their imported results score
 * the same perplexity, and a job killed mid-run (SIGKILL to its process group) and relaunched
 * through the CLI (--resume --launch --out) ends with the uninterrupted run's losses, bit for bit.
 * CI installs Debian's python3-torch (.ci/run); elsewhere the torch runs skip with a notice.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import readline from 'node:readline';
import { emitCptJob, emitLoraJob, type JobSpec } from '../src/torchjob/emit.js';
import { importTorchJob, readJob } from '../src/torchjob/import.js';
import { findTorchPython, torchEnv } from '../src/torchjob/launch.js';
import { planCpt, trainCpt, type CptOptions } from '../src/train/cpt.js';
import { planLora, trainLora, type LoraOptions } from '../src/train/lora.js';
import { adapterTensors, loadAdapter } from '../src/train/peft.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { importLlama2c } from '../src/io/llama2c.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { LlamaRunner } from '../src/model/llama.js';
import { perplexity } from '../src/eval/ppl.js';
import { sharedDir, hasShared, projectDir } from '../src/util/shared.js';
import type { TrainStep } from '../src/train/trainer.js';
import { tmpDir, tinyModelDir, writeText, writeAlpaca } from './train-helpers.js';

process.env['SHORTENED_QUIET'] = '1';

/** Rows of a job's shards, as train.py reads them. */
function jobRows(dir: string, files: string[]): { ids: number[]; labels: number[] | null }[] {
  const rows: { ids: number[]; labels: number[] | null }[] = [];
  for (const f of files) {
    const t = readSafetensors(path.join(dir, f));
    const ids = t.get('ids')!.data as Int32Array, off = t.get('offsets')!.data as BigInt64Array, labels = t.get('labels')?.data as Int32Array | undefined;
    for (let i = 0; i + 1 < off.length; i++) {
      const a = Number(off[i]), b = Number(off[i + 1]);
      rows.push({ ids: Array.from(ids.subarray(a, b)), labels: labels ? Array.from(labels.subarray(a, b)) : null });
    }
  }
  return rows;
}

function jobOrder(dir: string, job: JobSpec): number[] {
  return Array.from(readSafetensors(path.join(dir, job.files.order)).get('rows')!.data as BigInt64Array, Number);
}

describe('torch job folder', () => {
  const dir = tmpDir('torchjob-');
  const model = tinyModelDir(path.join(dir, 'model'));
  const text = writeText(path.join(dir, 'd.txt'), 120);
  const alpaca = writeAlpaca(path.join(dir, 'a.json'), 30);

  test('CPT: shards hold the packed rows our trainer draws, step by step; the script is assembled', () => {
    const o: CptOptions = { model, data: [text], out: path.join(dir, 'unused'), seqLen: 16, batchSize: 4, microBatch: 2, maxSteps: 5, valDocs: 10, valSeqs: 3, seed: 7 };
    const jobDir = path.join(dir, 'cpt-job');
    const { job } = emitCptJob(o, { dir: jobDir, shardTokens: 100 });
    assert.ok(job.files.train.length > 1, 'several shards');
    assert.equal(job.rows, 20);
    const rows = jobRows(jobDir, job.files.train), order = jobOrder(jobDir, job);
    const plan = planCpt(o);
    for (let i = 0; i < 20; i++) assert.deepEqual(rows[order[i]!]!.ids, Array.from(plan.packer.next()), `row ${i}`);
    assert.deepEqual(jobRows(jobDir, job.files.val!).map((r) => r.ids), plan.valRows.map((r) => Array.from(r)));
    assert.deepEqual(job.settings, plan.settings);
    assert.equal(job.model.layers.length, 2);
    assert.equal(job.model.rope_inv_freq.length, 4); // head_dim 8
    const script = fs.readFileSync(path.join(jobDir, 'train.py'), 'utf8');
    assert.ok(!script.includes('@@'), 'every template slot filled');
    assert.match(script, /def prepare\(model\):/);
    assert.match(script, /def loss_sum\(model, ids, targets\):/);
    assert.ok(fs.statSync(path.join(jobDir, 'launch.sh')).mode & 0o100, 'launch.sh is executable');
    assert.match(fs.readFileSync(path.join(jobDir, 'README.md'), 'utf8'), /shorten train import/);
    assert.deepEqual(readJob(jobDir).files, job.files);
  });

  test('LoRA: every example once, the seeded epoch order, labels, and our initial adapters', () => {
    const o: LoraOptions = { model, data: alpaca, out: path.join(dir, 'unused'), maxSteps: 4, batchSize: 8, microBatch: 3, valSize: 0, cutoff: 64, seed: 5, r: 4, chatTemplate: 'none' };
    const jobDir = path.join(dir, 'lora-job');
    const { job } = emitLoraJob(o, { dir: jobDir });
    const plan = planLora(o);
    assert.equal(job.rows, plan.trainEx.length);
    const rows = jobRows(jobDir, job.files.train), order = jobOrder(jobDir, job);
    assert.equal(order.length, 32);
    for (let i = 0; i < 32; i++) {
      const ex = plan.stream.next();
      assert.deepEqual(rows[order[i]!], { ids: ex.ids, labels: ex.labels }, `row ${i}`);
    }
    assert.equal(job.files.val, null);
    assert.deepEqual(job.lora, { r: 4, alpha: 16, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    const init = readSafetensors(path.join(jobDir, 'adapter_init.safetensors'));
    for (const [name, t] of adapterTensors(plan.adapters)) assert.deepEqual(init.get(name)!.data, t.data, name);
  });

  test('--emit never overlaps an input; an existing job is replaced only with --force', async () => {
    const o: CptOptions = { model, data: [text], out: path.join(dir, 'unused'), seqLen: 16, batchSize: 4, microBatch: 2, maxSteps: 2, valDocs: 10, valSeqs: 2 };
    assert.throws(() => emitCptJob(o, { dir: model }), /--emit .* is the input/);
    assert.throws(() => emitCptJob(o, { dir: path.join(model, 'job') }), /is inside the input/);
    assert.throws(() => emitCptJob(o, { dir: path.dirname(text) }), /contains the input/);
    assert.throws(() => emitCptJob(o, { dir: path.join(dir, 'cpt-job') }), /exists \(use --force/);
    const mine = path.join(dir, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'keep');
    assert.throws(() => emitCptJob(o, { dir: mine, force: true }), /not written by shorten/);
    assert.equal(fs.readFileSync(path.join(mine, 'notes.txt'), 'utf8'), 'keep');
    await assert.rejects(importTorchJob({ job: path.join(dir, 'cpt-job'), out: path.join(dir, 'imp') }), /no checkpoint yet/);
    await assert.rejects(importTorchJob({ job: mine, out: path.join(dir, 'imp') }), /job\.json/);
  });

  test('CLI: --engine torch --emit writes the job; misuse is a one-line error', () => {
    const cli = (args: string[]) => spawnSync(process.execPath, [projectDir('bin', 'shorten.js'), ...args], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' } });
    const common = ['--model', model, '--data', text, '--seq-len', '16', '--batch-size', '4', '--micro-batch', '2', '--max-steps', '3', '--val-docs', '10', '--val-seqs', '2'];
    const jobDir = path.join(dir, 'cli-job');
    const r = cli(['train', 'cpt', ...common, '--engine', 'torch', '--emit', jobDir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { job: jobDir, method: 'cpt', steps: 3, rows: 12, tokens: 12 * 16 });
    for (const [args, msg] of [
      [['train', 'cpt', ...common, '--engine', 'torch', '--emit', path.join(model, 'j')], /--emit .* is inside the input/],
      [['train', 'cpt', ...common, '--engine', 'torch'], /--engine torch needs --emit DIR/],
      [['train', 'cpt', ...common, '--emit', jobDir], /--emit and --launch go with --engine torch/],
      [['train', 'cpt', ...common], /required option '--out <dir>'/],
      [['train', 'import', jobDir, '--out', path.join(dir, 'imp')], /no checkpoint yet/],
    ] as const) {
      const e = cli([...args]);
      assert.equal(e.status, 1, e.stderr);
      assert.match(e.stderr, msg);
      assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
    }
  });
});

const PY = findTorchPython();
const SKIP = !hasShared() ? 'needs ../shared (stories260K, TinyStories)' : !PY ? 'needs PyTorch (Debian: apt-get install python3-torch); CI installs it' : false;
if (SKIP) console.log(`# torchjob: torch runs skipped: ${SKIP}`);

/** Run a job: 2 CPU processes over gloo; the per-step log lines it printed. */
function runJob(jobDir: string): TrainStep[] {
  const r = spawnSync(PY!, [path.join(jobDir, 'train.py'), '--local', '2', '--cpu', '--progress', 'json'], { env: torchEnv(PY!), encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `train.py failed:\n${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{"step"')).map((l) => JSON.parse(l) as TrainStep);
}

function assertClose(torch: TrainStep[], ours: TrainStep[], rel: number): number {
  assert.equal(torch.length, ours.length);
  let worst = 0;
  torch.forEach((t, i) => {
    const o = ours[i]!;
    assert.equal(t.step, o.step);
    assert.ok(Math.abs(t.lr - o.lr) <= 1e-12 * o.lr, `step ${o.step}: lr ${t.lr} vs ${o.lr}`);
    for (const [a, b] of [[t.loss, o.loss], [t.valLoss, o.valLoss]] as const) {
      assert.equal(a === undefined, b === undefined, `step ${o.step}: validation at the same steps`);
      if (a === undefined || b === undefined) continue;
      const d = Math.abs(a - b) / Math.abs(b);
      worst = Math.max(worst, d);
      assert.ok(d <= rel, `step ${o.step}: torch ${a} vs ours ${b} (relative ${d.toExponential(2)})`);
    }
  });
  return worst;
}

describe('torch job vs our trainer: stories260K, one block removed, 2 gloo processes', { skip: SKIP }, () => {
  const dir = tmpDir('torchjob-s260k-');
  const base = path.join(dir, 'stories260K'), pruned = path.join(dir, 'pruned');
  let trainText = '', alpaca = '', heldOut: number[][] = [];
  let cptSteps: TrainStep[] = [];
  const cpt = (out: string, saveEvery = 25): CptOptions => ({
    model: pruned, data: [trainText], out, eos: false, seqLen: 64, valDocs: 20, valSeqs: 8, maxSteps: 50, batchSize: 8, microBatch: 4,
    lr: 2e-3, warmup: 5, saveEvery, seed: 42,
  });
  const ppl = async (modelDir: string, adapterDir?: string) => {
    const m = loadModel(modelDir);
    const run = new LlamaRunner(m);
    if (adapterDir) run.adapters = loadAdapter(adapterDir, m).adapters;
    return (await perplexity(run, heldOut, 8)).ppl;
  };

  before(async () => {
    importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: base });
    await pruneModelDir(base, pruned, null, {}, { blocks: [3] });
    const paragraphs = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8').split(/\n\s*\n/).map((p) => p.split(/\s+/).join(' ').trim()).filter(Boolean);
    trainText = path.join(dir, 'train.txt');
    fs.writeFileSync(trainText, paragraphs.slice(0, 400).join('\n') + '\n');
    const tok = loadTokenizer(base);
    const stream = paragraphs.slice(-60).flatMap((p) => tok.encode(p, { addSpecialTokens: true }));
    for (let i = 0; i + 128 <= Math.min(stream.length, 128 * 16); i += 128) heldOut.push(stream.slice(i, i + 128));
    const recs = JSON.parse(fs.readFileSync(sharedDir('data/train/alpaca_en_demo.json'), 'utf8')) as unknown[];
    alpaca = path.join(dir, 'alpaca.json');
    fs.writeFileSync(alpaca, JSON.stringify(recs.slice(0, 400)));
  });

  test('CPT: 50 steps, per-step and validation losses within 1e-4 relative; the imported model scores the same PPL', async () => {
    const jobDir = path.join(dir, 'cpt-job');
    emitCptJob(cpt(path.join(dir, 'unused')), { dir: jobDir });
    cptSteps = runJob(jobDir);
    const ours = await trainCpt(cpt(path.join(dir, 'cpt-ours')));
    const worst = assertClose(cptSteps, ours.log.steps, 1e-4);
    console.log(`# CPT: worst relative loss difference over 50 steps ${worst.toExponential(2)}`);
    const imp = await importTorchJob({ job: jobDir, out: path.join(dir, 'cpt-torch') });
    assert.equal(imp.log.complete, true);
    assert.equal(imp.log.method, 'cpt');
    assert.match(String(imp.log.settings?.['engine']), /^torch /);
    const log = JSON.parse(fs.readFileSync(path.join(dir, 'cpt-torch', 'train-log.json'), 'utf8')) as { kind: string; steps: TrainStep[] };
    assert.equal(log.kind, 'train');
    assert.equal(log.steps.length, 50);
    assert.ok(fs.existsSync(path.join(dir, 'cpt-torch', 'model', 'pruning.json')), 'the pruning record travels with the model');
    const [pOurs, pTorch, pBefore] = [await ppl(path.join(dir, 'cpt-ours', 'model')), await ppl(path.join(dir, 'cpt-torch', 'model')), await ppl(pruned)];
    console.log(`# CPT: held-out PPL before ${pBefore.toFixed(4)}, ours ${pOurs.toFixed(6)}, torch ${pTorch.toFixed(6)}`);
    assert.ok(pOurs < pBefore, 'training helped');
    assert.ok(Math.abs(pTorch - pOurs) / pOurs <= 1e-4, `PPL torch ${pTorch} vs ours ${pOurs}`);
  });

  test('LoRA (dropout 0): 50 steps within 1e-4 relative; the imported PEFT adapter scores the same PPL', async () => {
    const lora = (out: string): LoraOptions => ({
      model: pruned, data: alpaca, out, cutoff: 128, valSize: 16, maxSteps: 50, batchSize: 4, microBatch: 3, dropout: 0, r: 4, alpha: 8,
      lr: 3e-3, warmup: 5, saveEvery: 25, seed: 42, chatTemplate: 'none',
    });
    const jobDir = path.join(dir, 'lora-job');
    emitLoraJob(lora(path.join(dir, 'unused')), { dir: jobDir });
    const steps = runJob(jobDir);
    const ours = await trainLora(lora(path.join(dir, 'lora-ours')));
    const worst = assertClose(steps, ours.log.steps, 1e-4);
    console.log(`# LoRA: worst relative loss difference over 50 steps ${worst.toExponential(2)}`);
    const out = path.join(dir, 'lora-torch');
    await importTorchJob({ job: jobDir, out });
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg['peft_type'], 'LORA');
    assert.equal(cfg['r'], 4);
    assert.equal(cfg['lora_alpha'], 8);
    assert.equal(cfg['base_model_name_or_path'], path.resolve(pruned));
    const keys = [...readSafetensors(path.join(out, 'adapter_model.safetensors')).keys()];
    assert.equal(keys.length, 4 * 7 * 2); // 4 blocks x 7 projections x (A, B)
    assert.ok(keys.every((k) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(k)));
    const [pOurs, pTorch] = [await ppl(pruned, path.join(dir, 'lora-ours')), await ppl(pruned, out)];
    console.log(`# LoRA: held-out PPL ours ${pOurs.toFixed(6)}, torch ${pTorch.toFixed(6)}`);
    assert.ok(Math.abs(pTorch - pOurs) / pOurs <= 1e-4, `PPL torch ${pTorch} vs ours ${pOurs}`);
  });

  test('a CPT job killed mid-run and relaunched ends with the uninterrupted run\'s losses', async () => {
    assert.equal(cptSteps.length, 50, 'the CPT test ran first');
    const jobDir = path.join(dir, 'cpt-kill');
    emitCptJob(cpt(path.join(dir, 'unused'), 10), { dir: jobDir });
    const child = spawn(PY!, [path.join(jobDir, 'train.py'), '--local', '2', '--cpu', '--progress', 'json'], { env: torchEnv(PY!), stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    const exited = new Promise((r) => child.once('exit', r));
    for await (const line of readline.createInterface({ input: child.stdout })) {
      if (line.startsWith('{"step"') && (JSON.parse(line) as TrainStep).step >= 14) break;
    }
    process.kill(-child.pid!, 'SIGKILL'); // the whole process group: the launcher and both workers
    await exited;
    const st = JSON.parse(fs.readFileSync(path.join(jobDir, 'checkpoints', 'state.json'), 'utf8')) as { latest: string };
    assert.ok(st.latest < 'step-000050', `killed before the end (latest checkpoint ${st.latest})`);
    await assert.rejects(importTorchJob({ job: jobDir, out: path.join(dir, 'kill-imp') }), /stopped at step \d+ of 50/);
    // relaunch through the CLI: --resume reuses the job folder, --launch runs it, --out imports the result
    const out = path.join(dir, 'kill-result');
    const r = spawnSync(process.execPath, [projectDir('bin', 'shorten.js'), 'train', 'cpt', '--model', pruned, '--data', trainText, '--engine', 'torch', '--emit', jobDir,
      '--resume', '--launch', '--nproc', '2', '--cpu', '--python', PY!, '--out', out, '--json'], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`resuming from ${st.latest}`));
    assert.equal((JSON.parse(r.stdout) as { steps: number }).steps, 50);
    const log = JSON.parse(fs.readFileSync(path.join(out, 'train-log.json'), 'utf8')) as { steps: TrainStep[]; complete: boolean };
    assert.equal(log.complete, true);
    assert.equal(log.steps.length, 50);
    assert.ok(fs.existsSync(path.join(out, 'model', 'model.safetensors')));
    log.steps.forEach((s, i) => assert.equal(s.loss, cptSteps[i]!.loss, `step ${s.step}`));
  });
});
