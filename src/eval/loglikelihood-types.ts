/**
 * The contract between tasks that need log-likelihoods (zero-shot evaluation) and the engine
 * that computes them. Requests that share a context are computed with the context run once.
 */
export interface LoglikelihoodRequest {
  /** context token ids (non-empty: callers prepend BOS/EOT where the harness does) */
  context: number[];
  /** continuation token ids (non-empty) */
  continuation: number[];
}

export interface LoglikelihoodResult {
  /** sum over continuation tokens of log p(token | everything before it) */
  logprob: number;
  /** whether every continuation token was the argmax prediction */
  isGreedy: boolean;
}

export interface LoglikelihoodScorer {
  /**
   * The model's context length: as lm-evaluation-harness does, a request longer than this sees
   * only the last maxLength + 1 tokens of context + continuation (the context cut from the left;
   * a continuation longer than that is scored on its last maxLength tokens).
   */
  readonly maxLength?: number;
  score(requests: LoglikelihoodRequest[], onProgress?: (done: number, total: number) => void): Promise<LoglikelihoodResult[]>;
}
