/**
 * Tokenizers from a model folder's tokenizer.json (+ tokenizer_config.json), through
 * @huggingface/tokenizers (a maintained pure-JS port of Hugging Face tokenizers).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.js';

export interface TextTokenizer {
  /** Token ids of `text`; special tokens (BOS) are added only when asked. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
}

export function tokenizerFromJson(json: object, config: Record<string, unknown> = {}, what = 'tokenizer.json'): TextTokenizer {
  // The library trusts its input: a malformed file throws whatever it happens to hit, at load or
  // at the first encode. Load it and run it once here, so a bad file is one clear error up front.
  let tok: Tokenizer;
  let vocab: Map<string, number>;
  try {
    tok = new Tokenizer(json, config);
    vocab = tok.get_vocab(true);
    tok.decode(tok.encode('Hello, world! 123 \u00fc\n', { add_special_tokens: true }).ids, { skip_special_tokens: false });
  } catch (e) {
    throw new UserError(`${what}: not a tokenizer that can be loaded (${String((e as Error).message ?? e).split('\n')[0]})`);
  }
  const idOf = (key: string): number | null => {
    const v = config[key];
    const s = typeof v === 'string' ? v : v && typeof v === 'object' ? (v as { content?: string }).content : undefined;
    return s !== undefined ? tok.token_to_id(s) ?? null : null;
  };
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  return {
    encode: (text, opts) => tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? false }).ids,
    decode: (ids, opts) => (ids.length === 0 ? '' : tok.decode([...ids], { skip_special_tokens: opts?.skipSpecialTokens ?? true })),
    vocabSize: maxId + 1,
    bosId: idOf('bos_token') ?? tok.token_to_id('<s>') ?? null,
    eosId: idOf('eos_token') ?? tok.token_to_id('</s>') ?? null,
  };
}

/** Load the tokenizer of a model folder; a clear error if it has none. */
export function loadTokenizer(dir: string): TextTokenizer {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new UserError(`no tokenizer.json in ${dir}`);
  let json: object;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as object;
  } catch {
    throw new UserError(`${file}: invalid JSON`);
  }
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  let config: unknown = {};
  if (fs.existsSync(cfgFile)) {
    try {
      config = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    } catch {
      throw new UserError(`${cfgFile}: invalid JSON`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new UserError(`${cfgFile}: not a JSON object`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UserError(`${file}: not a JSON object`);
  return tokenizerFromJson(json, config as Record<string, unknown>, file);
}
