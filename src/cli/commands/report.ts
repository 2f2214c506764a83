import type { Command } from 'commander';
import { buildReport } from '../../report/build.js';

export function registerReport(program: Command): void {
  program.command('report')
    .description('one self-contained HTML page (and a Markdown twin) from score / prune / train / eval / bench JSON')
    .argument('<inputs...>', 'JSON files or folders (searched recursively)')
    .requiredOption('--out <dir>', 'output folder (report.html, report.md, charts/)')
    .option('--title <text>', 'page title')
    .action(async (inputs: string[], o: { out: string; title?: string }) => {
      const r = await buildReport({ inputs, out: o.out, ...(o.title ? { title: o.title } : {}) });
      process.stdout.write(`wrote ${r.html}\n      ${r.markdown}\n      ${r.charts.length} chart files\n`);
    });
}
