/**
 * Width surgery: slice every block's matrices down to the units a plan keeps, so the pruned model
 * really is smaller (no masks). Per block, with r = nH/nKV query heads per kv group and head dim d:
 *
 *   kv group g kept  ->  q rows [g*r*d, (g+1)*r*d), k and v rows [g*d, (g+1)*d), o columns as q rows
 *   channel c kept   ->  gate and up row c, down column c
 *
 * Optional per-block compensation vectors (FLAP) are added to the o_proj / down_proj biases. The
 * engine only knows Hugging Face's bias switches: llama's `attention_bias` (q, k, v and o biases)
 * and `mlp_bias` (gate, up and down biases). So a compensated model stores zero q/k/v (gate/up)
 * biases next to the real o (down) biases: the same function, and a folder HF can read when the
 * shapes are uniform. Biases are stored in the dtype of their weight matrix.
 *
 * Folder layout of a width-pruned model (written by saveModel, read back by loadModel):
 *   config.json  the source's keys, plus `head_dim` (always explicit, since hidden_size/num_heads
 *                no longer gives it), `attention_bias`/`mlp_bias` when compensation added biases,
 *                and, when blocks differ, `shortened_layer_shapes`: one
 *                {num_attention_heads, num_key_value_heads, intermediate_size} per block (the
 *                top-level head counts and intermediate_size then keep the source's values). When
 *                every block has the same shape the top-level keys hold it and the list is omitted.
 *   model.safetensors (or shards)  HF tensor names, each at its sliced shape.
 *   pruning.json  how the model was made (method, ratio, parameter counts, kept units per block).
 */
import { UserError } from '../util/errors.js';
import { LAYER_SHAPES_KEY, type LayerShape, type LlamaConfig } from '../io/config.js';
import { toF32, fromF32, type Tensor } from '../engine/tensor.js';
import type { LlamaModel, BlockWeights } from '../model/weights.js';
import { keptShape, type LayerPlan, type WidthPlan, type BiasFlags } from './plan.js';

/** Vectors added to a block's o_proj and down_proj outputs ([H] each). */
export interface BiasCompensation {
  o?: Float32Array;
  down?: Float32Array;
}

/** Runs [start, end) covering the kept units, each unit `width` wide. */
function spans(units: number[], width: number): [number, number][] {
  const out: [number, number][] = [];
  for (const u of units) {
    const s = u * width, e = s + width;
    const last = out[out.length - 1];
    if (last && last[1] === s) last[1] = e; else out.push([s, e]);
  }
  return out;
}

function newData(t: Tensor, n: number): Float32Array | Uint16Array {
  return t.data instanceof Float32Array ? new Float32Array(n) : new Uint16Array(n);
}

/** Rows of a [rows, cols] matrix, or entries of a vector, in the given spans. */
export function takeRows(t: Tensor, keep: [number, number][]): Tensor {
  const cols = t.shape.length === 2 ? t.shape[1]! : 1;
  const rows = keep.reduce((n, [s, e]) => n + e - s, 0);
  const out = newData(t, rows * cols);
  let o = 0;
  for (const [s, e] of keep) {
    out.set(t.data.subarray(s * cols, e * cols), o);
    o += (e - s) * cols;
  }
  return { dtype: t.dtype, shape: t.shape.length === 2 ? [rows, cols] : [rows], data: out };
}

/** Columns of a [rows, cols] matrix in the given spans. */
export function takeCols(t: Tensor, keep: [number, number][]): Tensor {
  const [rows, cols] = t.shape as [number, number];
  const width = keep.reduce((n, [s, e]) => n + e - s, 0);
  const out = newData(t, rows * width);
  for (let r = 0; r < rows; r++) {
    let o = r * width;
    for (const [s, e] of keep) {
      out.set(t.data.subarray(r * cols + s, r * cols + e), o);
      o += e - s;
    }
  }
  return { dtype: t.dtype, shape: [rows, width], data: out };
}

function zeros(n: number, like: Tensor): Tensor {
  return { dtype: like.dtype, shape: [n], data: newData(like, n) };
}

/** bias (+ comp), or a zero bias when the flag asks for one and none exists. */
function withBias(bias: Tensor | undefined, comp: Float32Array | undefined, n: number, like: Tensor): Tensor {
  if (!comp) return bias ?? zeros(n, like);
  const v = bias ? Float32Array.from(toF32(bias)) : new Float32Array(n);
  for (let i = 0; i < n; i++) v[i]! += comp[i]!;
  return fromF32(v, [n], like.dtype);
}

/** One block sliced to `p`, with biases as `flags` require. */
export function shrinkBlock(cfg: LlamaConfig, w: BlockWeights, l: LayerShape, p: LayerPlan, flags: BiasFlags, comp?: BiasCompensation): { w: BlockWeights; shape: LayerShape } {
  const d = cfg.headDim, r = l.numHeads / l.numKvHeads, H = cfg.hiddenSize;
  for (const g of p.keepGroups) if (!(g >= 0 && g < l.numKvHeads)) throw new Error(`kv group ${g} out of range`);
  for (const c of p.keepChannels) if (!(c >= 0 && c < l.intermediateSize)) throw new Error(`channel ${c} out of range`);
  if (p.keepGroups.length === 0 || p.keepChannels.length === 0) throw new UserError('a block must keep at least one kv group and one MLP channel');
  const qs = spans(p.keepGroups, r * d), kvs = spans(p.keepGroups, d), cs = spans(p.keepChannels, 1);
  const shape = keptShape(l, p.keepGroups.length, p.keepChannels.length);
  const q = shape.numHeads * d, kv = shape.numKvHeads * d, I = shape.intermediateSize;
  const out: BlockWeights = {
    q: takeRows(w.q, qs), k: takeRows(w.k, kvs), v: takeRows(w.v, kvs), o: takeCols(w.o, qs),
    gate: takeRows(w.gate, cs), up: takeRows(w.up, cs), down: takeCols(w.down, cs),
    inputNorm: w.inputNorm, postNorm: w.postNorm,
  };
  if (flags.qkvBias) {
    out.qBias = w.qBias ? takeRows(w.qBias, qs) : zeros(q, w.q);
    out.kBias = w.kBias ? takeRows(w.kBias, kvs) : zeros(kv, w.k);
    out.vBias = w.vBias ? takeRows(w.vBias, kvs) : zeros(kv, w.v);
  }
  if (flags.oBias) out.oBias = withBias(w.oBias, comp?.o, H, w.o);
  else if (comp?.o) throw new Error('o_proj compensation needs oBias');
  if (flags.mlpBias) {
    out.gateBias = w.gateBias ? takeRows(w.gateBias, cs) : zeros(I, w.gate);
    out.upBias = w.upBias ? takeRows(w.upBias, cs) : zeros(I, w.up);
    out.downBias = withBias(w.downBias, comp?.down, H, w.down);
  } else if (comp?.down) throw new Error('down_proj compensation needs mlpBias');
  return { w: out, shape };
}

/** config.json keys of a width-pruned model (see the layout above). */
export function widthRawConfig(raw: Record<string, unknown>, cfg: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw, head_dim: cfg.headDim };
  if (cfg.modelType === 'llama') { out['attention_bias'] = cfg.oBias; out['mlp_bias'] = cfg.mlpBias; }
  const l0 = cfg.layers[0]!;
  const uniform = cfg.layers.every((l) => l.numHeads === l0.numHeads && l.numKvHeads === l0.numKvHeads && l.intermediateSize === l0.intermediateSize);
  if (uniform) {
    Object.assign(out, { num_attention_heads: l0.numHeads, num_key_value_heads: l0.numKvHeads, intermediate_size: l0.intermediateSize });
    delete out[LAYER_SHAPES_KEY];
  } else {
    out[LAYER_SHAPES_KEY] = cfg.layers.map((l) => ({ num_attention_heads: l.numHeads, num_key_value_heads: l.numKvHeads, intermediate_size: l.intermediateSize }));
  }
  return out;
}

/** Bias switches the engine can express for this model type. */
export function checkFlags(cfg: LlamaConfig, flags: BiasFlags): void {
  const changed = flags.oBias !== cfg.oBias || flags.mlpBias !== cfg.mlpBias || flags.qkvBias !== cfg.qkvBias;
  if (changed && cfg.modelType !== 'llama') throw new UserError(`bias compensation needs model_type 'llama' (its attention_bias / mlp_bias switches); this model is '${cfg.modelType}' (use --no-bias)`);
  if (flags.oBias !== flags.qkvBias && cfg.modelType === 'llama') throw new Error('llama attention_bias sets q, k, v and o biases together');
}

/** The model with every block sliced to the plan (a new model; the source's tensors are not changed). */
export function shrinkModel(model: LlamaModel, plan: WidthPlan, flags: BiasFlags, comp?: (BiasCompensation | null)[]): LlamaModel {
  const cfg = model.config;
  if (plan.length !== cfg.numLayers) throw new Error(`plan has ${plan.length} blocks, model ${cfg.numLayers}`);
  checkFlags(cfg, flags);
  const blocks: BlockWeights[] = [], layers: LayerShape[] = [];
  plan.forEach((p, i) => {
    const r = shrinkBlock(cfg, model.weights.blocks[i]!, cfg.layers[i]!, p, flags, comp?.[i] ?? undefined);
    blocks.push(r.w);
    layers.push(r.shape);
  });
  const config: LlamaConfig = { ...cfg, ...flags, layers };
  return { config, rawConfig: widthRawConfig(model.rawConfig, config), weights: { ...model.weights, blocks } };
}
