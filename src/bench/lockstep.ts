/**
 * Several models timed side by side in lockstep: every model prefills, then every model does its
 * decode step 1, then step 2, and so on. On a shared machine the load changes from second to
 * second; alternating whole runs (tens of seconds each for a 1B model on 2 cores) lets one model
 * catch a busy minute and another a quiet one, while alternating single steps spreads the load
 * over all models alike. Each model does exactly what generate() does (KV cache, full prefill
 * logits, greedy pick of the next token), with its own cache; only the order of the work changes.
 * All models are in memory together, so peak RSS is process-wide.
 */
import { KVCache } from '../model/kv-cache.js';
import { sampleToken } from '../model/generate.js';
import type { LlamaRunner } from '../model/llama.js';
import { countParams } from '../io/config.js';
import { benchPrompt, checkSettings, fullGc, summarize, warnLength, type GenBenchModel, type GenBenchSettings, type GenRun, type OnRun } from './generation.js';

/** Greedy next token of every row, from the logits of its last position. */
function greedy(logits: Float32Array, B: number, T: number, V: number): Int32Array {
  const next = new Int32Array(B);
  for (let b = 0; b < B; b++) next[b] = sampleToken(logits, (b * T + T - 1) * V, V, { maxNewTokens: 0 }, Math.random);
  return next;
}

/** One lockstep generation of `newTokens` tokens for every model; per-model times. */
async function lockstepRun(runs: LlamaRunner[], prompts: number[][], B: number, newTokens: number): Promise<GenRun[]> {
  fullGc();
  const T0 = prompts[0]!.length;
  const st = runs.map((run, k) => ({ run, cache: new KVCache(run.config, B, T0 + newTokens), next: new Int32Array(0) as Int32Array, prompt: prompts[k]!, prefillMs: 0, decodeMs: 0, rss: 0 }));
  const sample = () => { const r = process.memoryUsage.rss(); for (const s of st) s.rss = Math.max(s.rss, r); };
  for (const s of st) {
    const ids = Int32Array.from(Array.from({ length: B }, () => s.prompt).flat());
    const t0 = performance.now();
    const r = await s.run.forward(ids, B, T0, { cache: s.cache, logits: true });
    s.next = greedy(r.logits!, B, T0, s.run.config.vocabSize);
    s.prefillMs = performance.now() - t0;
  }
  sample();
  for (let step = 1; step < newTokens; step++) {
    for (const s of st) {
      const t0 = performance.now();
      const r = await s.run.forward(s.next, B, 1, { cache: s.cache, logits: true });
      s.next = greedy(r.logits!, B, 1, s.run.config.vocabSize);
      s.decodeMs += performance.now() - t0;
    }
    sample();
  }
  return st.map((s) => ({ prefillMs: s.prefillMs, decodeMs: s.decodeMs, rss: s.rss }));
}

export async function benchLockstep(models: { name: string; run: LlamaRunner }[], s: GenBenchSettings, onRun?: OnRun): Promise<GenBenchModel[]> {
  checkSettings(s);
  for (const m of models) warnLength(m.run, s);
  const prompts = models.map((m) => benchPrompt(m.run.config.vocabSize, s.promptLen, s.seed));
  const results = models.map((m) => ({ name: m.name, params: countParams(m.run.config), results: [] as GenBenchModel['results'] }));
  const total = s.warmup + s.repeats;
  for (const B of s.batchSizes) {
    const timed: GenRun[][] = models.map(() => []);
    for (let i = 0; i < total; i++) {
      const warm = i < s.warmup;
      const r = await lockstepRun(models.map((m) => m.run), prompts, B, warm ? (s.warmupTokens ?? s.newTokens) : s.newTokens);
      r.forEach((x, k) => {
        onRun?.(models[k]!.name, B, i + 1, total, x.prefillMs + x.decodeMs);
        if (!warm) timed[k]!.push(x);
      });
    }
    timed.forEach((t, k) => results[k]!.results.push(summarize(B, s.newTokens, t)));
  }
  return results;
}
