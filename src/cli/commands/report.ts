import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { guardOutput } from '../../io/output-guard.js';
import { buildReport } from '../../report/build.js';

export function registerReport(program: Command): void {
  program.command('report')
    .description('one self-contained HTML page (and a Markdown twin) from score / prune / train / eval / bench JSON')
    .argument('<inputs...>', 'JSON files or folders (searched recursively)')
    .requiredOption('--out <dir>', 'output folder (report.html, report.md, charts/)')
    .option('--title <text>', 'page title')
    .action(async (inputs: string[], o: { out: string; title?: string }) => {
      // results folders may hold their report; model folders and input files are never written into
      const isModel = (p: string) => fs.existsSync(path.join(p, 'config.json'));
      guardOutput(o.out, inputs.filter(isModel));
      guardOutput(o.out, inputs.filter((p) => !isModel(p)), '--out', true);
      const r = await buildReport({ inputs, out: o.out, ...(o.title ? { title: o.title } : {}) });
      process.stdout.write(`wrote ${r.html}\n      ${r.markdown}\n      ${r.charts.length} chart files\n`);
    });
}
