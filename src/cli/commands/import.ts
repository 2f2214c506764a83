import type { Command } from 'commander';
import { importLlama2c } from '../../io/llama2c.js';

export function registerImport(program: Command): void {
  const imp = program.command('import').description('convert other checkpoint formats to Hugging Face folders');
  imp.command('llama2c')
    .description('a llama2.c checkpoint and its tokenizer.bin -> Hugging Face folder')
    .requiredOption('--model <file>', 'llama2.c checkpoint (.bin)')
    .requiredOption('--tokenizer <file>', 'llama2.c tokenizer.bin')
    .requiredOption('--out <dir>', 'output folder')
    .option('--force', 'replace an existing output folder')
    .action((o: { model: string; tokenizer: string; out: string; force?: boolean }) => {
      const r = importLlama2c({ model: o.model, tokenizer: o.tokenizer, out: o.out, force: o.force });
      process.stdout.write(`wrote ${o.out} (${r.params.toLocaleString('en-US')} parameters, ${String(r.config['num_hidden_layers'])} layers)\n`);
    });
}
