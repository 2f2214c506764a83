/**
 * `shorten train kd`: retraining a pruned model by knowledge distillation from the model it was
 * pruned from (as Minitron recovers depth-pruned models). The student learns the teacher's
 * next-token distribution (kd-loss.ts: KL at a temperature, optionally mixed with the plain LM
 * loss), optionally plus a hidden-state term: the mean squared error between each kept block's
 * output and the output of the teacher block it came from (pruning.json's kept_blocks).
 *
 * Everything else is CPT's: packed and streamed text, AdamW, schedule, validation (the student's
 * held-out NLL, so runs compare with CPT's), checkpoints and --resume. The student is every weight
 * (f32 masters, result in the model's dtype at <out>/model) or, with LoRA settings, adapters on the
 * frozen student (PEFT adapter in <out>, merged model at <out>/merged with --merge).
 *
 * The teacher runs forward only, in its stored precision, one block at a time (it keeps only the
 * residual stream and the block outputs the hidden term needs); its logits exist a chunk of rows
 * at a time, next to the student's, inside the loss.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, saveModel, inspectModel } from '../io/model-folder.js';
import { cptStepMemory, forwardMemory, loraStepMemory } from '../model/memory.js';
import { preflight } from '../util/memory.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { LlamaRunner, type Grads, type GradOptions } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import type { LoraTarget } from '../model/lora.js';
import * as wk from '../engine/wasm-kernels.js';
import { UserError } from '../util/errors.js';
import { param, accumulateGrad, type Param } from './adamw.js';
import type { Batch } from './batch.js';
import { kdLoss, kdSettings, type KdSettings, type LogitRows } from './kd-loss.js';
import { cptData, cptSettings, packedData, masterParams, exportModel, accumulateModelGrads, validationNll, modelCheckpointExtras, type CptOptions } from './cpt.js';
import { initLora, adapterTensors, adapterConfig, writeAdapterFiles, mergeLora, peftKey, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type LoraSettings } from './peft.js';
import { train, loadParams, type TrainTask } from './trainer.js';
import { checkOutput, prepareOutput, completedLog, writeLog, publishFiles, CKPT_DIR, LOG_FILE, type FinalLog } from './run-folder.js';
import { provenance, type TrainRunResult } from './lora.js';

export interface KdOptions extends Omit<CptOptions, 'method'> {
  /** the model the student was pruned from (never modified) */
  teacher: string;
  kd?: Partial<KdSettings>;
  /** train LoRA adapters on the frozen student instead of all of its weights */
  lora?: LoraSettings;
  /** LoRA student: also write the merged model to <out>/merged */
  merge?: boolean;
}

/**
 * Which teacher block each student block came from: pruning.json's kept_blocks, or the identity
 * for a student with the teacher's depth and no pruning.json. null when neither says.
 */
export function studentBlockMap(studentDir: string, studentLayers: number, teacherLayers: number): number[] | null {
  const file = path.join(studentDir, 'pruning.json');
  if (!fs.existsSync(file)) return studentLayers === teacherLayers ? [...Array(studentLayers).keys()] : null;
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new UserError(`${file}: not valid JSON`);
  }
  const kept = info['kept_blocks'];
  if (kept === undefined) return studentLayers === teacherLayers ? [...Array(studentLayers).keys()] : null;
  const before = info['num_hidden_layers_before'];
  if (before !== undefined && before !== teacherLayers) throw new UserError(`${file}: the student was pruned from a model with ${String(before)} blocks, but the teacher has ${teacherLayers}`);
  const ok = Array.isArray(kept) && kept.length === studentLayers &&
    kept.every((b, i) => Number.isInteger(b) && b >= 0 && b < teacherLayers && (i === 0 || b > (kept[i - 1] as number)));
  if (!ok) throw new UserError(`${file}: kept_blocks must list, in ascending order, the teacher block (of ${teacherLayers}) behind each of the student's ${studentLayers} blocks`);
  return kept as number[];
}

/** What distillation needs from a teacher for one batch: its logits, a chunk of rows at a time, and some block outputs. */
export interface TeacherModel {
  forward(ids: Int32Array, B: number, T: number, outputsOf: readonly number[]): Promise<{ logits: LogitRows; outputs: Map<number, Float32Array> }>;
}

/** A runner's LM head over final-normed states xn [N, H], as a source of logit rows. */
function headRows(run: LlamaRunner, xn: Float32Array): LogitRows {
  const H = run.config.hiddenSize, V = run.config.vocabSize;
  return (r0, n, out) => run.be.gemm({ a: xn.subarray(r0 * H, (r0 + n) * H), b: run.model.weights.lmHead, c: out.subarray(0, n * V), m: n, n: V, k: H, transB: true });
}

/** The teacher model: forward only, weights as stored, one block at a time. */
export class Teacher implements TeacherModel {
  readonly run: LlamaRunner;

  constructor(readonly model: LlamaModel) {
    this.run = new LlamaRunner(model);
  }

  /** Keeps only the residual stream, the block outputs asked for, and the final-normed states for the head. */
  async forward(ids: Int32Array, B: number, T: number, outputsOf: readonly number[]): Promise<{ logits: LogitRows; outputs: Map<number, Float32Array> }> {
    const want = new Set(outputsOf);
    const outputs = new Map<number, Float32Array>();
    let x = this.run.embed(ids);
    for (let li = 0; li < this.run.config.numLayers; li++) {
      x = (await this.run.block(li, x, B, T, 0, {})).x;
      if (want.has(li)) outputs.set(li, x);
    }
    return { logits: headRows(this.run, this.run.finalNorm(x, B * T).xn), outputs };
  }
}

export interface KdStep {
  /** sum over the counted positions of the whole loss (KD + LM + hidden terms) */
  sum: number;
  count: number;
  /** sums of KL, NLL and squared hidden-state error (per element of the hidden size, over blocks) */
  kl: number;
  nll: number;
  hidden: number;
  /** gradients of the mean loss (sum / count), shaped as LlamaRunner.backward's; null when not asked */
  grads: Grads | null;
}

/**
 * One micro-batch of distillation: the student's forward (activations kept), the teacher's, the
 * loss and, with `want`, the student's gradients: the KD head's dlogits into the final norm,
 * then each block's backward with the hidden term's gradient added at its output.
 * `blockMap[i]` is the teacher block behind student block i (needed only with a hidden weight).
 */
export async function kdForwardBackward(student: LlamaRunner, teacher: TeacherModel, b: Batch, s: KdSettings, blockMap: readonly number[] | null,
  want: GradOptions | null, rng?: () => number): Promise<KdStep> {
  const cfg = student.config, H = cfg.hiddenSize, V = cfg.vocabSize, N = b.B * b.T, L = cfg.numLayers;
  const useHidden = s.hiddenWeight > 0;
  if (useHidden && !blockMap) throw new Error('the hidden-state term needs the student-to-teacher block map');
  const res = await student.forward(b.ids, b.B, b.T, { targets: b.targets, keep: true, rng });
  const sv = res.saved!;
  const t = await teacher.forward(b.ids, b.B, b.T, useHidden ? blockMap! : []);
  // a block's output is the next block's saved input; the last block's is xFinal
  const outputOf = (bi: number) => (bi + 1 < L ? sv.acts[bi + 1]!.xIn : sv.xFinal);

  // the head: KD loss over chunks of rows, its dlogits straight into dxn and lm_head's gradient
  const tied = cfg.tieWordEmbeddings;
  const grads: Grads | null = want ? {
    embed: want.embed || (tied && want.lmHead) ? new Float32Array(V * H) : null, blocks: [],
    norm: want.norm ? new Float32Array(H) : null, lmHead: want.lmHead && !tied ? new Float32Array(V * H) : null, lora: [],
  } : null;
  const lmGrad = grads ? (tied ? (want!.lmHead ? grads.embed : null) : grads.lmHead) : null;
  const dxn = grads ? new Float32Array(N * H) : null;
  const W = student.model.weights.lmHead;
  const head = await kdLoss({ N, V, targets: b.targets, student: headRows(student, sv.xnF), teacher: t.logits }, s,
    dxn ? async (r0, n, g) => {
      await student.be.gemm({ a: g, b: W, c: dxn.subarray(r0 * H, (r0 + n) * H), m: n, n: H, k: V, accumulate: true });
      if (lmGrad) await student.be.gemm({ a: g, b: sv.xnF.subarray(r0 * H, (r0 + n) * H), c: lmGrad, m: V, n: H, k: n, transA: true, accumulate: true });
    } : undefined);
  const count = head.count;

  // the hidden term: weight / (L H) * sum over blocks of |student output - teacher output|^2, per counted position
  const hScale = s.hiddenWeight / (L * H);
  let hidden = 0;
  if (useHidden) {
    for (let bi = 0; bi < L; bi++) {
      const a = outputOf(bi), o = t.outputs.get(blockMap![bi]!)!;
      for (let r = 0; r < N; r++) {
        if (b.targets[r]! < 0) continue;
        for (let j = r * H; j < (r + 1) * H; j++) { const d = a[j]! - o[j]!; hidden += d * d; }
      }
    }
  }
  const sum = head.loss + hScale * hidden;
  if (!grads || count === 0) return { sum, count, kl: head.kl, nll: head.nll, hidden, grads };

  let dx: Float32Array = new Float32Array(N * H);
  wk.rmsnormBackward(dxn!, sv.xFinal, student.vec(student.model.weights.norm), sv.rstdF, dx, grads.norm, N, H);
  const gH = (2 * hScale) / count;
  for (let bi = L - 1; bi >= 0; bi--) {
    if (useHidden) {
      const a = outputOf(bi), o = t.outputs.get(blockMap![bi]!)!;
      for (let r = 0; r < N; r++) {
        if (b.targets[r]! < 0) continue;
        for (let j = r * H; j < (r + 1) * H; j++) dx[j]! += gH * (a[j]! - o[j]!);
      }
    }
    const r = await student.blockBackward(bi, sv.acts[bi]!, dx, b.B, b.T, want!.blocks ?? false);
    dx = r.dx;
    grads.blocks[bi] = r.grads;
    grads.lora[bi] = r.lora;
  }
  if (grads.embed) student.embedBackward(b.ids, dx, grads.embed);
  return { sum, count, kl: head.kl, nll: head.nll, hidden, grads };
}

/** The student's training step (all weights, or LoRA on the frozen student) beside the teacher's forward. */
function preflightKd(o: KdOptions): void {
  const st = inspectModel(o.model), te = inspectModel(o.teacher);
  const batchSize = o.batchSize ?? 32, micro = { B: Math.min(o.microBatch ?? 4, batchSize), T: o.seqLen ?? 256 };
  const student = o.lora ? loraStepMemory(st.config, st.weightBytes, micro, o.lora.r, o.lora.targets) : cptStepMemory(st.config, micro, batchSize > micro.B);
  const teacher = forwardMemory(te.config, te.weightBytes, micro, true);
  preflight('train kd', {
    parts: { ...student.parts, 'teacher weights': te.weightBytes, 'teacher forward': (teacher.parts['workspace'] ?? 0) + (teacher.parts['hidden states'] ?? 0) },
    lower: `--micro-batch or --seq-len${o.lora ? '' : ', or --lora'}`,
  });
}

export async function trainKd(o: KdOptions): Promise<TrainRunResult> {
  const out = o.out;
  if (o.resume) {
    const done = completedLog(out);
    if (done) return { out, log: done, seconds: done.seconds ?? 0, stopped: false };
  }
  const inputs = [o.model, o.teacher, o.tokenizer, o.valData, ...(o.data ?? [])];
  checkOutput(out, o, inputs);
  const kd = kdSettings(o.kd);
  preflightKd(o);
  const model = loadModel(o.model);
  const teacherModel = loadModel(o.teacher);
  const sc = model.config, tc = teacherModel.config;
  if (sc.vocabSize !== tc.vocabSize) throw new UserError(`the student's vocabulary (${sc.vocabSize}) differs from the teacher's (${tc.vocabSize}): distillation needs the same tokens`);
  const blockMap = studentBlockMap(o.model, sc.numLayers, tc.numLayers);
  if (kd.hiddenWeight > 0) {
    if (!blockMap) throw new UserError(`--kd-hidden needs ${path.join(o.model, 'pruning.json')} (kept_blocks) to pair the student's ${sc.numLayers} blocks with the teacher's ${tc.numLayers}`);
    if (sc.hiddenSize !== tc.hiddenSize) throw new UserError(`--kd-hidden: the student's hidden size (${sc.hiddenSize}) differs from the teacher's (${tc.hiddenSize})`);
  }
  const tok = loadTokenizer(o.tokenizer ?? o.model);
  const d = cptData(o, tok);
  const { reader, packer, sources, valBatches, valSource, seqLen, eos, epochs } = d;
  const settings = cptSettings(o, d);
  const teacher = new Teacher(teacherModel);
  const run = new LlamaRunner(model);

  // the student's parameters: every weight (f32 masters) or LoRA adapters on the frozen model
  let params: Param[];
  let accumulate: (g: Grads, count: number) => void;
  let want: GradOptions;
  const master = o.lora ? null : masterParams(model);
  if (master) {
    params = master.params;
    const byName = new Map(params.map((p) => [p.name, p]));
    accumulate = (g, count) => accumulateModelGrads(byName, g, count);
    want = { blocks: true, embed: true, norm: true, lmHead: true };
  } else {
    const adapters = initLora(model, o.lora!, d.seed);
    run.adapters = adapters;
    params = adapterTensors(adapters).map(([name, t]) => param(name, t.shape, t.data as Float32Array, true));
    const byName = new Map(params.map((p) => [p.name, p]));
    accumulate = (g, count) => g.lora.forEach((block, li) => {
      for (const [t, lg] of Object.entries(block ?? {}) as [LoraTarget, { A: Float32Array; B: Float32Array }][]) {
        accumulateGrad(byName.get(peftKey(li, t, 'A'))!, lg.A, count);
        accumulateGrad(byName.get(peftKey(li, t, 'B'))!, lg.B, count);
      }
    });
    want = { blocks: false, embed: false, norm: false, lmHead: false };
  }
  const student = o.lora ? 'lora' : 'full';
  const task: TrainTask = {
    params,
    ...packedData(packer),
    async forwardBackward(b, rng) {
      const r = await kdForwardBackward(run, teacher, b, kd, blockMap, want, rng);
      if (r.count === 0) return { sum: 0, count: 0 };
      accumulate(r.grads!, r.count);
      return { sum: r.sum, count: r.count };
    },
    validate: () => validationNll(run, valBatches),
    afterUpdate: () => run.invalidate(),
    weightsFile: master ? 'model.safetensors' : ADAPTER_WEIGHTS,
    writeExtras: master ? modelCheckpointExtras(model, o.model)
      : (dir) => fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(adapterConfig(o.lora!, path.resolve(o.model)), null, 2) + '\n'),
    fingerprint: {
      method: 'kd', student, model: path.resolve(o.model), teacher: path.resolve(o.teacher), kd, blockMap, ...(o.lora ? { lora: o.lora } : {}),
      data: sources.map((_, i) => reader.name(i)), val: valSource, seqLen, eos, shuffleBuffer: o.shuffleBuffer ?? 64,
    },
  };
  const label = o.label ?? `${path.basename(path.resolve(o.model))}-kd`;
  const header = {
    kind: 'train' as const, label, method: 'kd' as const, model: path.resolve(o.model),
    settings: {
      ...settings, kd, teacher: path.resolve(o.teacher), student, blockMap, ...(o.lora ? { lora: o.lora } : {}),
      seqLen, data: sources.map((_, i) => reader.name(i)), validation: valSource, valSeqs: d.valSeqs, epochs: o.maxSteps ? undefined : epochs,
    },
  };
  prepareOutput(out, o, inputs);
  const r = await train(task, settings, { label: `kd ${label}`, ckptRoot: path.join(out, CKPT_DIR), resume: o.resume ?? false, logFile: path.join(out, LOG_FILE), logHeader: header, stopAfter: o.stopAfter, onNan: o.onNan });
  reader.close();
  if (r.stopped) return { out, log: { ...header, steps: r.steps }, seconds: r.seconds, stopped: true };

  const chosen = (o.final ?? 'best') === 'best' && r.bestDir ? r.bestDir : r.latestDir!;
  const info = { method: 'kd', teacher: path.resolve(o.teacher), checkpoint: path.basename(chosen), steps: r.steps.length };
  if (master) {
    loadParams(params, chosen, 'model.safetensors');
    saveModel(exportModel(model, params, master.dtypes), path.join(out, 'model'), { sourceDir: o.model, force: true, extraFiles: provenance(o.model, info) });
  } else {
    loadParams(params, chosen, ADAPTER_WEIGHTS);
    publishFiles(out, (dir) => writeAdapterFiles(dir, run.adapters!, o.lora!, path.resolve(o.model)));
    if (o.merge) saveModel(await mergeLora(model, run.adapters!), path.join(out, 'merged'), { sourceDir: o.model, force: true, extraFiles: provenance(o.model, { ...info, lora_adapter: path.resolve(out) }) });
  }
  const log: FinalLog = { ...header, steps: r.steps, complete: true, seconds: r.seconds };
  writeLog(out, log);
  if (!o.keepCheckpoints) fs.rmSync(path.join(out, CKPT_DIR), { recursive: true, force: true });
  return { out, log, seconds: r.seconds, stopped: false };
}
