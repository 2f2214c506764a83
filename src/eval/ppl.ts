/**
 * Perplexity as the Shortened LLaMA / LLM-Pruner reference evaluates it: the text's lines joined
 * with "\n\n", tokenized without special tokens, BOS once at the start ('first'), before every
 * window ('every') or never ('none'); consecutive non-overlapping windows of seqLen tokens (the
 * tail is dropped); PPL = exp(mean next-token NLL over all windows).
 */
import fs from 'node:fs';
import { UserError } from '../util/errors.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import { LlamaRunner } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import { forwardMemory } from '../model/memory.js';
import { backendWithThreads } from '../engine/select.js';
import { Replicas, replicaWorkers, shareWeights } from '../train/replicas.js';

export type BosMode = 'first' | 'every' | 'none';

export interface PplResult {
  ppl: number;
  nll: number;
  tokens: number;
  windows: number;
}

export function readLines(file: string): string[] {
  let raw: string;
  try { raw = fs.readFileSync(file, 'utf8'); } catch { throw new UserError(`cannot read ${file}`); }
  const lines = raw.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.every((l) => !l.trim())) throw new UserError(`${file}: no text (empty file)`);
  return lines;
}

/** Token windows of `seqLen` from text lines. */
export function pplWindows(lines: string[], tok: TextTokenizer, seqLen: number, bos: BosMode): number[][] {
  if (!(seqLen >= 2)) throw new UserError('--seq-len must be at least 2');
  const ids = tok.encode(lines.join('\n\n'), { addSpecialTokens: false });
  if (bos !== 'none' && tok.bosId === null) throw new UserError('the tokenizer has no BOS token; use --bos none');
  const rows: number[][] = [];
  if (bos === 'every') {
    const w = seqLen - 1;
    for (let i = 0; i + w <= ids.length; i += w) rows.push([tok.bosId!, ...ids.slice(i, i + w)]);
  } else {
    const stream = bos === 'first' ? [tok.bosId!, ...ids] : ids;
    for (let i = 0; i + seqLen <= stream.length; i += seqLen) rows.push(stream.slice(i, i + seqLen));
  }
  if (rows.length === 0) throw new UserError(`text has ${ids.length} tokens, fewer than one window of ${seqLen}`);
  return rows;
}

/** Another engine's per-position next-token NLL of one row (e.g. llama.cpp's). */
export interface RowNll {
  rowNll(row: number[]): Promise<number[]>;
}

/** Mean next-token NLL over all rows (each row scored on its own), in batches of equal-length rows. */
export async function perplexity(run: LlamaRunner | RowNll, rows: number[][], batchSize = 8, onProgress?: (done: number, total: number) => void, replicas?: Replicas): Promise<PplResult> {
  if (rows.length === 0) throw new UserError('nothing to score: no token rows');
  let sum = 0, count = 0, done = 0;
  if ('rowNll' in run) {
    for (const r of rows) {
      const nll = await run.rowNll(r);
      for (const x of nll) sum += x;
      count += nll.length;
      onProgress?.(++done, rows.length);
    }
    return { ppl: Math.exp(sum / count), nll: sum / count, tokens: count, windows: rows.length };
  }
  const byLen = new Map<number, number[][]>();
  for (const r of rows) {
    if (r.length < 2) throw new UserError(`a row of ${r.length} token(s) has nothing to predict`);
    byLen.set(r.length, [...(byLen.get(r.length) ?? []), r]);
  }
  const R = replicas?.size ?? 1;
  for (const [T, rs] of byLen) {
    for (let i = 0; i < rs.length; i += batchSize * R) {
      // up to one batch per replica at a time, summed in batch order (the serial loop's sums)
      const group: number[][][] = [];
      for (let j = 0; j < R && i + j * batchSize < rs.length; j++) group.push(rs.slice(i + j * batchSize, i + (j + 1) * batchSize));
      const scored = await Promise.all(group.map(async (batch, j) => {
        const ids = Int32Array.from(batch.flat());
        if (j > 0) return replicas!.nll(j, ids, batch.length, T);
        const res = await run.forward(ids, batch.length, T);
        return { sum: res.loss! * res.count!, count: res.count! };
      }));
      scored.forEach(({ sum: s, count: c }, j) => {
        const batch = group[j]!;
        if (!Number.isFinite(s)) throw new UserError(`the model's loss is ${s / c} on rows ${done + 1}-${done + batch.length} of ${rows.length}: its activations overflowed (no perplexity to report)`);
        sum += s;
        count += c;
        done += batch.length;
        onProgress?.(done, rows.length);
      });
    }
  }
  const nll = sum / count;
  return { ppl: Math.exp(nll), nll, tokens: count, windows: rows.length };
}

/**
 * perplexity() of a model, its batches spread over data-parallel replicas where the model is small
 * (train/replicas.ts: the same sums as one runner gives, about 1.4x sooner on 2 cores). Moves the
 * model's weights into shared memory.
 */
export async function modelPerplexity(model: LlamaModel, rows: number[][], batchSize = 8, onProgress?: (done: number, total: number) => void): Promise<PplResult> {
  const T = Math.max(2, ...rows.map((r) => r.length));
  const est = forwardMemory(model.config, 0, { B: Math.min(batchSize, rows.length), T });
  const workers = await replicaWorkers(model.config, Math.ceil(rows.length / batchSize), est, 0);
  if (workers === 0) return perplexity(new LlamaRunner(model), rows, batchSize, onProgress);
  shareWeights(model, []);
  const replicas = await Replicas.start(workers, { model, adapters: null, grads: {} });
  try {
    return await perplexity(new LlamaRunner(model, backendWithThreads(1)), rows, batchSize, onProgress, replicas);
  } finally {
    await replicas.close();
  }
}
