/**
 * LoRA adapters in Hugging Face PEFT's layout, for LlamaForCausalLM-style models:
 *
 *   adapter_config.json         peft_type LORA, r, lora_alpha, lora_dropout, target_modules, ...
 *   adapter_model.safetensors   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight  [r, in]
 *                               base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight  [out, r]
 *
 * PeftModel.from_pretrained(base, dir) loads such a folder. Initialisation follows PEFT's default
 * (init_lora_weights=True): A ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and
 * B = 0, so a fresh adapter leaves the model unchanged. Merging adds scale * B A to each weight.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { fromF32, toF32, type Tensor } from '../engine/tensor.js';
import { getBackend } from '../engine/select.js';
import { readSafetensors, writeSafetensors, asWeight } from '../io/safetensors.js';
import { readJson } from '../io/model-folder.js';
import { LORA_TARGETS, type LoraAdapters, type LoraPair, type LoraTarget } from '../model/lora.js';
import type { LlamaModel, BlockWeights } from '../model/weights.js';

/** Our projection names -> the module path inside a decoder layer, and PEFT's target name. */
export const PEFT_MODULES: Record<LoraTarget, { path: string; target: string }> = {
  q: { path: 'self_attn.q_proj', target: 'q_proj' },
  k: { path: 'self_attn.k_proj', target: 'k_proj' },
  v: { path: 'self_attn.v_proj', target: 'v_proj' },
  o: { path: 'self_attn.o_proj', target: 'o_proj' },
  gate: { path: 'mlp.gate_proj', target: 'gate_proj' },
  up: { path: 'mlp.up_proj', target: 'up_proj' },
  down: { path: 'mlp.down_proj', target: 'down_proj' },
};

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
}

/** PEFT's state-dict key of one LoRA matrix. */
export function peftKey(layer: number, t: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${PEFT_MODULES[t].path}.lora_${which}.weight`;
}

/** Parse "q,k,v" or "q_proj,k_proj" into our target names. */
export function parseTargets(list: string[]): LoraTarget[] {
  const out: LoraTarget[] = [];
  for (const raw of list) {
    const s = raw.trim().replace(/_proj$/, '');
    if (!(LORA_TARGETS as readonly string[]).includes(s)) throw new UserError(`unknown LoRA target module '${raw}' (use ${LORA_TARGETS.join(', ')})`);
    if (!out.includes(s as LoraTarget)) out.push(s as LoraTarget);
  }
  if (out.length === 0) throw new UserError('no LoRA target modules given');
  return LORA_TARGETS.filter((t) => out.includes(t));
}

/** Fresh adapters (PEFT's default init) on every block for the given targets. */
export function initLora(model: LlamaModel, s: LoraSettings, seed: number): LoraAdapters {
  if (!(s.r >= 1 && Number.isInteger(s.r))) throw new UserError(`LoRA rank must be a positive integer (got ${s.r})`);
  if (!(s.dropout >= 0 && s.dropout < 1)) throw new UserError(`LoRA dropout must be in [0, 1) (got ${s.dropout})`);
  const rng = new Rng(seed);
  return model.weights.blocks.map((w: BlockWeights) => {
    const block: Partial<Record<LoraTarget, LoraPair>> = {};
    for (const t of s.targets) {
      const [out, inp] = w[t].shape as [number, number];
      const bound = 1 / Math.sqrt(inp);
      const A = new Float32Array(s.r * inp);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.next() - 1) * bound;
      block[t] = { A, B: new Float32Array(out * s.r), r: s.r, scale: s.alpha / s.r, dropout: s.dropout };
    }
    return block;
  });
}

/** The adapter's matrices as named f32 tensors, in layer then target order (A before B). */
export function adapterTensors(adapters: LoraAdapters): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  adapters.forEach((block, li) => {
    for (const t of LORA_TARGETS) {
      const p = block[t];
      if (!p) continue;
      out.push([peftKey(li, t, 'A'), { dtype: 'f32', shape: [p.r, p.A.length / p.r], data: p.A }]);
      out.push([peftKey(li, t, 'B'), { dtype: 'f32', shape: [p.B.length / p.r, p.r], data: p.B }]);
    }
  });
  return out;
}

/** adapter_config.json as PEFT writes it for a LoRA on a causal LM. */
export function adapterConfig(s: LoraSettings, baseModel: string): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: s.alpha,
    lora_dropout: s.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: s.r,
    rank_pattern: {},
    revision: null,
    target_modules: s.targets.map((t) => PEFT_MODULES[t].target),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
}

/** Write adapter_config.json and adapter_model.safetensors into `dir` (which must exist). */
export function writeAdapterFiles(dir: string, adapters: LoraAdapters, s: LoraSettings, baseModel: string): void {
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), adapterTensors(adapters));
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(adapterConfig(s, baseModel), null, 2) + '\n');
}

const KEY_RE = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])(?:\.default)?\.weight$/;

/** Read a PEFT LoRA folder and check it against `model` (layers, modules, shapes). */
export function loadAdapter(dir: string, model: LlamaModel): { adapters: LoraAdapters; settings: LoraSettings; baseModel: string } {
  const cfg = readJson(path.join(dir, ADAPTER_CONFIG), ADAPTER_CONFIG);
  if (cfg['peft_type'] !== 'LORA') throw new UserError(`${dir}: not a LoRA adapter (peft_type ${String(cfg['peft_type'])})`);
  if (cfg['fan_in_fan_out'] === true) throw new UserError(`${dir}: fan_in_fan_out adapters are not supported`);
  if (cfg['use_dora'] === true) throw new UserError(`${dir}: DoRA adapters are not supported`);
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    const v = cfg[k];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) throw new UserError(`${dir}: per-module ${k} is not supported`);
  }
  const r = Number(cfg['r']), alpha = Number(cfg['lora_alpha']), dropout = Number(cfg['lora_dropout'] ?? 0);
  if (!(r >= 1) || !Number.isFinite(alpha)) throw new UserError(`${dir}: adapter_config.json needs numeric r and lora_alpha`);
  const scale = cfg['use_rslora'] === true ? alpha / Math.sqrt(r) : alpha / r;
  const tensors = readSafetensors(path.join(dir, ADAPTER_WEIGHTS));
  const L = model.config.numLayers;
  const adapters: LoraAdapters = Array.from({ length: L }, () => ({}));
  const half = new Map<string, { A?: Float32Array; B?: Float32Array }>();
  const targets = new Set<LoraTarget>();
  for (const [key, raw] of tensors) {
    const m = KEY_RE.exec(key);
    if (!m) throw new UserError(`${ADAPTER_WEIGHTS}: unexpected tensor '${key}'`);
    const li = Number(m[1]);
    const t = (Object.keys(PEFT_MODULES) as LoraTarget[]).find((x) => PEFT_MODULES[x].path === m[2])!;
    if (li >= L) throw new UserError(`${ADAPTER_WEIGHTS}: '${key}' is for layer ${li}, the model has ${L} layers`);
    const [out, inp] = model.weights.blocks[li]![t].shape as [number, number];
    const want = m[3] === 'A' ? [r, inp] : [out, r];
    if (raw.shape.length !== 2 || raw.shape[0] !== want[0] || raw.shape[1] !== want[1]) {
      throw new UserError(`${ADAPTER_WEIGHTS}: '${key}' has shape [${raw.shape}], the model needs [${want}]`);
    }
    const id = `${li}.${t}`;
    const h = half.get(id) ?? {};
    h[m[3] as 'A' | 'B'] = Float32Array.from(toF32(asWeight(key, raw)));
    half.set(id, h);
    targets.add(t);
  }
  for (const [id, h] of half) {
    const [li, t] = id.split('.') as [string, LoraTarget];
    if (!h.A || !h.B) throw new UserError(`${ADAPTER_WEIGHTS}: layer ${li} ${t}: lora_A and lora_B must both be present`);
    adapters[Number(li)]![t] = { A: h.A, B: h.B, r, scale, dropout };
  }
  if (targets.size === 0) throw new UserError(`${dir}: the adapter has no LoRA tensors`);
  const settings: LoraSettings = { r, alpha, dropout, targets: LORA_TARGETS.filter((t) => targets.has(t)) };
  return { adapters, settings, baseModel: String(cfg['base_model_name_or_path'] ?? '') };
}

/**
 * The model with each adapted weight replaced by W + scale * B A, stored in W's dtype
 * (16-bit weights are rounded once, at the end). Other tensors are shared, not copied.
 */
export async function mergeLora(model: LlamaModel, adapters: LoraAdapters): Promise<LlamaModel> {
  const be = getBackend();
  const blocks: BlockWeights[] = [];
  for (let li = 0; li < model.weights.blocks.length; li++) {
    const w = model.weights.blocks[li]!;
    const merged: BlockWeights = { ...w };
    for (const t of LORA_TARGETS) {
      const p = adapters[li]?.[t];
      if (!p) continue;
      const W = w[t];
      const [out, inp] = W.shape as [number, number];
      const delta = new Float32Array(out * inp);
      await be.gemm({ a: p.B, b: p.A, c: delta, m: out, n: inp, k: p.r });
      const base = toF32(W);
      const sum = new Float32Array(out * inp);
      for (let i = 0; i < sum.length; i++) sum[i] = base[i]! + p.scale * delta[i]!;
      merged[t] = fromF32(sum, [out, inp], W.dtype);
    }
    blocks.push(merged);
  }
  return { ...model, weights: { ...model.weights, blocks } };
}
