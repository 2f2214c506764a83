import type { Command } from 'commander';
import { loadModel } from '../../io/model-folder.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { LlamaRunner } from '../../model/llama.js';
import { generate } from '../../model/generate.js';
import { int, float, printJson } from '../options.js';
import { engineOptions, openLlamaCpp, type EngineOpts } from '../engine-options.js';

export function registerGenerate(program: Command): void {
  engineOptions(program.command('generate')
    .description('generate text from a prompt (greedy at temperature 0, else sampled)')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--max-new-tokens <n>', 'tokens to generate', int('--max-new-tokens'), 128)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', float('--temperature'), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass', float('--top-p'))
    .option('--seed <n>', 'sampling seed', int('--seed'), 0)
    .option('--json', 'print {prompt, text, tokens, tokens_per_s} as JSON'), 'f32')
    .action(async (o: EngineOpts & { model: string; prompt: string; maxNewTokens: number; temperature: number; topK?: number; topP?: number; seed: number; json?: boolean }) => {
      const tok = loadTokenizer(o.model);
      const prompt = tok.encode(o.prompt, { addSpecialTokens: true });
      const stop = tok.eosId !== null ? [tok.eosId] : [];
      let printed = '';
      const acc: number[] = [];
      if (!o.json) process.stdout.write(o.prompt);
      const stream = o.json ? undefined : (t: number) => {
        // stream: print the newly decoded suffix
        acc.push(t);
        const text = tok.decode([...prompt, ...acc]).slice(o.prompt.length);
        process.stdout.write(text.slice(printed.length));
        printed = text;
      };
      const settings = { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stopIds: stop };
      let g: { tokens: number[]; prefillMs: number; decodeMs: number };
      if (o.engine === 'llama.cpp') {
        const engine = await openLlamaCpp(o.model, o, 'f32');
        g = await engine.generate(prompt, { ...settings, onToken: stream && ((_s, t) => stream(t)) });
        await engine.dispose();
      } else {
        const r = await generate(new LlamaRunner(loadModel(o.model)), [prompt], { ...settings, onToken: stream && ((_s, t) => stream(t[0]!)) });
        g = { tokens: r.tokens[0]!, prefillMs: r.prefillMs, decodeMs: r.decodeMs };
      }
      const text = tok.decode([...prompt, ...g.tokens]).slice(o.prompt.length);
      const tps = g.tokens.length / (g.decodeMs / 1000);
      if (o.json) printJson({ prompt: o.prompt, text, ids: g.tokens, tokens: g.tokens.length, prefill_ms: g.prefillMs, tokens_per_s: tps, engine: o.engine });
      else process.stdout.write(`\n`), process.stderr.write(`[${g.tokens.length} tokens, ${tps.toFixed(1)} tokens/s, ${o.engine}]\n`);
    });
}
