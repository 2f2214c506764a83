import type { Command } from 'commander';
import { loadModel, inspectModel } from '../../io/model-folder.js';
import { decodeMemory } from '../../model/memory.js';
import { preflight } from '../../util/memory.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { readGenerationDefaults, maxNewTokensFor } from '../../io/generation-config.js';
import { resolveChatTemplate, renderChat, templateTokens, encodeRendered, CHAT_PRESETS, type ChatMessage } from '../../io/chat-template.js';
import { LlamaRunner } from '../../model/llama.js';
import { generate } from '../../model/generate.js';
import { UserError } from '../../util/errors.js';
import { int, float, printJson } from '../options.js';
import { engineOptions, openLlamaCpp, type EngineOpts } from '../engine-options.js';

interface GenerateCli {
  model: string; prompt: string; maxNewTokens?: number; temperature: number; topK?: number; topP?: number; seed: number; json?: boolean;
  chat?: boolean; system?: string; chatTemplate?: string;
}

export function registerGenerate(program: Command): void {
  engineOptions(program.command('generate')
    .description('generate text from a prompt (greedy at temperature 0, else sampled); --chat for a chat model\'s reply')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--prompt <text>', 'prompt text (with --chat: the user\'s message)')
    .option('--max-new-tokens <n>', 'tokens to generate (default: generation_config.json\'s max_new_tokens or max_length, else 128)', int('--max-new-tokens'))
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', float('--temperature'), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass', float('--top-p'))
    .option('--seed <n>', 'sampling seed', int('--seed'), 0)
    .option('--chat', 'render the prompt as a user turn with the model\'s chat template and print the reply')
    .option('--system <text>', 'system message (with --chat)')
    .option('--chat-template <name|file>', `chat template instead of the folder's (${Object.keys(CHAT_PRESETS).join(', ')}, or a .jinja file)`)
    .option('--json', 'print {prompt, text, tokens, tokens_per_s} as JSON'), 'f32')
    .action(async (o: GenerateCli & EngineOpts) => {
      const tok = loadTokenizer(o.model);
      const defaults = readGenerationDefaults(o.model, tok);
      let prompt: number[];
      if (o.chat) {
        const template = resolveChatTemplate(o.model, o.chatTemplate);
        if (!template) throw new UserError(`${o.model} has no chat template (chat_template in tokenizer_config.json, or chat_template.jinja); pass --chat-template ${Object.keys(CHAT_PRESETS).join('|')}|FILE`);
        const tokens = templateTokens(o.model, tok);
        const messages: ChatMessage[] = [...(o.system !== undefined ? [{ role: 'system', content: o.system }] : []), { role: 'user', content: o.prompt }];
        prompt = encodeRendered(tok, renderChat(template, messages, { ...tokens, addGenerationPrompt: true }), tokens.bosToken);
      } else {
        if (o.system !== undefined || o.chatTemplate !== undefined) throw new UserError('--system and --chat-template need --chat');
        prompt = tok.encode(o.prompt, { addSpecialTokens: true });
      }
      const maxNewTokens = maxNewTokensFor(defaults, prompt.length, o.maxNewTokens);
      // The reply is what decoding prompt + reply adds to the decoded prompt (a chat reply without
      // the space that follows "ASSISTANT:").
      const base = tok.decode(prompt);
      const replyText = (ids: number[]): string => {
        const full = tok.decode([...prompt, ...ids]);
        const text = full.startsWith(base) ? full.slice(base.length) : tok.decode(ids);
        return o.chat ? text.trimStart() : text;
      };
      let printed = '';
      const acc: number[] = [];
      if (!o.json && !o.chat) process.stdout.write(o.prompt);
      const stream = o.json ? undefined : (t: number) => {
        // stream: print the newly decoded suffix
        acc.push(t);
        const text = replyText(acc);
        process.stdout.write(text.slice(printed.length));
        printed = text;
      };
      const settings = { maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stopIds: defaults.eosIds };
      let g: { tokens: number[]; prefillMs: number; decodeMs: number };
      if (o.engine === 'llama.cpp') {
        const engine = await openLlamaCpp(o.model, o, 'f32');
        g = await engine.generate(prompt, { ...settings, onToken: stream && ((_s, t) => stream(t)) });
        await engine.dispose();
      } else {
        const shape = inspectModel(o.model);
        preflight('generate', decodeMemory(shape.config, shape.weightBytes, { B: 1, prompt: prompt.length, newTokens: maxNewTokens }));
        const run = new LlamaRunner(loadModel(o.model));
        run.checkIds(Int32Array.from(prompt));
        const r = await generate(run, [prompt], { ...settings, onToken: stream && ((_s, t) => stream(t[0]!)) });
        g = { tokens: r.tokens[0]!, prefillMs: r.prefillMs, decodeMs: r.decodeMs };
      }
      const text = replyText(g.tokens);
      const tps = g.tokens.length / (g.decodeMs / 1000);
      if (o.json) printJson({ prompt: o.prompt, text, ids: g.tokens, tokens: g.tokens.length, prompt_tokens: prompt.length, prefill_ms: g.prefillMs, tokens_per_s: tps, engine: o.engine });
      else process.stdout.write(`\n`), process.stderr.write(`[${g.tokens.length} tokens, ${tps.toFixed(1)} tokens/s, ${o.engine}]\n`);
    });
}
