/**
 * Random models of a given shape, generated on the fly (speed depends only on shapes).
 * TinyLlama-1.1B shapes by default, bf16 storage.
 */
import { parseConfig } from '../io/config.js';
import type { DType } from '../engine/dtype.js';
import { toBf16Bits, toF16Bits } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import type { LlamaModel, BlockWeights } from '../model/weights.js';
import { blockShapes } from '../model/weights.js';
import { mulberry32 } from '../util/rng.js';

export const TINYLLAMA_CONFIG: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 5632,
  num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000,
  rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
};

export function randomTensor(shape: number[], dtype: DType, rng: () => number, std: number, mean = 0): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'f32') {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = mean + std * (rng() * 2 - 1) * 1.732;
    return { dtype, shape, data: d };
  }
  // 16-bit patterns from a small table of random values, laid down as copies of one random
  // block at random rotations: memcpy speed, which matters for billions of elements.
  const table = new Uint16Array(4096);
  const conv = dtype === 'bf16' ? toBf16Bits : toF16Bits;
  for (let i = 0; i < table.length; i++) table[i] = conv(mean + std * (rng() * 2 - 1) * 1.732);
  const BLOCK = 1 << 16;
  const block = new Uint16Array(2 * BLOCK);
  let s = (rng() * 4096) | 0;
  for (let i = 0; i < BLOCK; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; block[i] = table[s & 4095]!; }
  block.copyWithin(BLOCK, 0, BLOCK);
  const d = new Uint16Array(n);
  for (let o = 0; o < n; o += BLOCK) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const r = s & (BLOCK - 1);
    d.set(block.subarray(r, r + Math.min(BLOCK, n - o)), o);
  }
  return { dtype, shape, data: d };
}

export function randomModel(rawConfig: Record<string, unknown> = TINYLLAMA_CONFIG, dtype: DType = 'bf16', seed = 0): LlamaModel {
  const config = parseConfig(rawConfig);
  const rng = mulberry32(seed);
  const H = config.hiddenSize, V = config.vocabSize;
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const b: Record<string, Tensor> = {};
    for (const [name, shape] of Object.entries(blockShapes(config, i))) {
      const isNorm = name === 'inputNorm' || name === 'postNorm';
      b[name] = randomTensor(shape!, dtype, rng, isNorm ? 0.1 : 0.02, isNorm ? 1 : 0);
    }
    blocks.push(b as unknown as BlockWeights);
  }
  const embed = randomTensor([V, H], dtype, rng, 0.02);
  return {
    config, rawConfig: { ...rawConfig, torch_dtype: dtype === 'bf16' ? 'bfloat16' : dtype === 'f16' ? 'float16' : 'float32' },
    weights: { embed, blocks, norm: randomTensor([H], dtype, rng, 0.1, 1), lmHead: config.tieWordEmbeddings ? embed : randomTensor([V, H], dtype, rng, 0.02) },
  };
}

/** Multiply-adds x2 of one forward over N tokens (projections + head + attention scores/values). */
export function forwardFlops(model: LlamaModel, B: number, T: number): number {
  const c = model.config;
  const N = B * T;
  let f = 2 * N * c.hiddenSize * c.vocabSize;
  for (const l of c.layers) {
    const q = l.numHeads * c.headDim, kv = l.numKvHeads * c.headDim;
    f += 2 * N * c.hiddenSize * (2 * q + 2 * kv) + 2 * N * 3 * c.hiddenSize * l.intermediateSize;
    f += 2 * 2 * B * l.numHeads * T * T * c.headDim; // QK^T and PV (full square; the causal half is masked, not skipped)
  }
  return f;
}
