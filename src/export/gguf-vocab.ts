/**
 * A model folder's tokenizer as llama.cpp's tokenizer.ggml.* metadata, named and typed as its
 * converter (convert_hf_to_gguf.py) writes them:
 *
 * - SentencePiece-style BPE (tokenizer.json BPE with byte_fallback: Llama 2, llama2.c imports):
 *   model "llama", pieces with '▁', one score per piece, token types (normal, unknown, control,
 *   byte). llama.cpp's SPM tokenizer merges the adjacent pair whose merged piece scores highest;
 *   a piece's score here is minus the rank of the first merge that forms it, so that it merges in
 *   the order the merges list gives.
 * - byte-level BPE (GPT-2 style, the default model's): model "gpt2", the byte-level pieces, the
 *   merges, and the pre-tokenizer name ("gpt-2" for ByteLevel's own regex, "qwen2" for Qwen2).
 * - no tokenizer (token-id-only models such as the fixtures): byte pieces and "[ID<n>]" placeholders.
 *
 * Special token ids, add_bos/add_eos and the chat template (tokenizer_config.json
 * `chat_template`, or chat_template.jinja) come along.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import type { GgufValue } from './gguf-writer.js';
import type { LlamaConfig } from '../io/config.js';

/** llama.cpp token types (gguf-py TokenType). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Json = Record<string, unknown>;

function readJsonMaybe(file: string): Json | null {
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  } catch {
    throw new UserError(`${file}: invalid JSON`);
  }
}

/** The content of a tokenizer_config.json token entry: "<s>" or {content: "<s>", ...}. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json)['content'] === 'string') return (v as Json)['content'] as string;
  return null;
}

function chatTemplate(dir: string, tokConfig: Json | null): [string, GgufValue][] {
  const jinja = path.join(dir, 'chat_template.jinja');
  const t = tokConfig?.['chat_template'];
  if (typeof t === 'string') return [['tokenizer.chat_template', { type: 'string', value: t }]];
  if (Array.isArray(t)) {
    // [{name, template}, ...]: "default" is the main template, the others named ones (as SpecialVocab writes them)
    const out: [string, GgufValue][] = [];
    const names: string[] = [];
    for (const e of t as Json[]) {
      const name = e['name'], tpl = e['template'];
      if (typeof name !== 'string' || typeof tpl !== 'string') continue;
      if (name === 'default') out.push(['tokenizer.chat_template', { type: 'string', value: tpl }]);
      else { names.push(name); out.push([`tokenizer.chat_template.${name}`, { type: 'string', value: tpl }]); }
    }
    if (names.length) out.push(['tokenizer.chat_templates', { type: 'array', of: 'string', value: names }]);
    return out;
  }
  if (fs.existsSync(jinja)) return [['tokenizer.chat_template', { type: 'string', value: fs.readFileSync(jinja, 'utf8') }]];
  return [];
}

/** Merges as "a b" strings (tokenizer.json stores either "a b" or ["a", "b"]). */
function mergeStrings(model: Json): string[] {
  const merges = (model['merges'] ?? []) as unknown[];
  return merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m)));
}

/** Whether the normalizer / pre-tokenizer adds SentencePiece's dummy-prefix '▁'. */
function addsSpacePrefix(tok: Json): boolean {
  const has = (node: unknown): boolean => {
    if (!node || typeof node !== 'object') return false;
    const n = node as Json;
    if (n['type'] === 'Prepend') return true;
    if (n['type'] === 'Metaspace') return n['prepend_scheme'] !== 'never' && n['add_prefix_space'] !== false;
    for (const k of ['normalizers', 'pretokenizers']) if (Array.isArray(n[k]) && (n[k] as unknown[]).some(has)) return true;
    return false;
  };
  return has(tok['normalizer']) || has(tok['pre_tokenizer']);
}

/** llama.cpp's name of the pre-tokenizer of a byte-level BPE tokenizer. */
function bytePre(tok: Json, cfg: LlamaConfig): string {
  if (cfg.modelType === 'qwen2') return 'qwen2';
  const pre = tok['pre_tokenizer'] as Json | null;
  if (pre?.['type'] === 'ByteLevel' && pre['use_regex'] !== false) return 'gpt-2';
  throw new UserError(`tokenizer.json: byte-level BPE with pre-tokenizer ${JSON.stringify(pre?.['type'] ?? null)} has no known llama.cpp name; only GPT-2's ByteLevel regex and Qwen2's are supported`);
}

export function vocabMetadata(dir: string | null, cfg: LlamaConfig): [string, GgufValue][] {
  const tok = dir ? readJsonMaybe(path.join(dir, 'tokenizer.json')) : null;
  if (!tok) {
    // llama.cpp's own "none" vocabulary aborts node-llama-cpp at load, and a SentencePiece
    // vocabulary without byte pieces aborts when text is tokenized, so token-id-only models get
    // byte pieces <0x00>..<0xFF> first and "[ID<n>]" placeholders after: scored, never tokenized.
    const ids = Array.from({ length: cfg.vocabSize }, (_, i) => i);
    const isByte = (i: number) => i < 256;
    return [
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.pre', { type: 'string', value: 'default' }],
      ['tokenizer.ggml.tokens', { type: 'array', of: 'string', value: ids.map((i) => (isByte(i) ? `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>` : `[ID${i}]`)) }],
      ['tokenizer.ggml.scores', { type: 'array', of: 'f32', value: new Float32Array(cfg.vocabSize) }],
      ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: ids.map((i) => (isByte(i) ? TokenType.BYTE : TokenType.NORMAL)) }],
      ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ];
  }
  const tokConfig = readJsonMaybe(path.join(dir!, 'tokenizer_config.json'));
  const model = tok['model'] as Json;
  if (model?.['type'] !== 'BPE') throw new UserError(`tokenizer.json: model type ${JSON.stringify(model?.['type'])} cannot be exported to GGUF (BPE only)`);
  const vocab = model['vocab'] as Record<string, number>;
  const added = (tok['added_tokens'] ?? []) as { id: number; content: string; special?: boolean }[];
  const n = cfg.vocabSize;
  const pieces: (string | null)[] = new Array<string | null>(n).fill(null);
  for (const [p, id] of Object.entries(vocab)) if (id < n) pieces[id] = p;
  const types = new Array<number>(n).fill(TokenType.NORMAL);
  for (const a of added) {
    if (a.id >= n) continue;
    pieces[a.id] = a.content;
    types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  // ids the tokenizer never produces (the embedding is larger than the vocabulary)
  pieces.forEach((p, id) => { if (p === null) { pieces[id] = `[PAD${id}]`; types[id] = TokenType.UNUSED; } });
  const tokens = pieces as string[];
  const idOf = (s: string | null) => (s === null ? undefined : tokens.indexOf(s));
  const md: [string, GgufValue][] = [];
  const merges = mergeStrings(model);
  const spm = model['byte_fallback'] === true;
  if (spm) {
    const unk = typeof model['unk_token'] === 'string' ? idOf(model['unk_token']) : undefined;
    if (unk !== undefined && unk >= 0) types[unk] = TokenType.UNKNOWN;
    tokens.forEach((p, id) => { if (/^<0x[0-9A-Fa-f]{2}>$/.test(p)) types[id] = TokenType.BYTE; });
    const scores = new Float32Array(n);
    const scored = new Set<number>();
    merges.forEach((m, rank) => {
      const id = vocab[m.replace(' ', '')];
      if (id !== undefined && id < n && !scored.has(id)) { scored.add(id); scores[id] = -(rank + 1); }
    });
    md.push(
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.pre', { type: 'string', value: 'default' }],
      ['tokenizer.ggml.tokens', { type: 'array', of: 'string', value: tokens }],
      ['tokenizer.ggml.scores', { type: 'array', of: 'f32', value: scores }],
      ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: types }],
      ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: addsSpacePrefix(tok) }],
    );
    if (unk !== undefined && unk >= 0) md.push(['tokenizer.ggml.unknown_token_id', { type: 'u32', value: unk }]);
  } else {
    md.push(
      ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
      ['tokenizer.ggml.pre', { type: 'string', value: bytePre(tok, cfg) }],
      ['tokenizer.ggml.tokens', { type: 'array', of: 'string', value: tokens }],
      ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: types }],
      ['tokenizer.ggml.merges', { type: 'array', of: 'string', value: merges }],
    );
  }
  // special tokens: tokenizer_config.json's names, else config.json's ids
  const special = (key: string, fallback: number | null): number | null => {
    const id = idOf(tokenContent(tokConfig?.[key]));
    return id !== undefined && id >= 0 ? id : fallback;
  };
  const eosCfg = Array.isArray(cfg.eosTokenId) ? cfg.eosTokenId[0] ?? null : cfg.eosTokenId;
  const bos = special('bos_token', cfg.bosTokenId), eos = special('eos_token', eosCfg), pad = special('pad_token', null);
  if (bos !== null) md.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: bos }]);
  if (eos !== null) md.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  if (pad !== null) md.push(['tokenizer.ggml.padding_token_id', { type: 'u32', value: pad }]);
  const addBos = tokConfig?.['add_bos_token'], addEos = tokConfig?.['add_eos_token'];
  if (typeof addBos === 'boolean') md.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos }]);
  if (typeof addEos === 'boolean') md.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: addEos }]);
  md.push(...chatTemplate(dir!, tokConfig));
  return md;
}
