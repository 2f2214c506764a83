/**
 * Calibration samples, as the Shortened LLaMA reference draws them: pick documents at random
 * (seeded, no repeats) until one tokenizes to at least seqLen tokens, then take a random window
 * of seqLen tokens from it; repeat for n samples. Documents are tokenized as the reference's HF
 * tokenizer call does, i.e. with special tokens (BOS).
 */
import fs from 'node:fs';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { TextTokenizer } from '../io/tokenizer.js';

export interface CalibOptions {
  n?: number;        // samples (default 10)
  seqLen?: number;   // tokens per sample (default 128)
  seed?: number;     // default 1234
}

/** Documents of a text file: one per line, or jsonl/json records with a `text` field. */
export function readDocuments(file: string): string[] {
  let raw: string;
  try { raw = fs.readFileSync(file, 'utf8'); } catch { throw new UserError(`cannot read ${file}`); }
  const lines = raw.split('\n');
  const docs: string[] = [];
  const jsonl = file.endsWith('.jsonl');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    if (!jsonl) { docs.push(line); return; }
    let rec: unknown;
    try { rec = JSON.parse(line); } catch { throw new UserError(`${file}:${i + 1}: invalid JSON`); }
    const text = (rec as { text?: unknown }).text;
    if (typeof text !== 'string') throw new UserError(`${file}:${i + 1}: record has no "text" string`);
    docs.push(text);
  });
  if (docs.length === 0) throw new UserError(`${file}: no documents (empty file)`);
  return docs;
}

export function sampleCalibration(docs: string[], tok: TextTokenizer, opts: CalibOptions = {}): number[][] {
  const n = opts.n ?? 10, seqLen = opts.seqLen ?? 128;
  if (n < 1) throw new UserError('--n must be at least 1');
  if (seqLen < 2) throw new UserError('--seq-len must be at least 2');
  const rng = new Rng(opts.seed ?? 1234);
  const used = new Set<number>();
  const tooShort = new Set<number>();
  const out: number[][] = [];
  while (out.length < n) {
    if (used.size + tooShort.size >= docs.length) {
      throw new UserError(`calibration data has only ${used.size} documents of at least ${seqLen} tokens; need ${n} (lower --seq-len or --n)`);
    }
    const i = rng.int(docs.length);
    if (used.has(i) || tooShort.has(i)) continue;
    const ids = tok.encode(docs[i]!, { addSpecialTokens: true });
    if (ids.length < seqLen) { tooShort.add(i); continue; }
    used.add(i);
    const j = rng.int(ids.length - seqLen + 1);
    out.push(ids.slice(j, j + seqLen));
  }
  return out;
}

/** Rows of a `{"input_ids": [[...], ...]}` file, used as they are. */
export function readIdsFile(file: string): number[][] {
  let json: unknown;
  try { json = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { throw new UserError(`${file}: not a readable JSON file`); }
  const rows = json !== null && typeof json === 'object' ? (json as { input_ids?: unknown }).input_ids : undefined;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.every((v) => Number.isInteger(v)))) {
    throw new UserError(`${file}: expected {"input_ids": [[int, ...], ...]} with at least one row`);
  }
  // ids become Int32Array elements: anything outside [0, 2^31) would silently wrap
  const bad = (rows as number[][]).flat().find((v) => v < 0 || v >= 2 ** 31);
  if (bad !== undefined) throw new UserError(`${file}: token id ${bad} is not a valid id`);
  return rows as number[][];
}
