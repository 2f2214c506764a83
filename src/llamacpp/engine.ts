/**
 * llama.cpp as an inference engine for generation, perplexity and zero-shot scoring, on a GGUF
 * export of our model. Token ids always come from our tokenizer, so both engines see the same ids;
 * llama.cpp only evaluates them.
 *
 * Log-likelihoods come from `controlledEvaluate` with `generateNext.probabilities`: llama.cpp's
 * softmax of every asked position's logits (float32), from which we take log p(next token). A
 * probability below float32's range (a logit gap of more than ~100) reads as -Infinity.
 *
 * A sequence's KV cache keeps the tokens of the previous request, so requests that share a context
 * (the choices of a zero-shot document) evaluate the shared prefix once.
 */
import type { GenerateOptions } from '../model/generate.js';
import { UserError } from '../util/errors.js';
import { llamaCpp, type NodeLlamaCpp } from './runtime.js';
import type { LoglikelihoodRequest, LoglikelihoodResult, LoglikelihoodScorer } from '../eval/loglikelihood-types.js';
import { harnessWindow } from '../eval/loglikelihood.js';
import type { RowNll } from '../eval/ppl.js';
import type { GenRun } from '../bench/generation.js';
import type { Token } from 'node-llama-cpp';

/** node-llama-cpp brands token ids; ours are plain vocabulary indices. */
const asTokens = (ids: number[]) => ids as Token[];

type LlamaModel = Awaited<ReturnType<Awaited<ReturnType<NodeLlamaCpp['getLlama']>>['loadModel']>>;
type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>;
type LlamaSequence = ReturnType<LlamaContext['getSequence']>;
type EvalItem = Parameters<LlamaSequence['controlledEvaluate']>[0][number];

export interface LlamaCppOptions {
  /** tokens a sequence holds (default: the model's training context) */
  contextSize?: number;
  /** float32 KV cache and attention (default: llama.cpp's own, an f16 cache and flash attention); for exact comparisons */
  f32Cache?: boolean;
  /** threads (default: llama.cpp's choice, all cores) */
  threads?: number;
  /** read the weights into memory instead of mapping the file (timings free of page faults, as our engine holds its weights) */
  preload?: boolean;
}

/** Our engine's generation settings, for one sequence (a token at a time, not a row per batch). */
export interface LlamaCppGenerateOptions extends Omit<GenerateOptions, 'onToken'> {
  onToken?: (step: number, token: number) => void;
}

/**
 * log p(target) from llama.cpp's float32 probabilities. Near-certain tokens (p > 1/2) would lose
 * every digit in log(p), as float32 resolves p near 1 only to 6e-8: there log p = log1p(-q) with q
 * the sum of every other token's probability, which small float32 values carry to full precision.
 */
function logProb(probs: ReadonlyMap<Token, number>, target: number, p: number): number {
  if (p <= 0.5) return Math.log(p);
  let q = 0;
  for (const [t, v] of probs) if (t !== target) q += v;
  return Math.log1p(-Math.min(q, 1));
}

export class LlamaCppEngine implements LoglikelihoodScorer, RowNll {
  readonly name = 'llama.cpp';
  private contexts = new Map<number, LlamaContext>();
  private seq: LlamaSequence | null = null;

  private constructor(private model: LlamaModel, private opts: LlamaCppOptions, readonly maxLength: number) {}

  /** Load a GGUF file into llama.cpp (on the CPU). */
  static async open(ggufFile: string, opts: LlamaCppOptions = {}): Promise<LlamaCppEngine> {
    const { llama } = await llamaCpp();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: ggufFile, ...(opts.preload ? { useMmap: false } : {}) });
    } catch (e) {
      throw new UserError(`llama.cpp cannot load ${ggufFile}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    }
    return new LlamaCppEngine(model, opts, opts.contextSize ?? model.trainContextSize);
  }

  /** A context of `sequences` sequences of `contextSize` tokens, created once per sequence count. */
  private async context(sequences: number, contextSize = this.maxLength): Promise<LlamaContext> {
    const key = sequences * 1e7 + contextSize;
    let c = this.contexts.get(key);
    if (!c) {
      c = await this.model.createContext({
        // one token of headroom: node-llama-cpp shifts (drops the start of) a sequence that fills its context
        sequences, contextSize: contextSize + 1, batchSize: Math.max(contextSize + 1, sequences),
        ...(this.opts.threads ? { threads: this.opts.threads } : {}),
        // float32 cache and no flash attention (whose CPU path rounds through f16): float32 arithmetic throughout
        ...(this.opts.f32Cache ? { experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const, flashAttention: false } : {}),
      });
      this.contexts.set(key, c);
    }
    return c;
  }

  private async sequence(): Promise<LlamaSequence> {
    this.seq ??= (await this.context(1)).getSequence();
    return this.seq;
  }

  /**
   * Log-probabilities of tokens[from+1 .. end) given everything before each, and whether each was
   * the argmax. The sequence keeps tokens[0 .. end-1) for the next call to reuse as a prefix.
   */
  private async logprobs(tokens: number[], from: number): Promise<{ lp: number[]; greedy: boolean[] }> {
    const seq = await this.sequence();
    if (tokens.length - 1 > seq.contextSize) throw new UserError(`${tokens.length - 1} tokens exceed llama.cpp's context of ${seq.contextSize}`);
    const input = tokens.slice(0, -1);
    // reuse the cached prefix, but evaluate at least position `from` (its logits are needed)
    const keep = Math.min(seq.compareContextTokens(asTokens(input)).firstDifferentIndex, from);
    if (keep < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    const items: EvalItem[] = asTokens(input.slice(keep)).map((t, k): EvalItem => (keep + k >= from ? [t, { generateNext: { probabilities: true } }] : t));
    const out = await seq.controlledEvaluate(items);
    const lp: number[] = [], greedy: boolean[] = [];
    for (let i = from; i < input.length; i++) {
      const probs = out[i - keep]?.next.probabilities;
      if (!probs) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
      const target = tokens[i + 1]!;
      const p = probs.get(target as Token) ?? 0;
      lp.push(logProb(probs, target, p));
      const top = probs.entries().next().value as [number, number] | undefined;
      greedy.push(top !== undefined && p >= top[1]);
    }
    return { lp, greedy };
  }

  /** Per-position NLL of each row's next-token predictions. */
  async rowNll(row: number[]): Promise<number[]> {
    if (row.length < 2) throw new UserError(`a row of ${row.length} token(s) has nothing to predict`);
    return (await this.logprobs(row, 0)).lp.map((x) => -x);
  }

  async score(requests: LoglikelihoodRequest[], onProgress?: (done: number, total: number) => void): Promise<LoglikelihoodResult[]> {
    const out: LoglikelihoodResult[] = [];
    for (const given of requests) {
      const r = harnessWindow(given, this.maxLength);
      const { lp, greedy } = await this.logprobs([...r.context, ...r.continuation], r.context.length - 1);
      out.push({ logprob: lp.reduce((a, b) => a + b, 0), isGreedy: greedy.every(Boolean) });
      onProgress?.(out.length, requests.length);
    }
    return out;
  }

  /** Generate from one prompt: greedy at temperature 0, else llama.cpp's sampler (seeded). */
  async generate(prompt: number[], o: LlamaCppGenerateOptions): Promise<{ tokens: number[]; prefillMs: number; decodeMs: number }> {
    const seq = await this.sequence();
    await seq.clearHistory();
    const r = await this.generateOn(seq, prompt, o);
    await seq.clearHistory();
    return r;
  }

  private async generateOn(seq: LlamaSequence, prompt: number[], o: LlamaCppGenerateOptions): Promise<{ tokens: number[]; prefillMs: number; decodeMs: number }> {
    const temperature = o.temperature ?? 0;
    const tokens: number[] = [];
    const t0 = performance.now();
    let t1 = t0;
    const it = seq.evaluate(asTokens(prompt), {
      temperature, topK: o.topK ?? 0, topP: o.topP ?? 1, ...(temperature > 0 ? { seed: o.seed ?? 0 } : {}), yieldEogToken: true,
    });
    for await (const t of it) {
      if (tokens.length === 0) t1 = performance.now();
      tokens.push(t);
      o.onToken?.(tokens.length - 1, t);
      if (tokens.length >= o.maxNewTokens || o.stopIds?.includes(t)) break;
    }
    return { tokens, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
  }

  /**
   * One timed greedy generation of `newTokens` for B copies of `prompt`, the B sequences of one
   * context decoded together (llama.cpp batches the sequences' pending tokens into one decode).
   */
  async timeGeneration(prompt: number[], B: number, newTokens: number): Promise<GenRun> {
    const ctx = await this.context(B, Math.min(this.maxLength, prompt.length + newTokens + 1));
    const seqs = Array.from({ length: B }, () => ctx.getSequence());
    let rss = process.memoryUsage.rss();
    try {
      const t0 = performance.now();
      let firstAll = 0, got = 0;
      await Promise.all(seqs.map((s) => this.generateOn(s, prompt, {
        maxNewTokens: newTokens,
        onToken: (step) => {
          if (step === 0 && ++got === B) firstAll = performance.now();
          if (step % 16 === 0) rss = Math.max(rss, process.memoryUsage.rss());
        },
      })));
      const end = performance.now();
      rss = Math.max(rss, process.memoryUsage.rss());
      return { prefillMs: firstAll - t0, decodeMs: end - firstAll, rss };
    } finally {
      for (const s of seqs) await s.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.seq?.dispose();
    for (const c of this.contexts.values()) await c.dispose();
    this.contexts.clear();
    await this.model.dispose();
  }
}
