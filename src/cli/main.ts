/**
 * `shorten`: the command-line entry. Every user-facing failure prints one line on stderr and exits
 * non-zero; set SHORTENED_DEBUG=1 to see stack traces.
 */
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { UserError } from '../util/errors.js';
import { registerGenerate } from './commands/generate.js';
import { registerPpl } from './commands/ppl.js';
import { registerImport } from './commands/import.js';
import { registerScore, registerPrune } from './commands/prune.js';
import { registerPruneWidth } from './commands/prune-width.js';
import { registerBench } from './commands/bench.js';
import { registerTrain } from './commands/train.js';
import { registerEval } from './commands/eval.js';
import { registerReport } from './commands/report.js';
import { registerExport } from './commands/export.js';

// SHORTENED_PEAK_FILE: write this process's peak resident memory there at exit (bench:scale reads it)
const peakFile = process.env['SHORTENED_PEAK_FILE'];
if (peakFile) process.on('exit', () => fs.writeFileSync(peakFile, JSON.stringify({ peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n'));

const program = new Command();
program.name('shorten').description('Depth pruning for LLaMA-family models (Shortened LLaMA)').version('0.1.0')
  .showHelpAfterError().exitOverride()
  // before the command: the backend reads it when it first runs a product
  .addOption(new Option('--compute <mode>', 'arithmetic of products with bf16 weights: f32 rounds nothing; bf16 rounds the activations to bf16 as PyTorch bf16 does, 3-4x faster on CPUs with AMX-BF16 (refused elsewhere)')
    .choices(['f32', 'bf16']).env('SHORTENED_COMPUTE'))
  .hook('preAction', (cmd) => {
    const c = (cmd.opts() as { compute?: string }).compute;
    if (c) process.env['SHORTENED_COMPUTE'] = c;
  });
registerImport(program);
registerGenerate(program);
registerPpl(program);
registerScore(program);
registerPrune(program);
registerPruneWidth(program);
registerBench(program);
registerTrain(program);
registerEval(program);
registerReport(program);
registerExport(program);

function fail(e: unknown): never {
  if (process.env['SHORTENED_DEBUG'] === '1') console.error(e);
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`error: ${msg.split('\n')[0]}\n`);
  process.exit(e instanceof UserError ? 1 : 2);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  fail(e);
}
