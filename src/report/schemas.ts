/**
 * The JSON files `shorten report` reads: what score / prune / train / eval / bench write with
 * --json/--out. Each file is one object with a `kind`; these interfaces are the contract the
 * producers emit, and parseReportInput checks a parsed file against it, naming the file and the
 * offending field in a UserError.
 */
import { UserError } from '../util/errors.js';
import type { TrainStep, TrainMethod, TrainLog } from '../train/trainer.js';

export type Retraining = 'none' | 'lora' | 'cpt' | 'cpt+lora' | 'kd' | 'kd+lora' | 'iterative';

/** `shorten score`: one importance score per block under one criterion. */
export interface ScoreFile {
  kind: 'score';
  model: string;
  /** taylor | ppl | magnitude | bi | angular | sleb (free text: new criteria need no schema change) */
  criterion: string;
  /**
   * one score per block, in block order (higher = more important for the built-in criteria; the
   * report infers the direction from `order`). null: not finite — a block SLEB never removed, so
   * more important than every scored one.
   */
  scores: (number | null)[];
  /** block indices in removal order, least important first (may be shorter than scores) */
  order: number[];
  settings: Record<string, unknown>;
  /** blocks actually chosen for removal, when the scoring run also pruned (highlighted in the chart) */
  removed?: number[];
}

/**
 * `shorten prune`: which blocks went. Also read from the pruning.json that prune writes into the
 * pruned model folder (no `kind`; source_model, criterion, num_hidden_layers_before, removed_blocks).
 */
export interface PruneFile {
  kind: 'prune';
  /** the source model */
  model: string;
  criterion: string;
  /** number of blocks in the source model */
  numBlocks: number;
  /** removed block indices (source numbering) */
  removed: number[];
  /** where the pruned model was written */
  out?: string;
  /** iterative pruning (pruning.json's iterative.rounds): each round's choice and perplexity */
  rounds?: PruneRound[];
}

export interface PruneRound {
  round: number;
  /** blocks cut, in the numbering of the model the round scored, and in the original numbering */
  removed: number[];
  removedOriginal: number[];
  /** the round's scores for the blocks it scored */
  scores: (number | null)[];
  pplAfterCut: number;
  pplAfterRetrain: number;
  steps: number;
}

/** `shorten eval --ppl` (or one point of a sweep): perplexity of one model on one dataset. */
export interface PplFile {
  kind: 'ppl';
  model: string;
  /** short name for this model variant, e.g. "taylor-20%-lora" */
  label: string;
  /** 0 for the original model */
  removedBlocks: number;
  criterion?: string;
  retraining?: Retraining;
  dataset: string;
  ppl: number;
  /** mean negative log-likelihood per token (nats) */
  nll: number;
  tokens: number;
}

/** `shorten train`: the loss curve of one retraining run (the trainer's train-log.json). */
export type TrainFile = TrainLog;
export type { TrainStep, TrainMethod };

/** One task's metrics in lm-evaluation-harness layout; accuracies are fractions in [0, 1]. */
export interface ZeroShotTaskResult {
  acc: number;
  acc_stderr: number;
  acc_norm?: number;
  acc_norm_stderr?: number;
}

/** `shorten eval --zeroshot`. */
export interface ZeroShotFile {
  kind: 'zeroshot';
  model: string;
  /** row name in the table (default: model) */
  label?: string;
  results: { [task: string]: ZeroShotTaskResult };
}

export interface BenchResult {
  batch: number;
  /** end-to-end generation latency (mean over repeats) */
  latencyMs: number;
  latencyStd: number;
  /** generated tokens per second, whole batch */
  tokensPerSec: number;
  prefillMs?: number;
  peakMemMB?: number;
}

export interface BenchModel {
  name: string;
  /** parameter count */
  params: number;
  results: BenchResult[];
}

/** `shorten bench`: speed of one or more models over batch sizes. */
export interface BenchFile {
  kind: 'bench';
  models: BenchModel[];
  /** e.g. { promptLen: 12, genLen: 128, device: "H100" } — shown under the charts */
  settings?: Record<string, unknown>;
}

export interface GenerationItem {
  model: string;
  prompt: string;
  text: string;
}

/** Sample generations, shown grouped by prompt. */
export interface GenerationsFile {
  kind: 'generations';
  items: GenerationItem[];
}

/** A free-form table (model card summary). */
export interface SummaryFile {
  kind: 'summary';
  title: string;
  rows: Record<string, string | number>[];
}

export type ReportInput = ScoreFile | PruneFile | PplFile | TrainFile | ZeroShotFile | BenchFile | GenerationsFile | SummaryFile;
export type ReportKind = ReportInput['kind'];
export const REPORT_KINDS: readonly ReportKind[] = ['score', 'prune', 'ppl', 'train', 'zeroshot', 'bench', 'generations', 'summary'];

// ---- validation -------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** Reads fields of one file, throwing `<file>: <field path> ...` on the first problem. */
class FieldReader {
  constructor(private readonly file: string) {}

  fail(message: string): never {
    throw new UserError(`${this.file}: ${message}`);
  }

  private got(v: unknown): string {
    return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
  }

  private field(o: Obj, key: string, at: string, optional: boolean): unknown {
    const v = o[key];
    if (v === undefined && !optional) this.fail(`missing field '${at}${key}'`);
    return v;
  }

  obj(v: unknown, at: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`'${at}' must be an object, got ${this.got(v)}`);
    return v as Obj;
  }

  str(o: Obj, key: string, at = ''): string {
    const v = this.field(o, key, at, false);
    if (typeof v !== 'string') this.fail(`field '${at}${key}' must be a string, got ${this.got(v)}`);
    return v;
  }

  optStr(o: Obj, key: string, at = ''): string | undefined {
    return o[key] === undefined ? undefined : this.str(o, key, at);
  }

  num(o: Obj, key: string, at = '', opts: { int?: boolean; min?: number; max?: number } = {}): number {
    const v = this.field(o, key, at, false);
    return this.checkNum(v, `${at}${key}`, opts);
  }

  optNum(o: Obj, key: string, at = '', opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
    return o[key] === undefined ? undefined : this.num(o, key, at, opts);
  }

  checkNum(v: unknown, name: string, opts: { int?: boolean; min?: number; max?: number } = {}): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`field '${name}' must be a finite number, got ${this.got(v)}`);
    if (opts.int && !Number.isInteger(v)) this.fail(`field '${name}' must be an integer, got ${v}`);
    if (opts.min !== undefined && v < opts.min) this.fail(`field '${name}' must be >= ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) this.fail(`field '${name}' must be <= ${opts.max}, got ${v}`);
    return v;
  }

  arr(o: Obj, key: string, at = '', nonEmpty = true): unknown[] {
    const v = this.field(o, key, at, false);
    if (!Array.isArray(v)) this.fail(`field '${at}${key}' must be an array, got ${this.got(v)}`);
    if (nonEmpty && v.length === 0) this.fail(`field '${at}${key}' is empty`);
    return v;
  }

  nums(o: Obj, key: string, at = '', opts: { int?: boolean; min?: number; max?: number } = {}): number[] {
    return this.arr(o, key, at).map((v, i) => this.checkNum(v, `${at}${key}[${i}]`, opts));
  }

  /** Numbers where null stands for a non-finite value (JSON has no Infinity). */
  numsOrNull(o: Obj, key: string, at = ''): (number | null)[] {
    return this.arr(o, key, at).map((v, i) => (v === null ? null : this.checkNum(v, `${at}${key}[${i}]`)));
  }

  objs(o: Obj, key: string, at = ''): Obj[] {
    return this.arr(o, key, at).map((v, i) => this.obj(v, `${at}${key}[${i}]`));
  }

  oneOf<T extends string>(o: Obj, key: string, allowed: readonly T[], at = ''): T {
    const v = this.str(o, key, at);
    if (!(allowed as readonly string[]).includes(v)) this.fail(`field '${at}${key}' must be one of ${allowed.join(', ')}, got '${v}'`);
    return v as T;
  }

  /** Block indices: integers in [0, n), no repeats. */
  blocks(o: Obj, key: string, n: number, nonEmpty: boolean): number[] {
    const list = this.arr(o, key, '', nonEmpty).map((v, i) => this.checkNum(v, `${key}[${i}]`, { int: true, min: 0, max: n - 1 }));
    if (new Set(list).size !== list.length) this.fail(`field '${key}' lists a block twice`);
    return list;
  }
}

/** The pruning.json written next to a pruned model, read as a prune input. */
function parsePruningJson(o: Obj, r: FieldReader): PruneFile {
  const numBlocks = r.num(o, 'num_hidden_layers_before', '', { int: true, min: 1 });
  const criterion = o['criterion'] === null ? 'explicit' : r.str(o, 'criterion');
  const base: PruneFile = { kind: 'prune', model: r.str(o, 'source_model'), criterion, numBlocks, removed: r.blocks(o, 'removed_blocks', numBlocks, false) };
  const it = o['iterative'];
  if (it === undefined) return base;
  const rounds = r.arr(r.obj(it, 'iterative'), 'rounds', '', true).map((x, i): PruneRound => {
    const ro = r.obj(x, `iterative.rounds[${i}]`);
    const scores = r.numsOrNull(ro, 'scores');
    const retrain = r.obj(ro['retrain'] ?? {}, `iterative.rounds[${i}].retrain`);
    return {
      round: r.num(ro, 'round', '', { int: true, min: 1 }), removed: r.blocks(ro, 'removed', scores.length, true), removedOriginal: r.blocks(ro, 'removed_original', numBlocks, true),
      scores, pplAfterCut: r.num(ro, 'ppl_after_cut'), pplAfterRetrain: r.num(ro, 'ppl_after_retrain'), steps: r.num(retrain, 'steps', '', { int: true, min: 0 }),
    };
  });
  return { ...base, rounds };
}

const RETRAINING: readonly Retraining[] = ['none', 'lora', 'cpt', 'cpt+lora', 'kd', 'kd+lora', 'iterative'];
const METHODS: readonly TrainMethod[] = ['lora', 'cpt', 'cpt+lora', 'kd', 'kd+lora'];

/**
 * Checks a parsed JSON file against its kind's schema. Returns undefined for JSON without a
 * known `kind` (config.json, tokenizer.json, ... found while searching folders).
 */
export function parseReportInput(raw: unknown, file: string): ReportInput | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Obj;
  const kind = o['kind'];
  const r = new FieldReader(file);
  if (kind === undefined && Array.isArray(o['removed_blocks']) && o['num_hidden_layers_before'] !== undefined) return parsePruningJson(o, r);
  if (typeof kind !== 'string' || !(REPORT_KINDS as readonly string[]).includes(kind)) return undefined;
  switch (kind as ReportKind) {
    case 'score': {
      const scores = r.numsOrNull(o, 'scores');
      if (scores.every((x) => x === null)) r.fail(`field 'scores' has no finite score`);
      const removed = o['removed'] === undefined ? undefined : r.blocks(o, 'removed', scores.length, false);
      return {
        kind: 'score', model: r.str(o, 'model'), criterion: r.str(o, 'criterion'), scores,
        order: r.blocks(o, 'order', scores.length, true), settings: r.obj(o['settings'] ?? {}, 'settings'),
        ...(removed ? { removed } : {}),
      };
    }
    case 'prune': {
      const numBlocks = r.num(o, 'numBlocks', '', { int: true, min: 1 });
      const out = r.optStr(o, 'out');
      return {
        kind: 'prune', model: r.str(o, 'model'), criterion: r.str(o, 'criterion'), numBlocks,
        removed: r.blocks(o, 'removed', numBlocks, false), ...(out !== undefined ? { out } : {}),
      };
    }
    case 'ppl': {
      const criterion = r.optStr(o, 'criterion');
      const retraining = o['retraining'] === undefined ? undefined : r.oneOf(o, 'retraining', RETRAINING);
      return {
        kind: 'ppl', model: r.str(o, 'model'), label: r.str(o, 'label'),
        removedBlocks: r.num(o, 'removedBlocks', '', { int: true, min: 0 }),
        ...(criterion !== undefined ? { criterion } : {}), ...(retraining !== undefined ? { retraining } : {}),
        dataset: r.str(o, 'dataset'), ppl: r.num(o, 'ppl', '', { min: 0 }), nll: r.num(o, 'nll'),
        tokens: r.num(o, 'tokens', '', { int: true, min: 0 }),
      };
    }
    case 'train': {
      const model = r.optStr(o, 'model');
      const steps = r.objs(o, 'steps').map((s, i): TrainStep => {
        const at = `steps[${i}].`;
        const valLoss = r.optNum(s, 'valLoss', at);
        return { step: r.num(s, 'step', at, { min: 0 }), loss: r.num(s, 'loss', at), lr: r.num(s, 'lr', at), ...(valLoss !== undefined ? { valLoss } : {}) };
      });
      return {
        kind: 'train', label: r.str(o, 'label'), method: r.oneOf(o, 'method', METHODS), ...(model !== undefined ? { model } : {}), steps,
        ...(o['settings'] !== undefined ? { settings: r.obj(o['settings'], 'settings') } : {}),
      };
    }
    case 'zeroshot': {
      const results: Record<string, ZeroShotTaskResult> = {};
      const res = r.obj(o['results'] ?? r.fail(`missing field 'results'`), 'results');
      if (Object.keys(res).length === 0) r.fail(`field 'results' is empty`);
      const frac = { min: 0, max: 1 };
      for (const [task, v] of Object.entries(res)) {
        const t = r.obj(v, `results.${task}`), at = `results.${task}.`;
        const accNorm = r.optNum(t, 'acc_norm', at, frac), accNormStderr = r.optNum(t, 'acc_norm_stderr', at, { min: 0 });
        results[task] = {
          acc: r.num(t, 'acc', at, frac), acc_stderr: r.num(t, 'acc_stderr', at, { min: 0 }),
          ...(accNorm !== undefined ? { acc_norm: accNorm } : {}), ...(accNormStderr !== undefined ? { acc_norm_stderr: accNormStderr } : {}),
        };
      }
      const label = r.optStr(o, 'label');
      return { kind: 'zeroshot', model: r.str(o, 'model'), ...(label !== undefined ? { label } : {}), results };
    }
    case 'bench': {
      const models = r.objs(o, 'models').map((m, i): BenchModel => {
        const at = `models[${i}].`;
        const results = r.objs(m, 'results', at).map((x, j): BenchResult => {
          const a = `${at}results[${j}].`;
          const prefillMs = r.optNum(x, 'prefillMs', a, { min: 0 }), peakMemMB = r.optNum(x, 'peakMemMB', a, { min: 0 });
          return {
            batch: r.num(x, 'batch', a, { int: true, min: 1 }), latencyMs: r.num(x, 'latencyMs', a, { min: 0 }),
            latencyStd: r.num(x, 'latencyStd', a, { min: 0 }), tokensPerSec: r.num(x, 'tokensPerSec', a, { min: 0 }),
            ...(prefillMs !== undefined ? { prefillMs } : {}), ...(peakMemMB !== undefined ? { peakMemMB } : {}),
          };
        });
        return { name: r.str(m, 'name', at), params: r.num(m, 'params', at, { min: 0 }), results };
      });
      return { kind: 'bench', models, ...(o['settings'] !== undefined ? { settings: r.obj(o['settings'], 'settings') } : {}) };
    }
    case 'generations':
      return {
        kind: 'generations',
        items: r.objs(o, 'items').map((it, i) => {
          const at = `items[${i}].`;
          return { model: r.str(it, 'model', at), prompt: r.str(it, 'prompt', at), text: r.str(it, 'text', at) };
        }),
      };
    case 'summary': {
      const rows = r.objs(o, 'rows').map((row, i) => {
        for (const [k, v] of Object.entries(row)) {
          if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) r.fail(`field 'rows[${i}].${k}' must be a string or a finite number`);
        }
        return row as Record<string, string | number>;
      });
      return { kind: 'summary', title: r.str(o, 'title'), rows };
    }
  }
}
