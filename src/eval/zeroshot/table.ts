/**
 * The paper's zero-shot table: one row per task with the metric the paper reports for it
 * (acc for BoolQ, PIQA, WinoGrande, ARC-e; acc_norm for HellaSwag, ARC-c, OpenBookQA), then
 * their mean. Values are percentages, as in the paper.
 */
import type { ZeroshotResults } from './run.js';

function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : (100 * x).toFixed(2);
}

export function formatZeroshotTable(res: ZeroshotResults): string {
  const rows: string[][] = [['Task', 'Metric', 'Value', '', 'Stderr', 'N']];
  for (const [task, m] of Object.entries(res.results)) {
    const metric = res.paper.metrics[task] ?? 'acc';
    const value = metric === 'acc_norm' ? m.acc_norm : m.acc;
    const stderr = metric === 'acc_norm' ? m.acc_norm_stderr : m.acc_stderr;
    rows.push([task, metric, pct(value), '±', pct(stderr), String(res['n-samples'][task]?.effective ?? '')]);
  }
  rows.push(['Mean', '', pct(res.paper.mean), '', '', '']);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  // text columns left-aligned, numbers right-aligned
  const line = (r: string[]): string => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const body = rows.slice(1, -1).map(line);
  return [line(rows[0]!), rule, ...body, rule, line(rows[rows.length - 1]!)].join('\n') + '\n';
}
