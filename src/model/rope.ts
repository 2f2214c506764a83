/**
 * Rotary position tables: inv_freq[i] = theta^(-2i/d), with `llama3` or `linear` scaling,
 * and cos/sin tables [positions, d/2] (computed in float64, stored f32).
 */
import type { LlamaConfig } from '../io/config.js';

export function invFreq(cfg: LlamaConfig): Float64Array {
  const d = cfg.headDim;
  const f = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) f[i] = Math.pow(cfg.ropeTheta, -(2 * i) / d);
  const s = cfg.ropeScaling;
  if (s?.type === 'llama3') {
    const low = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const high = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < f.length; i++) {
      const wavelen = (2 * Math.PI) / f[i]!;
      if (wavelen < high) continue;
      if (wavelen > low) { f[i] = f[i]! / s.factor; continue; }
      const sm = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      f[i] = ((1 - sm) * f[i]!) / s.factor + sm * f[i]!;
    }
  } else if (s?.type === 'linear') {
    for (let i = 0; i < f.length; i++) f[i] = f[i]! / s.factor;
  }
  return f;
}

export interface RopeTables { cos: Float32Array; sin: Float32Array; positions: number }

export function ropeTables(cfg: LlamaConfig, positions: number): RopeTables {
  const f = invFreq(cfg);
  const half = f.length;
  const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
  for (let t = 0; t < positions; t++) {
    for (let i = 0; i < half; i++) {
      const a = t * f[i]!;
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { cos, sin, positions };
}
