/**
 * Autoregressive generation with a KV cache: the prompt is prefilled in one forward, then one
 * token per step. Greedy at temperature 0, else sampling with top-k / top-p and a seeded RNG.
 */
import { LlamaRunner } from './llama.js';
import { KVCache } from './kv-cache.js';
import { mulberry32 } from '../util/rng.js';

export interface GenerateOptions {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** stop a row when it emits one of these */
  stopIds?: number[];
  onToken?: (step: number, tokens: number[]) => void;
}

export interface GenerateResult {
  /** generated tokens per row (without the prompt) */
  tokens: number[][];
  /** logits each token was chosen from, per step (row 0 only), when asked */
  stepLogits?: Float32Array[];
  prefillMs: number;
  decodeMs: number;
}

/** Pick a token from one row of logits. */
export function sampleToken(logits: Float32Array, off: number, V: number, opts: GenerateOptions, rng: () => number): number {
  const temp = opts.temperature ?? 0;
  if (temp <= 0) {
    let best = 0, bv = -Infinity;
    for (let j = 0; j < V; j++) if (logits[off + j]! > bv) { bv = logits[off + j]!; best = j; }
    return best;
  }
  let idx = [...Array(V).keys()].sort((a, b) => logits[off + b]! - logits[off + a]!);
  if (opts.topK && opts.topK > 0) idx = idx.slice(0, opts.topK);
  const m = logits[off + idx[0]!]!;
  let p = idx.map((j) => Math.exp((logits[off + j]! - m) / temp));
  let sum = p.reduce((a, b) => a + b, 0);
  p = p.map((x) => x / sum);
  if (opts.topP !== undefined && opts.topP < 1) {
    let c = 0, keep = 0;
    while (keep < p.length && c < opts.topP) c += p[keep++]!;
    idx = idx.slice(0, keep); p = p.slice(0, keep);
    sum = p.reduce((a, b) => a + b, 0); p = p.map((x) => x / sum);
  }
  let u = rng(), k = 0;
  while (k < p.length - 1 && u >= p[k]!) { u -= p[k]!; k++; }
  return idx[k]!;
}

/** Generate from prompts of equal length (rows of `prompt`). */
export async function generate(run: LlamaRunner, prompts: number[][], opts: GenerateOptions, keepStepLogits = false): Promise<GenerateResult> {
  const B = prompts.length, T0 = prompts[0]!.length;
  if (prompts.some((p) => p.length !== T0)) throw new Error('prompts must have equal length');
  const V = run.config.vocabSize;
  const cache = new KVCache(run.config, B, T0 + opts.maxNewTokens);
  const rng = mulberry32(opts.seed ?? 0);
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  const stepLogits: Float32Array[] = [];
  let t0 = performance.now();
  let r = await run.forward(Int32Array.from(prompts.flat()), B, T0, { cache, logits: true });
  const prefillMs = performance.now() - t0;
  t0 = performance.now();
  let T = T0;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const off = (b * T + T - 1) * V;
      if (b === 0 && keepStepLogits) stepLogits.push(r.logits!.slice(off, off + V));
      next[b] = done[b] ? next[b]! : sampleToken(r.logits!, off, V, opts, rng);
      if (!done[b]) out[b]!.push(next[b]!);
      if (opts.stopIds?.includes(next[b]!)) done[b] = true;
    }
    opts.onToken?.(step, [...next]);
    if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
    r = await run.forward(next, B, 1, { cache, logits: true });
    T = 1;
  }
  return { tokens: out, stepLogits: keepStepLogits ? stepLogits : undefined, prefillMs, decodeMs: performance.now() - t0 };
}
