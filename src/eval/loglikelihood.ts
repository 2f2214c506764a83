/**
 * Log-likelihood of continuations given contexts, on the engine. Requests are grouped by
 * context: each context runs once (contexts of several groups batched together, right-padded)
 * into a KV cache, which is then forked for all its continuations, run together as one
 * right-padded batch. The context's last logits predict each continuation's first token.
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

/** Context tokens (padding included) per batched forward: large enough for efficient GEMMs. */
export const CONTEXT_BATCH_TOKENS = 1024;

/** The harness's window: at most maxLength + 1 tokens, the context cut from the left. */
export function harnessWindow(r: LoglikelihoodRequest, maxLength: number): LoglikelihoodRequest {
  if (r.context.length === 0 || r.continuation.length === 0) throw new Error('context and continuation must be non-empty');
  const excess = r.context.length + r.continuation.length - (maxLength + 1);
  if (excess <= 0) return r;
  if (excess < r.context.length) return { context: r.context.slice(excess), continuation: r.continuation };
  // the continuation alone exceeds the window (the harness has no rule for it): score the
  // continuation tokens inside the window, the first of them standing in as the context
  const window = r.continuation.slice(r.continuation.length - (maxLength + 1));
  return { context: window.slice(0, 1), continuation: window.slice(1) };
}

export class EngineScorer implements LoglikelihoodScorer {
  readonly stats: ScorerStats = { contexts: 0, requests: 0, tokensComputed: 0, tokensNaive: 0 };

  readonly maxLength: number;

  /**
   * `shareContext: false` runs every request as one full sequence, batched like the harness batches
   * them (the baseline sharing saves against).
   * `maxLength` defaults to the model's max_position_embeddings, as the harness's HFLM sets it.
   */
  constructor(private run: LlamaRunner, private opts: { shareContext?: boolean; maxLength?: number } = {}) {
    this.maxLength = opts.maxLength ?? run.config.maxPositionEmbeddings;
  }

  private window(r: LoglikelihoodRequest): LoglikelihoodRequest {
    return harnessWindow(r, this.maxLength);
  }

  async score(given: LoglikelihoodRequest[], onProgress?: (done: number, total: number) => void): Promise<LoglikelihoodResult[]> {
    const requests = given.map((r) => this.window(r));
    const out = new Array<LoglikelihoodResult>(requests.length);
    let done = 0;
    if (this.opts.shareContext === false) {
      // every request a full sequence; sequences of similar length batched, right-padded
      const len = (i: number) => requests[i]!.context.length + requests[i]!.continuation.length - 1;
      const order = requests.map((_, i) => i).sort((a, b) => len(b) - len(a));
      for (let j0 = 0; j0 < order.length;) {
        const n = Math.max(1, Math.min(order.length - j0, Math.floor(CONTEXT_BATCH_TOKENS / len(order[j0]!))));
        const batch = order.slice(j0, j0 + n);
        for (const i of batch) this.stats.tokensNaive += len(i);
        await this.scoreWhole(batch, requests, out);
        j0 += n;
        done += n;
        onProgress?.(done, requests.length);
      }
    } else {
      const groups = new Map<string, number[]>();
      requests.forEach((r, i) => {
        const key = r.context.join(',');
        const g = groups.get(key);
        if (g) g.push(i); else groups.set(key, [i]);
      });
      // contexts of similar length run together, right-padded, a batch of up to CONTEXT_BATCH_TOKENS
      const order = [...groups.values()].sort((a, b) => requests[b[0]!]!.context.length - requests[a[0]!]!.context.length);
      for (let g0 = 0; g0 < order.length;) {
        const Tm = requests[order[g0]![0]!]!.context.length;
        const G = Math.max(1, Math.min(order.length - g0, Math.floor(CONTEXT_BATCH_TOKENS / Tm)));
        const batch = order.slice(g0, g0 + G);
        for (const idx of batch) for (const i of idx) this.stats.tokensNaive += requests[i]!.context.length + requests[i]!.continuation.length - 1;
        await this.scoreGroups(batch, requests, out);
        g0 += G;
        done += batch.reduce((s, idx) => s + idx.length, 0);
        onProgress?.(done, requests.length);
      }
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

  /**
   * Contexts of several groups as one right-padded batch (a causal model's logits and keys at real
   * positions never see the padding after them); then each group's continuations from a fork of
   * its row cut to the context's real length.
   */
  private async scoreGroups(groups: number[][], requests: LoglikelihoodRequest[], out: LoglikelihoodResult[]): Promise<void> {
    const V = this.run.config.vocabSize;
    const ctxs = groups.map((idx) => requests[idx[0]!]!.context);
    const G = groups.length, Tm = Math.max(...ctxs.map((c) => c.length));
    const ids = new Int32Array(G * Tm);
    ctxs.forEach((c, g) => { ids.set(c, g * Tm); ids.fill(c[c.length - 1]!, g * Tm + c.length, (g + 1) * Tm); });
    const maxCont = Math.max(...groups.flat().map((i) => requests[i]!.continuation.length));
    const cache = new KVCache(this.run.config, G, Tm + maxCont);
    const r = await this.run.forward(ids, G, Tm, { cache, logits: true });
    this.stats.contexts += G;
    this.stats.tokensComputed += G * Tm;
    for (let g = 0; g < G; g++) await this.scoreContinuations(ctxs[g]!, groups[g]!, requests, out, r.logits!, (g * Tm + ctxs[g]!.length - 1) * V, cache, g);
  }

  private async scoreContinuations(ctx: number[], idx: number[], requests: LoglikelihoodRequest[], out: LoglikelihoodResult[],
    ctxLogits: Float32Array, lastOff: number, cache: KVCache, row: number): Promise<void> {
    const V = this.run.config.vocabSize;
    const maxCont = Math.max(...idx.map((i) => requests[i]!.continuation.length));
    const first = idx.map((i) => this.tokenLogprob(ctxLogits, lastOff, V, requests[i]!.continuation[0]!));
    const lp = first.map((f) => f.lp), greedy = first.map((f) => f.greedy);
    if (maxCont > 1) {
      // all continuations in one batch from a forked cache, right-padded to the longest: a causal
      // model's logits at real positions never see the padding after them
      const B = idx.length, n = maxCont - 1;
      const fork = cache.fork(row, B, ctx.length + n, ctx.length);
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

  /** Requests as full sequences (no shared context), one right-padded batch. */
  private async scoreWhole(batch: number[], requests: LoglikelihoodRequest[], out: LoglikelihoodResult[]): Promise<void> {
    const V = this.run.config.vocabSize;
    const seqs = batch.map((i) => [...requests[i]!.context, ...requests[i]!.continuation].slice(0, -1));
    const B = seqs.length, Tm = Math.max(...seqs.map((q) => q.length));
    const ids = new Int32Array(B * Tm);
    seqs.forEach((q, b) => { ids.set(q, b * Tm); ids.fill(q[q.length - 1]!, b * Tm + q.length, (b + 1) * Tm); });
    const r = await this.run.forward(ids, B, Tm, { logits: true });
    this.stats.contexts += B;
    this.stats.tokensComputed += B * Tm;
    batch.forEach((i, b) => {
      const req = requests[i]!;
      let lp = 0, greedy = true;
      req.continuation.forEach((tok, j) => {
        const x = this.tokenLogprob(r.logits!, (b * Tm + req.context.length - 1 + j) * V, V, tok);
        lp += x.lp;
        greedy &&= x.greedy;
      });
      out[i] = { logprob: lp, isGreedy: greedy };
    });
  }

}
