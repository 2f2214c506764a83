/**
 * llama2.c's tokenizer.bin -> a Hugging Face tokenizer.json (Llama-2 layout) that encodes exactly
 * as llama2.c's `encode` in run.c does with bos=1: a dummy-prefix space, one token per UTF-8 char
 * (bytes + 3 for chars not in the vocab), then repeatedly merge the adjacent pair whose
 * concatenation is the vocab piece of highest score.
 *
 * tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 length, bytes.
 * The vocab size is not stored; run.c takes it from the model header. Pieces spell the
 * SentencePiece '▁' as ' ', and <s>/</s> as '\n<s>\n' / '\n</s>\n'; ids 3..258 are <0x00>..<0xFF>.
 *
 * Why merges ranked by score reproduce llama2.c: BPE with byte fallback merges the adjacent pair of
 * lowest rank, so listing every split a+b of every piece, ordered by the piece's score, picks the
 * pair llama2.c picks (highest merged score). Pieces in these vocabularies have distinct scores.
 * Two known differences remain, both shared by Hugging Face's own Llama-2 tokenizer.json:
 * a literal "<s>", "</s>" or "<unk>" in the text becomes the special token (llama2.c spells it
 * out), and when two different splits of the same piece are mergeable at once llama2.c merges the
 * leftmost while BPE merges the lower-ranked split.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';

export interface Llama2cVocab {
  /** pieces as llama2.c stores them (spaces, '\n<s>\n'), decoded from UTF-8 */
  pieces: string[];
  scores: Float32Array;
  maxTokenLength: number;
}

/** Files of a Hugging Face tokenizer, as JSON values ready to write. */
export interface HfTokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
}

const SPACE = '\u2581'; // SentencePiece's '▁'
const SPECIALS = ['<unk>', '<s>', '</s>'];
const N_BYTES = 256;
const FIRST_PIECE = SPECIALS.length + N_BYTES; // 259: first ordinary piece
const byteToken = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/**
 * Read a tokenizer.bin. With `vocabSize` (from the model header) exactly that many tokens must be
 * present, as run.c reads; without it, tokens are read to the end of the file.
 */
export function readLlama2cTokenizer(file: string, vocabSize?: number): Llama2cVocab {
  const name = path.basename(file);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    throw new UserError(`cannot read tokenizer file ${file}`);
  }
  if (buf.length < 4) throw new UserError(`${name}: truncated llama2.c tokenizer (${buf.length} bytes)`);
  const maxTokenLength = buf.readInt32LE(0);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) throw new UserError(`${name}: not a llama2.c tokenizer (max_token_length ${maxTokenLength})`);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a piece that is U+FEFF
  const pieces: string[] = [];
  const scores: number[] = [];
  let off = 4;
  while (vocabSize === undefined ? off < buf.length : pieces.length < vocabSize) {
    const id = pieces.length;
    if (off === buf.length) throw new UserError(`${name}: tokenizer has ${id} tokens, the model's vocab_size is ${vocabSize} (wrong tokenizer for this model?)`);
    if (off + 8 > buf.length) throw new UserError(`${name}: truncated llama2.c tokenizer (token ${id} of ${vocabSize ?? '?'} cut off)`);
    const score = buf.readFloatLE(off);
    const len = buf.readInt32LE(off + 4);
    off += 8;
    if (len < 0 || len > maxTokenLength) throw new UserError(`${name}: corrupt llama2.c tokenizer (token ${id} has length ${len}, max_token_length ${maxTokenLength})`);
    if (off + len > buf.length) throw new UserError(`${name}: truncated llama2.c tokenizer (token ${id} cut off)`);
    try {
      pieces.push(utf8.decode(buf.subarray(off, off + len)));
    } catch {
      throw new UserError(`${name}: token ${id} is not valid UTF-8`);
    }
    scores.push(score);
    off += len;
  }
  if (vocabSize !== undefined && off !== buf.length) {
    throw new UserError(`${name}: tokenizer has more than the model's ${vocabSize} tokens (wrong tokenizer for this model?)`);
  }
  return { pieces, scores: Float32Array.from(scores), maxTokenLength };
}

/** Hugging Face names of the pieces: '▁' for space, plain <s> and </s>; checks the fixed ids. */
function hfPieces(v: Llama2cVocab): string[] {
  const n = v.pieces.length;
  if (n <= FIRST_PIECE) throw new UserError(`llama2.c tokenizer has ${n} tokens; expected <unk>, <s>, </s>, 256 byte tokens and more`);
  const out = v.pieces.map((p, id) => {
    if (id < SPECIALS.length) {
      if (p.trim() !== SPECIALS[id]) throw new UserError(`llama2.c tokenizer: token ${id} is ${JSON.stringify(p)}, expected ${SPECIALS[id]}`);
      return SPECIALS[id]!;
    }
    if (id < FIRST_PIECE) {
      const want = byteToken(id - SPECIALS.length);
      if (p !== want) throw new UserError(`llama2.c tokenizer: token ${id} is ${JSON.stringify(p)}, expected byte token ${want}`);
      return p;
    }
    return p.replaceAll(' ', SPACE);
  });
  const seen = new Map<string, number>();
  out.forEach((p, id) => {
    const prev = seen.get(p);
    if (prev !== undefined) throw new UserError(`llama2.c tokenizer: tokens ${prev} and ${id} are both ${JSON.stringify(p)}`);
    seen.set(p, id);
  });
  return out;
}

/**
 * Merges derived from the vocabulary as Hugging Face's SentencePieceExtractor does: every split of
 * every piece into two pieces, by piece (in id order) the splits sorted by (left id, right id), then
 * stably sorted by the merged piece's score, highest first. Special and byte tokens take no part:
 * llama2.c never forms them by merging.
 */
export function deriveMerges(pieces: readonly string[], scores: Float32Array): [string, string][] {
  const idOf = new Map<string, number>();
  for (let id = FIRST_PIECE; id < pieces.length; id++) idOf.set(pieces[id]!, id);
  const merges: { l: number; r: number; score: number }[] = [];
  for (let id = FIRST_PIECE; id < pieces.length; id++) {
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

/** tokenizer.json, tokenizer_config.json and special_tokens_map.json for a llama2.c vocabulary. */
export function llama2cTokenizerToHf(v: Llama2cVocab, opts: { modelMaxLength?: number } = {}): HfTokenizerFiles {
  const pieces = hfPieces(v);
  const vocab: Record<string, number> = {};
  pieces.forEach((p, id) => { vocab[p] = id; });
  const merges = deriveMerges(pieces, v.scores).map(([a, b]) => `${a} ${b}`);
  const addedTokens = SPECIALS.map((content, id) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    // Prepend + Replace rather than the Metaspace pre-tokenizer: Metaspace skips the dummy prefix
    // when the text already starts with a space, llama2.c always adds it.
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 }, // drop the dummy-prefix space
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    legacy: true,
    tokenizer_class: 'LlamaTokenizer',
    clean_up_tokenization_spaces: false,
  };
  if (opts.modelMaxLength !== undefined) tokenizerConfig['model_max_length'] = opts.modelMaxLength;
  const specialTokensMap = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
  return { tokenizer, tokenizerConfig, specialTokensMap };
}
