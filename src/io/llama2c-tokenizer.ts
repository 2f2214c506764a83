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
 * The conversion itself is sentencepiece-convert.ts's, applied to the vocabulary as the
 * SentencePiece model it came from (llama2cVocabToSentencePiece).
 * Two known differences remain, both shared by Hugging Face's own Llama-2 tokenizer.json:
 * a literal "<s>", "</s>" or "<unk>" in the text becomes the special token (llama2.c spells it
 * out), and when two different splits of the same piece are mergeable at once llama2.c merges the
 * leftmost while BPE merges the lower-ranked split.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { ModelType, PieceType, type SentencePieceModel } from './sentencepiece-model.js';
import { sentencePieceToHf, SPACE, type HfTokenizerFiles } from './sentencepiece-convert.js';

export type { HfTokenizerFiles };

export interface Llama2cVocab {
  /** pieces as llama2.c stores them (spaces, '\n<s>\n'), decoded from UTF-8 */
  pieces: string[];
  scores: Float32Array;
  maxTokenLength: number;
}

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

/**
 * The vocabulary as the SentencePiece model llama2.c's tokenizer.bin was exported from
 * (tokenizer.py): '▁' for space, plain <s> and </s>, piece types by the fixed ids, and the
 * training settings of llama2.c's train_vocab.sh (BPE, byte fallback, identity normalization,
 * dummy prefix, whitespace kept). Checks the fixed ids.
 */
export function llama2cVocabToSentencePiece(v: Llama2cVocab): SentencePieceModel {
  const n = v.pieces.length;
  if (n <= FIRST_PIECE) throw new UserError(`llama2.c tokenizer has ${n} tokens; expected <unk>, <s>, </s>, 256 byte tokens and more`);
  const pieces = v.pieces.map((p, id) => {
    const score = v.scores[id]!;
    if (id < SPECIALS.length) {
      if (p.trim() !== SPECIALS[id]) throw new UserError(`llama2.c tokenizer: token ${id} is ${JSON.stringify(p)}, expected ${SPECIALS[id]}`);
      return { piece: SPECIALS[id]!, score, type: id === 0 ? PieceType.UNKNOWN : PieceType.CONTROL };
    }
    if (id < FIRST_PIECE) {
      const want = byteToken(id - SPECIALS.length);
      if (p !== want) throw new UserError(`llama2.c tokenizer: token ${id} is ${JSON.stringify(p)}, expected byte token ${want}`);
      return { piece: p, score, type: PieceType.BYTE };
    }
    return { piece: p.replaceAll(' ', SPACE), score, type: PieceType.NORMAL };
  });
  return {
    pieces,
    trainerSpec: {
      modelType: ModelType.BPE, vocabSize: n, treatWhitespaceAsSuffix: false, splitDigits: true, byteFallback: true,
      unkId: 0, bosId: 1, eosId: 2, padId: -1, unkPiece: '<unk>', bosPiece: '<s>', eosPiece: '</s>', padPiece: '<pad>',
    },
    normalizerSpec: { name: 'identity', precompiledCharsmap: new Uint8Array(0), addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  };
}

/** tokenizer.json, tokenizer_config.json and special_tokens_map.json for a llama2.c vocabulary. */
export function llama2cTokenizerToHf(v: Llama2cVocab, opts: { modelMaxLength?: number } = {}): HfTokenizerFiles {
  return sentencePieceToHf(llama2cVocabToSentencePiece(v), opts, 'llama2.c tokenizer');
}
