/**
 * Parameters of a LLaMA-family model, laid out explicitly per block (HF names and [out, in] shapes).
 */
import type { Tensor } from '../engine/tensor.js';
import type { LlamaConfig } from '../io/config.js';

/** The nine weight tensors of a block that block-importance criteria score, in the fixtures' column order. */
export const BLOCK_WEIGHT_NAMES = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'inputNorm', 'postNorm'] as const;
export type BlockWeightName = (typeof BLOCK_WEIGHT_NAMES)[number];
export const BLOCK_BIAS_NAMES = ['qBias', 'kBias', 'vBias', 'oBias', 'gateBias', 'upBias', 'downBias'] as const;
export type BlockBiasName = (typeof BLOCK_BIAS_NAMES)[number];

export type BlockWeights = Record<BlockWeightName, Tensor> & Partial<Record<BlockBiasName, Tensor>>;

export interface LlamaWeights {
  embed: Tensor;      // [V, H]
  blocks: BlockWeights[];
  norm: Tensor;       // [H]
  lmHead: Tensor;     // [V, H]; the same object as `embed` when tied
}

export interface LlamaModel {
  config: LlamaConfig;
  /** config.json as read, kept so that saving preserves keys we do not interpret */
  rawConfig: Record<string, unknown>;
  weights: LlamaWeights;
}

/** Hugging Face tensor name of a block parameter. */
export function hfBlockName(layer: number, name: BlockWeightName | BlockBiasName): string {
  const p = `model.layers.${layer}`;
  switch (name) {
    case 'q': return `${p}.self_attn.q_proj.weight`;
    case 'k': return `${p}.self_attn.k_proj.weight`;
    case 'v': return `${p}.self_attn.v_proj.weight`;
    case 'o': return `${p}.self_attn.o_proj.weight`;
    case 'gate': return `${p}.mlp.gate_proj.weight`;
    case 'up': return `${p}.mlp.up_proj.weight`;
    case 'down': return `${p}.mlp.down_proj.weight`;
    case 'inputNorm': return `${p}.input_layernorm.weight`;
    case 'postNorm': return `${p}.post_attention_layernorm.weight`;
    case 'qBias': return `${p}.self_attn.q_proj.bias`;
    case 'kBias': return `${p}.self_attn.k_proj.bias`;
    case 'vBias': return `${p}.self_attn.v_proj.bias`;
    case 'oBias': return `${p}.self_attn.o_proj.bias`;
    case 'gateBias': return `${p}.mlp.gate_proj.bias`;
    case 'upBias': return `${p}.mlp.up_proj.bias`;
    case 'downBias': return `${p}.mlp.down_proj.bias`;
  }
}

/** Expected shape of every parameter of block `i`, for validation against the config. */
export function blockShapes(cfg: LlamaConfig, i: number): Partial<Record<BlockWeightName | BlockBiasName, number[]>> {
  const l = cfg.layers[i]!;
  const H = cfg.hiddenSize, D = cfg.headDim, I = l.intermediateSize;
  const q = l.numHeads * D, kv = l.numKvHeads * D;
  const s: Partial<Record<BlockWeightName | BlockBiasName, number[]>> = {
    q: [q, H], k: [kv, H], v: [kv, H], o: [H, q], gate: [I, H], up: [I, H], down: [H, I], inputNorm: [H], postNorm: [H],
  };
  if (cfg.qkvBias) { s.qBias = [q]; s.kBias = [kv]; s.vBias = [kv]; }
  if (cfg.oBias) s.oBias = [H];
  if (cfg.mlpBias) { s.gateBias = [I]; s.upBias = [I]; s.downBias = [H]; }
  return s;
}

/** All parameters as (HF name, tensor) pairs, in the order HF writes them. Tied lm_head is omitted. */
export function namedParameters(model: LlamaModel): [string, Tensor][] {
  const w = model.weights;
  const out: [string, Tensor][] = [['model.embed_tokens.weight', w.embed]];
  w.blocks.forEach((b, i) => {
    for (const n of [...BLOCK_WEIGHT_NAMES, ...BLOCK_BIAS_NAMES]) {
      const t = b[n];
      if (t) out.push([hfBlockName(i, n), t]);
    }
  });
  out.push(['model.norm.weight', w.norm]);
  if (!model.config.tieWordEmbeddings) out.push(['lm_head.weight', w.lmHead]);
  return out;
}
