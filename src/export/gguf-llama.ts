/**
 * Our LLaMA-family model → a GGUF file llama.cpp runs, with the tensor names and metadata keys of
 * llama.cpp's own converter (convert_hf_to_gguf.py):
 *
 * - architecture `llama` for LLaMA and Mistral, `qwen2` for Qwen2, and `deci` (Llama blocks with
 *   per-layer head counts and MLP widths, made for NVIDIA's pruned Nemotron models) when the
 *   blocks differ, as after width pruning: llama.cpp's `llama` reads per-layer arrays but builds
 *   every block with block 0's head count.
 * - `llama`/`deci` rotate interleaved pairs, Hugging Face rotates halves: the rows of q_proj and
 *   k_proj (and their biases) are permuted within each head, as the converter's `permute` does.
 *   `qwen2` rotates halves as Hugging Face does, so its weights go as they are.
 * - Llama 3 RoPE scaling becomes the `rope_freqs` tensor of per-frequency divisors.
 * - 1-D tensors (norms, biases) are stored in f32, matrices in the requested dtype.
 */
import { UserError } from '../util/errors.js';
import { toF32, type Tensor } from '../engine/tensor.js';
import { toBf16Bits, toF16Bits } from '../engine/dtype.js';
import type { LlamaConfig } from '../io/config.js';
import type { LlamaModel, BlockWeightName, BlockBiasName } from '../model/weights.js';
import { writeGguf, type GgufTensor, type GgufValue, type GgmlTypeName } from './gguf-writer.js';
import { vocabMetadata } from './gguf-vocab.js';

export type GgufDtype = 'f32' | 'f16' | 'bf16';
export const GGUF_DTYPES: readonly GgufDtype[] = ['f32', 'f16', 'bf16'];

const GGML_OF: Record<GgufDtype, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
/** general.file_type (llama_ftype): ALL_F32 0, MOSTLY_F16 1, MOSTLY_BF16 32 */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, bf16: 32 };

export type GgufArch = 'llama' | 'qwen2' | 'deci';

export function uniformBlocks(cfg: LlamaConfig): boolean {
  const l0 = cfg.layers[0]!;
  return cfg.layers.every((l) => l.numHeads === l0.numHeads && l.numKvHeads === l0.numKvHeads && l.intermediateSize === l0.intermediateSize);
}

export function ggufArch(cfg: LlamaConfig): GgufArch {
  if (!uniformBlocks(cfg)) return 'deci';
  // llama.cpp's qwen2 sizes q as hidden x hidden; other head layouts go through llama
  if (cfg.modelType === 'qwen2' && cfg.layers[0]!.numHeads * cfg.headDim === cfg.hiddenSize) return 'qwen2';
  return 'llama';
}

/** Rows of a [heads*D, ...] projection from rotate-half to interleaved-pair order within each head. */
function permuteRows(src: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + j * half + i) * cols, to = (h * headDim + 2 * i + j) * cols;
        out.set(src.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

function encode(values: Float32Array, dtype: GgufDtype): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const conv = dtype === 'bf16' ? toBf16Bits : toF16Bits;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
  return new Uint8Array(out.buffer);
}

/** A tensor's bytes in `dtype`: stored bits pass through untouched when the dtype matches. */
function tensorData(t: Tensor, dtype: GgufDtype, permute?: { heads: number; headDim: number }): () => Uint8Array {
  return () => {
    if (!permute && t.dtype === dtype) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    let v = toF32(t);
    if (permute) v = permuteRows(v, permute.heads, permute.headDim, t.shape.length > 1 ? t.shape[1]! : 1);
    return encode(v, dtype);
  };
}

/** Llama 3.1 RoPE scaling as the per-frequency divisors llama.cpp reads from `rope_freqs`. */
export function llama3RopeFactors(cfg: LlamaConfig): Float32Array {
  const rs = cfg.ropeScaling;
  if (!rs || rs.type !== 'llama3') throw new Error('not llama3 rope scaling');
  const d = cfg.headDim;
  const low = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor, high = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
  const f = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) {
    const wavelen = (2 * Math.PI) / cfg.ropeTheta ** ((-2 * i) / d);
    if (wavelen < high) f[i] = 1;
    else if (wavelen > low) f[i] = rs.factor;
    else {
      const s = (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
      f[i] = 1 / ((1 - s) / rs.factor + s);
    }
  }
  return f;
}

export interface GgufExportOptions {
  dtype: GgufDtype;
  /** folder whose tokenizer.json / tokenizer_config.json / chat template go along (none: token ids only) */
  tokenizerDir: string | null;
  name?: string;
}

/** Metadata and tensors of the GGUF for `model` (data produced lazily, tensor by tensor). */
export function ggufContents(model: LlamaModel, opts: GgufExportOptions): { metadata: [string, GgufValue][]; tensors: GgufTensor[]; arch: GgufArch } {
  const cfg = model.config;
  if (cfg.numLayers === 0) throw new UserError('cannot export a model with no blocks to GGUF');
  const arch = ggufArch(cfg);
  const a = (k: string) => `${arch}.${k}`;
  const perLayer = (f: (l: LlamaConfig['layers'][number]) => number): GgufValue =>
    arch === 'deci' ? { type: 'array', of: 'i32', value: cfg.layers.map(f) } : { type: 'u32', value: f(cfg.layers[0]!) };
  const md: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: arch }],
    ['general.type', { type: 'string', value: 'model' }],
    ['general.name', { type: 'string', value: opts.name ?? 'model' }],
    ['general.file_type', { type: 'u32', value: FILE_TYPE[opts.dtype] }],
    ['general.quantization_version', { type: 'u32', value: 2 }],
    [a('vocab_size'), { type: 'u32', value: cfg.vocabSize }],
    [a('context_length'), { type: 'u32', value: cfg.maxPositionEmbeddings }],
    [a('embedding_length'), { type: 'u32', value: cfg.hiddenSize }],
    [a('block_count'), { type: 'u32', value: cfg.numLayers }],
    [a('feed_forward_length'), perLayer((l) => l.intermediateSize)],
    [a('attention.head_count'), perLayer((l) => l.numHeads)],
    [a('attention.head_count_kv'), perLayer((l) => l.numKvHeads)],
    [a('attention.key_length'), { type: 'u32', value: cfg.headDim }],
    [a('attention.value_length'), { type: 'u32', value: cfg.headDim }],
    [a('attention.layer_norm_rms_epsilon'), { type: 'f32', value: cfg.rmsNormEps }],
    [a('rope.freq_base'), { type: 'f32', value: cfg.ropeTheta }],
    [a('rope.dimension_count'), { type: 'u32', value: cfg.headDim }],
  ];
  if (cfg.ropeScaling?.type === 'linear') {
    md.push([a('rope.scaling.type'), { type: 'string', value: 'linear' }], [a('rope.scaling.factor'), { type: 'f32', value: cfg.ropeScaling.factor }]);
  }
  md.push(...vocabMetadata(opts.tokenizerDir, cfg));

  const w = model.weights;
  const mat = GGML_OF[opts.dtype];
  const tensors: GgufTensor[] = [];
  const add = (name: string, t: Tensor, permute?: { heads: number; headDim: number }) => {
    const oneD = t.shape.length === 1;
    const dtype: GgufDtype = oneD ? 'f32' : opts.dtype;
    tensors.push({ name, shape: t.shape, type: oneD ? 'F32' : mat, data: tensorData(t, dtype, permute) });
  };
  add('token_embd.weight', w.embed);
  if (cfg.ropeScaling?.type === 'llama3') {
    const f = llama3RopeFactors(cfg);
    tensors.push({ name: 'rope_freqs.weight', shape: [f.length], type: 'F32', data: () => new Uint8Array(f.buffer) });
  }
  const rotatesPairs = arch !== 'qwen2';
  const names: [BlockWeightName | BlockBiasName, string][] = [
    ['inputNorm', 'attn_norm.weight'], ['q', 'attn_q.weight'], ['k', 'attn_k.weight'], ['v', 'attn_v.weight'], ['o', 'attn_output.weight'],
    ['qBias', 'attn_q.bias'], ['kBias', 'attn_k.bias'], ['vBias', 'attn_v.bias'], ['oBias', 'attn_output.bias'],
    ['postNorm', 'ffn_norm.weight'], ['gate', 'ffn_gate.weight'], ['up', 'ffn_up.weight'], ['down', 'ffn_down.weight'],
    ['gateBias', 'ffn_gate.bias'], ['upBias', 'ffn_up.bias'], ['downBias', 'ffn_down.bias'],
  ];
  w.blocks.forEach((b, i) => {
    const l = cfg.layers[i]!;
    for (const [ours, theirs] of names) {
      const t = b[ours];
      if (!t) continue;
      const heads = ours === 'q' || ours === 'qBias' ? l.numHeads : ours === 'k' || ours === 'kBias' ? l.numKvHeads : 0;
      add(`blk.${i}.${theirs}`, t, rotatesPairs && heads > 0 ? { heads, headDim: cfg.headDim } : undefined);
    }
  });
  add('output_norm.weight', w.norm);
  if (!cfg.tieWordEmbeddings) add('output.weight', w.lmHead);
  return { metadata: md, tensors, arch };
}

/** Write `model` as a GGUF file (atomically: FILE.tmp-PID, then rename). */
export function exportGguf(model: LlamaModel, file: string, opts: GgufExportOptions): { arch: GgufArch; tensors: number } {
  const { metadata, tensors, arch } = ggufContents(model, opts);
  writeGguf(file, metadata, tensors);
  return { arch, tensors: tensors.length };
}
