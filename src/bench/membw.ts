/**
 * Memory bandwidth of this machine, and the decode speed it allows. At batch 1 a decode step
 * reads every weight once (and does ~2 FLOPs per weight), so generation is bandwidth-bound:
 * tokens/s <= bandwidth / bytes of weights read per token.
 *
 * Measured as a large copy (TypedArray.set, i.e. memcpy) of `bytes` bytes, best of a few runs,
 * counted STREAM-style: read + written bytes per second.
 */
import type { LlamaModel } from '../model/weights.js';
import { largeBuffer } from '../engine/huge-pages.js';
import { namedParameters } from '../model/weights.js';

export interface Bandwidth {
  /** size of the copied array */
  bytes: number;
  /** fastest copy */
  seconds: number;
  /** (read + written bytes) / s, in GB/s (1e9) */
  gbPerSec: number;
}

export function copyBandwidth(bytes = 1 << 30, reps = 5): Bandwidth {
  // on the pages the weights get (huge ones where available): the bound is the machine's best
  const src = new Uint8Array(largeBuffer(bytes)), dst = new Uint8Array(largeBuffer(bytes));
  // touch every page first, so the timed copies measure memory, not page faults
  for (let i = 0; i < bytes; i += 4096) { src[i] = i & 255; dst[i] = 1; }
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  if (dst[4096] !== src[4096]) throw new Error('copy failed');
  return { bytes, seconds: best, gbPerSec: (2 * bytes) / best / 1e9 };
}

/** Bytes of weights one decode step reads: all blocks, the final norm and lm_head (one embedding row is negligible). */
export function weightBytesPerToken(model: LlamaModel): number {
  let n = 0;
  for (const [name, t] of namedParameters(model)) if (name !== 'model.embed_tokens.weight') n += t.data.byteLength;
  const lm = model.weights.lmHead;
  if (model.config.tieWordEmbeddings) n += lm.data.byteLength;
  return n;
}

/**
 * Bytes this engine actually moves per decode step: 16-bit weights are widened to f32 before each
 * GEMM (read 2 B, write 4 B, then the GEMM reads 4 B: 10 B per weight); f32 weights are read once.
 */
export function engineBytesPerToken(model: LlamaModel): number {
  let n = 0;
  const add = (bytes: number, dtype: string) => { n += dtype === 'f32' ? bytes : bytes * 5; };
  for (const [name, t] of namedParameters(model)) if (name !== 'model.embed_tokens.weight') add(t.data.byteLength, t.dtype);
  if (model.config.tieWordEmbeddings) add(model.weights.lmHead.data.byteLength, model.weights.lmHead.dtype);
  return n;
}
