/**
 * Zero-shot through llama.cpp against our engine on stories260K: every document of the seven
 * tasks (or the first --limit N of each) scored by both engines on the same token ids; per task,
 * the share of documents where both pick the same choice (acc's argmax and acc_norm's), both
 * accuracies, and the largest relative difference of a log-likelihood.
 *   npm run build && node dist/scripts/llamacpp-zeroshot.js [--limit N] [--threads 2]
 * Writes runs/llamacpp-zeroshot/table.{md,json}; copy table.md to docs/results/llamacpp-zeroshot.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importLlama2c } from '../src/io/llama2c.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import { EngineScorer } from '../src/eval/loglikelihood.js';
import { loadBuiltinTask, DEFAULT_TASKS } from '../src/eval/zeroshot/index.js';
import { encodeDocPairs } from '../src/eval/zeroshot/requests.js';
import { LlamaCppEngine } from '../src/llamacpp/engine.js';
import { cachedGgufForFolder } from '../src/llamacpp/gguf-cache.js';
import { sharedDir, projectDir, hasShared } from '../src/util/shared.js';
import { argNumber } from '../src/util/args.js';

if (!hasShared()) { console.error('needs ../shared (stories260K, zero-shot sets)'); process.exit(1); }
const limit = argNumber('limit', 0) || undefined;
const threads = argNumber('threads', 0) || undefined;
const out = projectDir('runs', 'llamacpp-zeroshot');
fs.mkdirSync(out, { recursive: true });
const dir = path.join(out, 'stories260K');
if (!fs.existsSync(path.join(dir, 'config.json'))) {
  importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: dir });
}
const tok = loadTokenizer(dir);
const ours = new EngineScorer(new LlamaRunner(loadModel(dir)));
const engine = await LlamaCppEngine.open(cachedGgufForFolder(dir, 'f32', path.join(out, 'gguf')), { f32Cache: true, threads });
const argmax = (xs: number[]) => xs.reduce((b, x, i) => (x > xs[b]! ? i : b), 0);
const t0 = Date.now();
const rows: Record<string, number | string>[] = [];
for (const name of DEFAULT_TASKS) {
  const task = loadBuiltinTask(name, sharedDir('data', 'eval', 'zeroshot'), 'skip');
  const docs = limit ? task.docs.slice(0, limit) : task.docs;
  let same = 0, accO = 0, accT = 0, worst = 0;
  for (const doc of docs) {
    const reqs = encodeDocPairs(tok, doc.pairs);
    const a = (await ours.score(reqs)).map((r) => r.logprob), b = (await engine.score(reqs)).map((r) => r.logprob);
    a.forEach((x, i) => { worst = Math.max(worst, Math.abs(b[i]! - x) / Math.abs(x)); });
    const norm = (lls: number[]) => lls.map((x, i) => x / doc.choices[i]!.length);
    const pick = task.paperMetric === 'acc_norm' ? (l: number[]) => argmax(norm(l)) : argmax;
    if (argmax(a) === argmax(b) && argmax(norm(a)) === argmax(norm(b))) same++;
    accO += pick(a) === doc.gold ? 1 : 0;
    accT += pick(b) === doc.gold ? 1 : 0;
  }
  rows.push({ task: name, metric: task.paperMetric, docs: docs.length, same_choices_pct: (100 * same) / docs.length, ours: accO / docs.length, llamacpp: accT / docs.length, worst_rel_ll_diff: worst });
  process.stderr.write(`${name}: ${same}/${docs.length} same choices\n`);
}
await engine.dispose();
const md = ['# Zero-shot through llama.cpp vs our engine (stories260K, f32 GGUF)', '',
  `Both engines score the same token ids (our tokenizer); llama.cpp (node-llama-cpp 3.21.1, CPU, f32 weights and KV cache, no flash attention) gives log-likelihoods from its next-token probabilities. ${limit ? `First ${limit} documents of each task.` : 'Full sets.'} ${os.cpus().length} CPUs, ${((Date.now() - t0) / 60000).toFixed(1)} min.`, '',
  '`npm run build && node dist/scripts/llamacpp-zeroshot.js' + (limit ? ` --limit ${limit}` : '') + '`', '',
  '| task | metric | docs | same choices (acc and acc_norm) | ours | llama.cpp | largest relative log-likelihood difference |', '|---|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r['task']} | ${r['metric']} | ${r['docs']} | ${Number(r['same_choices_pct']).toFixed(2)}% | ${Number(r['ours']).toFixed(4)} | ${Number(r['llamacpp']).toFixed(4)} | ${Number(r['worst_rel_ll_diff']).toExponential(1)} |`), ''];
fs.writeFileSync(path.join(out, 'table.md'), md.join('\n'));
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify(rows, null, 2) + '\n');
process.stdout.write(md.join('\n'));
