/** Calibration token rows grouped into equal-length batches (the unit the engine runs). */
import { UserError } from '../util/errors.js';

export interface CalibBatch {
  ids: Int32Array; // [B, T] row-major
  B: number;
  T: number;
}

/** Group rows by length into batches; rows shorter than 2 tokens carry no prediction. */
export function batchesFromRows(rows: number[][]): CalibBatch[] {
  if (rows.length === 0) throw new UserError('calibration data is empty');
  const byLen = new Map<number, number[][]>();
  for (const r of rows) {
    if (r.length < 2) throw new UserError(`calibration rows need at least 2 tokens (got ${r.length})`);
    byLen.set(r.length, [...(byLen.get(r.length) ?? []), r]);
  }
  return [...byLen.entries()].map(([T, rs]) => ({ ids: Int32Array.from(rs.flat()), B: rs.length, T }));
}

/**
 * Split batches so that none runs more than `maxTokens` tokens (B×T) at once: large calibration
 * sets then run in chunks (bounded activation heaps) instead of one giant forward.
 */
export function splitBatches(batches: CalibBatch[], maxTokens: number): CalibBatch[] {
  return batches.flatMap((b) => {
    const rows = Math.max(1, Math.floor(maxTokens / b.T));
    if (b.B <= rows) return [b];
    const out: CalibBatch[] = [];
    for (let r = 0; r < b.B; r += rows) {
      const n = Math.min(rows, b.B - r);
      out.push({ ids: b.ids.subarray(r * b.T, (r + n) * b.T), B: n, T: b.T });
    }
    return out;
  });
}
