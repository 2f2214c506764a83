/**
 * `npm run demo`: the whole Shortened LLaMA method on the embedded default model, in a few
 * minutes on a laptop CPU. Score the blocks (PPL and Taylor+), prune 25% of them with each
 * criterion, retrain each pruned model briefly (CPT on the Brown train split), compare test
 * perplexity before and after, print generations, measure decode speed, and write the report.
 * Everything lands in runs/demo/ (report: runs/demo/report/report.html).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { countParams } from '../src/io/config.js';
import { LlamaRunner } from '../src/model/llama.js';
import { generate } from '../src/model/generate.js';
import { scoreModelDir, scoreJson, pruneModelDir } from '../src/prune/pipeline.js';
import { trainCpt } from '../src/train/cpt.js';
import { perplexity, pplWindows } from '../src/eval/ppl.js';
import { brownSplit } from '../src/data/brown.js';
import { benchModel } from '../src/bench/generation.js';
import { buildReport } from '../src/report/build.js';
import { projectDir } from '../src/util/shared.js';
import { argNumber } from '../src/util/args.js';


const t00 = performance.now();
const MODEL = projectDir('assets', 'default');
const OUT = projectDir('runs', 'demo');
const trainSteps = argNumber('train-steps', 12);
const evalWindows = argNumber('eval-windows', 160);
const ratio = 0.25;
fs.rmSync(OUT, { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
const save = (name: string, v: unknown) => fs.writeFileSync(path.join(OUT, name), JSON.stringify(v, null, 2) + '\n');
const step = (s: string) => console.log(`\n== ${s}  [${((performance.now() - t00) / 1000).toFixed(0)} s]`);

const tok = loadTokenizer(MODEL);
// a fixed slice of the Brown test split keeps the demo short; the model card has the full-split figure
const testWindows = pplWindows(brownSplit('test'), tok, 128, 'first').slice(0, evalWindows);
async function testPpl(dir: string, label: string, removed: number, criterion: string | undefined, retraining: string): Promise<number> {
  const r = await perplexity(new LlamaRunner(loadModel(dir)), testWindows, 16);
  save(`ppl-${label}.json`, { kind: 'ppl', model: dir, label, removedBlocks: removed, criterion, retraining, dataset: `brown-test[:${testWindows.length}x128]`, ppl: r.ppl, nll: r.nll, tokens: r.tokens });
  console.log(`   ${label.padEnd(22)} test PPL ${r.ppl.toFixed(2)}  (Brown test, ${testWindows.length} windows of 128 tokens)`);
  return r.ppl;
}

step('the default model');
const base = loadModel(MODEL);
const L = base.config.numLayers;
console.log(`   ${path.relative(process.cwd(), MODEL)}: ${L} blocks, ${countParams(base.config).toLocaleString('en-US')} parameters`);
const basePpl = await testPpl(MODEL, 'original', 0, undefined, 'none');

const results: { label: string; dir: string; removed: number[]; pplPruned: number; pplRetrained: number; params: number }[] = [];
for (const criterion of ['ppl', 'taylor'] as const) {
  step(`score blocks with the ${criterion === 'ppl' ? 'PPL' : 'Taylor+'} criterion (10 calibration samples x 128 tokens)`);
  const sel = { ratio, protect: [4, 2] as [number, number] };
  const s = await scoreModelDir(MODEL, criterion, { n: 10, seqLen: 128 }, sel);
  save(`score-${criterion}.json`, scoreJson(MODEL, s));
  console.log(`   scores: ${s.result.scores.map((x) => x.toPrecision(4)).join(' ')}`);

  step(`prune ${ratio * 100}% of the blocks (${criterion}, "+" heuristic: first 4 and last 2 kept)`);
  const dir = path.join(OUT, `pruned-${criterion}`);
  const p = await pruneModelDir(MODEL, dir, criterion, { n: 10, seqLen: 128 }, sel, false, s);
  console.log(`   removed blocks ${p.removed.join(', ')}: ${p.paramsAfter.toLocaleString('en-US')} parameters (${(100 * (1 - p.paramsAfter / p.paramsBefore)).toFixed(1)}% fewer)`);
  const pplPruned = await testPpl(dir, `${criterion}-pruned`, p.removed.length, criterion, 'none');

  step(`retrain briefly: continued pretraining, ${trainSteps} steps on the Brown train split`);
  const trainDir = path.join(OUT, `cpt-${criterion}`);
  await trainCpt({ model: dir, out: trainDir, maxSteps: trainSteps, seqLen: 128, batchSize: 8, microBatch: 8, lr: 3e-4, warmup: 2, saveEvery: 1000, label: `${criterion}-pruned-cpt`, final: 'last', force: true, valSeqs: 8 });
  const pplRetrained = await testPpl(path.join(trainDir, 'model'), `${criterion}-pruned-cpt`, p.removed.length, criterion, 'cpt');
  results.push({ label: criterion, dir: path.join(trainDir, 'model'), removed: p.removed, pplPruned, pplRetrained, params: p.paramsAfter });
}

step('generations (greedy, 40 tokens)');
const prompts = ['The jury said', 'In the morning, the'];
const items: { model: string; prompt: string; text: string }[] = [];
for (const [label, dir] of [['original', MODEL], ...results.map((r) => [`${r.label}-pruned-cpt`, r.dir])] as [string, string][]) {
  const run = new LlamaRunner(loadModel(dir));
  for (const prompt of prompts) {
    const g = await generate(run, [tok.encode(prompt, { addSpecialTokens: true })], { maxNewTokens: 40, stopIds: tok.eosId !== null ? [tok.eosId] : [] });
    const text = prompt + tok.decode(g.tokens[0]!);
    items.push({ model: label, prompt, text });
    console.log(`   [${label}] ${text.replace(/\n/g, ' ')}`);
  }
}
save('generations.json', { kind: 'generations', items });

step('decode speed (12-token prompt, 64 new tokens, batch 1 and 8)');
const models: Awaited<ReturnType<typeof benchModel>>[] = [];
for (const [label, dir] of [['original', MODEL], ...results.map((r) => [`${r.label}-pruned-cpt`, r.dir])] as [string, string][]) {
  const m = await benchModel(label, new LlamaRunner(loadModel(dir)), { batchSizes: [1, 8], promptLen: 12, newTokens: 64, warmup: 1, repeats: 2, seed: 0, warmupTokens: 8 });
  models.push(m);
  console.log(`   ${label.padEnd(20)} ${m.results.map((r) => `batch ${r.batch}: ${r.tokensPerSec.toFixed(0)} tokens/s`).join('   ')}`);
}
save('bench.json', { kind: 'bench', models });

step('summary');
const rows = [
  { model: 'original', blocks: L, params: countParams(base.config), 'test PPL (pruned)': basePpl.toFixed(2), 'test PPL (after CPT)': '—', 'decode tokens/s (batch 1)': models[0]!.results[0]!.tokensPerSec.toFixed(0) },
  ...results.map((r, i) => ({ model: `${r.label} −${r.removed.length} blocks`, blocks: L - r.removed.length, params: r.params, 'test PPL (pruned)': r.pplPruned.toFixed(2), 'test PPL (after CPT)': r.pplRetrained.toFixed(2), 'decode tokens/s (batch 1)': models[i + 1]!.results[0]!.tokensPerSec.toFixed(0) })),
];
save('summary.json', { kind: 'summary', title: 'Demo: depth pruning of the default model', rows });
console.table(rows);

step('report');
const report = await buildReport({ inputs: [OUT, path.join(MODEL, 'train-log.json')].filter((f) => fs.existsSync(f)), out: path.join(OUT, 'report'), title: 'shortened demo: depth pruning of the default model' });
console.log(`   ${path.relative(process.cwd(), report.html)}\n   ${path.relative(process.cwd(), report.markdown)}`);
console.log(`\ndone in ${((performance.now() - t00) / 1000).toFixed(0)} s`);
