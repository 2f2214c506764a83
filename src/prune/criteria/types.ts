/** What every block-importance criterion returns. */
export interface CriterionResult {
  criterion: string;
  /** one score per block; the meaning (higher = more important) holds for every criterion */
  scores: number[];
  /** block indices in removal order: the least important first */
  order: number[];
  /** criterion-specific extras (per-tensor scores, angular matrix, SLEB perplexities, ...) */
  details: Record<string, unknown>;
}

/** Indices sorted by ascending score (stable). */
export function ascendingOrder(scores: number[]): number[] {
  return scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
}
