/**
 * A SentencePiece BPE model -> Hugging Face tokenizer.json (+ tokenizer_config.json,
 * special_tokens_map.json), laid out as transformers' LlamaConverter (convert_slow_tokenizer.py)
 * lays out Llama's tokenizer:
 *
 *   legacy (the default, and Llama 2's):  normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer
 *   legacy false:                         no normalizer, Metaspace(prepend_scheme "first", split false)
 *   model:    BPE over the pieces (ids as in the .model), byte_fallback as the trainer had it,
 *             merges derived from the pieces' scores (deriveMerges)
 *   decoder:  Replace("▁", " "), ByteFallback, Fuse, and Strip(" ", 1, 0) when a dummy prefix is added
 *   added tokens: UNKNOWN and CONTROL pieces (special), USER_DEFINED pieces (not special)
 *   post-processor: BOS (and EOS) as add_bos_token / add_eos_token say, as LlamaTokenizerFast builds it
 *
 * The dummy prefix follows tokenizer_config's add_prefix_space when given, else the model's own
 * normalizer_spec.add_dummy_prefix (what SentencePiece itself does).
 * Only the settings the LLaMA family uses are converted (identity normalization, no whitespace
 * removal, whitespace as prefix); others are refused rather than approximated.
 */
import { UserError } from '../util/errors.js';
import { ModelType, PieceType, type SentencePieceModel } from './sentencepiece-model.js';

/** Files of a Hugging Face tokenizer, as JSON values ready to write. */
export interface HfTokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
}

export interface ConvertOptions {
  /** transformers' `legacy` flag of LlamaTokenizer (default true) */
  legacy?: boolean;
  /** add the dummy-prefix "▁" (default: the model's normalizer_spec.add_dummy_prefix) */
  addPrefixSpace?: boolean;
  addBosToken?: boolean;
  addEosToken?: boolean;
  modelMaxLength?: number;
}

export const SPACE = '\u2581'; // SentencePiece's '▁'

/**
 * Merges derived from the vocabulary as Hugging Face's SentencePieceExtractor does: every split of
 * every mergeable piece into two mergeable pieces, by piece (in id order) the splits sorted by
 * (left id, right id), then stably sorted by the merged piece's score, highest first.
 * SentencePiece BPE only ever merges NORMAL pieces into NORMAL pieces, so only those take part.
 */
export function deriveMerges(pieces: readonly string[], scores: ArrayLike<number>, mergeable: (id: number) => boolean): [string, string][] {
  const idOf = new Map<string, number>();
  for (let id = 0; id < pieces.length; id++) if (mergeable(id)) idOf.set(pieces[id]!, id);
  const merges: { l: number; r: number; score: number }[] = [];
  for (let id = 0; id < pieces.length; id++) {
    if (!mergeable(id)) continue;
    const chars = Array.from(pieces[id]!); // split at code points, as Python's str slicing does
    const local: { l: number; r: number; score: number }[] = [];
    for (let k = 1; k < chars.length; k++) {
      const l = idOf.get(chars.slice(0, k).join(''));
      const r = idOf.get(chars.slice(k).join(''));
      if (l !== undefined && r !== undefined) local.push({ l, r, score: scores[id]! });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score); // Array.prototype.sort is stable
  return merges.map((m) => [pieces[m.l]!, pieces[m.r]!]);
}

/** Refuse settings whose conversion would not encode as SentencePiece does. */
function checkSupported(m: SentencePieceModel, name: string): void {
  const t = m.trainerSpec, n = m.normalizerSpec;
  if (t.modelType !== ModelType.BPE) {
    const kind = Object.entries(ModelType).find(([, v]) => v === t.modelType)?.[0] ?? String(t.modelType);
    throw new UserError(`${name}: SentencePiece ${kind} models are not supported (LLaMA-family tokenizers are BPE)`);
  }
  if (t.treatWhitespaceAsSuffix) throw new UserError(`${name}: SentencePiece models with treat_whitespace_as_suffix are not supported`);
  if (!n.escapeWhitespaces) throw new UserError(`${name}: SentencePiece models without escape_whitespaces are not supported`);
  if (n.removeExtraWhitespaces) throw new UserError(`${name}: SentencePiece models with remove_extra_whitespaces are not supported (LLaMA-family tokenizers keep whitespace)`);
  if (n.precompiledCharsmap.length > 0 || (n.name !== '' && n.name !== 'identity')) {
    throw new UserError(`${name}: SentencePiece normalization '${n.name}' is not supported (only identity, as the LLaMA family uses)`);
  }
  const seen = new Map<string, number>();
  m.pieces.forEach((p, id) => {
    if (p.piece === '') throw new UserError(`${name}: piece ${id} is empty`);
    const prev = seen.get(p.piece);
    if (prev !== undefined) throw new UserError(`${name}: pieces ${prev} and ${id} are both ${JSON.stringify(p.piece)}`);
    seen.set(p.piece, id);
  });
  const unk = m.pieces[t.unkId];
  if (!unk || unk.type !== PieceType.UNKNOWN) throw new UserError(`${name}: unk_id ${t.unkId} is not an UNKNOWN piece`);
}

/** The three tokenizer files for a SentencePiece BPE model. */
export function sentencePieceToHf(m: SentencePieceModel, opts: ConvertOptions = {}, name = 'tokenizer.model'): HfTokenizerFiles {
  checkSupported(m, name);
  const t = m.trainerSpec;
  const legacy = opts.legacy ?? true;
  const addPrefix = opts.addPrefixSpace ?? m.normalizerSpec.addDummyPrefix;
  const addBos = opts.addBosToken ?? true, addEos = opts.addEosToken ?? false;
  const pieces = m.pieces.map((p) => p.piece);
  const tokenAt = (id: number): string | null => (id >= 0 && id < pieces.length ? pieces[id]! : null);
  const unk = tokenAt(t.unkId)!, bos = tokenAt(t.bosId), eos = tokenAt(t.eosId), pad = tokenAt(t.padId);

  const vocab: Record<string, number> = {};
  pieces.forEach((p, id) => { vocab[p] = id; });
  const normal = (id: number): boolean => m.pieces[id]!.type === PieceType.NORMAL;
  const merges = deriveMerges(pieces, m.pieces.map((p) => p.score), normal).map(([a, b]) => `${a} ${b}`);
  const addedTokens = m.pieces.flatMap((p, id) => {
    const special = p.type === PieceType.UNKNOWN || p.type === PieceType.CONTROL;
    if (!special && p.type !== PieceType.USER_DEFINED) return [];
    return [{ id, content: p.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special }];
  });

  // Prepend + Replace rather than Metaspace in legacy mode: Metaspace skips the dummy prefix when
  // the text already starts with a space, SentencePiece always adds it.
  const normalizer = legacy
    ? { type: 'Sequence', normalizers: [...(addPrefix ? [{ type: 'Prepend', prepend: SPACE }] : []), { type: 'Replace', pattern: { String: ' ' }, content: SPACE }] }
    : null;
  const preTokenizer = legacy ? null : { type: 'Metaspace', replacement: SPACE, prepend_scheme: addPrefix ? 'first' : 'never', split: false };

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor(addBos ? bos : null, addEos ? eos : null, vocab),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []), // drop the dummy-prefix space
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: t.byteFallback,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const named = (entries: [string, string | null][]): Record<string, string> => Object.fromEntries(entries.filter((e): e is [string, string] => e[1] !== null));
  const specials = named([['bos_token', bos], ['eos_token', eos], ['unk_token', unk], ['pad_token', pad]]);
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    ...specials,
    legacy,
    ...(opts.addPrefixSpace !== undefined ? { add_prefix_space: opts.addPrefixSpace } : {}),
    tokenizer_class: 'LlamaTokenizer',
    clean_up_tokenization_spaces: false,
  };
  if (opts.modelMaxLength !== undefined) tokenizerConfig['model_max_length'] = opts.modelMaxLength;
  return { tokenizer, tokenizerConfig, specialTokensMap: { ...specials } };
}

/** LlamaTokenizerFast's TemplateProcessing: [BOS] $A [EOS], and the pair with type id 1. */
function postProcessor(bos: string | null, eos: string | null, vocab: Record<string, number>): Record<string, unknown> | null {
  if (bos === null && eos === null) return null;
  const tok = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const side = (s: string, typeId: number) => [...(bos ? [tok(bos, typeId)] : []), seq(s, typeId), ...(eos ? [tok(eos, typeId)] : [])];
  const special: Record<string, unknown> = {};
  for (const s of [bos, eos]) if (s) special[s] = { id: s, ids: [vocab[s]!], tokens: [s] };
  return { type: 'TemplateProcessing', single: side('A', 0), pair: [...side('A', 0), ...side('B', 1)], special_tokens: special };
}
