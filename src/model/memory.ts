/**
 * Peak-memory estimates of the engine's stages, from the config and the batch shapes alone (so a
 * preflight can run before the weights are read). Each part mirrors what the code allocates:
 *
 *   weights      the model in its stored dtype (never widened as a whole)
 *   runtime      Node, onnxruntime and the WebAssembly kernels' fixed share
 *   workspace    the activation heap of one forward (llama.ts workspaceBytes; WebAssembly memory
 *                never shrinks, so its largest size stays) and the widened-weight scratch (the
 *                widest stacked weight in f32: gate|up)
 *   activations  what blocks keep for their backward (BlockActs), or block inputs when recomputed
 *   gradients    Taylor+: row chunks of one weight gradient (and one block's sum with several
 *                batches); LoRA: none of the frozen base
 *   backward     one block's backward temporaries
 *
 * The constants were checked against measured peaks (npm run bench:scale).
 */
import { countParams, type LlamaConfig, type LayerShape } from '../io/config.js';
import { residentWeightBytes } from '../engine/resident.js';
import type { LlamaModel } from './weights.js';
import { namedParameters, blockShapes } from './weights.js';
import type { MemoryEstimate } from '../util/memory.js';
import { KEEP_LOGITS_MAX, SINK_GRAD_ELEMENTS, RECOMPUTE_MIN_BYTES } from './llama.js';

/** f32 logits a forward that keeps activations keeps for its backward (small heads only). */
function keptLogits(cfg: LlamaConfig, N: number): number {
  return N * cfg.vocabSize <= KEEP_LOGITS_MAX ? N * cfg.vocabSize : 0;
}

const F32 = 4;
/** Node + onnxruntime-node + kernels, resident before any model is loaded (measured ~0.2 GB). */
export const RUNTIME_BYTES = 300 * 2 ** 20;
const HEAD_VOCAB_CHUNK = 4096;
const HEAD_ROWS = 4096;

/** The shape of a batch: rows × tokens. */
export interface BatchShape { B: number; T: number }

/** Bytes of the stored weights of a loaded model. */
export function modelWeightBytes(model: LlamaModel): number {
  return namedParameters(model).reduce((s, [, t]) => s + t.data.byteLength, 0);
}

/** Elements of block i's weight matrices and vectors. */
function blockElements(cfg: LlamaConfig, i: number): number {
  return Object.values(blockShapes(cfg, i)).reduce((s, shape) => s + shape!.reduce((a, d) => a * d, 1), 0);
}

/** f32 elements one block keeps for its backward over B×T tokens (BlockActs in llama.ts). */
export function blockActsElements(cfg: LlamaConfig, l: LayerShape, b: BatchShape): number {
  const N = b.B * b.T, H = cfg.hiddenSize, q = l.numHeads * cfg.headDim, kv = l.numKvHeads * cfg.headDim, I = l.intermediateSize;
  // xIn xMid, qh kh vh att, gate|up, rstd1/2, attention probabilities; xn1, xn2 and act when small
  const normedAndAct = N * (2 * H + I);
  return N * (2 * H + 2 * q + 2 * kv + 2 * I + 2) + (F32 * normedAndAct < RECOMPUTE_MIN_BYTES ? normedAndAct : 0) + b.B * l.numHeads * b.T * b.T;
}

/** f32 elements of one block's backward temporaries (dx copies, dAct, dGU, attention gradients). */
function blockBackwardElements(cfg: LlamaConfig, l: LayerShape, b: BatchShape): number {
  const N = b.B * b.T, H = cfg.hiddenSize, q = l.numHeads * cfg.headDim, kv = l.numKvHeads * cfg.headDim, I = l.intermediateSize;
  // + one dY-wide temporary (column copies for biases and LoRA, staging), the recomputed xn1, xn2
  // and act, the heap copies of gate|up, x_mid, x_in and dx_mid, the recomputed attention output
  return N * (3 * H + 3 * I + 4 * q + 4 * kv + Math.max(2 * I, q + 2 * kv, H) + 2 * H + I + 1) + N * (2 * I + 3 * H + 2 * q) + 2 * b.B * l.numHeads * b.T * b.T;
}

/** Activation heap of one forward (mirrors LlamaRunner.workspaceBytes) plus the widened-weight scratch. */
function workspaceBytes(cfg: LlamaConfig, b: BatchShape, keep: boolean): number {
  const N = b.B * b.T, H = cfg.hiddenSize;
  let block = 0, widest = H, scratch = 0;
  for (const l of cfg.layers) {
    const q = l.numHeads * cfg.headDim, kv = l.numKvHeads * cfg.headDim, I = l.intermediateSize;
    block = Math.max(block, N * (5 * H + q + 2 * kv + 3 * q + 3 * I + 2 * kv) + b.B * l.numHeads * b.T * b.T + 4 * N);
    widest = Math.max(widest, 2 * I, l.numHeads * b.T);
    scratch = Math.max(scratch, 2 * I * H, (q + 2 * kv) * H);
  }
  const head = N * H + Math.min(N, HEAD_ROWS) * (N <= 4 ? cfg.vocabSize : Math.min(cfg.vocabSize, HEAD_VOCAB_CHUNK)) + 4 * N;
  const staging = (keep ? 3 : 1) * N * widest;
  return F32 * (block + head + 2 * N * H + staging + scratch) + (1 << 20);
}

/** A forward without gradients (ppl, zero-shot, scoring by loss): weights plus one forward's working set. */
export function forwardMemory(cfg: LlamaConfig, weightBytes: number, batch: BatchShape, hiddenStates = false): MemoryEstimate {
  const N = batch.B * batch.T, H = cfg.hiddenSize;
  return {
    parts: {
      weights: weightBytes, runtime: RUNTIME_BYTES, workspace: workspaceBytes(cfg, batch, false),
      ...(hiddenStates ? { 'hidden states': F32 * (cfg.numLayers + 1) * N * H } : {}),
    },
    lower: '--batch-size or --seq-len',
  };
}

/**
 * Taylor+ (criteria/taylor.ts): with `recompute`, block inputs are kept and one block's
 * activations at a time; otherwise every block's activations from the forward.
 */
export function taylorMemoryFor(cfg: LlamaConfig, weightBytes: number, batches: BatchShape[], recompute: boolean): MemoryEstimate {
  const H = cfg.hiddenSize;
  let acts = 0, inputs = 0, backward = 0, dx = 0, workspace = 0;
  for (const b of batches) {
    const N = b.B * b.T;
    const perBlock = cfg.layers.map((l) => blockActsElements(cfg, l, b));
    acts += recompute ? Math.max(...perBlock) : perBlock.reduce((a, c) => a + c, 0);
    inputs += recompute ? (cfg.numLayers + 1) * N * H : 0;
    dx += 2 * N * H + (recompute ? 0 : keptLogits(cfg, N));
    backward = Math.max(backward, ...cfg.layers.map((l) => blockBackwardElements(cfg, l, b)));
    workspace = Math.max(workspace, workspaceBytes(cfg, b, true));
  }
  // one batch: gradient row chunks reduced as they come (SINK_GRAD_ELEMENTS, and its slack);
  // several: one block's summed gradients besides
  const grads = 2 * SINK_GRAD_ELEMENTS + (batches.length > 1 ? Math.max(...cfg.layers.map((_, i) => blockElements(cfg, i))) : 0);
  return {
    parts: {
      weights: weightBytes, runtime: RUNTIME_BYTES, workspace,
      activations: F32 * (acts + inputs + dx), gradients: F32 * grads, backward: F32 * backward,
    },
    lower: '--n or --seq-len',
  };
}

export function taylorMemory(model: LlamaModel, batches: BatchShape[], recompute: boolean): MemoryEstimate {
  return taylorMemoryFor(model.config, modelWeightBytes(model), batches, recompute);
}

/** Elements of the stored parameters of a config (embeddings, blocks, norm, head). */
export function paramElements(cfg: LlamaConfig): number {
  const VH = cfg.vocabSize * cfg.hiddenSize;
  return VH * (cfg.tieWordEmbeddings ? 1 : 2) + cfg.hiddenSize + cfg.layers.reduce((s, _, i) => s + blockElements(cfg, i), 0);
}

/**
 * One LoRA step on a frozen base (train/lora.ts): the base in its stored dtype, every block's
 * activations for one micro-batch, LoRA's byte dropout masks and rank-r projections, one block's
 * backward temporaries, and the adapters with their gradients and AdamW moments.
 */
export function loraStepMemory(cfg: LlamaConfig, weightBytes: number, micro: BatchShape, r: number, targets: readonly string[], checkpointed = false): MemoryEstimate {
  const N = micro.B * micro.T, H = cfg.hiddenSize;
  let acts = 0, adapters = 0, backward = 0, blockMax = 0;
  for (const l of cfg.layers) {
    const q = l.numHeads * cfg.headDim, kv = l.numKvHeads * cfg.headDim, I = l.intermediateSize;
    const shape: Record<string, [number, number]> = { q: [H, q], k: [H, kv], v: [H, kv], o: [q, H], gate: [H, I], up: [H, I], down: [I, H] };
    let block = F32 * blockActsElements(cfg, l, micro);
    backward = Math.max(backward, blockBackwardElements(cfg, l, micro));
    for (const t of targets) {
      const [inW, outW] = shape[t]!;
      block += F32 * N * r + N * inW;         // x A^T, and the dropout mask (a byte per input element)
      adapters += r * (inW + outW);
    }
    acts += block;
    blockMax = Math.max(blockMax, block);
  }
  // checkpointed (model/checkpointed.ts): every block boundary, and one block's activations at a time
  const activations = checkpointed ? F32 * (cfg.numLayers + 1) * N * H + blockMax : acts + F32 * (2 * N * H + keptLogits(cfg, N));
  return {
    parts: {
      weights: weightBytes, runtime: RUNTIME_BYTES, workspace: workspaceBytes(cfg, micro, true),
      activations, backward: F32 * backward, adapters: F32 * 4 * adapters,
    },
    lower: checkpointed ? '--micro-batch or --cutoff' : '--micro-batch or --cutoff, or --gradient-checkpointing on',
  };
}

/**
 * One full-training (CPT) step (train/cpt.ts): f32 masters of every parameter, their summed
 * gradients, a second full gradient while a later micro-batch is accumulated, AdamW's two
 * moments, and one micro-batch's activations.
 */
export function cptStepMemory(cfg: LlamaConfig, micro: BatchShape, accumulating: boolean): MemoryEstimate {
  const P = paramElements(cfg), N = micro.B * micro.T, H = cfg.hiddenSize;
  const acts = cfg.layers.reduce((s, l) => s + blockActsElements(cfg, l, micro), 0);
  const backward = Math.max(...cfg.layers.map((l) => blockBackwardElements(cfg, l, micro)));
  return {
    parts: {
      'f32 weights': F32 * P, gradients: F32 * P * (accumulating ? 2 : 1), 'AdamW moments': F32 * 2 * P,
      runtime: RUNTIME_BYTES, workspace: workspaceBytes(cfg, micro, true), activations: F32 * (acts + 2 * N * H + keptLogits(cfg, N)), backward: F32 * backward,
    },
    lower: '--micro-batch or --seq-len (full training needs 16 bytes a parameter: use LoRA for large models)',
  };
}

/** f32 KV cache of B rows for up to S positions (kv-cache.ts). */
export function kvCacheBytes(cfg: LlamaConfig, B: number, S: number): number {
  return cfg.layers.reduce((s, l) => s + 2 * F32 * B * l.numKvHeads * S * cfg.headDim, 0);
}

/**
 * Generation (generate.ts, bench): the prompt's forward with its full logits, then one token per
 * step, with a KV cache for prompt + new tokens.
 */
export function decodeMemory(cfg: LlamaConfig, weightBytes: number, o: { B: number; prompt: number; newTokens: number }): MemoryEstimate {
  const f = forwardMemory(cfg, weightBytes, { B: o.B, T: o.prompt });
  return {
    parts: { ...f.parts, 'KV cache': kvCacheBytes(cfg, o.B, o.prompt + o.newTokens), logits: F32 * o.B * o.prompt * cfg.vocabSize, 'resident weights (decode)': residentWeightBytes(weightBytes, countParams(cfg)) },
    lower: '--batch-sizes, --prompt-len or --new-tokens',
  };
}

/**
 * Zero-shot scoring (eval/loglikelihood.ts): contexts batched up to `contextTokens` tokens with
 * their full logits and KV cache (continuations run from forks of it, a few rows at a time).
 */
export function zeroshotMemory(cfg: LlamaConfig, weightBytes: number, contextTokens: number): MemoryEstimate {
  const f = forwardMemory(cfg, weightBytes, { B: 1, T: contextTokens });
  return {
    parts: { ...f.parts, 'KV cache': 2 * kvCacheBytes(cfg, 1, contextTokens), logits: 2 * F32 * contextTokens * cfg.vocabSize, 'resident weights (decode)': residentWeightBytes(weightBytes, countParams(cfg)) },
    lower: '--engine llama.cpp (a quantized GGUF), or a smaller model',
  };
}
