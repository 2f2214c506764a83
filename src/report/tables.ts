/**
 * The report's tables as plain rows of text, built once and rendered by both html.ts and
 * markdown.ts so the two pages always agree.
 */
import type { ScoreFile, PplFile, TrainFile, ZeroShotFile, BenchFile, SummaryFile, PruneFile, ZeroShotTaskResult } from './schemas.js';
import { displayModel, formatParams, pplSeries, removedBlocks, scoreSeriesNames } from './charts.js';

export interface Cell {
  text: string;
  /** hover text in HTML (e.g. the standard error) */
  title?: string;
  strong?: boolean;
}

export interface Table {
  caption?: string;
  head: string[];
  /** right-align numeric columns */
  numeric: boolean[];
  rows: Cell[][];
  notes?: string[];
}

const cell = (text: string | number, extra: Omit<Cell, 'text'> = {}): Cell => ({ text: String(text), ...extra });
const modelCell = (m: string): Cell => cell(displayModel(m), displayModel(m) === m ? {} : { title: m });
const fixed = (x: number | undefined, digits: number): Cell => cell(x === undefined ? '–' : x.toFixed(digits));

export function scoreTable(scores: ScoreFile[], prunes: PruneFile[]): Table {
  const names = scoreSeriesNames(scores);
  return {
    head: ['criterion', 'model', 'removal order (least important first)', 'removed'],
    numeric: [false, false, false, false],
    rows: scores.map((s, k) => {
      const removed = removedBlocks(s, prunes);
      return [cell(names[k]!, { strong: true }), modelCell(s.model), cell(s.order.join(', ')), cell(removed.length ? removed.join(', ') : '–')];
    }),
  };
}

/** Iterative pruning: one row per round of each iterative run. */
export function iterativeTable(prunes: PruneFile[]): Table {
  const runs = prunes.filter((p) => p.rounds?.length);
  return {
    head: ['model', 'criterion', 'round', 'removed (round numbering)', 'removed (original)', 'PPL after cut', 'PPL after retraining', 'retraining steps'],
    numeric: [false, false, true, false, false, true, true, true],
    rows: runs.flatMap((p) => p.rounds!.map((r) => [
      modelCell(p.model), cell(p.criterion), cell(r.round), cell(r.removed.join(', ')), cell(r.removedOriginal.join(', ')),
      fixed(r.pplAfterCut, 3), fixed(r.pplAfterRetrain, 3), cell(r.steps),
    ])),
    notes: ['Perplexity on the calibration set; each round re-scores the model the previous round retrained.'],
  };
}

export function pplTable(ppl: PplFile[]): Table {
  const sorted = [...ppl].sort((a, b) => a.dataset.localeCompare(b.dataset) || a.removedBlocks - b.removedBlocks || pplSeries(a).localeCompare(pplSeries(b)));
  return {
    head: ['model', 'label', 'criterion', 'retraining', 'removed blocks', 'dataset', 'PPL', 'NLL', 'tokens'],
    numeric: [false, false, false, false, true, false, true, true, true],
    rows: sorted.map((p) => [
      modelCell(p.model), cell(p.label), cell(p.criterion ?? '–'), cell(p.retraining ?? '–'), cell(p.removedBlocks), cell(p.dataset),
      fixed(p.ppl, 2), fixed(p.nll, 4), cell(p.tokens),
    ]),
  };
}

export function trainTable(runs: TrainFile[]): Table {
  return {
    head: ['run', 'method', 'steps', 'first loss', 'final loss', 'final val loss', 'best val loss'],
    numeric: [false, false, true, true, true, true, true],
    rows: runs.map((r) => {
      const vals = r.steps.map((s) => s.valLoss).filter((v): v is number => v !== undefined);
      const last = r.steps[r.steps.length - 1]!;
      return [
        cell(r.label, { strong: true }), cell(r.method), cell(last.step), fixed(r.steps[0]!.loss, 4), fixed(last.loss, 4),
        fixed(vals[vals.length - 1], 4), fixed(vals.length ? Math.min(...vals) : undefined, 4),
      ];
    }),
  };
}

/** The paper's zero-shot tasks, in its column order, with the metric it reports for each. */
export const ZEROSHOT_TASKS: { task: string; name: string; metric: 'acc' | 'acc_norm' }[] = [
  { task: 'boolq', name: 'BoolQ', metric: 'acc' },
  { task: 'piqa', name: 'PIQA', metric: 'acc' },
  { task: 'hellaswag', name: 'HellaSwag', metric: 'acc_norm' },
  { task: 'winogrande', name: 'WinoGrande', metric: 'acc' },
  { task: 'arc_easy', name: 'ARC-e', metric: 'acc' },
  { task: 'arc_challenge', name: 'ARC-c', metric: 'acc_norm' },
  { task: 'openbookqa', name: 'OBQA', metric: 'acc_norm' },
];

/** The paper's metric for a task (acc for tasks it does not list), falling back to acc. */
export function zeroShotMetric(task: string, r: ZeroShotTaskResult): { value: number; stderr: number; metric: string; fallback: boolean } {
  const want = ZEROSHOT_TASKS.find((t) => t.task === task)?.metric ?? 'acc';
  if (want === 'acc_norm' && r.acc_norm !== undefined) return { value: r.acc_norm, stderr: r.acc_norm_stderr ?? NaN, metric: 'acc_norm', fallback: false };
  return { value: r.acc, stderr: r.acc_stderr, metric: 'acc', fallback: want === 'acc_norm' };
}

/**
 * Accuracy (%) per task in the paper's columns (then any other tasks), plus the mean over the
 * columns. A row missing some column averages what it has and is marked.
 */
export function zeroShotTable(files: ZeroShotFile[]): Table {
  const present = new Set(files.flatMap((f) => Object.keys(f.results)));
  const tasks = [
    ...ZEROSHOT_TASKS.filter((t) => present.has(t.task)).map((t) => ({ task: t.task, name: t.name })),
    ...[...present].filter((t) => !ZEROSHOT_TASKS.some((z) => z.task === t)).sort().map((t) => ({ task: t, name: t })),
  ];
  let anyFallback = false, anyPartial = false;
  const rows = files.map((f) => {
    const cells: Cell[] = [cell(f.label ?? displayModel(f.model), { strong: true, ...(f.label ? {} : { title: f.model }) })];
    const vals: number[] = [];
    for (const t of tasks) {
      const r = f.results[t.task];
      if (!r) { cells.push(cell('–')); continue; }
      const m = zeroShotMetric(t.task, r);
      anyFallback ||= m.fallback;
      vals.push(m.value);
      const stderr = Number.isFinite(m.stderr) ? `, stderr ${(100 * m.stderr).toFixed(2)}` : '';
      cells.push(cell(`${(100 * m.value).toFixed(2)}${m.fallback ? '†' : ''}`, { title: `${m.metric}${stderr}` }));
    }
    const partial = vals.length < tasks.length;
    anyPartial ||= partial;
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    cells.push(cell(`${(100 * mean).toFixed(2)}${partial ? '*' : ''}`, { strong: true }));
    return cells;
  });
  const notes = [`Accuracy (%). Metric per task as in the paper: acc_norm for HellaSwag, ARC-c and OBQA, acc otherwise.`];
  if (anyFallback) notes.push('† acc_norm missing, acc shown.');
  if (anyPartial) notes.push('* mean over the tasks this row has.');
  return {
    head: ['model', ...tasks.map((t) => t.name), 'Mean'],
    numeric: [false, ...tasks.map(() => true), true],
    rows,
    notes,
  };
}

export function benchTable(bench: BenchFile[]): Table {
  const rows: Cell[][] = [];
  for (const b of bench) {
    for (const m of b.models) {
      for (const r of [...m.results].sort((x, y) => x.batch - y.batch)) {
        rows.push([
          cell(m.name, { strong: true }), cell(formatParams(m.params)), cell(r.batch), cell(`${r.latencyMs.toFixed(1)} ± ${r.latencyStd.toFixed(1)}`),
          fixed(r.tokensPerSec, 1), fixed(r.prefillMs, 1), fixed(r.peakMemMB, 0),
        ]);
      }
    }
  }
  return {
    head: ['model', 'params', 'batch', 'latency (ms)', 'tokens/s', 'prefill (ms)', 'peak mem (MB)'],
    numeric: [false, true, true, true, true, true, true],
    rows,
  };
}

export function summaryTable(s: SummaryFile): Table {
  const keys: string[] = [];
  for (const row of s.rows) for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
  return {
    caption: s.title,
    head: keys,
    numeric: keys.map((k) => s.rows.every((r) => r[k] === undefined || typeof r[k] === 'number')),
    rows: s.rows.map((r) => keys.map((k) => cell(r[k] === undefined ? '–' : r[k]!))),
  };
}

/** "k=v, k=v" for settings objects shown under a section. */
export function formatSettings(settings: Record<string, unknown>): string {
  return Object.entries(settings).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
}
