/**
 * Log-likelihood of continuations given contexts, on the engine. Requests are grouped by
 * context: the context runs once into a KV cache, which is then forked for all its
 * continuations, run together as one right-padded batch. The context's last logits predict each
 * continuation's first token.
 */
import type { LlamaRunner } from '../model/llama.js';
import { KVCache } from '../model/kv-cache.js';
import { logSumExp } from '../engine/kernels.js';
import type { LoglikelihoodRequest, LoglikelihoodResult, LoglikelihoodScorer } from './loglikelihood-types.js';

export interface ScorerStats {
  contexts: number;
  requests: number;
  /** tokens run through the model */
  tokensComputed: number;
  /** tokens a scorer without prefix sharing would have run */
  tokensNaive: number;
}

export class EngineScorer implements LoglikelihoodScorer {
  readonly stats: ScorerStats = { contexts: 0, requests: 0, tokensComputed: 0, tokensNaive: 0 };

  readonly maxLength: number;

  /**
   * `shareContext: false` runs every request as one full sequence (the baseline it saves against).
   * `maxLength` defaults to the model's max_position_embeddings, as the harness's HFLM sets it.
   */
  constructor(private run: LlamaRunner, private opts: { shareContext?: boolean; maxLength?: number } = {}) {
    this.maxLength = opts.maxLength ?? run.config.maxPositionEmbeddings;
  }

  /** The harness's window: at most maxLength + 1 tokens, the context cut from the left. */
  private window(r: LoglikelihoodRequest): LoglikelihoodRequest {
    if (r.context.length === 0 || r.continuation.length === 0) throw new Error('context and continuation must be non-empty');
    const excess = r.context.length + r.continuation.length - (this.maxLength + 1);
    if (excess <= 0) return r;
    if (excess < r.context.length) return { context: r.context.slice(excess), continuation: r.continuation };
    // the continuation alone exceeds the window (the harness has no rule for it): score the
    // continuation tokens inside the window, the first of them standing in as the context
    const window = r.continuation.slice(r.continuation.length - (this.maxLength + 1));
    return { context: window.slice(0, 1), continuation: window.slice(1) };
  }

  async score(given: LoglikelihoodRequest[], onProgress?: (done: number, total: number) => void): Promise<LoglikelihoodResult[]> {
    const requests = given.map((r) => this.window(r));
    const out = new Array<LoglikelihoodResult>(requests.length);
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const key = this.opts.shareContext === false ? `#${i}` : r.context.join(',');
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    let done = 0;
    for (const idx of groups.values()) {
      const ctx = requests[idx[0]!]!.context;
      for (const i of idx) this.stats.tokensNaive += ctx.length + requests[i]!.continuation.length - 1;
      if (this.opts.shareContext === false) await this.scoreWhole(requests[idx[0]!]!, out, idx[0]!);
      else await this.scoreGroup(ctx, idx, requests, out);
      done += idx.length;
      onProgress?.(done, requests.length);
    }
    this.stats.requests += requests.length;
    return out;
  }

  /** Log-prob of `tok` under logits row `off`, and whether it is the argmax. */
  private tokenLogprob(logits: Float32Array, off: number, V: number, tok: number): { lp: number; greedy: boolean } {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[off + j]! > logits[off + best]!) best = j;
    return { lp: logits[off + tok]! - logSumExp(logits, off, V), greedy: logits[off + tok]! >= logits[off + best]! };
  }

  private async scoreGroup(ctx: number[], idx: number[], requests: LoglikelihoodRequest[], out: LoglikelihoodResult[]): Promise<void> {
    const V = this.run.config.vocabSize;
    const maxCont = Math.max(...idx.map((i) => requests[i]!.continuation.length));
    const cache = new KVCache(this.run.config, 1, ctx.length + maxCont);
    const r = await this.run.forward(Int32Array.from(ctx), 1, ctx.length, { cache, logits: true });
    this.stats.contexts++;
    this.stats.tokensComputed += ctx.length;
    const lastOff = (ctx.length - 1) * V;
    const first = idx.map((i) => this.tokenLogprob(r.logits!, lastOff, V, requests[i]!.continuation[0]!));
    const lp = first.map((f) => f.lp), greedy = first.map((f) => f.greedy);
    if (maxCont > 1) {
      // all continuations in one batch from a forked cache, right-padded to the longest: a causal
      // model's logits at real positions never see the padding after them
      const B = idx.length, n = maxCont - 1;
      const fork = cache.fork(0, B, ctx.length + n);
      const ids = new Int32Array(B * n);
      idx.forEach((i, b) => ids.set(requests[i]!.continuation.slice(0, n), b * n));
      const rr = await this.run.forward(ids, B, n, { cache: fork, logits: true });
      this.stats.tokensComputed += B * n;
      idx.forEach((i, b) => {
        const cont = requests[i]!.continuation;
        for (let t = 1; t < cont.length; t++) {
          const x = this.tokenLogprob(rr.logits!, (b * n + t - 1) * V, V, cont[t]!);
          lp[b]! += x.lp;
          greedy[b] = greedy[b]! && x.greedy;
        }
      });
    }
    idx.forEach((i, b) => { out[i] = { logprob: lp[b]!, isGreedy: greedy[b]! }; });
  }

  private async scoreWhole(req: LoglikelihoodRequest, out: LoglikelihoodResult[], i: number): Promise<void> {
    const V = this.run.config.vocabSize;
    const seq = [...req.context, ...req.continuation].slice(0, -1);
    const r = await this.run.forward(Int32Array.from(seq), 1, seq.length, { logits: true });
    this.stats.contexts++;
    this.stats.tokensComputed += seq.length;
    let lp = 0, greedy = true;
    req.continuation.forEach((tok, j) => {
      const x = this.tokenLogprob(r.logits!, (req.context.length - 1 + j) * V, V, tok);
      lp += x.lp;
      greedy &&= x.greedy;
    });
    out[i] = { logprob: lp, isGreedy: greedy };
  }
}
