/**
 * Training building blocks: AdamW against torch's formula, schedules, Alpaca rendering and
 * masking, batching by right-padding, streamed packing with a resumable position, and
 * crash-safe checkpoint folders.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { AdamW, accumulateGrad, gradNorm, clipFactor, param } from '../src/train/adamw.js';
import { lrAt } from '../src/train/schedule.js';
import { alpacaPrompt, readPromptRecords, tokenizeRecord, splitRecords, ExampleStream } from '../src/train/alpaca.js';
import { collate } from '../src/train/batch.js';
import { DocReader, TextPacker, skipDocs, countSequences, packedRows } from '../src/train/packing.js';
import { writeCheckpoint, commitCheckpointState, readCheckpointState, checkpointName } from '../src/train/checkpoint.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import { projectDir } from '../src/util/shared.js';
import { tmpDir, tinyModelDir, writeText, writeAlpaca } from './train-helpers.js';

test('AdamW: decoupled weight decay and bias-corrected moments, as torch.optim.AdamW', () => {
  const p = param('w', [2], Float32Array.from([1, -2]), true);
  const q = param('n', [1], Float32Array.from([1]), false);
  const opt = new AdamW([p, q], { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
  // float64 reference of torch's update
  let w = [1, -2], m = [0, 0], v = [0, 0];
  const grads = [[0.5, -0.25], [0.1, 0.3], [-0.2, 0.05]];
  grads.forEach((g, k) => {
    accumulateGrad(p, Float32Array.from(g), 1);
    accumulateGrad(q, Float32Array.from([0.5]), 1);
    opt.step(0.1);
    const t = k + 1;
    w = w.map((x, i) => {
      m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
      v[i] = 0.999 * v[i]! + 0.001 * g[i]! * g[i]!;
      return x * (1 - 0.1 * 0.1) - (0.1 / (1 - 0.9 ** t)) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
    });
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(p.value[i]! - w[i]!) < 1e-6, `step ${t}: ${p.value[i]} vs ${w[i]}`);
  });
  assert.ok(Math.abs(q.value[0]! - (1 - 0.3)) < 1e-6, 'no decay on a norm weight: three steps of exactly lr');
  assert.equal(p.grad, null, 'gradients are consumed');
  assert.equal(opt.t, 3);
});

test('gradient accumulation is token-weighted; clipping scales to the max norm', () => {
  const p = param('w', [2], new Float32Array(2), true);
  accumulateGrad(p, Float32Array.from([1, 0]), 3); // mean gradient of a micro-batch with 3 targets
  accumulateGrad(p, Float32Array.from([0, 1]), 1);
  const norm = gradNorm([p], 1 / 4); // the mean over all 4 targets is [0.75, 0.25]
  assert.ok(Math.abs(norm - Math.hypot(0.75, 0.25)) < 1e-7);
  assert.equal(clipFactor(norm, 10), 1);
  const c = clipFactor(norm, 0.5);
  assert.ok(Math.abs(c * norm - 0.5) < 1e-5);
  // one AdamW step from zero moments moves each weight by lr * sign(g) (for |g| >> eps)
  const opt = new AdamW([p], { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  opt.step(0.1, c / 4);
  assert.ok(Math.abs(p.value[0]! + 0.1) < 1e-6 && Math.abs(p.value[1]! + 0.1) < 1e-6);
});

test('schedules: warmup then linear / cosine decay / constant', () => {
  const lin = [0, 1, 2, 3, 4, 5].map((s) => lrAt({ lr: 1, warmup: 2, total: 6, decay: 'linear' }, s));
  assert.deepEqual(lin, [0.5, 1, 1, 0.75, 0.5, 0.25]);
  const cos = [2, 4, 6].map((s) => lrAt({ lr: 1, warmup: 2, total: 6, decay: 'cosine', minRatio: 0.1 }, s));
  assert.ok(Math.abs(cos[0]! - 1) < 1e-12 && Math.abs(cos[1]! - 0.55) < 1e-12 && Math.abs(cos[2]! - 0.1) < 1e-12);
  assert.equal(lrAt({ lr: 2, warmup: 0, total: 5, decay: 'constant' }, 4), 2);
});

test('Alpaca: template, loss on the response only, EOS, cutoff', () => {
  assert.equal(alpacaPrompt({ instruction: 'Say hi.' }),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n');
  assert.match(alpacaPrompt({ instruction: 'Sum.', input: '1 2' }), /paired with an input[\s\S]*### Input:\n1 2\n\n### Response:\n$/);
  const tok = loadTokenizer(projectDir('assets', 'default'));
  const dir = tmpDir('alpaca-');
  const recs = readPromptRecords(writeAlpaca(path.join(dir, 'a.json'), 6));
  assert.equal(recs.length, 6);
  const ex = tokenizeRecord(recs[0]!, tok, 256);
  const promptLen = tok.encode(recs[0]!.prompt, { addSpecialTokens: true }).length;
  assert.equal(ex.ids[0], tok.bosId);
  assert.equal(ex.ids[ex.ids.length - 1], tok.eosId);
  assert.ok(ex.labels.slice(0, promptLen).every((l) => l === -100));
  assert.deepEqual(ex.labels.slice(promptLen), ex.ids.slice(promptLen));
  const cut = tokenizeRecord(recs[0]!, tok, promptLen + 2);
  assert.equal(cut.ids.length, promptLen + 2);
  assert.notEqual(cut.ids[cut.ids.length - 1], tok.eosId, 'no EOS when truncated');
  assert.ok(tokenizeRecord(recs[0]!, tok, 256, true).labels.every((l) => l !== -100), '--train-on-inputs');
  // plain text and jsonl records
  fs.writeFileSync(path.join(dir, 't.jsonl'), '{"text": "a cat"}\n\n{"instruction": "x", "output": "y"}\n');
  const mixed = readPromptRecords(path.join(dir, 't.jsonl'));
  assert.deepEqual(mixed[0], { prompt: '', response: 'a cat' });
  assert.ok(tokenizeRecord(mixed[0]!, tok, 256).labels.every((l) => l !== -100));
  const sp = splitRecords([...Array(20).keys()], 4, 1);
  assert.equal(sp.val.length, 4);
  assert.deepEqual([...sp.train, ...sp.val].sort((a, b) => a - b), [...Array(20).keys()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('example stream: a fresh seeded order per epoch, resumable', () => {
  const exs = Array.from({ length: 5 }, (_, i) => ({ ids: [i], labels: [i] }));
  const a = new ExampleStream(exs, 3);
  const seen = Array.from({ length: 12 }, () => a.next().ids[0]!);
  assert.deepEqual(seen.slice(0, 5).sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual(seen.slice(5, 10).sort(), [0, 1, 2, 3, 4]);
  assert.notDeepEqual(seen.slice(0, 5), seen.slice(5, 10));
  const b = new ExampleStream(exs, 3);
  for (let i = 0; i < 7; i++) b.next();
  const c = new ExampleStream(exs, 3);
  c.restore(b.state());
  assert.deepEqual(Array.from({ length: 5 }, () => c.next().ids[0]), seen.slice(7, 12));
});

test('right-padded batches give exactly the loss of the rows run alone', async () => {
  const dir = tmpDir('pad-');
  const run = new LlamaRunner(loadModel(tinyModelDir(path.join(dir, 'm'))));
  const rows = [{ ids: [1, 50, 60, 70, 80, 2], labels: [-100, -100, 60, 70, 80, 2] }, { ids: [1, 90, 91, 2], labels: [-100, 90, 91, 2] }];
  const b = collate(rows);
  assert.equal(b.T, 6);
  assert.deepEqual([...b.targets.subarray(6)], [90, 91, 2, -100, -100, -100]);
  const all = await run.forward(b.ids, b.B, b.T, { targets: b.targets });
  let sum = 0, count = 0;
  for (const r of rows) {
    const one = collate([r]);
    const res = await run.forward(one.ids, 1, one.T, { targets: one.targets });
    sum += res.loss! * res.count!;
    count += res.count!;
  }
  assert.equal(all.count, count);
  assert.ok(Math.abs(all.loss! - sum / count) < 1e-6, `${all.loss} vs ${sum / count}`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('packing: streamed documents, BOS/EOS, held-out head, exact resume with a shuffle buffer', () => {
  const dir = tmpDir('pack-');
  const tok = loadTokenizer(projectDir('assets', 'default'));
  const file = writeText(path.join(dir, 'd.txt'), 30);
  fs.appendFileSync(file, '\n\n'); // blank lines are skipped
  const jl = path.join(dir, 'd.jsonl');
  fs.writeFileSync(jl, fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  const docs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const stream = docs.flatMap((d) => [...tok.encode(d, { addSpecialTokens: true }), tok.eosId!]);
  for (const src of [file, jl]) {
    const inOrder = new TextPacker(new DocReader([{ file: src }]), tok, { seqLen: 16 });
    const got = Array.from({ length: Math.floor(stream.length / 16) }, () => [...inOrder.next()]).flat();
    assert.deepEqual(got, stream.slice(0, got.length), src);
    assert.equal(inOrder.epochs, 0);
    inOrder.next();
    assert.equal(inOrder.epochs, 1, 'wraps to the next epoch');
  }
  assert.equal(countSequences(new DocReader([{ file }]), tok, 16), Math.floor(stream.length / 16));
  const reader = new DocReader([{ file }, { name: 'mem', docs: docs.slice(0, 3) }]);
  const held = skipDocs(reader, 5);
  assert.equal(held.docs, 5);
  const val = packedRows(reader, tok, 8, 100, { end: held.cursor });
  assert.deepEqual([...val[0]!], stream.slice(0, 8));
  const opts = { seqLen: 16, shuffleBuffer: 4, seed: 9, start: held.cursor };
  const a = new TextPacker(reader, tok, opts);
  const seqs = Array.from({ length: 40 }, () => [...a.next()]);
  const b = new TextPacker(reader, tok, opts);
  for (let i = 0; i < 23; i++) b.next();
  const state = JSON.parse(JSON.stringify(b.state()));
  const c = new TextPacker(new DocReader([{ file }, { name: 'mem', docs: docs.slice(0, 3) }]), tok, opts);
  c.restore(state);
  assert.deepEqual(Array.from({ length: 17 }, () => [...c.next()]), seqs.slice(23));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('checkpoints: staged, renamed, pointed at; unreferenced and partial folders removed', () => {
  const root = tmpDir('ckpt-');
  writeCheckpoint(root, checkpointName(1), (d) => fs.writeFileSync(path.join(d, 'x'), '1'));
  commitCheckpointState(root, { latest: checkpointName(1), best: checkpointName(1), bestValLoss: 2 });
  writeCheckpoint(root, checkpointName(2), (d) => fs.writeFileSync(path.join(d, 'x'), '2'));
  commitCheckpointState(root, { latest: checkpointName(2), best: checkpointName(1), bestValLoss: 2 });
  // a crash while staging step 3 leaves a hidden folder, which the next commit removes
  fs.mkdirSync(path.join(root, '.tmp-step-000003-1'));
  writeCheckpoint(root, checkpointName(3), (d) => fs.writeFileSync(path.join(d, 'x'), '3'));
  commitCheckpointState(root, { latest: checkpointName(3), best: checkpointName(1), bestValLoss: 2 });
  assert.deepEqual(fs.readdirSync(root).sort(), ['state.json', 'step-000001', 'step-000003']);
  assert.equal(readCheckpointState(root)!.latest, 'step-000003');
  assert.throws(() => writeCheckpoint(root, checkpointName(3), () => {}), /referenced/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('AdamW on a tensor long enough for the SIMD path matches the float64 formula', () => {
  const n = 4 * 37 + 3, lr = 0.01, wd = 0.1;
  const w0 = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const p = param('w', [n], Float32Array.from(w0), true);
  const opt = new AdamW([p], { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: wd });
  const w = Array.from(w0), m = new Array<number>(n).fill(0), v = new Array<number>(n).fill(0);
  for (let t = 1; t <= 3; t++) {
    const g = Float32Array.from({ length: n }, (_, i) => Math.cos(i * t) * 0.3);
    accumulateGrad(p, g, 2); // a gradient scale other than 1 reaches the kernel
    opt.step(lr, 0.5);
    for (let i = 0; i < n; i++) {
      const gi = g[i]! * 2 * 0.5;
      m[i] = 0.9 * m[i]! + 0.1 * gi;
      v[i] = 0.95 * v[i]! + 0.05 * gi * gi;
      w[i] = w[i]! * (1 - lr * wd) - (lr / (1 - 0.9 ** t)) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.95 ** t) + 1e-8);
    }
  }
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p.value[i]! - w[i]!));
  assert.ok(worst < 2e-6, `worst |diff| ${worst}`);
});
