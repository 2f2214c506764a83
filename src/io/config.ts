/**
 * config.json of a Hugging Face LLaMA-family model, normalized into one shape the engine reads.
 * Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.
 */
import { UserError } from '../util/errors.js';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

/** Shapes of one block. They may differ per block after width pruning. */
export interface LayerShape {
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
}

export interface LlamaConfig {
  modelType: 'llama' | 'mistral' | 'qwen2';
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** q,k,v (and for llama's attention_bias also o) projections carry a bias */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  layers: LayerShape[];
}

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;

/** Key under which per-layer shapes of width-pruned models are stored in config.json. */
export const LAYER_SHAPES_KEY = 'shortened_layer_shapes';

function num(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new UserError(`config.json: missing '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`config.json: '${key}' must be a number`);
  return v;
}

/**
 * A size or count: a positive integer below 2^31 (tensors are indexed with 32-bit integers; a
 * config that says otherwise describes no model we can hold, and must not make us try).
 */
function size(raw: Record<string, unknown>, key: string, fallback?: number, max = 2 ** 31 - 1): number {
  const v = num(raw, key, fallback);
  if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`config.json: '${key}' must be a positive integer (got ${v})`);
  if (v > max) throw new UserError(`config.json: '${key}' is ${v}, beyond any model this tool can hold (at most ${max})`);
  return v;
}

/** More blocks than any released model has by far (Llama 3.1 405B has 126). */
const MAX_LAYERS = 4096;

/** A positive real (epsilons, RoPE bases and factors). */
function positive(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = num(raw, key, fallback);
  if (!(v > 0)) throw new UserError(`config.json: '${key}' must be positive (got ${v})`);
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function parseConfig(raw: Record<string, unknown>): LlamaConfig {
  const modelType = raw['model_type'];
  if (typeof modelType !== 'string') throw new UserError(`config.json: missing 'model_type'`);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new UserError(`unsupported model_type '${modelType}' (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  const mt = modelType as LlamaConfig['modelType'];
  const archs = raw['architectures'];
  const architecture = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] :
    mt === 'llama' ? 'LlamaForCausalLM' : mt === 'mistral' ? 'MistralForCausalLM' : 'Qwen2ForCausalLM';
  const hiddenSize = size(raw, 'hidden_size');
  const numHeads = size(raw, 'num_attention_heads');
  const numKvHeads = size(raw, 'num_key_value_heads', numHeads);
  const numLayers = size(raw, 'num_hidden_layers', undefined, MAX_LAYERS);
  const headDim = raw['head_dim'] != null ? size(raw, 'head_dim') : hiddenSize / numHeads;
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2) throw new UserError(`config.json: head_dim ${headDim} must be a positive even integer`);
  if (numHeads % numKvHeads) throw new UserError(`config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const intermediateSize = size(raw, 'intermediate_size');

  let ropeScaling: RopeScaling | null = null;
  const rs = raw['rope_scaling'];
  if (rs !== undefined && rs !== null && !isObject(rs)) throw new UserError(`config.json: 'rope_scaling' must be an object or null`);
  if (rs) {
    const type = (rs['rope_type'] ?? rs['type']) as string | undefined;
    if (type === 'llama3') {
      ropeScaling = {
        type, factor: positive(rs, 'factor'), lowFreqFactor: positive(rs, 'low_freq_factor'), highFreqFactor: positive(rs, 'high_freq_factor'),
        originalMaxPositionEmbeddings: size(rs, 'original_max_position_embeddings'),
      };
    } else if (type === 'linear') {
      ropeScaling = { type, factor: positive(rs, 'factor') };
    } else if (type !== 'default') {
      throw new UserError(`config.json: unsupported rope_scaling type '${String(type)}' (supported: llama3, linear)`);
    }
  }
  const attentionBias = raw['attention_bias'] === true;
  const layers: LayerShape[] = [];
  const perLayer = raw[LAYER_SHAPES_KEY];
  if (perLayer !== undefined) {
    if (!Array.isArray(perLayer) || perLayer.length !== numLayers) throw new UserError(`config.json: '${LAYER_SHAPES_KEY}' must list ${numLayers} layers`);
    for (const l of perLayer as unknown[]) {
      if (!isObject(l)) throw new UserError(`config.json: every entry of '${LAYER_SHAPES_KEY}' must be an object`);
      const s = { numHeads: size(l, 'num_attention_heads'), numKvHeads: size(l, 'num_key_value_heads'), intermediateSize: size(l, 'intermediate_size') };
      if (s.numKvHeads <= 0 || s.numHeads % s.numKvHeads) throw new UserError(`config.json: bad per-layer head counts ${s.numHeads}/${s.numKvHeads}`);
      layers.push(s);
    }
  } else {
    for (let i = 0; i < numLayers; i++) layers.push({ numHeads, numKvHeads, intermediateSize });
  }
  const eos = raw['eos_token_id'];
  return {
    modelType: mt,
    architecture,
    vocabSize: size(raw, 'vocab_size'),
    hiddenSize,
    numLayers,
    headDim,
    rmsNormEps: positive(raw, 'rms_norm_eps', 1e-6),
    ropeTheta: positive(raw, 'rope_theta', 10000),
    ropeScaling,
    tieWordEmbeddings: raw['tie_word_embeddings'] === true,
    qkvBias: mt === 'qwen2' ? true : mt === 'llama' ? attentionBias : false,
    oBias: mt === 'llama' ? attentionBias : false,
    mlpBias: mt === 'llama' ? raw['mlp_bias'] === true : false,
    maxPositionEmbeddings: size(raw, 'max_position_embeddings', 2048),
    bosTokenId: Number.isSafeInteger(raw['bos_token_id']) ? raw['bos_token_id'] as number : null,
    eosTokenId: Number.isSafeInteger(eos) || (Array.isArray(eos) && eos.length > 0 && eos.every(Number.isSafeInteger)) ? eos as number | number[] : null,
    layers,
  };
}

/** Parameter count of the model described by `cfg`. */
export function countParams(cfg: LlamaConfig): number {
  const H = cfg.hiddenSize;
  let n = cfg.vocabSize * H * (cfg.tieWordEmbeddings ? 1 : 2) + H;
  for (const l of cfg.layers) n += blockParams(cfg, l);
  return n;
}

export function blockParams(cfg: LlamaConfig, l: LayerShape): number {
  const H = cfg.hiddenSize, D = cfg.headDim;
  const q = l.numHeads * D, kv = l.numKvHeads * D, I = l.intermediateSize;
  let n = H * q + 2 * H * kv + q * H + 3 * H * I + 2 * H;
  if (cfg.qkvBias) n += q + 2 * kv;
  if (cfg.oBias) n += H;
  if (cfg.mlpBias) n += 2 * I + H;
  return n;
}
