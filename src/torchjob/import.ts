/**
 * `shorten train import DIR --out OUT`: a finished torch job (see emit.ts) back into the layout our
 * own trainer writes, so everything downstream (eval, report, export) takes it as it is:
 *
 *   CPT:  OUT/model/                        a Hugging Face folder, in the base model's dtypes
 *   LoRA: OUT/adapter_config.json, OUT/adapter_model.safetensors   (PEFT; --merge: OUT/merged/)
 *   both: OUT/train-log.json                the job's per-step log under our header ("engine": torch)
 *
 * The job's checkpoints hold f32 weights under Hugging Face / PEFT names (weights.safetensors) and
 * point at the latest and best one in checkpoints/state.json, as our checkpoints do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, saveModel, readJson } from '../io/model-folder.js';
import { firstNonFiniteF32 } from '../engine/finite.js';
import { readCheckpointState } from '../train/checkpoint.js';
import { masterParams, exportModel } from '../train/cpt.js';
import { provenance, type TrainRunResult } from '../train/lora.js';
import { initLora, adapterTensors, writeAdapterFiles, mergeLora, parseTargets, type LoraSettings } from '../train/peft.js';
import { param, type Param } from '../train/adamw.js';
import { loadParams, type TrainStep } from '../train/trainer.js';
import { checkOutput, prepareOutput, publishFiles, writeLog, type FinalLog } from '../train/run-folder.js';
import { UserError } from '../util/errors.js';
import { JOB_FILE, JOB_FORMAT, type JobSpec } from './emit.js';

export const JOB_WEIGHTS = 'weights.safetensors';

export interface ImportOptions {
  /** the job folder */
  job: string;
  out: string;
  force?: boolean;
  /** override the job's choice: best validation loss or last step */
  final?: 'best' | 'last';
  /** LoRA: also write the merged model to OUT/merged */
  merge?: boolean;
}

/** What the job writes into each checkpoint besides the weights. */
interface JobTrainerState {
  step: number;
  steps: TrainStep[];
  seconds: number;
  torch?: string;
  world?: number;
  fsdp?: boolean;
}

export function readJob(dir: string): JobSpec {
  const job = readJson(path.join(dir, JOB_FILE), `${JOB_FILE} (is ${dir} a job folder written by --emit?)`) as unknown as JobSpec;
  if (job.format !== JOB_FORMAT) throw new UserError(`${dir}/${JOB_FILE}: format '${String(job.format)}', expected ${JOB_FORMAT}`);
  return job;
}

/** The job's progress: its latest checkpoint and the step it reached (null before the first one). */
export function jobProgress(dir: string): { step: number; steps: number } | null {
  const job = readJob(dir);
  const st = readCheckpointState(path.join(dir, 'checkpoints'));
  if (!st) return null;
  const ts = readJson(path.join(dir, 'checkpoints', st.latest, 'trainer-state.json')) as unknown as JobTrainerState;
  return { step: ts.step, steps: job.settings.steps };
}

function checkFinite(params: Param[], where: string): void {
  for (const p of params) {
    const bad = firstNonFiniteF32(p.value);
    if (bad >= 0) throw new UserError(`${where}: parameter ${p.name} holds ${p.value[bad]} at [${bad}]`);
  }
}

export async function importTorchJob(o: ImportOptions): Promise<TrainRunResult> {
  const job = readJob(o.job);
  const root = path.join(o.job, 'checkpoints');
  const st = readCheckpointState(root);
  if (!st) throw new UserError(`${o.job}: no checkpoint yet: run the job first (./launch.sh, or python3 train.py --local N)`);
  const ts = readJson(path.join(root, st.latest, 'trainer-state.json')) as unknown as JobTrainerState;
  if (ts.step < job.settings.steps) throw new UserError(`${o.job}: the job stopped at step ${ts.step} of ${job.settings.steps}; launch it again to finish (it resumes from ${st.latest})`);
  const chosen = (o.final ?? job.final) === 'best' && st.best ? path.join(root, st.best) : path.join(root, st.latest);
  const inputs = [o.job];
  checkOutput(o.out, o, inputs);
  const modelDir = path.join(o.job, 'model');
  const model = loadModel(modelDir);
  const header = { ...job.header, settings: { ...job.header.settings, engine: `torch ${ts.torch ?? ''}`.trim(), processes: ts.world, fsdp: ts.fsdp, job: path.resolve(o.job) } };
  const info = { engine: 'torch', job: path.resolve(o.job), checkpoint: path.basename(chosen), steps: ts.steps.length };
  // provenance names the model the job was prepared from, not the job's copy of it
  const extra = (method: string, more: Record<string, unknown> = {}) => ({ ...provenance(modelDir, {}), 'training.json': { source_model: job.source_model, method, ...info, ...more } });

  prepareOutput(o.out, o, inputs);
  if (job.recipe.params === 'full') {
    const { params, dtypes } = masterParams(model);
    loadParams(params, chosen, JOB_WEIGHTS);
    checkFinite(params, chosen);
    saveModel(exportModel(model, params, dtypes), path.join(o.out, 'model'), { sourceDir: modelDir, force: true, extraFiles: extra(job.method) });
  } else {
    const l = job.lora!;
    const lora: LoraSettings = { r: l.r, alpha: l.alpha, dropout: l.dropout, targets: parseTargets(l.targets) };
    const adapters = initLora(model, lora, job.settings.seed); // shapes; the values come from the checkpoint
    const params = adapterTensors(adapters).map(([name, t]) => param(name, t.shape, t.data as Float32Array, true));
    loadParams(params, chosen, JOB_WEIGHTS);
    checkFinite(params, chosen);
    publishFiles(o.out, (dir) => writeAdapterFiles(dir, adapters, lora, job.source_model));
    if (o.merge) {
      saveModel(await mergeLora(model, adapters), path.join(o.out, 'merged'), { sourceDir: modelDir, force: true, extraFiles: extra(job.method, { lora_adapter: path.resolve(o.out) }) });
    }
  }
  const log: FinalLog = { ...header, steps: ts.steps, complete: true, seconds: ts.seconds };
  writeLog(o.out, log);
  return { out: o.out, log, seconds: ts.seconds, stopped: false };
}

/** The job folder's size on disk (for the CLI's summary). */
export function folderBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : e.isFile() ? fs.statSync(p).size : 0;
  }
  return n;
}
