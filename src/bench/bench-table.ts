/** The `shorten bench` results as a Markdown table, and the batch-1 bandwidth bound lines. */
import type { GenBenchModel } from './generation.js';

function fmtParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(3)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

function f(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

/** One row per (model, batch); speedups against the first model at the same batch size. */
export function benchMarkdown(models: GenBenchModel[]): string {
  const base = models[0];
  const lines = [
    '| model | params | batch | latency ms (± std) | tokens/s | decode tokens/s | decode speedup | prefill ms | peak RSS MB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of models) {
    for (const r of m.results) {
      const b = base?.results.find((x) => x.batch === r.batch);
      const speedup = b ? r.decodeTokensPerSec / b.decodeTokensPerSec : NaN;
      lines.push(`| ${m.name} | ${fmtParams(m.params)} | ${r.batch} | ${f(r.latencyMs)} ± ${f(r.latencyStd)} | ${f(r.tokensPerSec, 2)} | ${f(r.decodeTokensPerSec, 2)} | ${f(speedup, 2)}× | ${f(r.prefillMs)} | ${f(r.peakMemMB, 0)} |`);
    }
  }
  return lines.join('\n') + '\n';
}

export interface BoundRow {
  name: string;
  /** measured decode tokens/s at batch 1 */
  measured: number;
  /** bandwidth / stored weight bytes per token */
  bound: number;
  /** bandwidth / bytes this engine moves per token (16-bit weights widened to f32 per GEMM) */
  engineBound: number;
  weightMB: number;
}

export function boundMarkdown(rows: BoundRow[], gbPerSec: number): string {
  const lines = [
    `Copy bandwidth ${gbPerSec.toFixed(1)} GB/s (read + write). Bound = bandwidth / bytes of weights read per decoded token.`,
    '',
    '| model | weights read / token (MB) | decode tokens/s (batch 1) | bound tokens/s | % of bound | engine-traffic bound tokens/s |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) lines.push(`| ${r.name} | ${r.weightMB.toFixed(0)} | ${r.measured.toFixed(3)} | ${r.bound.toFixed(2)} | ${(100 * r.measured / r.bound).toFixed(1)}% | ${r.engineBound.toFixed(2)} |`);
  return lines.join('\n') + '\n';
}
