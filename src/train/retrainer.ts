/**
 * Brief retraining between the rounds of iterative pruning (src/prune/iterative.ts): CPT, KD from
 * the original model, or LoRA merged into the weights, each a fixed number of steps.
 */
import path from 'node:path';
import type { Retrainer } from '../prune/iterative.js';
import { trainCpt, type CptOptions } from './cpt.js';
import { trainKd } from './kd.js';
import { trainLora, type LoraOptions } from './lora.js';
import type { KdSettings } from './kd-loss.js';
import type { TrainRunResult } from './lora.js';
import { UserError } from '../util/errors.js';

export const RETRAIN_METHODS = ['cpt', 'kd', 'lora'] as const;
export type RetrainMethod = (typeof RETRAIN_METHODS)[number];

export interface RoundRetrainOptions {
  method: RetrainMethod;
  /** optimizer steps per round */
  steps: number;
  /** cpt, kd: training text (default: the embedded default corpus, train split); lora: the data file (required) */
  data?: string[];
  /** kd: the teacher (the original, unpruned model) */
  teacher?: string;
  kd?: Partial<KdSettings>;
  /** further options of the method (learning rate, batch, sequence length, ...) */
  cpt?: Omit<Partial<CptOptions>, 'model' | 'out' | 'data'>;
  lora?: Omit<Partial<LoraOptions>, 'model' | 'out' | 'data'>;
}

/** What pruning.json records about the retraining. */
export function retrainInfo(o: RoundRetrainOptions): Record<string, unknown> {
  return {
    retrain: o.method, retrain_steps: o.steps, ...(o.data ? { retrain_data: o.data.map((f) => path.resolve(f)) } : {}),
    ...(o.method === 'kd' ? { teacher: path.resolve(o.teacher!), kd: o.kd ?? {} } : {}),
    settings: o.method === 'lora' ? o.lora ?? {} : o.cpt ?? {},
  };
}

export function roundRetrainer(o: RoundRetrainOptions): Retrainer {
  if (!(Number.isInteger(o.steps) && o.steps >= 1)) throw new UserError(`--retrain-steps must be a positive integer (got ${o.steps})`);
  if (o.method === 'lora' && !o.data?.length) throw new UserError('--retrain lora needs --retrain-data (instruction data or plain text)');
  if (o.method === 'lora' && o.data!.length > 1) throw new UserError('--retrain lora takes one --retrain-data file');
  if (o.method === 'kd' && !o.teacher) throw new UserError('--retrain kd needs a teacher');
  const done = (r: TrainRunResult, model: string) => {
    const s = r.log.steps;
    const vals = s.filter((x) => x.valLoss !== undefined).map((x) => x.valLoss!);
    return { model, steps: s.length, seconds: r.seconds, finalLoss: s[s.length - 1]?.loss ?? null, bestValLoss: vals.length ? Math.min(...vals) : null };
  };
  return async (model, out, round) => {
    const label = `round-${round}-${o.method}`;
    if (o.method === 'lora') {
      const r = await trainLora({ ...o.lora, model, data: o.data![0]!, out, maxSteps: o.steps, merge: true, force: true, label });
      return done(r, path.join(out, 'merged'));
    }
    const common = { ...o.cpt, model, data: o.data, out, maxSteps: o.steps, force: true, label };
    const r = o.method === 'kd' ? await trainKd({ ...common, teacher: o.teacher!, kd: o.kd }) : await trainCpt(common);
    return done(r, path.join(out, 'model'));
  };
}
