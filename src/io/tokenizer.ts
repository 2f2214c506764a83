/**
 * Tokenizers from a model folder's tokenizer.json (+ tokenizer_config.json), through
 * @huggingface/tokenizers (a maintained pure-JS port of Hugging Face tokenizers). A folder with
 * only a SentencePiece tokenizer.model (Vicuna, LLaMA-1 conversions, llama2.c vocabularies) is
 * converted to the same tokenizer.json in memory, as transformers does when it loads one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.js';
import { readSentencePieceModel } from './sentencepiece-model.js';
import { sentencePieceToHf, type HfTokenizerFiles } from './sentencepiece-convert.js';

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

/** A folder's tokenizer_config.json, or {} when it has none. */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(file)) return {};
  let config: unknown;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new UserError(`${file}: invalid JSON`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new UserError(`${file}: not a JSON object`);
  return config as Record<string, unknown>;
}

const flag = (cfg: Record<string, unknown>, key: string): boolean | undefined => (typeof cfg[key] === 'boolean' ? cfg[key] as boolean : undefined);

/**
 * tokenizer.json for a SentencePiece tokenizer.model with its folder's tokenizer_config.json:
 * legacy / add_prefix_space / add_bos_token / add_eos_token as transformers reads them, and the
 * tokens of added_tokens_decoder past the model's pieces (e.g. a <pad> added at id 32000).
 */
export function sentencePieceFolderTokenizer(modelFile: string, config: Record<string, unknown> = {}): HfTokenizerFiles {
  const spm = readSentencePieceModel(modelFile);
  const files = sentencePieceToHf(spm, {
    legacy: flag(config, 'legacy'), addPrefixSpace: flag(config, 'add_prefix_space'),
    addBosToken: flag(config, 'add_bos_token'), addEosToken: flag(config, 'add_eos_token'),
  }, path.basename(modelFile));
  const decoderTokens = config['added_tokens_decoder'];
  if (decoderTokens && typeof decoderTokens === 'object') {
    const tok = files.tokenizer as { added_tokens: Record<string, unknown>[]; model: { vocab: Record<string, number> } };
    const entries = Object.entries(decoderTokens as Record<string, Record<string, unknown>>).map(([k, v]) => [Number(k), v] as const).sort((a, b) => a[0] - b[0]);
    for (const [id, t] of entries) {
      const content = String(t['content']);
      if (id < spm.pieces.length) {
        if (spm.pieces[id]!.piece !== content) throw new UserError(`tokenizer_config.json: added token ${id} is ${JSON.stringify(content)}, tokenizer.model has ${JSON.stringify(spm.pieces[id]!.piece)}`);
        continue;
      }
      if (id !== Object.keys(tok.model.vocab).length) throw new UserError(`tokenizer_config.json: added token ids must follow the model's ${spm.pieces.length} pieces without gaps (got ${id})`);
      tok.model.vocab[content] = id;
      tok.added_tokens.push({
        id, content, single_word: t['single_word'] === true, lstrip: t['lstrip'] === true, rstrip: t['rstrip'] === true,
        normalized: t['normalized'] === true, special: t['special'] === true,
      });
    }
  }
  return files;
}

/** Load the tokenizer of a model folder (tokenizer.json, else tokenizer.model); a clear error if it has none. */
export function loadTokenizer(dir: string): TextTokenizer {
  const file = path.join(dir, 'tokenizer.json');
  const config = readTokenizerConfig(dir);
  if (!fs.existsSync(file)) {
    const spm = path.join(dir, 'tokenizer.model');
    if (!fs.existsSync(spm)) throw new UserError(`no tokenizer.json or tokenizer.model in ${dir}`);
    const files = sentencePieceFolderTokenizer(spm, config);
    return tokenizerFromJson(files.tokenizer, { ...files.tokenizerConfig, ...config });
  }
  let json: object;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as object;
  } catch {
    throw new UserError(`${file}: invalid JSON`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UserError(`${file}: not a JSON object`);
  return tokenizerFromJson(json, config, file);
}
