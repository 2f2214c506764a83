/**
 * What a model folder says about generating: the ids that end a reply and the default length.
 * eos ids are the union of generation_config.json's eos_token_id, config.json's and the
 * tokenizer's EOS (each a number or a list: Llama 3 Instruct stops on <|end_of_text|> and
 * <|eot_id|>). The length is generation_config's max_new_tokens, or max_length minus the prompt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJson } from './model-folder.js';
import type { TextTokenizer } from './tokenizer.js';
import { UserError } from '../util/errors.js';

export interface GenerationDefaults {
  eosIds: number[];
  maxNewTokens: number | null;
  /** prompt + generated tokens, when the folder gives max_length instead */
  maxLength: number | null;
}

const ids = (v: unknown): number[] => (typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []);
const positive = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);

export function readGenerationDefaults(dir: string, tok?: TextTokenizer): GenerationDefaults {
  const genFile = path.join(dir, 'generation_config.json'), cfgFile = path.join(dir, 'config.json');
  const gen = fs.existsSync(genFile) ? readJson(genFile) : {};
  const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const eos = [...ids(gen['eos_token_id']), ...ids(cfg['eos_token_id']), ...(tok?.eosId !== null && tok?.eosId !== undefined ? [tok.eosId] : [])];
  return { eosIds: [...new Set(eos)], maxNewTokens: positive(gen['max_new_tokens']), maxLength: positive(gen['max_length']) };
}

/** Tokens to generate: the flag, else the folder's max_new_tokens or max_length, else `fallback`. */
export function maxNewTokensFor(d: GenerationDefaults, promptLength: number, flag: number | undefined, fallback = 128): number {
  if (flag !== undefined) return flag;
  if (d.maxNewTokens !== null) return d.maxNewTokens;
  if (d.maxLength !== null) {
    if (d.maxLength <= promptLength) throw new UserError(`the prompt has ${promptLength} tokens, generation_config.json's max_length is ${d.maxLength}; pass --max-new-tokens`);
    return d.maxLength - promptLength;
  }
  return fallback;
}
