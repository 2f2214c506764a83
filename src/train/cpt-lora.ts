/**
 * `shorten train cpt-lora`: the paper's CPT⇒LoRA — continued pretraining, then LoRA on the
 * result. The same as running the two steps by hand:
 *
 *   shorten train cpt  --model PRUNED --data TEXT...  --out OUT/cpt      (model at OUT/cpt/model)
 *   shorten train lora --model OUT/cpt/model --data ALPACA --out OUT/lora [--merge]
 *
 * Each stage resumes on its own; a finished stage is skipped by --resume. OUT/train-log.json
 * holds both loss curves one after the other (LoRA's steps numbered after CPT's).
 */
import path from 'node:path';
import { trainCpt, type CptOptions } from './cpt.js';
import { trainLora, type LoraOptions, type TrainRunResult } from './lora.js';
import { prepareOutput, completedLog, writeLog, type FinalLog } from './run-folder.js';

export interface CptLoraOptions {
  model: string;
  out: string;
  cpt: Omit<CptOptions, 'model' | 'out' | 'resume' | 'force'>;
  lora: Omit<LoraOptions, 'model' | 'out' | 'resume' | 'force' | 'method'>;
  resume?: boolean;
  force?: boolean;
  label?: string;
}

export interface CptLoraResult {
  cpt: TrainRunResult;
  lora: TrainRunResult;
  log: FinalLog;
  seconds: number;
}

export async function trainCptLora(o: CptLoraOptions): Promise<CptLoraResult | null> {
  if (o.resume) {
    const done = completedLog(o.out);
    if (done) return { cpt: await trainCpt({ ...o.cpt, model: o.model, out: path.join(o.out, 'cpt'), resume: true }), lora: await trainLora({ ...o.lora, model: path.join(o.out, 'cpt', 'model'), out: path.join(o.out, 'lora'), resume: true }), log: done, seconds: done.seconds ?? 0 };
  }
  prepareOutput(o.out, o, [o.model, o.cpt.tokenizer, o.cpt.valData, ...(o.cpt.data ?? []), o.lora.data]);
  const label = o.label ?? `${path.basename(path.resolve(o.model))}-cpt+lora`;
  // Stages resume independently inside the (fresh or resumed) run folder.
  const cpt = await trainCpt({ ...o.cpt, model: o.model, out: path.join(o.out, 'cpt'), resume: o.resume ?? false, label: o.cpt.label ?? `${label}:cpt` });
  if (cpt.stopped) return null;
  const lora = await trainLora({ ...o.lora, model: path.join(o.out, 'cpt', 'model'), out: path.join(o.out, 'lora'), resume: o.resume ?? false, method: 'lora', label: o.lora.label ?? `${label}:lora` });
  if (lora.stopped) return null;
  const n = cpt.log.steps.length;
  const log: FinalLog = {
    kind: 'train', label, method: 'cpt+lora', model: path.resolve(o.model),
    steps: [...cpt.log.steps, ...lora.log.steps.map((s) => ({ ...s, step: s.step + n }))],
    settings: { cptSteps: n, cpt: cpt.log.settings, lora: lora.log.settings },
    complete: true, seconds: cpt.seconds + lora.seconds,
  };
  writeLog(o.out, log);
  return { cpt, lora, log, seconds: log.seconds! };
}
