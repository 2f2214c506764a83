/**
 * Pretraining text, streamed: documents are read one at a time from text files (one document a
 * line) or jsonl files ({"text"} per line), tokenized with BOS (and EOS appended), concatenated,
 * and cut into sequences of seqLen tokens, so the corpus never needs to fit in memory.
 *
 * The position is small and exact: (source, byte offset of the next line), the tokens carried
 * over from the last document, the epoch, and the seeded shuffle buffer with its RNG state. A
 * checkpoint stores it; restoring it continues the very same sequence of sequences.
 */
import fs from 'node:fs';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { TextTokenizer } from '../io/tokenizer.js';

/** A file on disk, or documents already in memory (e.g. the embedded Brown corpus). */
export type DocSource = { file: string } | { name: string; docs: string[] };

/** Where the next document starts: source index and byte offset (files) or document index. */
export interface DocCursor {
  source: number;
  pos: number;
}

const CHUNK = 1 << 20;

/** Reads one document at a time from a list of sources, at any cursor. */
export class DocReader {
  private fd = -1;
  private fdSource = -1;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(readonly sources: DocSource[]) {
    if (sources.length === 0) throw new UserError('no training data given');
    for (const s of sources) if ('file' in s && !fs.existsSync(s.file)) throw new UserError(`cannot read ${s.file}`);
  }

  name(i: number): string {
    const s = this.sources[i]!;
    return 'file' in s ? s.file : s.name;
  }

  /** The document at `cur` (skipping blank lines) and the cursor after it; null at the end of all sources. */
  read(cur: DocCursor): { text: string; next: DocCursor } | null {
    let c = cur;
    while (c.source < this.sources.length) {
      const s = this.sources[c.source]!;
      if ('docs' in s) {
        if (c.pos < s.docs.length) {
          const text = s.docs[c.pos]!;
          const next = { source: c.source, pos: c.pos + 1 };
          if (text.trim()) return { text, next };
          c = next;
          continue;
        }
      } else {
        const line = this.lineAt(c.source, c.pos);
        if (line) {
          const next = { source: c.source, pos: line.next };
          if (line.text.trim()) return { text: this.docText(s.file, line.text, c.pos), next };
          c = next;
          continue;
        }
      }
      c = { source: c.source + 1, pos: 0 };
    }
    return null;
  }

  private docText(file: string, line: string, offset: number): string {
    if (!file.endsWith('.jsonl')) return line;
    let rec: unknown;
    try { rec = JSON.parse(line); } catch { throw new UserError(`${file} (byte ${offset}): invalid JSON line`); }
    const text = (rec as { text?: unknown }).text;
    if (typeof text !== 'string') throw new UserError(`${file} (byte ${offset}): record has no "text" string`);
    return text;
  }

  /** The line starting at byte `offset` of source `i` (without '\n') and the next offset; null at EOF. */
  private lineAt(i: number, offset: number): { text: string; next: number } | null {
    if (this.fdSource !== i) {
      this.close();
      this.fd = fs.openSync((this.sources[i] as { file: string }).file, 'r');
      this.fdSource = i;
      this.buf = Buffer.alloc(0);
    }
    for (let want = CHUNK; ; want *= 2) {
      const rel = offset - this.bufStart;
      if (rel >= 0 && rel <= this.buf.length) {
        const nl = this.buf.indexOf(10, rel);
        if (nl >= 0) return { text: this.buf.toString('utf8', rel, nl).replace(/\r$/, ''), next: this.bufStart + nl + 1 };
      }
      // Refill from `offset`, growing until a whole line fits or the file ends.
      const b = Buffer.alloc(want);
      const n = fs.readSync(this.fd, b, 0, want, offset);
      this.buf = b.subarray(0, n);
      this.bufStart = offset;
      if (n === 0) return null;
      if (n < want) {
        const nl = this.buf.indexOf(10);
        const text = this.buf.toString('utf8', 0, nl >= 0 ? nl : n).replace(/\r$/, '');
        return { text, next: nl >= 0 ? offset + nl + 1 : offset + n };
      }
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.fdSource = -1;
  }
}

export interface PackOptions {
  seqLen: number;
  /** append EOS after every document (default true) */
  eos?: boolean;
  /** sequences held in the shuffle buffer (0 or 1: stream order) */
  shuffleBuffer?: number;
  seed?: number;
  /** where every epoch starts (e.g. after held-out validation documents) */
  start?: DocCursor;
  /** stop before this cursor (source and pos both reached), for a validation range */
  end?: DocCursor;
}

export interface PackState {
  cursor: DocCursor;
  epoch: number;
  carry: number[];
  buffer: number[][];
  rng: number;
}

function before(a: DocCursor, b: DocCursor): boolean {
  return a.source < b.source || (a.source === b.source && a.pos < b.pos);
}

/** Packed sequences of seqLen tokens, endlessly (epoch after epoch), seeded and resumable. */
export class TextPacker {
  private cursor: DocCursor;
  private epoch = 0;
  private carry: number[] = [];
  private buffer: number[][] = [];
  private rng: Rng;
  private readonly start: DocCursor;

  constructor(readonly reader: DocReader, readonly tok: TextTokenizer, readonly opts: PackOptions) {
    if (!(opts.seqLen >= 2)) throw new UserError('--seq-len must be at least 2');
    this.start = opts.start ?? { source: 0, pos: 0 };
    this.cursor = { ...this.start };
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** Tokens of the next document (BOS ... EOS), wrapping to the next epoch at the end. */
  private nextDoc(): number[] {
    for (let wrapped = 0; ; ) {
      const atEnd = this.opts.end !== undefined && !before(this.cursor, this.opts.end);
      const d = atEnd ? null : this.reader.read(this.cursor);
      if (d) {
        this.cursor = d.next;
        const ids = this.tok.encode(d.text, { addSpecialTokens: true });
        if ((this.opts.eos ?? true) && this.tok.eosId !== null) ids.push(this.tok.eosId);
        return ids;
      }
      if (++wrapped > 1) throw new UserError(`no documents in ${this.reader.sources.map((_, i) => this.reader.name(i)).join(', ')}`);
      this.cursor = { ...this.start };
      this.epoch++;
    }
  }

  /** The next sequence in stream order. */
  private nextInOrder(): number[] {
    while (this.carry.length < this.opts.seqLen) for (const id of this.nextDoc()) this.carry.push(id);
    const seq = this.carry.slice(0, this.opts.seqLen);
    this.carry = this.carry.slice(this.opts.seqLen);
    return seq;
  }

  /** The next training sequence (from the shuffle buffer when there is one). */
  next(): Int32Array {
    const k = this.opts.shuffleBuffer ?? 0;
    if (k <= 1) return Int32Array.from(this.nextInOrder());
    while (this.buffer.length < k) this.buffer.push(this.nextInOrder());
    const j = this.rng.int(this.buffer.length);
    const seq = this.buffer[j]!;
    this.buffer[j] = this.buffer[this.buffer.length - 1]!;
    this.buffer.pop();
    return Int32Array.from(seq);
  }

  /** Epochs begun so far (the first epoch is 0). */
  get epochs(): number {
    return this.epoch;
  }

  state(): PackState {
    return { cursor: { ...this.cursor }, epoch: this.epoch, carry: this.carry.slice(), buffer: this.buffer.map((b) => b.slice()), rng: this.rng.state };
  }

  restore(s: PackState): void {
    this.cursor = { ...s.cursor };
    this.epoch = s.epoch;
    this.carry = s.carry.slice();
    this.buffer = s.buffer.map((b) => b.slice());
    this.rng.state = s.rng;
  }
}

/** Cursor after the first `n` documents from `start` (for holding them out), and those documents. */
export function skipDocs(reader: DocReader, n: number, start: DocCursor = { source: 0, pos: 0 }): { cursor: DocCursor; docs: number } {
  let cur = start, k = 0;
  while (k < n) {
    const d = reader.read(cur);
    if (!d) break;
    cur = d.next;
    k++;
  }
  return { cursor: cur, docs: k };
}

/** Whole sequences one pass over [start, end) yields (a streamed pass: tokenizes everything once). */
export function countSequences(reader: DocReader, tok: TextTokenizer, seqLen: number, opts: { eos?: boolean; start?: DocCursor; end?: DocCursor } = {}): number {
  let cur = opts.start ?? { source: 0, pos: 0 }, tokens = 0;
  for (;;) {
    if (opts.end && !before(cur, opts.end)) break;
    const d = reader.read(cur);
    if (!d) break;
    cur = d.next;
    tokens += tok.encode(d.text, { addSpecialTokens: true }).length + ((opts.eos ?? true) && tok.eosId !== null ? 1 : 0);
  }
  return Math.floor(tokens / seqLen);
}

/** The sequences of one in-order pass over [start, end), at most maxRows (validation sets). */
export function packedRows(reader: DocReader, tok: TextTokenizer, seqLen: number, maxRows: number, opts: { eos?: boolean; start?: DocCursor; end?: DocCursor } = {}): Int32Array[] {
  let cur = opts.start ?? { source: 0, pos: 0 };
  const rows: Int32Array[] = [];
  let carry: number[] = [];
  while (rows.length < maxRows) {
    if (opts.end && !before(cur, opts.end)) break;
    const d = reader.read(cur);
    if (!d) break;
    cur = d.next;
    for (const id of tok.encode(d.text, { addSpecialTokens: true })) carry.push(id);
    if ((opts.eos ?? true) && tok.eosId !== null) carry.push(tok.eosId);
    while (carry.length >= seqLen && rows.length < maxRows) {
      rows.push(Int32Array.from(carry.slice(0, seqLen)));
      carry = carry.slice(seqLen);
    }
  }
  return rows;
}
