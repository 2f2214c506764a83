/**
 * Hugging Face model folders in and out: config.json, safetensors (single or sharded with
 * model.safetensors.index.json), tokenizer and generation files. Saving writes into a temporary
 * sibling folder and renames it into place, so a folder appears only when complete.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { parseConfig, LAYER_SHAPES_KEY, type LlamaConfig } from './config.js';
import { checkReplaceable, guardOutput, writeOutputMarker } from './output-guard.js';
import { preflight } from '../util/memory.js';
import { RUNTIME_BYTES } from '../model/memory.js';
import { readSafetensorsHeader, readSafetensors, asWeight, writeSafetensors } from './safetensors.js';
import type { Tensor } from '../engine/tensor.js';
import {
  type LlamaModel, type BlockWeights, type BlockWeightName, type BlockBiasName,
  BLOCK_WEIGHT_NAMES, BLOCK_BIAS_NAMES, hfBlockName, blockShapes, namedParameters,
} from '../model/weights.js';

/** Files copied verbatim from a source model folder when a derived model is saved. */
export const AUX_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'generation_config.json', 'chat_template.jinja'];

/**
 * Copy a model folder's tokenizer and generation files into `dst`. A standalone
 * chat_template.jinja (which transformers prefers when loading) is also written into the copy's
 * tokenizer_config.json as `chat_template`, so tools that only read that key (GGUF export) see it.
 */
export function copyTokenizerFiles(srcDir: string, dst: string): void {
  for (const f of AUX_FILES) {
    const src = path.join(srcDir, f);
    if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dst, f));
  }
  const jinja = path.join(dst, 'chat_template.jinja');
  if (!fs.existsSync(jinja)) return;
  const cfgFile = path.join(dst, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const template = fs.readFileSync(jinja, 'utf8');
  if (cfg['chat_template'] === template) return;
  cfg['chat_template'] = template;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2) + '\n');
}

export function readJson(file: string, what = path.basename(file)): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${what} not found: ${file}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UserError(`${file}: invalid JSON`);
  }
}

/** Which safetensors files hold the weights, and which tensor lives where. */
function weightFiles(dir: string): Map<string, string> {
  const index = path.join(dir, 'model.safetensors.index.json');
  const single = path.join(dir, 'model.safetensors');
  const where = new Map<string, string>();
  if (fs.existsSync(index)) {
    const map = readJson(index)['weight_map'] as Record<string, string> | undefined;
    if (!map) throw new UserError(`${index}: missing 'weight_map'`);
    for (const [name, file] of Object.entries(map)) where.set(name, path.join(dir, file));
  } else if (fs.existsSync(single)) {
    for (const name of readSafetensorsHeader(single).tensors.keys()) where.set(name, single);
  } else {
    throw new UserError(`no model.safetensors or model.safetensors.index.json in ${dir}`);
  }
  return where;
}

/** A model folder checked against its config without reading any weight data. */
export interface ModelInspection {
  config: LlamaConfig;
  rawConfig: Record<string, unknown>;
  /** the tensors the config needs, with their shapes, and where each lives */
  need: Map<string, number[]>;
  where: Map<string, string>;
  /** bytes of the needed tensors as stored */
  weightBytes: number;
}

/** Read config.json and every shard's header, and check that they describe the same model. */
export function inspectModel(dir: string): ModelInspection {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`model folder not found: ${dir}`);
  const rawConfig = readJson(path.join(dir, 'config.json'), 'config.json');
  const config = parseConfig(rawConfig);
  const where = weightFiles(dir);
  // Validate every shard's header against the config before reading any data.
  const headers = new Map<string, ReturnType<typeof readSafetensorsHeader>>();
  for (const f of new Set(where.values())) headers.set(f, readSafetensorsHeader(f));
  const need = new Map<string, number[]>();
  const H = config.hiddenSize, V = config.vocabSize;
  need.set('model.embed_tokens.weight', [V, H]);
  need.set('model.norm.weight', [H]);
  if (!config.tieWordEmbeddings) need.set('lm_head.weight', [V, H]);
  for (let i = 0; i < config.numLayers; i++) {
    for (const [n, shape] of Object.entries(blockShapes(config, i))) need.set(hfBlockName(i, n as BlockWeightName), shape);
  }
  let weightBytes = 0;
  for (const [name, shape] of need) {
    const file = where.get(name);
    const e = file ? headers.get(file)!.tensors.get(name) : undefined;
    if (!e) throw new UserError(`weights do not match config.json: tensor '${name}' is missing`);
    if (e.shape.length !== shape.length || e.shape.some((d, k) => d !== shape[k])) {
      throw new UserError(`weights do not match config.json: '${name}' has shape [${e.shape}], config implies [${shape}]`);
    }
    weightBytes += e.end - e.begin;
  }
  for (const name of where.keys()) {
    if (!need.has(name) && !name.endsWith('rotary_emb.inv_freq') && !(config.tieWordEmbeddings && name === 'lm_head.weight')) {
      throw new UserError(`weights do not match config.json: unexpected tensor '${name}'`);
    }
  }
  return { config, rawConfig, need, where, weightBytes };
}

export function loadModel(dir: string): LlamaModel {
  const { config, rawConfig, need, where, weightBytes } = inspectModel(dir);
  // the floor of every stage: the weights, as stored, and the runtime (stages with more to hold check that first)
  preflight(`loading ${path.basename(path.resolve(dir))}`, { parts: { weights: weightBytes, runtime: RUNTIME_BYTES }, lower: 'the model size (a smaller or pruned model)' });
  const tensors = new Map<string, Tensor>();
  const byFile = new Map<string, string[]>();
  for (const name of need.keys()) {
    const f = where.get(name)!;
    byFile.set(f, [...(byFile.get(f) ?? []), name]);
  }
  for (const [f, names] of byFile) for (const [n, t] of readSafetensors(f, names)) tensors.set(n, asWeight(n, t, f));
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const b: Partial<BlockWeights> = {};
    for (const n of [...BLOCK_WEIGHT_NAMES, ...BLOCK_BIAS_NAMES]) {
      const t = tensors.get(hfBlockName(i, n));
      if (t) (b as Record<BlockWeightName | BlockBiasName, Tensor>)[n] = t;
    }
    blocks.push(b as BlockWeights);
  }
  const embed = tensors.get('model.embed_tokens.weight')!;
  return {
    config,
    rawConfig,
    weights: { embed, blocks, norm: tensors.get('model.norm.weight')!, lmHead: config.tieWordEmbeddings ? embed : tensors.get('lm_head.weight')! },
  };
}

export interface SaveOptions {
  /** copy tokenizer/generation files from this folder */
  sourceDir?: string;
  /** shard past this many bytes per file (default 5 GB, as HF's save_pretrained) */
  maxShardBytes?: number;
  /** extra JSON files to write, e.g. pruning.json */
  extraFiles?: Record<string, unknown>;
  /** replace an existing output folder */
  force?: boolean;
}

/**
 * Stage a folder next to `out`, let `fill` write into it, then rename it into place. With `force`
 * an existing `out` is replaced only if shorten wrote it (see output-guard.ts).
 */
export function writeFolderAtomically(out: string, force: boolean, fill: (tmp: string) => void): void {
  const abs = path.resolve(out);
  if (fs.existsSync(abs) && !force) throw new UserError(`output folder exists: ${out} (use --force to replace it)`);
  checkReplaceable(abs);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    writeOutputMarker(tmp);
    if (fs.existsSync(abs)) fs.rmSync(abs, { recursive: true, force: true });
    fs.renameSync(tmp, abs);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** config.json contents for `model`: the original keys with shapes updated to the model's. */
export function configJson(model: LlamaModel): Record<string, unknown> {
  const c = model.config;
  const raw: Record<string, unknown> = { ...model.rawConfig };
  raw['num_hidden_layers'] = c.numLayers;
  // Per-layer config lists (e.g. layer_types) must have one entry per kept layer; callers slice them.
  const uniform = c.layers.every((l) => l.numHeads === c.layers[0]!.numHeads && l.numKvHeads === c.layers[0]!.numKvHeads && l.intermediateSize === c.layers[0]!.intermediateSize);
  if (uniform && c.layers.length > 0) {
    // uniform blocks: the standard top-level keys describe every block (also after width pruning)
    raw['num_attention_heads'] = c.layers[0]!.numHeads;
    raw['num_key_value_heads'] = c.layers[0]!.numKvHeads;
    raw['intermediate_size'] = c.layers[0]!.intermediateSize;
    raw['head_dim'] = c.headDim;
    delete raw[LAYER_SHAPES_KEY];
  } else {
    raw[LAYER_SHAPES_KEY] = c.layers.map((l) => ({ num_attention_heads: l.numHeads, num_key_value_heads: l.numKvHeads, intermediate_size: l.intermediateSize }));
    raw['head_dim'] = c.headDim;
  }
  const dtypes = new Set(namedParameters(model).map(([, t]) => t.dtype));
  raw['torch_dtype'] = dtypes.has('bf16') ? 'bfloat16' : dtypes.has('f16') ? 'float16' : 'float32';
  return raw;
}

/** Write `model` as a Hugging Face folder at `out` (atomically). */
export function saveModel(model: LlamaModel, out: string, opts: SaveOptions = {}): void {
  const maxShard = opts.maxShardBytes ?? 5e9;
  if (opts.sourceDir) guardOutput(out, [opts.sourceDir]);
  writeFolderAtomically(out, opts.force ?? false, (tmp) => {
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(configJson(model), null, 2) + '\n');
    const params = namedParameters(model);
    const shards: [string, Tensor][][] = [[]];
    let size = 0;
    for (const p of params) {
      const b = p[1].data.byteLength;
      if (size > 0 && size + b > maxShard) { shards.push([]); size = 0; }
      shards[shards.length - 1]!.push(p);
      size += b;
    }
    if (shards.length === 1) {
      writeSafetensors(path.join(tmp, 'model.safetensors'), shards[0]!);
    } else {
      const weightMap: Record<string, string> = {};
      let total = 0;
      shards.forEach((s, i) => {
        const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
        writeSafetensors(path.join(tmp, name), s);
        for (const [n, t] of s) { weightMap[n] = name; total += t.data.byteLength; }
      });
      fs.writeFileSync(path.join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
    }
    if (opts.sourceDir) copyTokenizerFiles(opts.sourceDir, tmp);
    for (const [name, value] of Object.entries(opts.extraFiles ?? {})) {
      fs.writeFileSync(path.join(tmp, name), typeof value === 'string' ? value : JSON.stringify(value, null, 2) + '\n');
    }
  });
}
