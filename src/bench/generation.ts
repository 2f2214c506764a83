/**
 * Generation speed as the Shortened LLaMA paper measures it: one short prompt (12 tokens)
 * replicated over a batch, a fixed number of new tokens (128) with a KV cache, warm-up runs
 * discarded, mean and spread over repeats. Latency is end to end (prefill + all decode steps);
 * throughput = batch x new tokens / latency. Greedy decoding never stops early (no EOS).
 *
 * Peak memory is the process's resident set size, sampled after the prefill and after every
 * decode step, with a full GC before each run so that garbage of earlier runs does not count;
 * it includes the weights, the KV cache, activations and the Node runtime (~50 MB).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { LlamaRunner } from '../model/llama.js';
import { generate } from '../model/generate.js';
import { countParams } from '../io/config.js';
import { mulberry32 } from '../util/rng.js';
import { UserError } from '../util/errors.js';

export interface GenBenchSettings {
  batchSizes: number[];
  promptLen: number;
  newTokens: number;
  warmup: number;
  repeats: number;
  /** seed of the random prompt */
  seed: number;
  /** new tokens of a warm-up run (default: newTokens); warm-ups only need to touch every code path */
  warmupTokens?: number;
}

export const DEFAULT_GEN_BENCH: GenBenchSettings = { batchSizes: [1, 8, 16, 32, 64], promptLen: 12, newTokens: 128, warmup: 1, repeats: 3, seed: 0 };

/** One batch size; the first six fields are the report's bench schema. */
export interface GenBenchResult {
  batch: number;
  /** end-to-end generation time, mean over repeats (ms) */
  latencyMs: number;
  /** sample standard deviation over repeats (ms) */
  latencyStd: number;
  /** batch x new tokens / latency */
  tokensPerSec: number;
  prefillMs: number;
  peakMemMB: number;
  /** time of the new-tokens-1 single-token steps (mean, ms) */
  decodeMs: number;
  decodeStd: number;
  /** batch x (new tokens - 1) / decode time */
  decodeTokensPerSec: number;
  /** every repeat's latency (ms) */
  runsMs: number[];
}

export interface GenBenchModel {
  name: string;
  params: number;
  results: GenBenchResult[];
}

let gcFn: (() => void) | null | undefined;

/** A full garbage collection, when V8 lets us expose one. */
export function fullGc(): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

export function checkSettings(s: GenBenchSettings): void {
  if (s.batchSizes.length === 0 || s.batchSizes.some((b) => !(Number.isInteger(b) && b >= 1))) throw new UserError('--batch-sizes must list positive integers');
  if (!(Number.isInteger(s.promptLen) && s.promptLen >= 1)) throw new UserError('--prompt-len must be a positive integer');
  if (!(Number.isInteger(s.newTokens) && s.newTokens >= 2)) throw new UserError('--new-tokens must be at least 2');
  if (!(Number.isInteger(s.warmup) && s.warmup >= 0)) throw new UserError('--warmup must be a non-negative integer');
  if (!(Number.isInteger(s.repeats) && s.repeats >= 1)) throw new UserError('--repeats must be a positive integer');
  if (s.warmupTokens !== undefined && !(Number.isInteger(s.warmupTokens) && s.warmupTokens >= 1)) throw new UserError('--warmup-tokens must be a positive integer');
}

/** The benchmark prompt: promptLen random ids (not the first few, often special tokens). */
export function benchPrompt(vocabSize: number, len: number, seed: number): number[] {
  const rng = mulberry32(seed);
  const lo = Math.min(3, vocabSize - 1);
  return Array.from({ length: len }, () => lo + Math.floor(rng() * (vocabSize - lo)));
}

/** One timed generation. */
export interface GenRun {
  prefillMs: number;
  decodeMs: number;
  /** peak resident set size seen during the run (bytes) */
  rss: number;
}

export async function timeGeneration(run: LlamaRunner, prompt: number[], B: number, newTokens: number): Promise<GenRun> {
  fullGc();
  let rss = process.memoryUsage.rss();
  const sample = () => { rss = Math.max(rss, process.memoryUsage.rss()); };
  const g = await generate(run, Array.from({ length: B }, () => prompt), { maxNewTokens: newTokens, onToken: sample });
  sample();
  return { prefillMs: g.prefillMs, decodeMs: g.decodeMs, rss };
}

/** Mean and spread of timed runs (warm-ups already dropped). */
export function summarize(B: number, newTokens: number, runs: GenRun[]): GenBenchResult {
  const lat = runs.map((r) => r.prefillMs + r.decodeMs), dec = runs.map((r) => r.decodeMs);
  const latencyMs = mean(lat), decodeMs = mean(dec);
  return {
    batch: B, latencyMs, latencyStd: std(lat), tokensPerSec: (B * newTokens) / (latencyMs / 1000),
    prefillMs: mean(runs.map((r) => r.prefillMs)), peakMemMB: Math.max(...runs.map((r) => r.rss)) / 1e6,
    decodeMs, decodeStd: std(dec), decodeTokensPerSec: (B * (newTokens - 1)) / (decodeMs / 1000), runsMs: lat,
  };
}

export type OnRun = (model: string, batch: number, run: number, total: number, ms: number) => void;

export function warnLength(run: LlamaRunner, s: GenBenchSettings): void {
  const max = run.config.maxPositionEmbeddings;
  if (s.promptLen + s.newTokens > max) process.stderr.write(`bench: prompt + new tokens (${s.promptLen + s.newTokens}) exceed max_position_embeddings ${max}; timing them anyway\n`);
}

/** What the benchmark times: our engine by default, or another one (llama.cpp) behind the same calls. */
export interface GenerationTarget {
  vocabSize: number;
  maxPositionEmbeddings: number;
  params: number;
  time(prompt: number[], B: number, newTokens: number): Promise<GenRun>;
}

export function runnerTarget(run: LlamaRunner): GenerationTarget {
  return {
    vocabSize: run.config.vocabSize, maxPositionEmbeddings: run.config.maxPositionEmbeddings, params: countParams(run.config),
    time: (prompt, B, n) => timeGeneration(run, prompt, B, n),
  };
}

/** Time one model over the batch sizes with generate(): warm-ups first, then the timed repeats. */
export async function benchModel(name: string, runOrTarget: LlamaRunner | GenerationTarget, s: GenBenchSettings, onRun?: OnRun): Promise<GenBenchModel> {
  checkSettings(s);
  const run = runOrTarget instanceof LlamaRunner ? runnerTarget(runOrTarget) : runOrTarget;
  if (s.promptLen + s.newTokens > run.maxPositionEmbeddings) process.stderr.write(`bench: prompt + new tokens (${s.promptLen + s.newTokens}) exceed max_position_embeddings ${run.maxPositionEmbeddings}; timing them anyway\n`);
  const prompt = benchPrompt(run.vocabSize, s.promptLen, s.seed);
  const results: GenBenchResult[] = [];
  const total = s.warmup + s.repeats;
  for (const B of s.batchSizes) {
    const runs: GenRun[] = [];
    for (let i = 0; i < total; i++) {
      const warm = i < s.warmup;
      const r = await run.time(prompt, B, warm ? (s.warmupTokens ?? s.newTokens) : s.newTokens);
      onRun?.(name, B, i + 1, total, r.prefillMs + r.decodeMs);
      if (!warm) runs.push(r);
    }
    results.push(summarize(B, s.newTokens, runs));
  }
  return { name, params: run.params, results };
}

/**
 * Several targets timed in alternation, run by run (model 1, model 2, ..., then again), so that a
 * busy minute of a shared machine falls on every model alike rather than on one. Used where
 * step-level lockstep is not possible (llama.cpp runs a whole generation per call).
 */
export async function benchAlternating(targets: { name: string; target: GenerationTarget }[], s: GenBenchSettings, onRun?: OnRun): Promise<GenBenchModel[]> {
  checkSettings(s);
  const prompts = targets.map((t) => benchPrompt(t.target.vocabSize, s.promptLen, s.seed));
  const out = targets.map((t) => ({ name: t.name, params: t.target.params, results: [] as GenBenchResult[] }));
  const total = s.warmup + s.repeats;
  for (const B of s.batchSizes) {
    const timed: GenRun[][] = targets.map(() => []);
    for (let i = 0; i < total; i++) {
      const warm = i < s.warmup;
      for (let k = 0; k < targets.length; k++) {
        const r = await targets[k]!.target.time(prompts[k]!, B, warm ? (s.warmupTokens ?? s.newTokens) : s.newTokens);
        onRun?.(targets[k]!.name, B, i + 1, total, r.prefillMs + r.decodeMs);
        if (!warm) timed[k]!.push(r);
      }
    }
    timed.forEach((t, k) => out[k]!.results.push(summarize(B, s.newTokens, t)));
  }
  return out;
}
