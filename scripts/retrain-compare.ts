/**
 * The paper's retraining comparison at our scale, in one table: stories260K (llama2.c, 5 blocks)
 * with 1 and 2 blocks removed by the PPL criterion, then
 *   (a) no retraining  (b) LoRA  (c) CPT  (d) CPT⇒LoRA
 * trained on TinyStories text (the first 90% of the paragraphs of
 * ../shared/data/train/tinystories_val_subset.txt) and evaluated by perplexity on the held-out last
 * 10% (each paragraph encoded with BOS, concatenated, windows of --eval-seq tokens), with the wall
 * time of each retraining. The budget is small by default (a few minutes on 2 cores); scale it
 * with --lora-steps, --cpt-steps, --batch-size, --seq-len.
 *
 *   node dist/scripts/retrain-compare.js [--out runs/retrain-compare] [--remove 1,2]
 *        [--lora-steps 24] [--cpt-steps 24] [--lora-lr 2e-3] [--cpt-lr 1e-3] [--batch-size 8]
 *        [--seq-len 128] [--eval-seq 512] [--eval-tokens 20000] [--seed 42]
 *
 * Writes <out>/results.md, <out>/results.json, one ppl-*.json per row and the runs' train-log.json
 * files (all readable by `shorten report`); intermediate models live in <out>/work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { importLlama2c } from '../src/io/llama2c.js';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { LlamaRunner } from '../src/model/llama.js';
import { perplexity } from '../src/eval/ppl.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { trainLora } from '../src/train/lora.js';
import { trainCpt } from '../src/train/cpt.js';
import { loadAdapter } from '../src/train/peft.js';
import { sharedDir, hasShared } from '../src/util/shared.js';
import { argNumber, argString } from '../src/util/args.js';

const out = path.resolve(argString('out', 'runs/retrain-compare'));
const removes = argString('remove', '1,2').split(',').map(Number);
const loraSteps = argNumber('lora-steps', 24), cptSteps = argNumber('cpt-steps', 24);
const loraLr = argNumber('lora-lr', 2e-3), cptLr = argNumber('cpt-lr', 1e-3);
const batchSize = argNumber('batch-size', 8), seqLen = argNumber('seq-len', 128);
const evalSeq = argNumber('eval-seq', 512), evalTokens = argNumber('eval-tokens', 20000);
const seed = argNumber('seed', 42);

if (!hasShared()) {
  console.error('retrain-compare needs ../shared (stories260K and TinyStories text); not found');
  process.exit(1);
}
process.env['SHORTENED_QUIET'] ??= '1';
const work = path.join(out, 'work');
fs.mkdirSync(work, { recursive: true });

// ---- data: TinyStories paragraphs, 90% to train on, the last 10% held out -------------------
const paragraphs = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8')
  .split(/\n\s*\n/).map((p) => p.split(/\s+/).join(' ').trim()).filter(Boolean);
const cut = Math.floor(paragraphs.length * 0.9);
const trainFile = path.join(work, 'tinystories-train.txt');
fs.writeFileSync(trainFile, paragraphs.slice(0, cut).join('\n') + '\n');
const heldOut = paragraphs.slice(cut);

const base = path.join(work, 'stories260K');
if (!fs.existsSync(path.join(base, 'config.json'))) {
  importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: base, force: true });
}
const tok: TextTokenizer = loadTokenizer(base);

/** Held-out windows as ../shared/README.md scores TinyStories: BOS + paragraph, concatenated. */
function evalRows(): number[][] {
  const stream: number[] = [];
  for (const p of heldOut) {
    stream.push(...tok.encode(p, { addSpecialTokens: true }));
    if (stream.length >= evalTokens) break;
  }
  const rows: number[][] = [];
  for (let i = 0; i + evalSeq <= Math.min(stream.length, evalTokens); i += evalSeq) rows.push(stream.slice(i, i + evalSeq));
  return rows;
}
const rows = evalRows();

async function ppl(modelDir: string, adapterDir?: string): Promise<{ ppl: number; nll: number; tokens: number; seconds: number }> {
  const t0 = performance.now();
  const model = loadModel(modelDir);
  const run = new LlamaRunner(model);
  if (adapterDir) run.adapters = loadAdapter(adapterDir, model).adapters;
  const r = await perplexity(run, rows, 8);
  return { ppl: r.ppl, nll: r.nll, tokens: r.tokens, seconds: (performance.now() - t0) / 1000 };
}

interface Row {
  removed: number;
  blocks: string;
  retraining: 'none' | 'lora' | 'cpt' | 'cpt+lora';
  pplBefore: number;
  ppl: number;
  nll: number;
  trainSeconds: number;
  evalSeconds: number;
  steps: number;
  finalTrainLoss: number | null;
}
const results: Row[] = [];

function pplFile(label: string, modelDir: string, removed: number, retraining: Row['retraining'], r: { ppl: number; nll: number; tokens: number }): void {
  fs.writeFileSync(path.join(out, `ppl-${label}.json`), JSON.stringify({
    kind: 'ppl', model: modelDir, label, removedBlocks: removed, criterion: removed ? 'ppl' : undefined, retraining,
    dataset: 'tinystories-heldout', ppl: r.ppl, nll: r.nll, tokens: r.tokens,
  }, null, 2) + '\n');
}

const lora = (model: string, outDir: string, label: string) => trainLora({
  model, data: trainFile, out: outDir, force: true, label, eos: false, cutoff: seqLen, valSize: 64,
  r: 8, alpha: 16, dropout: 0.05, maxSteps: loraSteps, batchSize, microBatch: batchSize, lr: loraLr, warmup: Math.max(1, Math.floor(loraSteps / 10)),
  saveEvery: Math.max(1, Math.floor(loraSteps / 3)), seed, final: 'best',
});
const cpt = (model: string, outDir: string, label: string) => trainCpt({
  model, data: [trainFile], out: outDir, force: true, label, eos: false, seqLen, valDocs: 100, valSeqs: 16,
  maxSteps: cptSteps, batchSize, microBatch: batchSize, lr: cptLr, warmup: Math.max(1, Math.floor(cptSteps / 10)),
  saveEvery: Math.max(1, Math.floor(cptSteps / 3)), seed, final: 'best',
});

const t00 = performance.now();
const orig = await ppl(base);
pplFile('s260k', base, 0, 'none', orig);
console.log(`stories260K (5 blocks): held-out PPL ${orig.ppl.toFixed(3)} over ${orig.tokens} tokens`);
results.push({ removed: 0, blocks: '-', retraining: 'none', pplBefore: orig.ppl, ppl: orig.ppl, nll: orig.nll, trainSeconds: 0, evalSeconds: orig.seconds, steps: 0, finalTrainLoss: null });

for (const n of removes) {
  const pruned = path.join(work, `pruned-${n}`);
  const pr = await pruneModelDir(base, pruned, 'ppl', { data: trainFile, n: 16, seqLen: 64, seed }, { remove: n, protect: [0, 0] }, true);
  const blocks = pr.removed.join(',');
  const a = await ppl(pruned);
  pplFile(`s260k-rm${n}`, pruned, n, 'none', a);
  console.log(`removed ${n} (blocks ${blocks}): PPL ${a.ppl.toFixed(3)}`);
  results.push({ removed: n, blocks, retraining: 'none', pplBefore: a.ppl, ppl: a.ppl, nll: a.nll, trainSeconds: 0, evalSeconds: a.seconds, steps: 0, finalTrainLoss: null });

  const add = async (retraining: Row['retraining'], label: string, trainS: number, steps: { loss: number }[], modelDir: string, adapterDir?: string) => {
    const r = await ppl(modelDir, adapterDir);
    pplFile(label, modelDir, n, retraining, r);
    console.log(`removed ${n} + ${retraining}: PPL ${a.ppl.toFixed(3)} -> ${r.ppl.toFixed(3)} (train ${trainS.toFixed(1)} s)`);
    results.push({ removed: n, blocks, retraining, pplBefore: a.ppl, ppl: r.ppl, nll: r.nll, trainSeconds: trainS, evalSeconds: r.seconds, steps: steps.length, finalTrainLoss: steps[steps.length - 1]?.loss ?? null });
  };
  const wall = async <T>(f: () => Promise<T>): Promise<[T, number]> => { const t0 = performance.now(); const r = await f(); return [r, (performance.now() - t0) / 1000]; };

  const [l, ls] = await wall(() => lora(pruned, path.join(out, `lora-${n}`), `s260k-rm${n}-lora`));
  await add('lora', `s260k-rm${n}-lora`, ls, l.log.steps, pruned, l.out);
  const [c, cs] = await wall(() => cpt(pruned, path.join(out, `cpt-${n}`), `s260k-rm${n}-cpt`));
  await add('cpt', `s260k-rm${n}-cpt`, cs, c.log.steps, path.join(c.out, 'model'));
  // CPT⇒LoRA: LoRA on the CPT result; its time is both stages'
  const [cl, cls] = await wall(() => lora(path.join(c.out, 'model'), path.join(out, `cpt+lora-${n}`), `s260k-rm${n}-cpt+lora`));
  await add('cpt+lora', `s260k-rm${n}-cpt+lora`, cs + cls, [...c.log.steps, ...cl.log.steps], path.join(c.out, 'model'), cl.out);
}

const settings = {
  model: 'stories260K (llama2.c, 5 blocks, 260K parameters)', criterion: 'ppl (protect 0 first, 0 last)', calibration: '16 x 64 tokens of the training text',
  train: `first 90% of TinyStories paragraphs (${cut}), ${trainFile}`, eval: `last 10% (${heldOut.length} paragraphs), ${rows.length} windows of ${evalSeq} tokens`,
  lora: { steps: loraSteps, lr: loraLr, r: 8, alpha: 16, dropout: 0.05, batch: batchSize, cutoff: seqLen, targets: 'q,k,v,o,gate,up,down' },
  cpt: { steps: cptSteps, lr: cptLr, batch: batchSize, seqLen, betas: [0.9, 0.95], weightDecay: 0.1, schedule: 'cosine' },
  seed, totalSeconds: (performance.now() - t00) / 1000,
};
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({ kind: 'retrain-compare', settings, results }, null, 2) + '\n');
const md = [
  '# Retraining after depth pruning: stories260K on TinyStories',
  '',
  `Held-out TinyStories perplexity (${settings.eval}). Training data: ${settings.train.split(',')[0]}.`,
  `LoRA: ${loraSteps} steps, lr ${loraLr}, r 8, alpha 16, dropout 0.05, batch ${batchSize} paragraphs (cutoff ${seqLen}). ` +
  `CPT: ${cptSteps} steps, lr ${cptLr}, batch ${batchSize} x ${seqLen} packed tokens, AdamW (0.9, 0.95), wd 0.1, cosine. ` +
  'CPT⇒LoRA: the LoRA run on the CPT model; its time is the sum of both.',
  '',
  '| removed | blocks | retraining | PPL before | PPL after | steps | train time (s) | eval time (s) |',
  '|---:|---|---|---:|---:|---:|---:|---:|',
  ...results.map((r) => `| ${r.removed} | ${r.blocks} | ${r.retraining === 'none' ? (r.removed ? '(a) none' : 'original model') : r.retraining === 'lora' ? '(b) LoRA' : r.retraining === 'cpt' ? '(c) CPT' : '(d) CPT⇒LoRA'} | ${r.pplBefore.toFixed(3)} | ${r.ppl.toFixed(3)} | ${r.steps} | ${r.trainSeconds.toFixed(1)} | ${r.evalSeconds.toFixed(1)} |`),
  '',
  `Total wall time ${settings.totalSeconds.toFixed(0)} s.`,
  '',
].join('\n');
fs.writeFileSync(path.join(out, 'results.md'), md);
console.log('\n' + md);
