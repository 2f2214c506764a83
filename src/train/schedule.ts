/**
 * Learning-rate schedules: linear warmup to the peak, then linear or cosine decay (or constant).
 * Step s (0-based) of `total` uses lrAt(s): warmup gives peak * (s+1) / warmup for s < warmup (the
 * first update is not wasted at lr 0); decay then runs from the peak at s = warmup towards
 * minRatio * peak at s = total, as Hugging Face's get_{linear,cosine}_schedule_with_warmup do.
 */
export const DECAYS = ['linear', 'cosine', 'constant'] as const;
export type Decay = (typeof DECAYS)[number];

export interface Schedule {
  lr: number;
  warmup: number;
  total: number;
  decay: Decay;
  /** floor of the decay as a fraction of the peak (default 0) */
  minRatio?: number;
}

export function lrAt(s: Schedule, step: number): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  if (s.decay === 'constant') return s.lr;
  const span = Math.max(1, s.total - s.warmup);
  const progress = Math.min(1, (step - s.warmup) / span);
  const floor = s.minRatio ?? 0;
  const f = s.decay === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return s.lr * (floor + (1 - floor) * f);
}
