/**
 * What the report says, independent of the page format: an ordered list of sections, each with
 * charts (still specs), tables, notes and sample generations. A section exists only when inputs
 * of its kind do.
 */
import type { ReportData } from './inputs.js';
import { type ChartSpec, importanceChart, pplChart, lossChart, latencyChart, throughputChart } from './charts.js';
import { type Table, scoreTable, iterativeTable, pplTable, trainTable, zeroShotTable, benchTable, summaryTable, formatSettings } from './tables.js';

export interface GenerationGroup {
  prompt: string;
  outputs: { model: string; text: string }[];
}

export interface Section {
  /** anchor in the HTML page */
  id: string;
  title: string;
  /** plain-text paragraphs shown under the heading */
  notes: string[];
  charts: ChartSpec[];
  tables: Table[];
  generations: GenerationGroup[];
}

/** One line when every run used the same settings, else one line per run. */
function distinctSettings(runs: [string, Record<string, unknown> | undefined][], what: string): string[] {
  const given = runs.filter((r): r is [string, Record<string, unknown>] => !!r[1] && Object.keys(r[1]).length > 0);
  if (given.length === 0) return [];
  const texts = given.map(([, s]) => formatSettings(s));
  if (given.length === runs.length && new Set(texts).size === 1) return [`${what}: ${texts[0]}.`];
  return given.map(([name], i) => `${what} (${name}): ${texts[i]}.`);
}

export function buildSections(data: ReportData): Section[] {
  const sections: Section[] = [];
  const add = (s: Partial<Section> & Pick<Section, 'id' | 'title'>): void => {
    sections.push({ notes: [], charts: [], tables: [], generations: [], ...s });
  };

  if (data.summary.length) add({ id: 'summary', title: 'Summary', tables: data.summary.map(summaryTable) });

  if (data.score.length) {
    const settings = distinctSettings(data.score.map((s) => [s.criterion, s.settings]), 'Scoring settings');
    add({
      id: 'importance', title: 'Block importance',
      notes: ['Importance of each transformer block under each criterion; the blocks removed first are the least important.', ...settings],
      charts: [importanceChart(data.score, data.prune)],
      tables: [scoreTable(data.score, data.prune)],
    });
  }

  if (data.prune.some((p) => p.rounds?.length)) {
    add({ id: 'iterative', title: 'Iterative pruning', notes: ['Blocks removed a round at a time, with retraining between rounds.'], tables: [iterativeTable(data.prune)] });
  }

  if (data.ppl.length) {
    add({
      id: 'perplexity', title: 'Perplexity',
      notes: ['Perplexity as blocks are removed, one line per criterion and retraining; the original model starts every line.'],
      charts: [pplChart(data.ppl)],
      tables: [pplTable(data.ppl)],
    });
  }

  if (data.train.length) {
    const settings = distinctSettings(data.train.map((t) => [t.label, t.settings]), 'Training settings');
    add({ id: 'training', title: 'Retraining', notes: settings, charts: [lossChart(data.train)], tables: [trainTable(data.train)] });
  }

  if (data.zeroshot.length) add({ id: 'zeroshot', title: 'Zero-shot accuracy', tables: [zeroShotTable(data.zeroshot)] });

  if (data.bench.length) {
    const settings = distinctSettings(data.bench.map((b, i) => [`run ${i + 1}`, b.settings]), 'Benchmark settings');
    add({
      id: 'speed', title: 'Inference speed',
      notes: settings,
      charts: [latencyChart(data.bench), throughputChart(data.bench)],
      tables: [benchTable(data.bench)],
    });
  }

  if (data.generations.length) {
    const groups: GenerationGroup[] = [];
    for (const it of data.generations.flatMap((g) => g.items)) {
      let g = groups.find((x) => x.prompt === it.prompt);
      if (!g) groups.push(g = { prompt: it.prompt, outputs: [] });
      g.outputs.push({ model: it.model, text: it.text });
    }
    add({ id: 'generations', title: 'Sample generations', generations: groups });
  }
  return sections;
}

/** A chart after rendering: the SVG text and where its files go, relative to the report folder. */
export interface RenderedChart {
  name: string;
  title: string;
  svg: string;
  svgFile: string;
  pngFile: string;
}

/** Everything a page renderer needs. */
export interface ReportDoc {
  title: string;
  /** ISO time the report was built */
  generated: string;
  /** the input files used */
  inputs: string[];
  sections: Section[];
  charts: Map<string, RenderedChart>;
}
