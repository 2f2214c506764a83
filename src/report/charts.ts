/**
 * The report's charts as vega-lite specs, one function per chart, from validated inputs. Pure
 * data -> spec: rendering lives in render.ts.
 */
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Sourced } from './inputs.js';
import type { ScoreFile, PruneFile, PplFile, TrainFile, BenchFile } from './schemas.js';
import { FONT_STACK } from './render.js';

export interface ChartSpec {
  /** file stem under charts/ */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

type Config = NonNullable<TopLevelSpec['config']>;

const REMOVED = '#e45756';
const STATUS_COLORS: Record<string, string> = { kept: '#4c78a8', removed: REMOVED, 'not scored': '#c7c7c7' };

const CONFIG: Config = {
  font: FONT_STACK,
  background: 'white',
  padding: 10,
  title: { fontSize: 15, anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320, titleLimit: 320 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

// ---- per-block importance ---------------------------------------------------------------------

/**
 * Scores mapped to [0, 1] with 1 = most important, so criteria of different units and directions
 * share an axis. Scores spanning more than two decades (ppl criterion: removing block 0 is
 * catastrophic) are log-scaled first, or every other bar would be flat. null (a block SLEB never
 * removed) counts as most important.
 */
export function normalizeImportance(scores: (number | null)[], order: number[]): number[] {
  const finite = scores.filter((x): x is number => x !== null);
  const useLog = finite.every((x) => x > 0) && Math.max(...finite) / Math.min(...finite) > 100;
  const v = scores.map((x) => (x === null ? null : useLog ? Math.log(x) : x));
  const fv = v.filter((x): x is number => x !== null);
  const lo = Math.min(...fv), hi = Math.max(...fv);
  const mean = fv.reduce((a, b) => a + b, 0) / fv.length;
  // `order` starts with the least important block; if it scores above average, high = unimportant.
  const first = v[order[0]!];
  const flip = first !== null && first !== undefined && first > mean;
  return v.map((x) => {
    if (x === null) return 1;
    const n = hi > lo ? (x - lo) / (hi - lo) : 1;
    return flip ? 1 - n : n;
  });
}

/** Producers write models as absolute folders: show the folder name; hub ids stay as they are. */
export function displayModel(model: string): string {
  return /^(\/|\.{1,2}[\\/]|[A-Za-z]:\\)/.test(model) ? path.basename(model.replace(/[\\/]+$/, '')) : model;
}

/** Blocks highlighted as removed: the score file's own pick, else the largest matching prune. */
export function removedBlocks(score: ScoreFile, prunes: PruneFile[]): number[] {
  if (score.removed) return score.removed;
  const match = prunes.filter((p) => p.model === score.model && p.criterion === score.criterion && p.numBlocks === score.scores.length);
  match.sort((a, b) => b.removed.length - a.removed.length);
  return match[0]?.removed ?? [];
}

/** Facet names: the criterion, prefixed by the model when several models were scored; unique. */
export function scoreSeriesNames(scores: ScoreFile[]): string[] {
  const multiModel = new Set(scores.map((s) => s.model)).size > 1;
  const names: string[] = [];
  for (const s of scores) {
    const base = multiModel ? `${displayModel(s.model)} · ${s.criterion}` : s.criterion;
    let name = base;
    for (let k = 2; names.includes(name); k++) name = `${base} (${k})`;
    names.push(name);
  }
  return names;
}

export function importanceChart(scores: Sourced<ScoreFile>[], prunes: PruneFile[]): ChartSpec {
  const names = scoreSeriesNames(scores);
  const rows: Record<string, string | number>[] = [];
  let anyRemoved = false;
  scores.forEach((s, k) => {
    const norm = normalizeImportance(s.scores, s.order);
    const removed = removedBlocks(s, prunes);
    anyRemoved ||= removed.length > 0;
    s.scores.forEach((raw, block) => {
      const r = removed.indexOf(block);
      // Label removed blocks with their pick number, in removal order when the order covers them.
      const rank = s.order.indexOf(block);
      rows.push({
        series: names[k]!, block, importance: norm[block]!, score: raw === null ? 'not finite' : raw,
        status: r >= 0 ? 'removed' : raw === null ? 'not scored' : 'kept', pick: r >= 0 ? String(rank >= 0 ? rank + 1 : r + 1) : '',
      });
    });
  });
  const statuses = Object.keys(STATUS_COLORS).filter((st) => rows.some((r) => r['status'] === st));
  const sameBlocks = new Set(scores.map((s) => s.scores.length)).size === 1;
  const x = { field: 'block', type: 'ordinal', title: 'block', axis: { labelAngle: 0, labelOverlap: 'parity' } } as const;
  const y = { field: 'importance', type: 'quantitative' as const, title: 'importance', scale: { domain: [0, 1] }, axis: { tickCount: 3 } };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Per-block importance',
      subtitle: `normalized per criterion (1 = most important)${anyRemoved ? '; red = removed, numbers = removal order' : ''}${statuses.includes('not scored') ? '; grey = not scored (never a removal candidate)' : ''}`,
    },
    data: { values: rows },
    facet: { row: { field: 'series', type: 'nominal', sort: names, title: null, header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top', labelFontWeight: 'bold' } } },
    spec: {
      width: { step: 16 },
      height: 90,
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x, y,
            color: { field: 'status', type: 'nominal', scale: { domain: statuses, range: statuses.map((st) => STATUS_COLORS[st]) }, legend: statuses.length > 1 ? { title: null, orient: 'top' } : null },
            tooltip: [{ field: 'series', title: 'criterion' }, { field: 'block' }, { field: 'score', format: '.4g' }, { field: 'status' }],
          },
        },
        {
          transform: [{ filter: "datum.status === 'removed'" }],
          mark: { type: 'text', dy: -7, fontSize: 10, fontWeight: 'bold', color: REMOVED },
          encoding: { x, y, text: { field: 'pick' } },
        },
      ],
    },
    ...(sameBlocks ? {} : { resolve: { scale: { x: 'independent' } } }),
    config: CONFIG,
  };
  return { name: 'importance', title: 'Per-block importance', spec };
}

// ---- perplexity vs removed blocks -------------------------------------------------------------

/**
 * Round tick values (1-1.5-2-3-5-7 x 10^k) inside [lo, hi]: a log axis with only powers of ten
 * leaves a typical perplexity range (12 to 120) with one or two labels.
 */
export function logTicks(lo: number, hi: number): number[] {
  const steps = [[1, 1.5, 2, 3, 5, 7], [1, 2, 5], [1, 3], [1]];
  for (const mantissas of steps) {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mantissas) {
        const t = +(m * 10 ** e).toPrecision(3);
        if (t >= lo && t <= hi) ticks.push(t);
      }
    }
    if (ticks.length <= 10 || mantissas.length === 1) return ticks;
  }
  return [];
}

/** Line name for a ppl point: its criterion and retraining ("taylor + lora"). */
export function pplSeries(p: PplFile): string {
  const base = p.criterion ?? p.label;
  return p.retraining && p.retraining !== 'none' ? `${base} + ${p.retraining}` : base;
}

export function pplChart(ppl: PplFile[]): ChartSpec {
  // The unpruned model (0 blocks, no criterion) starts every line on its dataset.
  const isBase = (p: PplFile): boolean => p.removedBlocks === 0 && p.criterion === undefined;
  const rows: Record<string, string | number>[] = [];
  const datasets = [...new Set(ppl.map((p) => p.dataset))];
  for (const d of datasets) {
    const here = ppl.filter((p) => p.dataset === d);
    const series = [...new Set(here.filter((p) => !isBase(p)).map(pplSeries))];
    for (const p of here) {
      const targets = isBase(p) ? (series.length > 0 ? series : ['original']) : [pplSeries(p)];
      for (const s of targets) rows.push({ series: s, dataset: d, removed: p.removedBlocks, ppl: p.ppl, label: p.label, model: displayModel(p.model) });
    }
  }
  const values = ppl.map((p) => p.ppl).filter((v) => v > 0);
  const lo = Math.min(...values), hi = Math.max(...values);
  // Log scale once pruning multiplies perplexity; a narrow range reads better on a linear one.
  const ticks = logTicks(lo / 1.1, hi * 1.1);
  const y = hi / lo < 3
    ? { field: 'ppl', type: 'quantitative', title: 'perplexity', scale: { zero: false } }
    : {
      field: 'ppl', type: 'quantitative', title: 'perplexity (log scale)', scale: { type: 'log', domain: [lo / 1.1, hi * 1.1], nice: false },
      axis: ticks.length >= 3 ? { values: ticks, format: '~g' } : { format: '~g' },
    };
  const unit: Record<string, unknown> = {
    width: 420,
    height: 260,
    mark: { type: 'line', point: { size: 45 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'removed', type: 'quantitative', title: 'removed blocks', axis: { tickMinStep: 1, format: 'd' } },
      y,
      color: { field: 'series', type: 'nominal', title: 'criterion / retraining' },
      tooltip: [{ field: 'label' }, { field: 'model' }, { field: 'removed' }, { field: 'ppl', format: '.3f' }],
    },
  };
  const title = datasets.length === 1 ? `Perplexity on ${datasets[0]} vs removed blocks` : 'Perplexity vs removed blocks';
  const spec = (datasets.length === 1
    ? { title, data: { values: rows }, ...unit, config: CONFIG }
    : {
      title, data: { values: rows },
      facet: { column: { field: 'dataset', type: 'nominal', title: null, header: { labelFontWeight: 'bold' } } },
      spec: unit, resolve: { scale: { y: 'independent' } }, config: CONFIG,
    }) as TopLevelSpec;
  return { name: 'ppl', title: 'Perplexity vs removed blocks', spec };
}

// ---- training loss ----------------------------------------------------------------------------

export function lossChart(runs: TrainFile[]): ChartSpec {
  const rows: Record<string, string | number>[] = [];
  const names = runs.map((r) => (runs.filter((q) => q.label === r.label).length > 1 ? `${r.label} (${r.method})` : r.label));
  runs.forEach((r, k) => {
    for (const s of r.steps) {
      rows.push({ run: names[k]!, step: s.step, loss: s.loss, split: 'train' });
      if (s.valLoss !== undefined) rows.push({ run: names[k]!, step: s.step, loss: s.valLoss, split: 'validation' });
    }
  });
  const hasVal = rows.some((r) => r['split'] === 'validation');
  const spec: TopLevelSpec = {
    title: { text: 'Retraining loss', ...(hasVal ? { subtitle: 'solid = train, dashed = validation' } : {}) },
    data: { values: rows },
    width: 460,
    height: 260,
    mark: { type: 'line', strokeWidth: 1.8 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run' },
      ...(hasVal ? { strokeDash: { field: 'split', type: 'nominal', title: 'split', scale: { domain: ['train', 'validation'], range: [[1, 0], [6, 4]] } } } : {}),
      detail: { field: 'split' },
      tooltip: [{ field: 'run' }, { field: 'split' }, { field: 'step' }, { field: 'loss', format: '.4f' }],
    },
    config: CONFIG,
  };
  return { name: 'loss', title: 'Retraining loss', spec };
}

// ---- speed ------------------------------------------------------------------------------------

/** 6738415616 -> "6.74B" */
export function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function benchRows(bench: BenchFile[]): { rows: Record<string, string | number>[]; batches: number[] } {
  const rows: Record<string, string | number>[] = [];
  const models = bench.flatMap((b) => b.models);
  const names: string[] = [];
  for (const m of models) {
    let name = `${m.name} (${formatParams(m.params)})`;
    for (let k = 2; names.includes(name); k++) name = `${m.name} (${formatParams(m.params)}) #${k}`;
    names.push(name);
    for (const r of m.results) {
      rows.push({ model: name, batch: r.batch, latency: r.latencyMs, lo: Math.max(0, r.latencyMs - r.latencyStd), hi: r.latencyMs + r.latencyStd, std: r.latencyStd, throughput: r.tokensPerSec });
    }
  }
  const batches = [...new Set(rows.map((r) => r['batch'] as number))].sort((a, b) => a - b);
  return { rows, batches };
}

function speedSpec(bench: BenchFile[], title: string, field: 'latency' | 'throughput', yTitle: string): TopLevelSpec {
  const { rows, batches } = benchRows(bench);
  const x = { field: 'batch', type: 'quantitative', title: 'batch size (log scale)', scale: { type: 'log', base: 2 }, axis: { values: batches, format: 'd' } } as const;
  const color = { field: 'model', type: 'nominal', title: 'model' } as const;
  const line = {
    mark: { type: 'line', point: { size: 45 }, strokeWidth: 2 },
    encoding: {
      x, color,
      y: { field, type: 'quantitative', title: yTitle },
      tooltip: [{ field: 'model' }, { field: 'batch' }, { field: 'latency', title: 'latency ms', format: '.1f' }, { field: 'std', title: '± ms', format: '.1f' }, { field: 'throughput', title: 'tokens/s', format: '.1f' }],
    },
  } as const;
  // Latency gets ±1 std error bars; throughput has no spread in the schema.
  const bars = { mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, color, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } } as const;
  return {
    title: field === 'latency' ? { text: title, subtitle: 'error bars: ±1 std over repeats' } : title,
    data: { values: rows },
    width: 380,
    height: 260,
    layer: field === 'latency' ? [bars, line] : [line],
    config: CONFIG,
  } as TopLevelSpec;
}

export function latencyChart(bench: BenchFile[]): ChartSpec {
  return { name: 'latency', title: 'Latency vs batch size', spec: speedSpec(bench, 'Latency vs batch size', 'latency', 'latency (ms)') };
}

export function throughputChart(bench: BenchFile[]): ChartSpec {
  return { name: 'throughput', title: 'Throughput vs batch size', spec: speedSpec(bench, 'Throughput vs batch size', 'throughput', 'throughput (tokens/s)') };
}
