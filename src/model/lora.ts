/**
 * LoRA adapters (Hu et al.): y = x W^T + b + scale * dropout(x) A^T B^T, with A [r, in], B [out, r],
 * scale = alpha / r. Base weights stay frozen; only A and B get gradients.
 */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraPair {
  A: Float32Array;   // [r, in]
  B: Float32Array;   // [out, r]
  r: number;
  scale: number;
  dropout: number;
}

/** Per block, the adapted projections. */
export type LoraAdapters = Partial<Record<LoraTarget, LoraPair>>[];

export interface LoraGrads { A: Float32Array; B: Float32Array }
