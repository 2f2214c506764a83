/**
 * `shorten train cpt|lora --engine torch --emit DIR`: the same run, prepared for PyTorch's
 * distributed trainer (torchrun, DDP or FSDP) on machines bigger than ours. The job folder:
 *
 *   job.json                   the recipe: our settings (schedule, AdamW, clipping, batches), the
 *                              architecture resolved (per-layer shapes, RoPE frequencies), LoRA settings
 *   train.py                   assets/torchjob/train.py with the recipe's blocks spliced in
 *                              (which parameters train: recipe-*.py; the loss: loss-*.py)
 *   launch.sh, README.md       torchrun for clusters; how to run and take the result back
 *   model/                     the base model (config, safetensors, tokenizer, pruning.json)
 *   data/train-NNNNN.safetensors  rows: ids I32, offsets I64 [rows+1], labels I32 (LoRA only)
 *   data/val-00000.safetensors    validation rows, the same layout
 *   data/order.safetensors     rows I64 [steps, batch]: which rows each optimizer step takes
 *   adapter_init.safetensors   LoRA: our initial adapters (from the seed), so both engines start alike
 *
 * The rows and their order come from the very objects our trainer consumes (planCpt / planLora),
 * so both engines see the same tokens in the same order. A new method is one more recipe: a
 * parameter block and a loss block (e.g. KD: a frozen teacher and a distillation loss).
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspectModel, writeFolderAtomically, AUX_FILES } from '../io/model-folder.js';
import { guardOutput, checkReplaceable } from '../io/output-guard.js';
import { writeSafetensors, type RawTensor } from '../io/safetensors.js';
import { invFreq } from '../model/rope.js';
import type { LlamaModel } from '../model/weights.js';
import { planCpt, cptInputs, type CptOptions } from '../train/cpt.js';
import { planLora, loraInputs, type LoraOptions } from '../train/lora.js';
import { adapterTensors, PEFT_MODULES } from '../train/peft.js';
import type { TrainSettings, TrainLog } from '../train/trainer.js';
import type { Example } from '../train/batch.js';
import { projectDir } from '../util/shared.js';
import { UserError } from '../util/errors.js';

export const JOB_FORMAT = 'shorten-torchjob/1';
export const JOB_FILE = 'job.json';
/** Rows go to a new shard past this many tokens (256 MB of int32). */
const SHARD_TOKENS = 1 << 26;

/**
 * Which parameters train (assets/torchjob/recipe-*.py: prepare(model) -> {saved name: parameter},
 * saved_name(state-dict key)) and what they minimise (loss-*.py: loss_sum(model, ids, targets), the
 * loss summed over target tokens). Knowledge distillation would be loss 'kd': a loss-kd.py that
 * runs a frozen teacher (copied to teacher/, listed in job.json with its temperature and weights)
 * beside the student, with params 'full' or 'lora' as they are.
 */
export interface Recipe {
  params: 'full' | 'lora';
  loss: 'lm';
}

/** The architecture as train.py builds it (every choice already resolved from config.json). */
export interface JobArch {
  vocab_size: number;
  hidden_size: number;
  head_dim: number;
  rms_norm_eps: number;
  tie_word_embeddings: boolean;
  qkv_bias: boolean;
  o_bias: boolean;
  mlp_bias: boolean;
  layers: { num_attention_heads: number; num_key_value_heads: number; intermediate_size: number }[];
  /** RoPE inverse frequencies with the config's scaling applied (float64) */
  rope_inv_freq: number[];
}

/** job.json */
export interface JobSpec {
  format: typeof JOB_FORMAT;
  method: TrainLog['method'];
  recipe: Recipe;
  /** the model the job was prepared from (a copy is in model/) */
  source_model: string;
  settings: TrainSettings;
  /** which checkpoint becomes the result */
  final: 'best' | 'last';
  /** the train-log.json header our trainer would have written */
  header: Omit<TrainLog, 'steps'>;
  model: JobArch;
  lora?: { r: number; alpha: number; dropout: number; targets: string[] };
  files: { model: string[]; train: string[]; val: string[] | null; order: string };
  rows: number;
  tokens: number;
}

export interface EmitOptions {
  /** the job folder */
  dir: string;
  force?: boolean;
  /** tokens per data shard (tests use small ones) */
  shardTokens?: number;
}

export interface EmitResult {
  dir: string;
  job: JobSpec;
}

export function jobArch(model: LlamaModel): JobArch {
  const c = model.config;
  return {
    vocab_size: c.vocabSize, hidden_size: c.hiddenSize, head_dim: c.headDim, rms_norm_eps: c.rmsNormEps, tie_word_embeddings: c.tieWordEmbeddings,
    qkv_bias: c.qkvBias, o_bias: c.oBias, mlp_bias: c.mlpBias,
    layers: c.layers.map((l) => ({ num_attention_heads: l.numHeads, num_key_value_heads: l.numKvHeads, intermediate_size: l.intermediateSize })),
    rope_inv_freq: Array.from(invFreq(c)),
  };
}

/** Rows of token ids (and labels) into shards of about `shardTokens` tokens each. */
export class ShardWriter {
  readonly files: string[] = [];
  rows = 0;
  tokens = 0;
  private pending: { ids: ArrayLike<number>; labels?: ArrayLike<number> }[] = [];
  private pendingTokens = 0;

  constructor(readonly root: string, readonly prefix: string, readonly withLabels: boolean, readonly shardTokens = SHARD_TOKENS) {}

  /** Append a row; returns its index over all shards. */
  add(ids: ArrayLike<number>, labels?: ArrayLike<number>): number {
    if (this.withLabels !== (labels !== undefined)) throw new Error('ShardWriter: labels given for some rows only');
    this.pending.push({ ids, labels });
    this.pendingTokens += ids.length;
    this.tokens += ids.length;
    if (this.pendingTokens >= this.shardTokens) this.flush();
    return this.rows++;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const ids = new Int32Array(this.pendingTokens), labels = this.withLabels ? new Int32Array(this.pendingTokens) : null;
    const offsets = new BigInt64Array(this.pending.length + 1);
    let at = 0;
    this.pending.forEach((r, i) => {
      ids.set(r.ids, at);
      if (labels) labels.set(r.labels!, at);
      at += r.ids.length;
      offsets[i + 1] = BigInt(at);
    });
    const file = `data/${this.prefix}-${String(this.files.length).padStart(5, '0')}.safetensors`;
    const tensors: [string, RawTensor][] = [['ids', { dtype: 'I32', shape: [ids.length], data: ids }], ['offsets', { dtype: 'I64', shape: [offsets.length], data: offsets }]];
    if (labels) tensors.push(['labels', { dtype: 'I32', shape: [labels.length], data: labels }]);
    writeSafetensors(path.join(this.root, file), tensors);
    this.files.push(file);
    this.pending = [];
    this.pendingTokens = 0;
  }

  finish(): string[] {
    this.flush();
    return this.files;
  }
}

/** Copy what a model folder holds into `dst`: config, weights, tokenizer, provenance. Returns the weight files. */
function copyModel(src: string, dst: string): string[] {
  const { where } = inspectModel(src);
  fs.mkdirSync(dst);
  const weights = [...new Set([...where.values()].map((f) => path.basename(f)))];
  const files = ['config.json', ...weights, 'model.safetensors.index.json', ...AUX_FILES, 'pruning.json', 'training.json'];
  for (const f of files) {
    const from = path.join(src, f);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(dst, f), fs.constants.COPYFILE_FICLONE);
  }
  return weights.map((f) => `model/${f}`);
}

const asset = (name: string): string => fs.readFileSync(projectDir('assets', 'torchjob', name), 'utf8');

/** train.py: the template with the recipe's parameter and loss blocks spliced in. */
export function jobScript(job: Pick<JobSpec, 'recipe' | 'method' | 'header'>): string {
  return asset('train.py')
    .replace('# @@RECIPE@@', asset(`recipe-${job.recipe.params}.py`).trimEnd())
    .replace('# @@LOSS@@', asset(`loss-${job.recipe.loss}.py`).trimEnd())
    .replaceAll('@@TITLE@@', `${job.header.label}: ${job.method} with PyTorch`)
    .replaceAll('@@METHOD@@', job.method);
}

function jobReadme(job: JobSpec, dir: string): string {
  const s = job.settings;
  const fill: Record<string, string> = {
    TITLE: `${job.header.label}: ${job.method} with PyTorch`, METHOD: job.method, SOURCE: job.source_model, DIR: dir,
    RECIPE: job.recipe.params === 'lora' ? `LoRA (r ${job.lora!.r}, alpha ${job.lora!.alpha}, dropout ${job.lora!.dropout} on ${job.lora!.targets.join(', ')}), base frozen` : 'continued pretraining of every weight (f32 masters)',
    STEPS: String(s.steps), BATCH: String(s.batchSize), MICRO: String(s.microBatch), TOKENS: job.tokens.toLocaleString('en-US'),
    BETAS: `${s.beta1}, ${s.beta2}`, EPS: String(s.eps), WD: String(s.weightDecay), LR: String(s.lr), WARMUP: String(s.warmup), DECAY: s.decay,
    MINLR: String(s.minLrRatio), CLIP: s.maxGradNorm > 0 ? String(s.maxGradNorm) : '(off)', SAVE: String(s.saveEvery),
    FINAL: job.final === 'best' ? 'checkpoint of the best validation loss' : 'last checkpoint',
    RESULT: job.recipe.params === 'lora' ? 'a PEFT adapter in RESULT (--merge: RESULT/merged)' : 'the model in RESULT/model',
    DROPOUT: job.lora && job.lora.dropout > 0 ? '\nLoRA dropout masks come from torch\'s RNG (seeded per step and process), not from shorten\'s: with dropout the\nlosses follow the same distribution as shorten\'s run, not the same numbers.\n' : '',
  };
  return asset('README.md').replace(/@@([A-Z]+)@@/g, (_m, k: string) => fill[k] ?? `@@${k}@@`);
}

interface JobContent {
  method: TrainLog['method'];
  recipe: Recipe;
  model: string;
  plan: { model: LlamaModel; settings: TrainSettings; header: Omit<TrainLog, 'steps'> };
  final: 'best' | 'last';
  lora?: JobSpec['lora'];
  /** write the training rows and return, per (step, row), the row index */
  rows(train: ShardWriter): BigInt64Array;
  valRows: { ids: ArrayLike<number>; labels?: ArrayLike<number> }[];
  withLabels: boolean;
  extra?(dir: string): void;
}

/** Write the job folder atomically (a staging folder renamed into place). */
function writeJob(e: EmitOptions, c: JobContent): EmitResult {
  let job: JobSpec | null = null;
  writeFolderAtomically(e.dir, e.force ?? false, (tmp) => {
    fs.mkdirSync(path.join(tmp, 'data'));
    const modelFiles = copyModel(c.model, path.join(tmp, 'model'));
    const train = new ShardWriter(tmp, 'train', c.withLabels, e.shardTokens);
    const order = c.rows(train);
    const trainFiles = train.finish();
    const s = c.plan.settings;
    writeSafetensors(path.join(tmp, 'data', 'order.safetensors'), [['rows', { dtype: 'I64', shape: [s.steps, s.batchSize], data: order }]]);
    let valFiles: string[] | null = null;
    if (c.valRows.length) {
      const val = new ShardWriter(tmp, 'val', c.withLabels, Number.MAX_SAFE_INTEGER);
      for (const r of c.valRows) val.add(r.ids, r.labels);
      valFiles = val.finish();
    }
    c.extra?.(tmp);
    job = {
      format: JOB_FORMAT, method: c.method, recipe: c.recipe, source_model: path.resolve(c.model), settings: s, final: c.final,
      header: c.plan.header, model: jobArch(c.plan.model), ...(c.lora ? { lora: c.lora } : {}),
      files: { model: modelFiles, train: trainFiles, val: valFiles, order: 'data/order.safetensors' }, rows: train.rows, tokens: train.tokens,
    };
    fs.writeFileSync(path.join(tmp, JOB_FILE), JSON.stringify(job, null, 1) + '\n');
    fs.writeFileSync(path.join(tmp, 'train.py'), jobScript(job), { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'launch.sh'), asset('launch.sh'), { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'README.md'), jobReadme(job, e.dir));
  });
  return { dir: e.dir, job: job! };
}

/** Refuse a job folder that overlaps an input, or an existing one we may not replace. */
function checkJobDir(e: EmitOptions, inputs: readonly (string | undefined)[]): void {
  guardOutput(e.dir, inputs, '--emit');
  if (fs.existsSync(e.dir) && !e.force) throw new UserError(`--emit ${e.dir} exists (use --force to replace it)`);
  checkReplaceable(e.dir, '--emit');
}

export function emitCptJob(o: CptOptions, e: EmitOptions): EmitResult {
  const inputs = cptInputs(o);
  checkJobDir(e, inputs);
  const plan = planCpt(o);
  try {
    return writeJob(e, {
      method: 'cpt', recipe: { params: 'full', loss: 'lm' }, model: o.model, plan, final: o.final ?? 'best', withLabels: false,
      // the packed sequences in the order our trainer draws them (shuffle buffer included)
      rows(train) {
        const n = plan.settings.steps * plan.settings.batchSize;
        const order = new BigInt64Array(n);
        for (let i = 0; i < n; i++) order[i] = BigInt(train.add(plan.packer.next()));
        return order;
      },
      valRows: plan.valRows.map((ids) => ({ ids })),
    });
  } finally {
    plan.reader.close();
  }
}

export function emitLoraJob(o: LoraOptions, e: EmitOptions): EmitResult {
  const inputs = loraInputs(o);
  checkJobDir(e, inputs);
  const plan = planLora(o);
  const index = new Map<Example, number>();
  return writeJob(e, {
    method: plan.header.method, recipe: { params: 'lora', loss: 'lm' }, model: o.model, plan, final: o.final ?? 'best', withLabels: true,
    lora: { r: plan.lora.r, alpha: plan.lora.alpha, dropout: plan.lora.dropout, targets: plan.lora.targets.map((t) => PEFT_MODULES[t].target) },
    // every training example once, and the seeded per-epoch permutation as row indices
    rows(train) {
      for (const ex of plan.trainEx) index.set(ex, train.add(ex.ids, ex.labels));
      const n = plan.settings.steps * plan.settings.batchSize;
      const order = new BigInt64Array(n);
      for (let i = 0; i < n; i++) order[i] = BigInt(index.get(plan.stream.next())!);
      return order;
    },
    valRows: plan.valEx.map((ex) => ({ ids: ex.ids, labels: ex.labels })),
    extra: (dir) => writeSafetensors(path.join(dir, 'adapter_init.safetensors'), adapterTensors(plan.adapters)),
  });
}
