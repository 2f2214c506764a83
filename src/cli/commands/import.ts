import type { Command } from 'commander';
import { importLlama2c } from '../../io/llama2c.js';
import { CHAT_PRESETS } from '../../io/chat-template.js';

export function registerImport(program: Command): void {
  const imp = program.command('import').description('convert other checkpoint formats to Hugging Face folders');
  imp.command('llama2c')
    .description('a llama2.c checkpoint and its tokenizer (tokenizer.bin or SentencePiece .model) -> Hugging Face folder')
    .requiredOption('--model <file>', 'llama2.c checkpoint (.bin)')
    .requiredOption('--tokenizer <file>', 'llama2.c tokenizer.bin, or the SentencePiece tokenizer.model it came from')
    .requiredOption('--out <dir>', 'output folder')
    .option('--chat-template <name|file>', `chat template to store in tokenizer_config.json (${Object.keys(CHAT_PRESETS).join(', ')}, or a .jinja file)`)
    .option('--force', 'replace an existing output folder')
    .action((o: { model: string; tokenizer: string; out: string; chatTemplate?: string; force?: boolean }) => {
      const r = importLlama2c({ model: o.model, tokenizer: o.tokenizer, out: o.out, force: o.force, chatTemplate: o.chatTemplate });
      process.stdout.write(`wrote ${o.out} (${r.params.toLocaleString('en-US')} parameters, ${String(r.config['num_hidden_layers'])} layers)\n`);
    });
}
