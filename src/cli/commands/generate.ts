import type { Command } from 'commander';
import { loadModel } from '../../io/model-folder.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { LlamaRunner } from '../../model/llama.js';
import { generate } from '../../model/generate.js';
import { int, float, printJson } from '../options.js';

export function registerGenerate(program: Command): void {
  program.command('generate')
    .description('generate text from a prompt (greedy at temperature 0, else sampled)')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--max-new-tokens <n>', 'tokens to generate', int('--max-new-tokens'), 128)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', float('--temperature'), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass', float('--top-p'))
    .option('--seed <n>', 'sampling seed', int('--seed'), 0)
    .option('--json', 'print {prompt, text, tokens, tokens_per_s} as JSON')
    .action(async (o: { model: string; prompt: string; maxNewTokens: number; temperature: number; topK?: number; topP?: number; seed: number; json?: boolean }) => {
      const model = loadModel(o.model);
      const tok = loadTokenizer(o.model);
      const run = new LlamaRunner(model);
      const prompt = tok.encode(o.prompt, { addSpecialTokens: true });
      const stop = tok.eosId !== null ? [tok.eosId] : [];
      let printed = '';
      const acc: number[] = [];
      if (!o.json) process.stdout.write(o.prompt);
      const g = await generate(run, [prompt], {
        maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stopIds: stop,
        onToken: o.json ? undefined : (_s, t) => {
          // stream: print the newly decoded suffix
          acc.push(t[0]!);
          const text = tok.decode([...prompt, ...acc]).slice(o.prompt.length);
          process.stdout.write(text.slice(printed.length));
          printed = text;
        },
      });
      const text = tok.decode([...prompt, ...g.tokens[0]!]).slice(o.prompt.length);
      const tps = g.tokens[0]!.length / (g.decodeMs / 1000);
      if (o.json) printJson({ prompt: o.prompt, text, tokens: g.tokens[0]!.length, prefill_ms: g.prefillMs, tokens_per_s: tps });
      else process.stdout.write(`\n`), process.stderr.write(`[${g.tokens[0]!.length} tokens, ${tps.toFixed(1)} tokens/s]\n`);
    });
}
