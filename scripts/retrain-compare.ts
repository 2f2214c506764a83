/**
 * The paper's retraining comparison at our scale, in one table: stories260K (llama2.c, 5 blocks)
 * with 1 and 2 blocks removed by the PPL criterion, then
 *   (a) no retraining  (b) LoRA  (c) CPT  (d) CPT⇒LoRA
 * and beyond the paper
 *   (e) KD from the unpruned model  (f) KD⇒LoRA  (g) iterative: one block a round, CPT between rounds
 * with (e) and (g) at CPT's number of training tokens (g: --cpt-steps split evenly over the rounds)
 * trained on TinyStories text (the first 90% of the paragraphs of
 * ../shared/data/train/tinystories_val_subset.txt) and evaluated by perplexity on the held-out last
 * 10% (each paragraph encoded with BOS, concatenated, windows of --eval-seq tokens), with the wall
 * time of each retraining. The budget is small by default (a few minutes on 2 cores); scale it
 * with --lora-steps, --cpt-steps, --batch-size, --seq-len.
 *
 *   node dist/scripts/retrain-compare.js [--out runs/retrain-compare] [--remove 1,2]
 *        [--lora-steps 24] [--cpt-steps 24] [--lora-lr 2e-3] [--cpt-lr 1e-3] [--batch-size 8]
 *        [--seq-len 128] [--eval-seq 512] [--eval-tokens 20000] [--seed 42]
 *        [--kd-temp 1] [--kd-alpha 1] [--kd-hidden 0]
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
import { trainCpt, type CptOptions } from '../src/train/cpt.js';
import { trainKd } from '../src/train/kd.js';
import { pruneIteratively } from '../src/prune/iterative.js';
import { roundRetrainer, retrainInfo, type RoundRetrainOptions } from '../src/train/retrainer.js';
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
const kdSet = { temperature: argNumber('kd-temp', 1), alpha: argNumber('kd-alpha', 1), hiddenWeight: argNumber('kd-hidden', 0) };

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
  retraining: 'none' | 'lora' | 'cpt' | 'cpt+lora' | 'kd' | 'kd+lora' | 'iterative';
  pplBefore: number;
  ppl: number;
  nll: number;
  trainSeconds: number;
  evalSeconds: number;
  steps: number;
  /** tokens of packed text trained on (CPT, KD, iterative; LoRA trains on paragraphs) */
  tokens: number | null;
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
/** CPT's options for a run of `steps` steps (KD and the iterative rounds use the same). */
const cptOptions = (steps: number) => ({
  eos: false, seqLen, valDocs: 100, valSeqs: 16, batchSize, microBatch: batchSize, lr: cptLr, warmup: Math.max(1, Math.floor(steps / 10)),
  saveEvery: Math.max(1, Math.floor(steps / 3)), seed, final: 'best' as const,
}) satisfies Partial<CptOptions>;
const cpt = (model: string, outDir: string, label: string) => trainCpt({ ...cptOptions(cptSteps), model, data: [trainFile], out: outDir, force: true, label, maxSteps: cptSteps });
const kd = (model: string, outDir: string, label: string) => trainKd({ ...cptOptions(cptSteps), model, teacher: base, kd: kdSet, data: [trainFile], out: outDir, force: true, label, maxSteps: cptSteps });
const tokensOf = (steps: number) => steps * batchSize * seqLen;

const t00 = performance.now();
const iterRounds: { removed: number; rounds: { round: number; removed: number[]; pplAfterCut: number; pplAfterRetrain: number; steps: number }[] }[] = [];
const orig = await ppl(base);
pplFile('s260k', base, 0, 'none', orig);
console.log(`stories260K (5 blocks): held-out PPL ${orig.ppl.toFixed(3)} over ${orig.tokens} tokens`);
results.push({ removed: 0, blocks: '-', retraining: 'none', pplBefore: orig.ppl, ppl: orig.ppl, nll: orig.nll, trainSeconds: 0, evalSeconds: orig.seconds, steps: 0, tokens: null, finalTrainLoss: null });
const calib = { data: trainFile, n: 16, seqLen: 64, seed };

for (const n of removes) {
  const pruned = path.join(work, `pruned-${n}`);
  const pr = await pruneModelDir(base, pruned, 'ppl', calib, { remove: n, protect: [0, 0] }, true);
  const blocks = pr.removed.join(',');
  const a = await ppl(pruned);
  pplFile(`s260k-rm${n}`, pruned, n, 'none', a);
  console.log(`removed ${n} (blocks ${blocks}): PPL ${a.ppl.toFixed(3)}`);
  results.push({ removed: n, blocks, retraining: 'none', pplBefore: a.ppl, ppl: a.ppl, nll: a.nll, trainSeconds: 0, evalSeconds: a.seconds, steps: 0, tokens: null, finalTrainLoss: null });

  const add = async (retraining: Row['retraining'], label: string, trainS: number, steps: { loss: number }[], tokens: number | null, modelDir: string, adapterDir?: string, removedBlocks = blocks) => {
    const r = await ppl(modelDir, adapterDir);
    pplFile(label, modelDir, n, retraining, r);
    console.log(`removed ${n} + ${retraining}: PPL ${a.ppl.toFixed(3)} -> ${r.ppl.toFixed(3)} (train ${trainS.toFixed(1)} s)`);
    results.push({ removed: n, blocks: removedBlocks, retraining, pplBefore: a.ppl, ppl: r.ppl, nll: r.nll, trainSeconds: trainS, evalSeconds: r.seconds, steps: steps.length, tokens, finalTrainLoss: steps[steps.length - 1]?.loss ?? null });
  };
  const wall = async <T>(f: () => Promise<T>): Promise<[T, number]> => { const t0 = performance.now(); const r = await f(); return [r, (performance.now() - t0) / 1000]; };

  const [l, ls] = await wall(() => lora(pruned, path.join(out, `lora-${n}`), `s260k-rm${n}-lora`));
  await add('lora', `s260k-rm${n}-lora`, ls, l.log.steps, null, pruned, l.out);
  const [c, cs] = await wall(() => cpt(pruned, path.join(out, `cpt-${n}`), `s260k-rm${n}-cpt`));
  await add('cpt', `s260k-rm${n}-cpt`, cs, c.log.steps, tokensOf(c.log.steps.length), path.join(c.out, 'model'));
  // CPT⇒LoRA: LoRA on the CPT result; its time is both stages'
  const [cl, cls] = await wall(() => lora(path.join(c.out, 'model'), path.join(out, `cpt+lora-${n}`), `s260k-rm${n}-cpt+lora`));
  await add('cpt+lora', `s260k-rm${n}-cpt+lora`, cs + cls, [...c.log.steps, ...cl.log.steps], tokensOf(c.log.steps.length), path.join(c.out, 'model'), cl.out);
  // KD from the unpruned model: CPT's data, steps and batch; its time includes the teacher's forwards
  const [k, ks] = await wall(() => kd(pruned, path.join(out, `kd-${n}`), `s260k-rm${n}-kd`));
  await add('kd', `s260k-rm${n}-kd`, ks, k.log.steps, tokensOf(k.log.steps.length), path.join(k.out, 'model'));
  const [kl, kls] = await wall(() => lora(path.join(k.out, 'model'), path.join(out, `kd+lora-${n}`), `s260k-rm${n}-kd+lora`));
  await add('kd+lora', `s260k-rm${n}-kd+lora`, ks + kls, [...k.log.steps, ...kl.log.steps], tokensOf(k.log.steps.length), path.join(k.out, 'model'), kl.out);
  // iterative: one block a round, re-scored, CPT between rounds; CPT's steps split over the rounds.
  // Its time is the whole loop (scoring and cutting included, the one-shot rows' pruning is not).
  const roundSteps = Math.max(1, Math.floor(cptSteps / n));
  const rt: RoundRetrainOptions = { method: 'cpt', steps: roundSteps, data: [trainFile], cpt: cptOptions(roundSteps) };
  const iterDir = path.join(work, `iterative-${n}`);
  const [it, its] = await wall(() => pruneIteratively({
    model: base, out: iterDir, criterion: 'ppl', calib, sel: { remove: n, protect: [0, 0] }, perRound: 1, force: true,
    retrain: roundRetrainer(rt), retrainInfo: retrainInfo(rt), retrainInputs: [trainFile],
  }));
  const iterSteps = it.rounds.flatMap((x) => Array.from({ length: x.retrain.steps }, () => ({ loss: x.retrain.final_loss ?? NaN })));
  fs.copyFileSync(path.join(iterDir, 'pruning.json'), path.join(out, `iterative-${n}-pruning.json`));
  await add('iterative', `s260k-rm${n}-iterative`, its, iterSteps, tokensOf(iterSteps.length), iterDir, undefined, it.removed.join(','));
  iterRounds.push({ removed: n, rounds: it.rounds.map((x) => ({ round: x.round, removed: x.removed_original, pplAfterCut: x.ppl_after_cut, pplAfterRetrain: x.ppl_after_retrain, steps: x.retrain.steps })) });
}

const settings = {
  model: 'stories260K (llama2.c, 5 blocks, 260K parameters)', criterion: 'ppl (protect 0 first, 0 last)', calibration: '16 x 64 tokens of the training text',
  train: `first 90% of TinyStories paragraphs (${cut}), ${trainFile}`, eval: `last 10% (${heldOut.length} paragraphs), ${rows.length} windows of ${evalSeq} tokens`,
  lora: { steps: loraSteps, lr: loraLr, r: 8, alpha: 16, dropout: 0.05, batch: batchSize, cutoff: seqLen, targets: 'q,k,v,o,gate,up,down' },
  cpt: { steps: cptSteps, lr: cptLr, batch: batchSize, seqLen, betas: [0.9, 0.95], weightDecay: 0.1, schedule: 'cosine' },
  kd: { ...kdSet, teacher: 'stories260K (unpruned)', steps: cptSteps, lr: cptLr, batch: batchSize, seqLen },
  iterative: { perRound: 1, retrain: 'cpt', stepsPerRound: removes.map((n) => Math.max(1, Math.floor(cptSteps / n))) },
  seed, totalSeconds: (performance.now() - t00) / 1000,
};
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({ kind: 'retrain-compare', settings, results, iterativeRounds: iterRounds }, null, 2) + '\n');
const NAMES: Record<Row['retraining'], string> = { none: '(a) none', lora: '(b) LoRA', cpt: '(c) CPT', 'cpt+lora': '(d) CPT⇒LoRA', kd: '(e) KD', 'kd+lora': '(f) KD⇒LoRA', iterative: '(g) iterative (CPT)' };
/** Whether KD beat CPT, per pruning level, from the numbers above. */
const verdicts = removes.map((n) => {
  const c = results.find((r) => r.removed === n && r.retraining === 'cpt')!, k = results.find((r) => r.removed === n && r.retraining === 'kd')!;
  const rel = (100 * (c.ppl - k.ppl)) / c.ppl;
  return `${n} removed: ${k.ppl < c.ppl ? `KD beats CPT (PPL ${k.ppl.toFixed(3)} vs ${c.ppl.toFixed(3)}, ${rel.toFixed(1)}% lower)` : `CPT beats KD (PPL ${c.ppl.toFixed(3)} vs ${k.ppl.toFixed(3)}, KD ${(-rel).toFixed(1)}% higher)`}, at ${c.tokens} training tokens each; KD took ${(k.trainSeconds / c.trainSeconds).toFixed(2)}x CPT's time.`;
});
const md = [
  '# Retraining after depth pruning: stories260K on TinyStories',
  '',
  `Held-out TinyStories perplexity (${settings.eval}). Training data: ${settings.train.split(',')[0]}.`,
  `LoRA: ${loraSteps} steps, lr ${loraLr}, r 8, alpha 16, dropout 0.05, batch ${batchSize} paragraphs (cutoff ${seqLen}). ` +
  `CPT: ${cptSteps} steps, lr ${cptLr}, batch ${batchSize} x ${seqLen} packed tokens, AdamW (0.9, 0.95), wd 0.1, cosine. ` +
  'CPT⇒LoRA: the LoRA run on the CPT model; its time is the sum of both. ' +
  `KD: CPT's data, steps, batch and optimizer, the loss the KL to the unpruned model's next-token distribution (temperature ${kdSet.temperature}, alpha ${kdSet.alpha}, hidden-state weight ${kdSet.hiddenWeight}); its time includes the teacher's forwards. ` +
  'KD⇒LoRA: the LoRA run on the KD model. ' +
  `Iterative: one block removed a round by the PPL criterion re-scored on the current model, then CPT for ${settings.iterative.stepsPerRound.join(' / ')} steps a round (for ${removes.join(' / ')} blocks removed: the same training tokens as CPT); its time is the whole loop, scoring included; its blocks are the ones it chose.`,
  '',
  '| removed | blocks | retraining | PPL before | PPL after | steps | training tokens | train time (s) | eval time (s) |',
  '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ...results.map((r) => `| ${r.removed} | ${r.blocks} | ${r.retraining === 'none' && !r.removed ? 'original model' : NAMES[r.retraining]} | ${r.pplBefore.toFixed(3)} | ${r.ppl.toFixed(3)} | ${r.steps} | ${r.tokens ?? '–'} | ${r.trainSeconds.toFixed(1)} | ${r.evalSeconds.toFixed(1)} |`),
  '',
  '"PPL before" is the one-shot pruned model\'s (a); LoRA rows train on paragraphs (cutoff ' + seqLen + '), not packed tokens.',
  '',
  '**KD vs CPT.** ' + verdicts.join(' '),
  '',
  '**Iterative rounds** (calibration PPL, 16 x 64 tokens of the training text, after each cut and after its CPT):',
  '',
  ...iterRounds.flatMap((x) => x.rounds.map((r) => `- ${x.removed} removed, round ${r.round}: block ${r.removed.join(',')} (original numbering), PPL ${r.pplAfterCut.toFixed(3)} after the cut, ${r.pplAfterRetrain.toFixed(3)} after ${r.steps} CPT steps`)),
  '',
  `Total wall time ${settings.totalSeconds.toFixed(0)} s.`,
  '',
].join('\n');
fs.writeFileSync(path.join(out, 'results.md'), md);
console.log('\n' + md);
