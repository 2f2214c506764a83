/**
 * A byte-level BPE trainer, GPT-2 style, whose output is a Hugging Face tokenizer.json.
 *
 *   1. split text into chunks with the GPT-2 regex (words with their leading space, numbers,
 *      punctuation runs, whitespace), exactly as the ByteLevel pre-tokenizer does at encode time;
 *   2. write each chunk's UTF-8 bytes as printable characters (GPT-2's byte-to-unicode table),
 *      so every token is a plain string and no text is ever out of vocabulary;
 *   3. count distinct chunks, then repeatedly merge the most frequent adjacent symbol pair,
 *      updating pair counts only in the chunks that contain the merged pair.
 *
 * Ties go to the pair with the smaller (left id, right id), so training is deterministic.
 * Also here: a small reference encoder that applies the merges by rank, to check the library.
 */

/** GPT-2's pre-tokenization pattern (also what @huggingface/tokenizers' ByteLevel uses). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte → character table: printable Latin-1 bytes stand for themselves, the other 68
 * bytes (controls, space, ...) are shifted to U+0100 and up. So ' ' is written 'Ġ', '\n' 'Ċ'.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return table;
})();

const encoder = new TextEncoder();

/** One chunk's UTF-8 bytes in the byte alphabet (" the" → "Ġthe"). */
function toByteChars(chunk: string): string {
  let s = '';
  for (const b of encoder.encode(chunk)) s += BYTE_TO_CHAR[b];
  return s;
}

/** Text → pre-tokenized chunks in the byte alphabet (e.g. " the" → "Ġthe"). */
export function pretokenize(text: string): string[] {
  return (text.match(GPT2_SPLIT) ?? []).map(toByteChars);
}

export interface BpeTrainOptions {
  /** Final vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Special tokens, given ids 0, 1, ... in this order. Default ['<s>', '</s>']. */
  specialTokens?: readonly string[];
  /** Stop early when the best pair occurs fewer times than this. Default 2. */
  minPairCount?: number;
}

export interface BpeModel {
  /** Token strings by id: specials, then the 256 bytes in byte order, then one per merge. */
  vocab: string[];
  /** Merges in rank order; merge i made token vocab[specials + 256 + i]. */
  merges: [string, string][];
  specialTokens: string[];
}

// A pair of symbol ids packed into one number: left * PAIR + right (exact for ids < 2^20).
const PAIR = 1 << 20;

/**
 * A binary max-heap of pairs by count (ties: smaller key first). Counts change all the time, so
 * we push a fresh entry on every change and skip stale ones on pop (lazy deletion).
 */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.keys.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!, lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      for (let i = 0; ; ) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Train byte-level BPE on `texts` (each pre-tokenized on its own). */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): BpeModel {
  const specialTokens = [...(opts.specialTokens ?? ['<s>', '</s>'])];
  const minPairCount = opts.minPairCount ?? 2;
  const vocab = [...specialTokens, ...BYTE_TO_CHAR];
  if (opts.vocabSize < vocab.length) throw new Error(`vocabSize ${opts.vocabSize} < ${vocab.length} (specials + 256 bytes)`);
  if (opts.vocabSize >= PAIR) throw new Error(`vocabSize ${opts.vocabSize} too large`);
  const byteId = (ch: string): number => specialTokens.length + BYTE_TO_CHAR.indexOf(ch);
  const byteIdOf = new Map(BYTE_TO_CHAR.map((ch) => [ch, byteId(ch)]));

  // Distinct chunks and their counts: BPE works on these "words", weighted by frequency.
  // Counted as text first: ~1M chunks but only ~50k distinct ones to convert to bytes.
  const textCount = new Map<string, number>();
  for (const text of texts) for (const c of text.match(GPT2_SPLIT) ?? []) textCount.set(c, (textCount.get(c) ?? 0) + 1);
  const chunkCount = new Map<string, number>();
  for (const [c, n] of textCount) chunkCount.set(toByteChars(c), n);
  // Sorted so that the word order (and so everything below) does not depend on the input order.
  const chunks = [...chunkCount.keys()].sort();
  const words: number[][] = chunks.map((c) => Array.from(c, (ch) => byteIdOf.get(ch)!));
  const freq: number[] = chunks.map((c) => chunkCount.get(c)!);

  // Pair counts over all words, and which words (may) contain each pair.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  words.forEach((w, wi) => {
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i]! * PAIR + w[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq[wi]!);
      let set = pairWords.get(key);
      if (!set) pairWords.set(key, (set = new Set()));
      set.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [string, string][] = [];
  const changed = new Set<number>();
  const bump = (key: number, delta: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
    changed.add(key);
  };

  while (vocab.length < opts.vocabSize && heap.size > 0) {
    const { count, key } = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale entry
    if (count < minPairCount) break;
    const a = Math.floor(key / PAIR), b = key % PAIR;
    const c = vocab.length;
    vocab.push(vocab[a]! + vocab[b]!);
    merges.push([vocab[a]!, vocab[b]!]);

    changed.clear();
    for (const wi of pairWords.get(key) ?? []) {
      const w = words[wi]!, f = freq[wi]!;
      // Merge left to right, without overlaps ("aaa" → "aa a"), as the encoder does.
      const merged: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(c);
          i++;
        } else merged.push(w[i]!);
      }
      if (merged.length === w.length) continue; // the set is never pruned, so it may be stale
      // Words are short: take out all their old pairs and put in all the new ones.
      for (let i = 0; i + 1 < w.length; i++) bump(w[i]! * PAIR + w[i + 1]!, -f);
      for (let i = 0; i + 1 < merged.length; i++) {
        const k = merged[i]! * PAIR + merged[i + 1]!;
        bump(k, f);
        if (merged[i] === c || merged[i + 1] === c) {
          let set = pairWords.get(k);
          if (!set) pairWords.set(k, (set = new Set()));
          set.add(wi);
        }
      }
      words[wi] = merged;
    }
    pairWords.delete(key);
    for (const k of changed) {
      const n = pairCount.get(k)!;
      if (n > 0) heap.push(n, k);
      else pairCount.delete(k);
    }
  }

  // A learned token must never spell a special token, or the vocab would map one string twice.
  const seen = new Set<string>();
  for (const t of vocab) {
    if (seen.has(t)) throw new Error(`duplicate token ${JSON.stringify(t)}`);
    seen.add(t);
  }
  return { vocab, merges, specialTokens };
}

// ---- Hugging Face files ----

export interface HfTokenizerOptions {
  /** BOS token, prepended when special tokens are asked for. Default specialTokens[0]. */
  bos?: string;
  /** EOS token (never added automatically). Default specialTokens[1]. */
  eos?: string;
}

/**
 * tokenizer.json in Hugging Face's format (readable by the Rust/Python library and by
 * @huggingface/tokenizers): BPE model, ByteLevel pre-tokenizer and decoder, and a template
 * post-processor that prepends BOS, like LLaMA's.
 */
export function hfTokenizerJson(model: BpeModel, opts: HfTokenizerOptions = {}): object {
  const bos = opts.bos ?? model.specialTokens[0];
  if (bos === undefined || !model.specialTokens.includes(bos)) throw new Error('the BOS token must be one of the special tokens');
  const bosId = model.vocab.indexOf(bos);
  const vocab: Record<string, number> = {};
  model.vocab.forEach((t, id) => (vocab[t] = id));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((content) => ({
      id: model.vocab.indexOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "left right" strings: byte-level tokens never contain a space, and every version reads these.
      merges: model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

/**
 * tokenizer_config.json: which tokens are BOS / EOS, and that BOS is added. Tokenization-space
 * clean-up must be off, or decoding would turn "a ." into "a." and break round trips.
 */
export function hfTokenizerConfig(model: BpeModel, opts: HfTokenizerOptions = {}): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: opts.bos ?? model.specialTokens[0] ?? null,
    eos_token: opts.eos ?? model.specialTokens[1] ?? null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
  };
}

/**
 * The two files' exact text: 2-space JSON like Hugging Face writes, but the vocab listed in id
 * order (a plain object would list digit-only keys such as "0" first, whatever their id).
 */
export function hfTokenizerFiles(model: BpeModel, opts: HfTokenizerOptions = {}): { tokenizer: string; config: string } {
  const json = hfTokenizerJson(model, opts) as { model: { vocab: unknown } };
  const marker = '__VOCAB_IN_ID_ORDER__';
  const text = JSON.stringify({ ...json, model: { ...json.model, vocab: marker } }, null, 2);
  const indent = ' '.repeat(6);
  const entries = model.vocab.map((t, id) => `${indent}${JSON.stringify(t)}: ${id}`).join(',\n');
  return {
    // A function replacer: tokens such as "$'" must not be read as replacement patterns.
    tokenizer: text.replace(JSON.stringify(marker), () => `{\n${entries}\n${' '.repeat(4)}}`) + '\n',
    config: JSON.stringify(hfTokenizerConfig(model, opts), null, 2) + '\n',
  };
}

/** The BPE model back from a tokenizer.json written by hfTokenizerJson. */
export function bpeModelFromHfJson(json: unknown): BpeModel {
  const j = json as {
    added_tokens?: { content: string; special?: boolean }[];
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  };
  if (j.model?.type !== 'BPE' || !j.model.vocab || !j.model.merges) throw new Error('not a BPE tokenizer.json');
  const vocab: string[] = [];
  for (const [t, id] of Object.entries(j.model.vocab)) vocab[id] = t;
  const merges = j.model.merges.map((m): [string, string] => {
    const [l, r] = typeof m === 'string' ? m.split(' ') : m;
    return [l!, r!];
  });
  const specialTokens = (j.added_tokens ?? []).filter((t) => t.special).map((t) => t.content);
  return { vocab, merges, specialTokens };
}

// ---- reference encoder ----

/**
 * Encode with the merges the textbook way: in each chunk, find the adjacent pair with the
 * lowest merge rank, merge all its occurrences left to right, repeat. No special tokens are
 * recognized or added. Slow but obviously right; used to check the library's ids.
 */
export function referenceEncoder(model: BpeModel): (text: string) => number[] {
  const idOf = new Map(model.vocab.map((t, id) => [t, id]));
  const rank = new Map(model.merges.map(([l, r], i) => [`${l} ${r}`, i]));
  return (text) => {
    const ids: number[] = [];
    for (const chunk of pretokenize(text)) {
      let parts = Array.from(chunk);
      for (;;) {
        let best = -1, bestRank = Infinity;
        for (let i = 0; i + 1 < parts.length; i++) {
          const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
          if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
        }
        if (best < 0) break;
        const [l, r] = model.merges[bestRank]!;
        const next: string[] = [];
        for (let i = 0; i < parts.length; i++) {
          if (i + 1 < parts.length && parts[i] === l && parts[i + 1] === r) next.push(l + r), i++;
          else next.push(parts[i]!);
        }
        parts = next;
      }
      for (const p of parts) ids.push(idOf.get(p)!);
    }
    return ids;
  };
}
