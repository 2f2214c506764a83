/**
 * The recipe of the embedded default model (assets/default): a 12-block LLaMA with GQA, initialised
 * from seed 0 and pretrained from scratch (CPT from a random initialisation) on the Brown train
 * split with the project's own trainer; the checkpoint with the best validation loss is kept,
 * saved in bf16 with its model card.
 *
 *   npm run build && node dist/scripts/train-default-model.js [--steps N] [--out DIR]
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


export const DEFAULT_MODEL_CONFIG: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama',
  hidden_size: 128, intermediate_size: 384, num_hidden_layers: 12,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32,
  vocab_size: 4096, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null,
  tie_word_embeddings: true, attention_bias: false, mlp_bias: false, hidden_act: 'silu', initializer_range: 0.02,
  bos_token_id: 0, eos_token_id: 1, transformers_version: '4.44.2', use_cache: true,
};

const RECIPE = {
  seed: 0, seqLen: 128, batchSize: 16, microBatch: 8, lr: 3e-3, warmup: 30, valSeqs: 16, decay: 'cosine' as const, minLrRatio: 0.1,
  weightDecay: 0.1, beta1: 0.9, beta2: 0.95, maxGradNorm: 1, saveEvery: 25,
};

const steps = argNumber('steps', 200);
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

// 4. publish: model files + model card + training log
const log = JSON.parse(fs.readFileSync(path.join(trainOut, 'train-log.json'), 'utf8')) as { steps: { step: number; loss: number; lr: number; valLoss?: number }[] };
const best = log.steps.filter((s) => s.valLoss !== undefined).reduce((a, b) => (b.valLoss! < a.valLoss! ? b : a));
const card = { kind: 'summary', title: 'Default model', rows: [
  { field: 'parameters', value: countParams(run.config) },
  { field: 'blocks', value: run.config.numLayers },
  { field: 'training steps', value: log.steps.length },
  { field: 'best validation loss (step)', value: `${best.valLoss!.toFixed(4)} (${best.step})` },
  { field: 'test perplexity (Brown test, 128-token windows)', value: Number(test.ppl.toFixed(3)) },
  { field: 'validation perplexity', value: Number(val.ppl.toFixed(3)) },
] };
for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
  if (fs.existsSync(path.join(trained, f))) fs.copyFileSync(path.join(trained, f), path.join(out, f));
}
fs.writeFileSync(path.join(out, 'train-log.json'), JSON.stringify({ ...log, label: 'default-model-pretraining' }, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'model-card.json'), JSON.stringify({ ...card, recipe: RECIPE, config: DEFAULT_MODEL_CONFIG, test_ppl: test.ppl, validation_ppl: val.ppl, seconds: r.seconds }, null, 2) + '\n');
console.log(`wrote ${out}`);
