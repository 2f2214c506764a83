/**
 * A freshly initialised LLaMA, as Hugging Face's _init_weights does it: projections and embeddings
 * ~ normal(0, initializer_range), RMSNorm weights = 1. Seeded, so a recipe is reproducible.
 */
import { parseConfig } from '../io/config.js';
import { fromF32, type Tensor } from '../engine/tensor.js';
import type { DType } from '../engine/dtype.js';
import { blockShapes, type BlockWeights, type LlamaModel } from './weights.js';
import { Rng } from '../util/rng.js';

function normal(rng: Rng): number {
  // Box-Muller
  const u = 1 - rng.next(), v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function initModel(rawConfig: Record<string, unknown>, seed: number, dtype: DType = 'f32'): LlamaModel {
  const config = parseConfig(rawConfig);
  const std = typeof rawConfig['initializer_range'] === 'number' ? (rawConfig['initializer_range'] as number) : 0.02;
  const rng = new Rng(seed);
  const make = (shape: number[], isNorm: boolean): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = isNorm ? 1 : std * normal(rng);
    return fromF32(v, shape, dtype);
  };
  const H = config.hiddenSize, V = config.vocabSize;
  const embed = make([V, H], false);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const b: Record<string, Tensor> = {};
    for (const [name, shape] of Object.entries(blockShapes(config, i))) {
      b[name] = name.endsWith('Bias') ? fromF32(new Float32Array(shape!.reduce((a, c) => a * c, 1)), shape!, dtype) : make(shape!, name === 'inputNorm' || name === 'postNorm');
    }
    blocks.push(b as unknown as BlockWeights);
  }
  const torch = dtype === 'bf16' ? 'bfloat16' : dtype === 'f16' ? 'float16' : 'float32';
  return {
    config, rawConfig: { ...rawConfig, torch_dtype: torch },
    weights: { embed, blocks, norm: make([H], true), lmHead: config.tieWordEmbeddings ? embed : make([V, H], false) },
  };
}
