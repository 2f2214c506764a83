/**
 * `shorten train lora`: LoRA on a (pruned) model, the Shortened LLaMA / LLM-Pruner recipe by
 * default: r 8, alpha 16, dropout 0.05 on q, k, v, o, gate, up, down; Alpaca prompts with the loss
 * on responses, cutoff 256; 2 epochs, lr 1e-4, batch 64 (micro-batches of 4), 100 warmup steps,
 * linear decay, AdamW (0.9, 0.999), clip 1.0. Base weights stay frozen: backward computes no
 * weight gradient for them, only the input gradients that flow through to the adapters.
 *
 * Output: <out>/adapter_config.json + adapter_model.safetensors (PEFT), <out>/merged/ with
 * --merge, <out>/train-log.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspectModel, loadModel, saveModel } from '../io/model-folder.js';
import { preflight, availableBytes, totalBytes, type MemoryEstimate } from '../util/memory.js';
import { loraStepMemory } from '../model/memory.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { LlamaRunner, type Grads, type GradOptions } from '../model/llama.js';
import { backendWithThreads } from '../engine/select.js';
import { Replicas, replicaWorkers, shareWeights } from './replicas.js';
import { checkpointedLoraStep } from '../model/checkpointed.js';
import { LORA_TARGETS, type LoraTarget, type LoraAdapters } from '../model/lora.js';
import type { LlamaModel } from '../model/weights.js';
import { UserError } from '../util/errors.js';
import { type Param, param, accumulateGrad } from './adamw.js';
import { collate, type Batch, type Example } from './batch.js';
import { readPromptRecords, tokenizeRecord, splitRecords, ExampleStream, type ExamplePosition, type ChatFormat } from './alpaca.js';
import { resolveChatTemplate, templateTokens } from '../io/chat-template.js';
import { initLora, adapterTensors, adapterConfig, writeAdapterFiles, mergeLora, peftKey, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type LoraSettings } from './peft.js';
import { train, loadParams, methodSettings, type TrainTask, type MethodOptions, type TrainSettings, type TrainLog } from './trainer.js';
import { checkOutput, prepareOutput, completedLog, writeLog, publishFiles, CKPT_DIR, LOG_FILE, type FinalLog } from './run-folder.js';
import type { Decay } from './schedule.js';

export interface LoraOptions extends MethodOptions {
  model: string;
  data: string;
  out: string;
  /** tokenizer folder (default: the model folder) */
  tokenizer?: string;
  r?: number;
  alpha?: number;
  dropout?: number;
  targets?: LoraTarget[];
  cutoff?: number;
  trainOnInputs?: boolean;
  /** append EOS to each example (default true) */
  eos?: boolean;
  /** held-out records for validation (default 5%, at most 2000) */
  valSize?: number;
  /** also write the merged model to <out>/merged */
  merge?: boolean;
  /** chat template for instruction records: preset or file, 'none' for Alpaca's prompt (default: the model's own, if any) */
  chatTemplate?: string;
  method?: 'lora' | 'cpt+lora' | 'kd+lora';
  /** recompute block activations in the backward (default: only when keeping them would not fit) */
  gradientCheckpointing?: boolean;
}

export interface TrainRunResult {
  out: string;
  log: FinalLog;
  seconds: number;
  stopped: boolean;
}

/** Mean NLL of examples run in micro-batches (no dropout). */
async function meanNll(run: LlamaRunner, batches: Batch[]): Promise<number | null> {
  let sum = 0, count = 0;
  for (const b of batches) {
    const r = await run.forward(b.ids, b.B, b.T, { targets: b.targets });
    if (r.count) { sum += r.loss! * r.count; count += r.count; }
  }
  return count ? sum / count : null;
}

/** What a LoRA run trains on and how: everything before the first step (shared with --engine torch). */
export interface LoraPlan {
  model: LlamaModel;
  lora: LoraSettings;
  trainEx: Example[];
  valEx: Example[];
  /** the training examples in the order the run consumes them */
  stream: ExampleStream;
  /** the fresh adapters (PEFT init from the seed) */
  adapters: LoraAdapters;
  settings: TrainSettings;
  fingerprint: Record<string, unknown>;
  header: Omit<TrainLog, 'steps'>;
  baseModel: string;
  /** the method the result stands for (cpt+lora on a continued-pretrained model) */
  derived: 'lora' | 'cpt+lora' | 'kd+lora';
  /** block activations recomputed in the backward (model/checkpointed.ts) */
  checkpointing: boolean;
  /** the step's estimated peak memory (the preflight's) */
  memory: MemoryEstimate;
}

/** Frozen base: no weight, embedding, norm or head gradients; only what reaches the adapters. */
const FROZEN_BASE: GradOptions = { blocks: false, embed: false, norm: false, lmHead: false };

/** The inputs a LoRA run reads (outputs must not overlap them). */
export function loraInputs(o: LoraOptions): (string | undefined)[] {
  return [o.model, o.tokenizer, o.data];
}

/** Load the model and tokenizer, tokenize and split the records, initialise adapters, settle the settings. */
export function planLora(o: LoraOptions): LoraPlan {
  const lora: LoraSettings = { r: o.r ?? 8, alpha: o.alpha ?? 16, dropout: o.dropout ?? 0.05, targets: o.targets ?? [...LORA_TARGETS] };
  const seed = o.seed ?? 42;
  const cutoff = o.cutoff ?? 256;
  if (cutoff < 2) throw new UserError('--cutoff must be at least 2');
  const shape = inspectModel(o.model);
  const micro = { B: o.microBatch ?? 4, T: cutoff };
  const checkpointing = o.gradientCheckpointing ?? totalBytes(loraStepMemory(shape.config, shape.weightBytes, micro, lora.r, lora.targets)) > availableBytes();
  const memory = loraStepMemory(shape.config, shape.weightBytes, micro, lora.r, lora.targets, checkpointing);
  preflight('train lora', memory);
  const model = loadModel(o.model);
  const tok = loadTokenizer(o.tokenizer ?? o.model);

  // data: records -> seeded train/validation split -> tokens with response-only labels
  const tokDir = o.tokenizer ?? o.model;
  const template = resolveChatTemplate(tokDir, o.chatTemplate);
  const chat: ChatFormat | undefined = template ? { template, ...templateTokens(tokDir, tok) } : undefined;
  const records = readPromptRecords(o.data, chat);
  const valSize = o.valSize ?? (records.length >= 40 ? Math.min(2000, Math.floor(records.length * 0.05)) : 0);
  const split = splitRecords(records, valSize, seed);
  const toEx = (r: (typeof records)[number]): Example => tokenizeRecord(r, tok, cutoff, o.trainOnInputs ?? false, o.eos ?? true);
  // Examples whose response lies entirely past the cutoff carry no loss: leave them out.
  const trains = (e: Example) => e.labels.slice(1).some((l) => l !== -100);
  const allTrain = split.train.map(toEx), allVal = split.val.map(toEx);
  const trainEx = allTrain.filter(trains), valEx = allVal.filter(trains);
  const dropped = allTrain.length - trainEx.length + allVal.length - valEx.length;
  if (trainEx.length === 0) throw new UserError(`no training example has response tokens within --cutoff ${cutoff}`);
  const check = new LlamaRunner(model);
  for (const e of [...trainEx, ...valEx]) check.checkIds(Int32Array.from(e.ids));
  const microBatch = o.microBatch ?? 4, batchSize = o.batchSize ?? 64;
  const stream = new ExampleStream(trainEx, seed);

  // adapters: PEFT's init; their A/B arrays are the trained parameters themselves
  const adapters = initLora(model, lora, seed);
  const epochs = o.epochs ?? 2;
  const steps = o.maxSteps ?? Math.max(1, Math.floor((epochs * trainEx.length) / batchSize));
  // the paper's LoRA recipe: 100 warmup steps, linear decay, AdamW without weight decay
  const settings = methodSettings(o, { steps, batchSize, microBatch, seed }, { warmup: 100, decay: 'linear', minLrRatio: 0, beta2: 0.999, weightDecay: 0 });
  const baseModel = path.resolve(o.model);
  const fingerprint = { method: 'lora', model: baseModel, data: path.resolve(o.data), lora, cutoff, trainOnInputs: o.trainOnInputs ?? false, eos: o.eos ?? true, valSize, trainRecords: trainEx.length, ...(template ? { chatTemplate: template.template } : {}) };
  // LoRA on a continued-pretrained model is the paper's CPT⇒LoRA (on a distilled one, KD⇒LoRA)
  const source = sourceMethod(o.model);
  const derived = source === 'cpt' ? 'cpt+lora' : source === 'kd' ? 'kd+lora' : 'lora';
  const method = o.method ?? derived;
  const label = o.label ?? `${path.basename(path.resolve(o.model))}-${method}`;
  const header = {
    kind: 'train' as const, label, method, model: baseModel,
    settings: { ...settings, lora, cutoff, gradientCheckpointing: checkpointing, data: path.resolve(o.data), prompts: template ? `chat template (${template.source})` : 'alpaca', trainRecords: trainEx.length, valRecords: valEx.length, droppedPastCutoff: dropped, epochs: o.maxSteps ? undefined : epochs },
  };
  return { model, lora, trainEx, valEx, stream, adapters, settings, fingerprint, header, baseModel, derived, checkpointing, memory };
}

export async function trainLora(o: LoraOptions): Promise<TrainRunResult> {
  const out = o.out;
  if (o.resume) {
    const done = completedLog(out);
    if (done) return { out, log: done, seconds: done.seconds ?? 0, stopped: false };
  }
  const inputs = loraInputs(o);
  checkOutput(out, o, inputs);
  const { model, lora, valEx, stream, adapters, settings, fingerprint, header, baseModel, derived, checkpointing, memory } = planLora(o);
  // small models: the micro-batches of a step run side by side on replicas (see replicas.ts)
  const adapterElements = adapterTensors(adapters).reduce((n, [, t]) => n + t.data.length, 0);
  const workers = checkpointing ? 0 : await replicaWorkers(model.config, Math.ceil(settings.batchSize / settings.microBatch), memory, adapterElements);
  if (workers > 0) shareWeights(model, [], adapters);
  const run = new LlamaRunner(model, workers > 0 ? backendWithThreads(1) : undefined);
  const valRun = workers > 0 ? new LlamaRunner(model) : run;
  const valBatches: Batch[] = [];
  for (let i = 0; i < valEx.length; i += settings.microBatch) valBatches.push(collate(valEx.slice(i, i + settings.microBatch)));
  run.adapters = adapters;
  valRun.adapters = adapters;
  run.recycleKept();
  const params: Param[] = adapterTensors(adapters).map(([name, t]) => param(name, t.shape, t.data as Float32Array, true));
  const byName = new Map(params.map((p) => [p.name, p]));
  const addGrads = (perBlock: Grads['lora'], count: number) => perBlock.forEach((block, li) => {
    for (const [t, lg] of Object.entries(block ?? {}) as [LoraTarget, { A: Float32Array; B: Float32Array }][]) {
      accumulateGrad(byName.get(peftKey(li, t, 'A'))!, lg.A, count);
      accumulateGrad(byName.get(peftKey(li, t, 'B'))!, lg.B, count);
    }
  });
  const replicas = workers > 0 ? await Replicas.start(workers, { model, adapters, grads: FROZEN_BASE }) : undefined;
  const task: TrainTask = {
    params,
    nextBatch: (n) => collate(Array.from({ length: n }, () => stream.next())),
    dataState: () => stream.state(),
    restoreData: (s) => stream.restore(s as ExamplePosition),
    async forwardBackward(b, rng) {
      let loss: number, count: number, perBlock: Grads['lora'];
      if (checkpointing) {
        ({ loss, count, lora: perBlock } = await checkpointedLoraStep(run, b.ids, b.B, b.T, { targets: b.targets, rng }));
      } else {
        // the head's gradient from the forward's head pass: the frozen head needs no other
        const res = await run.forward(b.ids, b.B, b.T, { targets: b.targets, keep: true, rng, headGrad: true });
        loss = res.loss!; count = res.count!;
        // frozen base: no weight, embedding, norm or head gradients; only what reaches the adapters
        perBlock = count === 0 ? [] : (await run.backward(res, FROZEN_BASE)).lora;
      }
      run.reclaim(); // the step's activations are dead now (LoRA gradients are never recycled)
      if (count === 0) return { sum: 0, count: 0 };
      addGrads(perBlock, count);
      return { sum: loss * count, count };
    },
    ...(replicas ? { replicas, addGrads: (g: Grads, count: number) => addGrads(g.lora, count) } : {}),
    validate: () => meanNll(valRun, valBatches),
    afterUpdate: () => {},
    weightsFile: ADAPTER_WEIGHTS,
    // with its adapter_config.json a checkpoint folder is itself a loadable PEFT adapter
    writeExtras: (dir) => fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(adapterConfig(lora, baseModel), null, 2) + '\n'),
    fingerprint,
  };
  const label = header.label;
  prepareOutput(out, o, inputs);
  const r = await train(task, settings, { label: `lora ${label}`, ckptRoot: path.join(out, CKPT_DIR), resume: o.resume ?? false, logFile: path.join(out, LOG_FILE), logHeader: header, stopAfter: o.stopAfter, onNan: o.onNan })
    .finally(() => replicas?.close());
  if (r.stopped) return { out, log: { ...header, steps: r.steps }, seconds: r.seconds, stopped: true };

  // result: the best (or last) adapter, in PEFT's layout, then the merged model if asked
  const chosen = (o.final ?? 'best') === 'best' && r.bestDir ? r.bestDir : r.latestDir!;
  loadParams(params, chosen, ADAPTER_WEIGHTS);
  publishFiles(out, (dir) => writeAdapterFiles(dir, adapters, lora, baseModel));
  if (o.merge) {
    const merged = await mergeLora(model, adapters);
    saveModel(merged, path.join(out, 'merged'), { sourceDir: o.model, force: true, extraFiles: provenance(o.model, { method: derived, lora_adapter: path.resolve(out), checkpoint: path.basename(chosen) }) });
  }
  const log: FinalLog = { ...header, steps: r.steps, complete: true, seconds: r.seconds };
  writeLog(out, log);
  if (!o.keepCheckpoints) fs.rmSync(path.join(out, CKPT_DIR), { recursive: true, force: true });
  return { out, log, seconds: r.seconds, stopped: false };
}

/** The retraining recorded in a model folder's training.json, if any. */
export function sourceMethod(dir: string): string | undefined {
  try {
    const m = (JSON.parse(fs.readFileSync(path.join(dir, 'training.json'), 'utf8')) as { method?: unknown }).method;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * training.json ({source_model, method, ...}: read by eval for labels) and a copy of the
 * source's pruning.json, so a retrained model still says which blocks it lost.
 */
export function provenance(sourceDir: string, info: Record<string, unknown>): Record<string, unknown> {
  const files: Record<string, unknown> = { 'training.json': { source_model: path.resolve(sourceDir), ...info } };
  const pruning = path.join(sourceDir, 'pruning.json');
  if (fs.existsSync(pruning)) files['pruning.json'] = JSON.parse(fs.readFileSync(pruning, 'utf8')) as unknown;
  return files;
}
