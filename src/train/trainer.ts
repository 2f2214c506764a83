/**
 * The training loop shared by LoRA and continued pretraining:
 *
 *   for each optimizer step:
 *     lr = schedule(step)
 *     for each micro-batch of the effective batch: forward, backward, grads += count * grad
 *     grads /= total target count          (token-weighted mean, as one big batch would give)
 *     clip the global gradient norm; AdamW update
 *     every saveEvery steps and at the end: validation loss, then a checkpoint
 *
 * What a task (LoRA or full training) supplies is in TrainTask: its parameters, its data and how
 * one micro-batch turns into gradients. Everything a resume needs is in the checkpoint: the
 * parameters (f32), AdamW's moments and step count, the data position, the dropout RNG state,
 * the log so far and the best validation loss. Resuming therefore repeats the uninterrupted run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AdamW, gradNorm, clipFactor, type Param } from './adamw.js';
import { lrAt, type Decay } from './schedule.js';
import type { Batch } from './batch.js';
import { checkpointName, writeCheckpoint, readCheckpointState, commitCheckpointState, removeUnreferenced, durableWriteFile, type CheckpointState } from './checkpoint.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { toF32, type Tensor } from '../engine/tensor.js';
import { Rng } from '../util/rng.js';
import { UserError } from '../util/errors.js';
import { firstNonFiniteF32 } from '../engine/finite.js';
import { progress } from '../util/progress.js';
import type { Replicas, ReplicaResult } from './replicas.js';
import type { Grads } from '../model/llama.js';

export type TrainMethod = 'lora' | 'cpt' | 'cpt+lora' | 'kd' | 'kd+lora';

export interface TrainStep {
  step: number;
  loss: number;
  lr: number;
  valLoss?: number;
  gradNorm?: number;
  /** the loss or gradient was not finite and the update was skipped (--on-nan skip) */
  skipped?: true;
}

/** The `train-log.json` schema (read by `shorten report`). */
export interface TrainLog {
  kind: 'train';
  label: string;
  method: TrainMethod;
  model?: string;
  steps: TrainStep[];
  settings?: Record<string, unknown>;
}

/** The optimization and run-folder options every `shorten train` method shares. */
export interface MethodOptions {
  epochs?: number;
  maxSteps?: number;
  lr?: number;
  /** effective batch (examples or sequences per optimizer step) */
  batchSize?: number;
  microBatch?: number;
  warmup?: number;
  decay?: Decay;
  minLrRatio?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  maxGradNorm?: number;
  saveEvery?: number;
  seed?: number;
  /** which weights become the result: best validation loss (default) or the last step */
  final?: 'best' | 'last';
  resume?: boolean;
  force?: boolean;
  keepCheckpoints?: boolean;
  label?: string;
  /** stop after this step as if killed (tests) */
  stopAfter?: number;
  /** a step whose loss or gradient is not finite: skip its update, or stop the run (default) */
  onNan?: NanPolicy;
}

export type NanPolicy = 'skip' | 'stop';
export const NAN_POLICIES = ['stop', 'skip'] as const;
/** --on-nan skip gives up after this many non-finite steps in a row: the run has diverged. */
export const MAX_SKIPS_IN_A_ROW = 10;

export interface TrainSettings {
  /** optimizer steps in the whole run */
  steps: number;
  /** rows (examples or sequences) per optimizer step */
  batchSize: number;
  /** rows per forward/backward */
  microBatch: number;
  lr: number;
  warmup: number;
  decay: Decay;
  minLrRatio: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip the global gradient norm to this (0: no clipping) */
  maxGradNorm: number;
  /** checkpoint (and validate) every this many steps, and at the end */
  saveEvery: number;
  /** seeds the dropout RNG (data order has its own seed in the task) */
  seed: number;
}

/** Settings from a method's options: the user's value where given, else the method's default. */
export function methodSettings(o: MethodOptions, fixed: Pick<TrainSettings, 'steps' | 'batchSize' | 'microBatch' | 'seed'>,
  defaults: Pick<TrainSettings, 'warmup' | 'decay' | 'minLrRatio' | 'beta2' | 'weightDecay'>): TrainSettings {
  return {
    ...fixed, lr: o.lr ?? 1e-4, warmup: o.warmup ?? defaults.warmup, decay: o.decay ?? defaults.decay, minLrRatio: o.minLrRatio ?? defaults.minLrRatio,
    beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? defaults.beta2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? defaults.weightDecay,
    maxGradNorm: o.maxGradNorm ?? 1, saveEvery: o.saveEvery ?? 100,
  };
}

export interface TrainTask {
  params: Param[];
  /** the next micro-batch of n rows */
  nextBatch(n: number): Batch;
  dataState(): unknown;
  restoreData(state: unknown): void;
  /** forward + backward of one micro-batch, adding count-weighted gradients into params */
  forwardBackward(b: Batch, rng: () => number): Promise<{ sum: number; count: number }>;
  /** mean NLL on held-out data (no dropout), or null without any */
  validate(): Promise<number | null>;
  /** after each update: drop caches of widened weights */
  afterUpdate(): void;
  /**
   * Worker replicas that run micro-batches of the same step alongside forwardBackward (small
   * models, see replicas.ts), and how their gradients join the parameters' sums.
   */
  replicas?: Replicas;
  addGrads?(g: Grads, count: number): void;
  /** file name of the parameters in a checkpoint (model.safetensors, adapter_model.safetensors) */
  weightsFile: string;
  /** files besides the parameters that make a checkpoint folder a usable model or adapter */
  writeExtras(dir: string): void;
  /** task settings that must be the same when resuming */
  fingerprint: Record<string, unknown>;
}

export interface RunOptions {
  label: string;
  /** where checkpoints go */
  ckptRoot: string;
  /** continue from the latest checkpoint under ckptRoot if there is one */
  resume: boolean;
  /** write the log here at every checkpoint (and the caller writes the final one) */
  logFile?: string;
  logHeader: Omit<TrainLog, 'steps'>;
  /** stop after this step as if killed (tests) */
  stopAfter?: number;
  /** what a non-finite loss or gradient does (default: stop) */
  onNan?: NanPolicy;
}

export interface TrainResult {
  steps: TrainStep[];
  /** checkpoint folders of the last step and of the best validation loss (if validated) */
  latestDir: string | null;
  bestDir: string | null;
  bestValLoss: number | null;
  /** training time over all (resumed) sessions, seconds */
  seconds: number;
  /** true when stopAfter ended the run early */
  stopped: boolean;
  resumedFrom: number;
}

interface TrainerState {
  step: number;
  optimizerSteps: number;
  data: unknown;
  rng: number;
  steps: TrainStep[];
  seconds: number;
  settings: TrainSettings;
  fingerprint: Record<string, unknown>;
}

const TRAINER_STATE = 'trainer-state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';

/** Settings that change the computation: a resume must use the same ones. */
function resumeKey(s: TrainSettings, fp: Record<string, unknown>): Record<string, unknown> {
  const { saveEvery: _ignored, ...rest } = s;
  return { ...rest, ...fp };
}

/** Copy a checkpoint's parameters into the task's parameter arrays. */
export function loadParams(params: Param[], dir: string, file: string): void {
  const t = readSafetensors(path.join(dir, file), params.map((p) => p.name));
  for (const p of params) {
    const raw = t.get(p.name)!;
    if (raw.dtype !== 'F32' || raw.data.length !== p.value.length) throw new UserError(`${dir}: parameter ${p.name} does not match the model`);
    p.value.set(raw.data as Float32Array);
  }
}

export async function train(task: TrainTask, s: TrainSettings, o: RunOptions): Promise<TrainResult> {
  if (s.steps < 1) throw new UserError('nothing to train: 0 steps');
  if (s.microBatch < 1 || s.batchSize < 1) throw new UserError('--batch-size and --micro-batch must be at least 1');
  const opt = new AdamW(task.params, { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay });
  const sched = { lr: s.lr, warmup: s.warmup, total: s.steps, decay: s.decay, minRatio: s.minLrRatio };
  const rng = new Rng((s.seed ^ 0x9e3779b9) >>> 0);
  const replicas = task.replicas && task.addGrads ? task.replicas.size : 1;
  let step = 0, seconds = 0;
  let log: TrainStep[] = [];
  let ck: CheckpointState | null = null;

  if (o.resume) ck = readCheckpointState(o.ckptRoot);
  if (ck) {
    const dir = path.join(o.ckptRoot, ck.latest);
    const st = JSON.parse(fs.readFileSync(path.join(dir, TRAINER_STATE), 'utf8')) as TrainerState;
    const was = JSON.stringify(resumeKey(st.settings, st.fingerprint)), now = JSON.stringify(resumeKey(s, task.fingerprint));
    if (was !== now) throw new UserError(`cannot resume ${o.ckptRoot}: the run's settings differ from the checkpoint's\n  checkpoint: ${was}\n  now:        ${now}`);
    loadParams(task.params, dir, task.weightsFile);
    const moments = readSafetensors(path.join(dir, OPTIMIZER_FILE));
    opt.loadState((n) => {
      const m = moments.get(n);
      if (!m) throw new UserError(`${dir}: optimizer state lacks ${n}`);
      return m.data as Float32Array;
    }, st.optimizerSteps);
    task.restoreData(st.data);
    task.afterUpdate();
    rng.state = st.rng;
    step = st.step;
    seconds = st.seconds;
    log = st.steps;
  }
  removeUnreferenced(o.ckptRoot, ck);
  const resumedFrom = step;

  const save = (bestVal: number | null) => {
    const name = checkpointName(step);
    const state: TrainerState = { step, optimizerSteps: opt.t, data: task.dataState(), rng: rng.state, steps: log, seconds, settings: s, fingerprint: task.fingerprint };
    writeCheckpoint(o.ckptRoot, name, (dir) => {
      writeSafetensors(path.join(dir, task.weightsFile), task.params.map((p): [string, Tensor] => [p.name, { dtype: 'f32', shape: p.shape, data: p.value }]));
      writeSafetensors(path.join(dir, OPTIMIZER_FILE), opt.stateTensors(), { format: 'pt', step: String(opt.t) });
      task.writeExtras(dir);
      fs.writeFileSync(path.join(dir, TRAINER_STATE), JSON.stringify(state) + '\n');
    });
    const better = bestVal !== null && (ck?.bestValLoss === undefined || bestVal < ck.bestValLoss);
    ck = { latest: name, ...(better ? { best: name, bestValLoss: bestVal } : ck?.best ? { best: ck.best, bestValLoss: ck.bestValLoss } : {}) };
    commitCheckpointState(o.ckptRoot, ck);
    if (o.logFile) durableWriteFile(o.logFile, JSON.stringify({ ...o.logHeader, steps: log }, null, 2) + '\n');
  };

  const bar = progress(o.label, s.steps, 'steps');
  bar.update(step);
  let stopped = false;
  let skippedInARow = 0;
  const lastGood = () => (ck ? `the last checkpoint, ${ck.latest}, is intact (--resume continues from it)` : 'no checkpoint was written');
  const nonFinite = (what: string) => {
    bar.stop();
    return new UserError(`step ${step + 1}: ${what}; ${lastGood()}${o.onNan === 'skip' ? '' : '; --on-nan skip skips such steps'}`);
  };
  while (step < s.steps) {
    const t0 = performance.now();
    const lr = lrAt(sched, step);
    let sum = 0, count = 0;
    for (let rows = 0; rows < s.batchSize; ) {
      // up to one micro-batch per replica at a time; each draws its dropout from its own seed, and
      // their gradients are added in micro-batch order, so the sums do not depend on the replicas
      const group: Batch[] = [];
      while (group.length < replicas && rows < s.batchSize) {
        const b = task.nextBatch(Math.min(s.microBatch, s.batchSize - rows));
        group.push(b);
        rows += b.B;
      }
      const seeds = group.map(() => Math.floor(rng.next() * 4294967296));
      const local = new Rng(seeds[0]!);
      const results = await Promise.all(group.map((b, j) => (j === 0 ? task.forwardBackward(b, () => local.next()) : task.replicas!.run(j, b, seeds[j]!))));
      results.forEach((r, j) => {
        sum += r.sum;
        count += r.count;
        const grads = j > 0 ? (r as ReplicaResult).grads : null;
        if (grads) task.addGrads!(grads, r.count);
      });
    }
    // mean over the effective batch's targets, then clipped: folded into the update's gradient scale
    const mean = count > 0 ? 1 / count : 0;
    const norm = gradNorm(task.params, mean);
    const loss = count > 0 ? sum / count : 0;
    const finite = Number.isFinite(loss) && Number.isFinite(norm);
    if (!finite) {
      const what = `the ${Number.isFinite(loss) ? `gradient norm is ${norm}` : `loss is ${loss}`}`;
      if (o.onNan !== 'skip') throw nonFinite(what);
      if (++skippedInARow > MAX_SKIPS_IN_A_ROW) throw nonFinite(`${what}, the ${MAX_SKIPS_IN_A_ROW + 1}th non-finite step in a row (the run has diverged)`);
      for (const p of task.params) { p.grad = null; p.gradScale = 1; } // drop the step's gradients; AdamW's state is untouched
    } else {
      skippedInARow = 0;
      opt.step(lr, mean * clipFactor(norm, s.maxGradNorm));
      task.afterUpdate();
    }
    step++;
    const entry: TrainStep = { step, loss, lr, gradNorm: norm, ...(finite ? {} : { skipped: true as const }) };
    log.push(entry);
    const checkpoint = step % s.saveEvery === 0 || step === s.steps;
    let val: number | null = null;
    if (checkpoint) {
      val = await task.validate();
      if (val !== null && !Number.isFinite(val)) { step--; throw nonFinite(`the validation loss is ${val}`); }
      if (val !== null) entry.valLoss = val;
      // never write a checkpoint that cannot be trained on or used
      for (const p of task.params) {
        const bad = firstNonFiniteF32(p.value);
        if (bad >= 0) { step--; throw nonFinite(`parameter ${p.name} holds ${p.value[bad]} at [${bad}] after the update`); }
      }
    }
    seconds += (performance.now() - t0) / 1000;
    if (checkpoint) save(val);
    bar.update(step, `loss ${entry.loss.toFixed(4)}${val !== null ? ` val ${val.toFixed(4)}` : ''} lr ${lr.toExponential(2)}`);
    if (o.stopAfter !== undefined && step >= o.stopAfter && step < s.steps) { stopped = true; break; }
  }
  bar.stop();
  const final = ck as CheckpointState | null;
  return {
    steps: log,
    latestDir: final ? path.join(o.ckptRoot, final.latest) : null,
    bestDir: final?.best ? path.join(o.ckptRoot, final.best) : null,
    bestValLoss: final?.bestValLoss ?? null,
    seconds, stopped, resumedFrom,
  };
}

/** Widen a stored tensor into a fresh f32 master copy (never aliasing the stored data). */
export function masterCopy(t: Tensor): Float32Array {
  return t.dtype === 'f32' ? Float32Array.from(t.data as Float32Array) : toF32(t);
}
