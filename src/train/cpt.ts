/**
 * `shorten train cpt`: continued pretraining of every weight on raw text, as Shortened LLaMA
 * retrains aggressively pruned models: documents packed into sequences of --seq-len and streamed,
 * AdamW (0.9, 0.95) with weight decay 0.1 on matrices (not on norms or biases), warmup then cosine
 * decay, gradient clipping at 1.0.
 *
 * bf16/f16 models are trained on f32 master copies (the runner then computes with f32 weights);
 * checkpoints hold the f32 masters, so a resume is exact; the result is saved in the model's
 * original dtype, rounded once, at <out>/model.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspectModel, loadModel, saveModel, configJson, copyTokenizerFiles } from '../io/model-folder.js';
import { preflight, type MemoryEstimate } from '../util/memory.js';
import { cptStepMemory } from '../model/memory.js';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer.js';
import { fromF32, type Tensor } from '../engine/tensor.js';
import type { DType } from '../engine/dtype.js';
import { LlamaRunner, type Grads, type GradOptions } from '../model/llama.js';
import { countParams, type LlamaConfig } from '../io/config.js';
import { backendWithThreads } from '../engine/select.js';
import { Replicas, replicaWorkers, shareWeights } from './replicas.js';
import { BLOCK_WEIGHT_NAMES, BLOCK_BIAS_NAMES, hfBlockName, type LlamaModel, type BlockWeights, type BlockWeightName, type BlockBiasName } from '../model/weights.js';
import { defaultDocuments, DEFAULT_CORPUS_NAME } from '../data/default-corpus.js';
import { UserError } from '../util/errors.js';
import { type Param, param, accumulateGrad } from './adamw.js';
import { lmBatch, type Batch } from './batch.js';
import { DocReader, TextPacker, skipDocs, countSequences, packedRows, type DocSource, type DocCursor, type PackState } from './packing.js';
import { train, loadParams, masterCopy, methodSettings, type TrainTask, type MethodOptions, type TrainSettings, type TrainLog } from './trainer.js';
import { checkOutput, prepareOutput, completedLog, writeLog, CKPT_DIR, LOG_FILE, type FinalLog } from './run-folder.js';
import { provenance, type TrainRunResult } from './lora.js';
import type { Decay } from './schedule.js';

export interface CptOptions extends MethodOptions {
  model: string;
  /** text (one document a line) or jsonl {"text"} files; default: the embedded default corpus, train split */
  data?: string[];
  out: string;
  tokenizer?: string;
  /** validation text; default: Brown validation (without --data) or the first --val-docs documents */
  valData?: string;
  valDocs?: number;
  /** validation sequences at most */
  valSeqs?: number;
  seqLen?: number;
  eos?: boolean;
  shuffleBuffer?: number;
  method?: 'cpt';
}

/** Trainable f32 masters for every parameter, installed into the model in place of its tensors. */
export function masterParams(model: LlamaModel): { params: Param[]; dtypes: Map<string, DType> } {
  const params: Param[] = [];
  const dtypes = new Map<string, DType>();
  const master = (name: string, t: Tensor, decay: boolean): Tensor => {
    const value = masterCopy(t);
    params.push(param(name, t.shape, value, decay));
    dtypes.set(name, t.dtype);
    return { dtype: 'f32', shape: t.shape, data: value };
  };
  const w = model.weights;
  const tied = model.config.tieWordEmbeddings;
  const embed = master('model.embed_tokens.weight', w.embed, true);
  const blocks = w.blocks.map((b, li) => {
    const nb: Partial<Record<BlockWeightName | BlockBiasName, Tensor>> = {};
    for (const n of [...BLOCK_WEIGHT_NAMES, ...BLOCK_BIAS_NAMES]) {
      const t = b[n];
      if (t) nb[n] = master(hfBlockName(li, n), t, t.shape.length === 2);
    }
    return nb as BlockWeights;
  });
  const norm = master('model.norm.weight', w.norm, false);
  const lmHead = tied ? embed : master('lm_head.weight', w.lmHead, true);
  model.weights = { embed, blocks, norm, lmHead };
  return { params, dtypes };
}

/** The trained model in its original dtypes (16-bit weights rounded to nearest even). */
export function exportModel(model: LlamaModel, params: Param[], dtypes: Map<string, DType>): LlamaModel {
  const t = new Map(params.map((p) => [p.name, fromF32(Float32Array.from(p.value), p.shape, dtypes.get(p.name)!)]));
  const embed = t.get('model.embed_tokens.weight')!;
  const blocks = model.weights.blocks.map((b, li) => {
    const nb: Partial<Record<BlockWeightName | BlockBiasName, Tensor>> = {};
    for (const n of [...BLOCK_WEIGHT_NAMES, ...BLOCK_BIAS_NAMES]) if (b[n]) nb[n] = t.get(hfBlockName(li, n))!;
    return nb as BlockWeights;
  });
  return { ...model, weights: { embed, blocks, norm: t.get('model.norm.weight')!, lmHead: model.config.tieWordEmbeddings ? embed : t.get('lm_head.weight')! } };
}

/** The data side of CPT (also KD's): packed, streamed training text and held-out validation rows. */
export interface CptData {
  reader: DocReader;
  packer: TextPacker;
  sources: DocSource[];
  /** the validation rows, and them in micro-batches */
  valRows: Int32Array[];
  valBatches: Batch[];
  valSeqs: number;
  valSource: string;
  steps: number;
  epochs: number;
  seqLen: number;
  eos: boolean;
  seed: number;
  microBatch: number;
  batchSize: number;
}

export function cptData(o: CptOptions, tok: TextTokenizer): CptData {
  const seqLen = o.seqLen ?? 256, eos = o.eos ?? true, seed = o.seed ?? 42;
  const microBatch = o.microBatch ?? 4, batchSize = o.batchSize ?? 32;
  const valSeqs = o.valSeqs ?? 32;

  // data: streamed training text; validation from its own source or held-out leading documents
  const files = o.data ?? [];
  const sources: DocSource[] = files.length ? files.map((file) => ({ file: path.resolve(file) })) : [{ name: `${DEFAULT_CORPUS_NAME}:train`, docs: defaultDocuments('train') }];
  const reader = new DocReader(sources);
  let start: DocCursor = { source: 0, pos: 0 };
  let valRows: Int32Array[] = [];
  let valSource = 'none';
  if (o.valData) {
    const valReader = new DocReader([{ file: o.valData }]);
    valRows = packedRows(valReader, tok, seqLen, valSeqs, { eos });
    valReader.close();
    valSource = path.resolve(o.valData);
  } else if (!files.length) {
    valRows = packedRows(new DocReader([{ name: 'brown:validation', docs: defaultDocuments('validation') }]), tok, seqLen, valSeqs, { eos });
    valSource = 'brown:validation';
  } else if ((o.valDocs ?? 50) > 0) {
    const held = skipDocs(reader, o.valDocs ?? 50);
    valRows = packedRows(reader, tok, seqLen, valSeqs, { eos, end: held.cursor });
    start = held.cursor;
    valSource = `first ${held.docs} documents of ${reader.name(0)}`;
  }
  if (o.valData || !files.length || (o.valDocs ?? 50) > 0) {
    if (valRows.length === 0) throw new UserError(`validation text is shorter than one sequence of ${seqLen} tokens (use --val-docs, --val-data or a smaller --seq-len)`);
  }
  const packer = new TextPacker(reader, tok, { seqLen, eos, shuffleBuffer: o.shuffleBuffer ?? 64, seed, start });
  const epochs = o.epochs ?? 1;
  let steps = o.maxSteps;
  if (steps === undefined) {
    const seqs = countSequences(reader, tok, seqLen, { eos, start });
    if (seqs === 0) throw new UserError(`the training text is shorter than one sequence of ${seqLen} tokens`);
    steps = Math.max(1, Math.floor((epochs * seqs) / batchSize));
  }
  const valBatches: Batch[] = [];
  for (let i = 0; i < valRows.length; i += microBatch) valBatches.push(lmBatch(valRows.slice(i, i + microBatch)));
  return { reader, packer, sources, valRows, valBatches, valSeqs: valRows.length, valSource, steps, epochs, seqLen, eos, seed, microBatch, batchSize };
}

/** Mean NLL of the validation batches, or null without any. */
export async function validationNll(run: LlamaRunner, batches: Batch[]): Promise<number | null> {
  if (!batches.length) return null;
  let sum = 0, count = 0;
  for (const b of batches) {
    const r = await run.forward(b.ids, b.B, b.T, { targets: b.targets });
    sum += r.loss! * r.count!;
    count += r.count!;
  }
  return sum / count;
}

/** A trainer's data from packed text (CPT, KD): batches of packed rows, and the packer's resumable position. */
export function packedData(packer: TextPacker): Pick<TrainTask, 'nextBatch' | 'dataState' | 'restoreData'> {
  return {
    nextBatch: (n) => lmBatch(Array.from({ length: n }, () => packer.next())),
    dataState: () => packer.state(),
    restoreData: (s) => packer.restore(s as PackState),
  };
}

/** Add a micro-batch's full-model gradients (of its mean loss over `count` targets) into the masters. */
export function accumulateModelGrads(byName: Map<string, Param>, g: Grads, count: number): void {
  g.blocks.forEach((bg, li) => {
    for (const [n, grad] of Object.entries(bg ?? {}) as [BlockWeightName | BlockBiasName, Float32Array][]) accumulateGrad(byName.get(hfBlockName(li, n))!, grad, count);
  });
  accumulateGrad(byName.get('model.embed_tokens.weight')!, g.embed!, count); // includes the tied head's gradient
  accumulateGrad(byName.get('model.norm.weight')!, g.norm!, count);
  if (g.lmHead) accumulateGrad(byName.get('lm_head.weight')!, g.lmHead, count);
}

/** CPT's optimizer defaults: AdamW (0.9, 0.95), weight decay 0.1, cosine to 10%. */
export function cptSettings(o: MethodOptions, d: CptData): TrainSettings {
  return methodSettings(o, { steps: d.steps, batchSize: d.batchSize, microBatch: d.microBatch, seed: d.seed },
    { warmup: Math.min(100, Math.floor(d.steps / 10)), decay: 'cosine', minLrRatio: 0.1, beta2: 0.95, weightDecay: 0.1 });
}

/** What a checkpoint folder needs besides the weights to be a loadable model: config.json (f32) and the tokenizer. */
export function modelCheckpointExtras(model: LlamaModel, tokenizerDir: string): (dir: string) => void {
  const srcConfig = configJson(model);
  return (dir) => {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...srcConfig, torch_dtype: 'float32' }, null, 2) + '\n');
    copyTokenizerFiles(tokenizerDir, dir);
  };
}

/** What a CPT run trains on and how: everything before the first step (shared with --engine torch). */
export interface CptPlan extends CptData {
  model: LlamaModel;
  settings: TrainSettings;
  fingerprint: Record<string, unknown>;
  header: Omit<TrainLog, 'steps'>;
}

/** The inputs a CPT run reads (outputs must not overlap them). */
export function cptInputs(o: CptOptions): (string | undefined)[] {
  return [o.model, o.tokenizer, o.valData, ...(o.data ?? [])];
}

/** Check the memory, load the model and tokenizer, lay out the data stream and validation rows, settle the settings. */
/** A CPT step's peak memory on one replica. */
function cptMemory(cfg: LlamaConfig, s: { batchSize: number; microBatch: number; seqLen: number }): MemoryEstimate {
  return cptStepMemory(cfg, { B: Math.min(s.microBatch, s.batchSize), T: s.seqLen }, s.batchSize > s.microBatch);
}

/** Every weight gets a gradient. */
const ALL_GRADS: GradOptions = { blocks: true, embed: true, norm: true, lmHead: true };

export function planCpt(o: CptOptions): CptPlan {
  const microBatch = o.microBatch ?? 4, batchSize = o.batchSize ?? 32;
  preflight('train cpt', cptMemory(inspectModel(o.model).config, { batchSize, microBatch, seqLen: o.seqLen ?? 256 }));
  const model = loadModel(o.model);
  const d = cptData(o, loadTokenizer(o.tokenizer ?? o.model));
  const settings = cptSettings(o, d);
  const data = d.sources.map((_, i) => d.reader.name(i));
  const fingerprint = { method: 'cpt', model: path.resolve(o.model), data, val: d.valSource, seqLen: d.seqLen, eos: d.eos, shuffleBuffer: o.shuffleBuffer ?? 64 };
  const label = o.label ?? `${path.basename(path.resolve(o.model))}-cpt`;
  const header = {
    kind: 'train' as const, label, method: 'cpt' as const, model: path.resolve(o.model),
    settings: { ...settings, seqLen: d.seqLen, data, validation: d.valSource, valSeqs: d.valSeqs, epochs: o.maxSteps ? undefined : d.epochs },
  };
  return { ...d, model, settings, fingerprint, header };
}

export async function trainCpt(o: CptOptions): Promise<TrainRunResult> {
  const out = o.out;
  if (o.resume) {
    const done = completedLog(out);
    if (done) return { out, log: done, seconds: done.seconds ?? 0, stopped: false };
  }
  const inputs = cptInputs(o);
  checkOutput(out, o, inputs);
  const { model, reader, packer, valBatches, settings, fingerprint, header, seqLen } = planCpt(o);
  const label = header.label;

  const { params, dtypes } = masterParams(model);
  // small models: the micro-batches of a step run side by side on replicas (see replicas.ts)
  const microBatches = Math.ceil(settings.batchSize / settings.microBatch);
  const workers = await replicaWorkers(model.config, microBatches, cptMemory(model.config, { ...settings, seqLen }), countParams(model.config));
  if (workers > 0) shareWeights(model, params);
  const byName = new Map(params.map((p) => [p.name, p]));
  const run = new LlamaRunner(model, workers > 0 ? backendWithThreads(1) : undefined);
  const valRun = workers > 0 ? new LlamaRunner(model) : run;
  const replicas = workers > 0 ? await Replicas.start(workers, { model, adapters: null, grads: ALL_GRADS }) : undefined;
  run.recycleKept(); // each micro-batch's activations are dead once its gradients are added
  const task: TrainTask = {
    params,
    ...packedData(packer),
    async forwardBackward(b, rng) {
      const res = await run.forward(b.ids, b.B, b.T, { targets: b.targets, keep: true, rng });
      const count = res.count!, loss = res.loss!;
      if (count === 0) { run.reclaim(); return { sum: 0, count: 0 }; }
      accumulateModelGrads(byName, await run.backward(res, ALL_GRADS), count);
      run.reclaim();
      return { sum: loss * count, count };
    },
    ...(replicas ? { replicas, addGrads: (g: Grads, count: number) => accumulateModelGrads(byName, g, count) } : {}),
    validate: () => validationNll(valRun, valBatches),
    afterUpdate: () => { run.invalidate(); valRun.invalidate(); },
    weightsFile: 'model.safetensors',
    // with config.json (f32) and the tokenizer a checkpoint folder is itself a loadable model
    writeExtras: modelCheckpointExtras(model, o.model),
    fingerprint,
  };
  prepareOutput(out, o, inputs);
  const r = await train(task, settings, { label: `cpt ${label}`, ckptRoot: path.join(out, CKPT_DIR), resume: o.resume ?? false, logFile: path.join(out, LOG_FILE), logHeader: header, stopAfter: o.stopAfter, onNan: o.onNan })
    .finally(() => replicas?.close());
  reader.close();
  if (r.stopped) return { out, log: { ...header, steps: r.steps }, seconds: r.seconds, stopped: true };

  const chosen = (o.final ?? 'best') === 'best' && r.bestDir ? r.bestDir : r.latestDir!;
  loadParams(params, chosen, 'model.safetensors');
  saveModel(exportModel(model, params, dtypes), path.join(out, 'model'), {
    sourceDir: o.model, force: true, extraFiles: provenance(o.model, { method: 'cpt', checkpoint: path.basename(chosen), steps: r.steps.length }),
  });
  const log: FinalLog = { ...header, steps: r.steps, complete: true, seconds: r.seconds };
  writeLog(out, log);
  if (!o.keepCheckpoints) fs.rmSync(path.join(out, CKPT_DIR), { recursive: true, force: true });
  return { out, log, seconds: r.seconds, stopped: false };
}
