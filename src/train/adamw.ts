/**
 * AdamW (Loshchilov & Hutter) exactly as torch.optim.AdamW computes it, over f32 master weights:
 *
 *   p <- p * (1 - lr * wd)                     (decoupled weight decay, before the moment update)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * in f32 arithmetic, as torch does for f32 parameters.
 * A trainable parameter owns its value (updated in place, so a runner that reads it sees the
 * new weights) and a gradient accumulator that is dropped after each step (memory: for full
 * training the accumulator is the size of the model).
 */
import type { Tensor } from '../engine/tensor.js';
import { adamw as adamwKernel } from '../engine/wasm-kernels.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface Param {
  /** stable name (HF or PEFT tensor name): the key in checkpoints */
  name: string;
  shape: number[];
  value: Float32Array;
  /** accumulated micro-batch gradients, times gradScale; null until the first one arrives */
  grad: Float32Array | null;
  /** the summed gradient is gradScale * grad (saves a pass over full-model gradients) */
  gradScale: number;
  /** weight decay applies (matrices yes; norms and biases no, as HF Trainer does) */
  decay: boolean;
}

export function param(name: string, shape: number[], value: Float32Array, decay: boolean): Param {
  return { name, shape, value, grad: null, gradScale: 1, decay };
}

/** Add `weight * g` to the parameter's gradient sum (taking ownership of `g` the first time). */
export function accumulateGrad(p: Param, g: Float32Array, weight: number): void {
  if (g.length !== p.value.length) throw new Error(`gradient for ${p.name} has ${g.length} elements, expected ${p.value.length}`);
  if (!p.grad) {
    p.grad = g;
    p.gradScale = weight;
    return;
  }
  const a = p.grad, c = weight / p.gradScale;
  for (let i = 0; i < g.length; i++) a[i]! += c * g[i]!;
}

/** Global L2 norm of s * (the gradient sums). */
export function gradNorm(params: Param[], s: number): number {
  let total = 0;
  for (const p of params) {
    if (!p.grad) { p.grad = new Float32Array(p.value.length); p.gradScale = 1; } // no micro-batch reached it
    const g = p.grad;
    let sq = 0;
    for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
    total += sq * (p.gradScale * s) ** 2;
  }
  return Math.sqrt(total);
}

/** torch.nn.utils.clip_grad_norm_'s factor: maxNorm / (norm + 1e-6) when that is below 1, else 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

export class AdamW {
  /** number of steps taken (t in the bias corrections) */
  t = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  constructor(readonly params: Param[], readonly cfg: AdamWConfig) {
    for (const p of params) {
      this.m.set(p.name, new Float32Array(p.value.length));
      this.v.set(p.name, new Float32Array(p.value.length));
    }
  }

  /** One update with learning rate lr on the gradients times `scale`; gradients are consumed. */
  step(lr: number, scale = 1): void {
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.cfg;
    this.t++;
    const bc1 = 1 - b1 ** this.t, bc2 = Math.sqrt(1 - b2 ** this.t);
    const stepSize = lr / bc1;
    for (const p of this.params) {
      const g = p.grad!, w = p.value, m = this.m.get(p.name)!, v = this.v.get(p.name)!;
      const decay = p.decay ? 1 - lr * weightDecay : 1;
      // f32 SIMD in WebAssembly (a JS loop costs ~15 ns a parameter: 15 s a step at 1.1B)
      adamwKernel(w, g, m, v, scale * p.gradScale, { beta1: b1, beta2: b2, eps, decay, stepSize, bc2 });
      p.grad = null;
      p.gradScale = 1;
    }
  }

  /** Moments as tensors for a checkpoint: `<name>.exp_avg`, `<name>.exp_avg_sq` (torch's names). */
  stateTensors(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const p of this.params) {
      out.push([`${p.name}.exp_avg`, { dtype: 'f32', shape: p.shape, data: this.m.get(p.name)! }]);
      out.push([`${p.name}.exp_avg_sq`, { dtype: 'f32', shape: p.shape, data: this.v.get(p.name)! }]);
    }
    return out;
  }

  /** Restore moments (from stateTensors' names) and the step count. */
  loadState(get: (name: string) => Float32Array, t: number): void {
    for (const p of this.params) {
      this.m.get(p.name)!.set(get(`${p.name}.exp_avg`));
      this.v.get(p.name)!.set(get(`${p.name}.exp_avg_sq`));
    }
    this.t = t;
  }
}
