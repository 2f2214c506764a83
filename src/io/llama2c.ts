/**
 * llama2.c checkpoints (karpathy/llama2.c, run.c) -> our LlamaModel -> a Hugging Face folder.
 *
 * Legacy format (version 0, what run.c reads): 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; a negative vocab_size means an unshared classifier), then
 * float32 arrays: token_embedding_table, rms_att_weight, wq, wk, wv, wo, rms_ffn_weight, w1, w2, w3,
 * rms_final_weight, freq_cis_real, freq_cis_imag (unused), then wcls if unshared.
 * Version 1 (export.py --version 1): uint32 magic "ak42", int32 version, the same 7 int32, a uint8
 * shared-classifier flag, zero padding to 256 bytes, then float32 norms first and matrices after.
 * Matrices are PyTorch Linear weights, [out, in] row-major, as in Hugging Face.
 *
 * llama2.c rotates interleaved pairs (x[2i], x[2i+1]) of each head; Hugging Face rotates halves
 * (x[i], x[i+hd/2]). Reordering the rows of wq and wk within each head, as HF's
 * convert_llama_weights_to_hf.py `permute` does, makes the two the same computation.
 */
import { checkOutputFolder } from './output-guard.js';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { parseConfig, countParams } from './config.js';
import { saveModel } from './model-folder.js';
import { readLlama2cTokenizer, llama2cVocabToSentencePiece } from './llama2c-tokenizer.js';
import { decodeSentencePieceModel, looksLikeSentencePiece, type SentencePieceModel } from './sentencepiece-model.js';
import { sentencePieceToHf } from './sentencepiece-convert.js';
import { chatTemplateFromSpec } from './chat-template.js';
import { f32Tensor, type Tensor } from '../engine/tensor.js';
import type { LlamaModel, BlockWeights, BlockWeightName } from '../model/weights.js';

export interface Llama2cHeader {
  version: 0 | 1;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

const MAGIC = 0x616b3432; // "ak42"
const V1_HEADER_BYTES = 256;
const V0_HEADER_BYTES = 7 * 4;

/** Parse the header; `fileSize` only for messages. */
function parseHeader(buf: Buffer, name: string, fileSize: number): { header: Llama2cHeader; dataStart: number } {
  if (buf.length < V0_HEADER_BYTES) throw new UserError(`${name}: truncated llama2.c checkpoint (${fileSize} bytes, no header)`);
  let version: 0 | 1 = 0;
  let ints: number[];
  let shared: boolean;
  let dataStart: number;
  if (buf.readUInt32LE(0) === MAGIC) {
    const v = buf.readInt32LE(4);
    if (v === 2) throw new UserError(`${name}: llama2.c version 2 (int8-quantized) checkpoints are not supported; export with --version 0 or 1`);
    if (v !== 1) throw new UserError(`${name}: unknown llama2.c checkpoint version ${v}`);
    if (buf.length < V1_HEADER_BYTES) throw new UserError(`${name}: truncated llama2.c checkpoint (${fileSize} bytes, header needs ${V1_HEADER_BYTES})`);
    version = 1;
    ints = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(8 + 4 * i));
    shared = buf.readUInt8(36) !== 0;
    dataStart = V1_HEADER_BYTES;
  } else {
    ints = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i));
    shared = ints[5]! > 0; // legacy export negates vocab_size for an unshared classifier
    ints[5] = Math.abs(ints[5]!);
    dataStart = V0_HEADER_BYTES;
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen] = ints as [number, number, number, number, number, number, number];
  const h: Llama2cHeader = { version, dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier: shared };
  const bad = (why: string): never => { throw new UserError(`${name}: not a llama2.c checkpoint, or corrupt (${why})`); };
  if (ints.some((x) => !(x > 0))) bad(`header ${ints.join(', ')} has a non-positive value`);
  if (dim % nHeads) bad(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if ((dim / nHeads) % 2) bad(`head size ${dim / nHeads} is odd`);
  if (nHeads % nKvHeads) bad(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  return { header: h, dataStart };
}

/** The float32 arrays of a checkpoint in file order; `layers` arrays repeat once per layer. */
type Part = 'embed' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3' | 'rmsFinal' | 'freqReal' | 'freqImag' | 'wcls';
interface Section { part: Part; shape: number[]; layers: boolean }

function layout(h: Llama2cHeader): Section[] {
  const hd = h.dim / h.nHeads;
  const q = h.nHeads * hd, kv = h.nKvHeads * hd;
  const s = (part: Part, shape: number[], layers = true): Section => ({ part, shape, layers });
  const embed = s('embed', [h.vocabSize, h.dim], false);
  const norms = [s('rmsAtt', [h.dim]), s('rmsFfn', [h.dim]), s('rmsFinal', [h.dim], false)];
  const mats = {
    wq: s('wq', [q, h.dim]), wk: s('wk', [kv, h.dim]), wv: s('wv', [kv, h.dim]), wo: s('wo', [h.dim, q]),
    w1: s('w1', [h.hiddenDim, h.dim]), w2: s('w2', [h.dim, h.hiddenDim]), w3: s('w3', [h.hiddenDim, h.dim]),
  };
  const cls = h.sharedClassifier ? [] : [s('wcls', [h.vocabSize, h.dim], false)];
  if (h.version === 1) {
    return [...norms, embed, mats.wq, mats.wk, mats.wv, mats.wo, mats.w1, mats.w2, mats.w3, ...cls];
  }
  return [
    embed, norms[0]!, mats.wq, mats.wk, mats.wv, mats.wo, norms[1]!, mats.w1, mats.w2, mats.w3, norms[2]!,
    s('freqReal', [h.seqLen * hd / 2], false), s('freqImag', [h.seqLen * hd / 2], false), ...cls,
  ];
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function readF32(fd: number, offset: number, n: number, name: string): Float32Array {
  const out = new Float32Array(n);
  const bytes = new Uint8Array(out.buffer);
  let done = 0;
  while (done < bytes.length) {
    const r = fs.readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), offset + done);
    if (r <= 0) throw new UserError(`${name}: truncated llama2.c checkpoint (read failed at byte ${offset + done})`);
    done += r;
  }
  return out;
}

/**
 * Reorder the rows of a [nHeads*hd, cols] projection within each head from llama2.c's interleaved
 * RoPE pairs to HF's halves: old row 2i+j of a head goes to row j*hd/2 + i (HF's `permute`).
 */
export function permuteRope(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * cols;
        const to = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/** config.json as Hugging Face's LlamaForCausalLM writes it (keys sorted, as HF does). */
export function llama2cConfigJson(h: Llama2cHeader): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: h.dim / h.nHeads,
    hidden_act: 'silu',
    hidden_size: h.dim,
    initializer_range: 0.02,
    intermediate_size: h.hiddenDim,
    max_position_embeddings: h.seqLen,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: h.nHeads,
    num_hidden_layers: h.nLayers,
    num_key_value_heads: h.nKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5, // run.c's rmsnorm
    rope_scaling: null,
    rope_theta: 10000.0, // run.c's RoPE base
    tie_word_embeddings: h.sharedClassifier,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: h.vocabSize,
  };
}

/** Open, parse the header, lay out the arrays and check the file size, then hand over to `use`. */
function openCheckpoint<T>(file: string, use: (fd: number, h: Llama2cHeader, sections: { s: Section; offset: number }[], name: string) => T): T {
  const name = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new UserError(`cannot open llama2.c checkpoint ${file}`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(V1_HEADER_BYTES, fileSize));
    fs.readSync(fd, head, 0, head.length, 0);
    const { header, dataStart } = parseHeader(head, name, fileSize);
    // Lay the arrays out and check the size before reading any data: a wrong size means a
    // truncated download or not a checkpoint this header describes.
    const sections: { s: Section; offset: number }[] = [];
    let offset = dataStart;
    for (const s of layout(header)) {
      sections.push({ s, offset });
      offset += 4 * numel(s.shape) * (s.layers ? header.nLayers : 1);
    }
    const what = `dim ${header.dim}, hidden ${header.hiddenDim}, ${header.nLayers} layers, ${header.nHeads}/${header.nKvHeads} heads, vocab ${header.vocabSize}, seq_len ${header.seqLen}`;
    if (fileSize < offset) throw new UserError(`${name}: truncated llama2.c checkpoint: header (${what}) implies ${offset} bytes, file has ${fileSize}`);
    if (fileSize > offset) throw new UserError(`${name}: corrupt llama2.c checkpoint: header (${what}) implies ${offset} bytes, file has ${fileSize} (${fileSize - offset} extra)`);
    return use(fd, header, sections, name);
  } finally {
    fs.closeSync(fd);
  }
}

/** Read a llama2.c checkpoint's header only (validates the file size too). */
export function readLlama2cHeader(file: string): Llama2cHeader {
  return openCheckpoint(file, (_fd, header) => header);
}

/** Our block weight name for each per-layer llama2.c array. */
const BLOCK_PART: Partial<Record<Part, BlockWeightName>> = {
  rmsAtt: 'inputNorm', wq: 'q', wk: 'k', wv: 'v', wo: 'o', rmsFfn: 'postNorm', w1: 'gate', w2: 'down', w3: 'up',
};

/** A llama2.c checkpoint as a LlamaModel in Hugging Face layout (q/k rows permuted for rotate-half RoPE). */
export function readLlama2cCheckpoint(file: string): LlamaModel {
  return openCheckpoint(file, (fd, h, sections, name) => {
    const rawConfig = llama2cConfigJson(h);
    const config = parseConfig(rawConfig);
    const hd = config.headDim;
    const blocks: Partial<BlockWeights>[] = Array.from({ length: h.nLayers }, () => ({}));
    const whole = new Map<Part, Tensor>();
    for (const { s, offset } of sections) {
      const n = numel(s.shape);
      if (!s.layers) {
        if (s.part !== 'freqReal' && s.part !== 'freqImag') whole.set(s.part, f32Tensor(s.shape, readF32(fd, offset, n, name)));
        continue;
      }
      const ours = BLOCK_PART[s.part]!;
      for (let l = 0; l < h.nLayers; l++) {
        let data = readF32(fd, offset + 4 * n * l, n, name);
        if (s.part === 'wq') data = permuteRope(data, h.nHeads, hd, h.dim);
        if (s.part === 'wk') data = permuteRope(data, h.nKvHeads, hd, h.dim);
        blocks[l]![ours] = f32Tensor(s.shape, data);
      }
    }
    const embed = whole.get('embed')!;
    return {
      config,
      rawConfig,
      weights: {
        embed,
        blocks: blocks as BlockWeights[],
        norm: whole.get('rmsFinal')!,
        lmHead: h.sharedClassifier ? embed : whole.get('wcls')!,
      },
    };
  });
}

export interface ImportLlama2cOptions {
  /** llama2.c checkpoint (.bin) */
  model: string;
  /** llama2.c tokenizer.bin, or the SentencePiece tokenizer.model it was exported from */
  tokenizer: string;
  /** output Hugging Face model folder */
  out: string;
  /** replace an existing output folder */
  force?: boolean;
  /** chat template (preset name or file) to store in tokenizer_config.json */
  chatTemplate?: string;
}

/**
 * The tokenizer given to the importer as a SentencePiece model: a `.model` protobuf as is, a
 * llama2.c tokenizer.bin as the model it was exported from; either must hold the model's vocab.
 */
function readImportTokenizer(file: string, vocabSize: number): SentencePieceModel {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new UserError(`cannot read tokenizer file ${file}`);
  }
  if (!file.endsWith('.model') && !looksLikeSentencePiece(bytes)) return llama2cVocabToSentencePiece(readLlama2cTokenizer(file, vocabSize));
  const spm = decodeSentencePieceModel(bytes, path.basename(file));
  if (spm.pieces.length !== vocabSize) throw new UserError(`${path.basename(file)}: tokenizer has ${spm.pieces.length} pieces, the model's vocab_size is ${vocabSize} (wrong tokenizer for this model?)`);
  return spm;
}

/** Convert a llama2.c checkpoint and tokenizer into a Hugging Face model folder at `out`. */
export function importLlama2c(opts: ImportLlama2cOptions): { config: Record<string, unknown>; params: number } {
  // Fail before reading gigabytes of weights if the output cannot be written.
  checkOutputFolder(opts.out, opts.force ?? false, [opts.model, opts.tokenizer]);
  const chat = opts.chatTemplate !== undefined ? chatTemplateFromSpec(opts.chatTemplate) : null;
  const model = readLlama2cCheckpoint(opts.model);
  const spm = readImportTokenizer(opts.tokenizer, model.config.vocabSize);
  const tok = sentencePieceToHf(spm, { modelMaxLength: model.config.maxPositionEmbeddings }, path.basename(opts.tokenizer));
  if (chat) tok.tokenizerConfig['chat_template'] = chat.template;
  saveModel(model, opts.out, {
    force: opts.force ?? false,
    extraFiles: {
      'tokenizer.json': tok.tokenizer,
      'tokenizer_config.json': tok.tokenizerConfig,
      'special_tokens_map.json': tok.specialTokensMap,
      'generation_config.json': { _from_model_config: true, bos_token_id: 1, eos_token_id: 2 },
    },
  });
  return { config: model.rawConfig, params: countParams(model.config) };
}
