/**
 * safetensors files: 8-byte little-endian header length, a JSON header mapping tensor names to
 * {dtype, shape, data_offsets}, then the raw little-endian data. Each tensor is read into its own
 * aligned typed array (no whole-file buffer), so large shards stream tensor by tensor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { numel } from '../engine/tensor.js';
import type { DType } from '../engine/dtype.js';
import { firstNonFinite, describeNonFinite } from '../engine/finite.js';
import { largeBuffer } from '../engine/huge-pages.js';

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const ST_BYTES: Record<StDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface StEntry { dtype: StDType; shape: number[]; begin: number; end: number }
export interface StHeader { tensors: Map<string, StEntry>; metadata: Record<string, string>; dataStart: number; fileSize: number }

export type RawArray = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
export interface RawTensor { dtype: StDType; shape: number[]; data: RawArray }

/** The reference implementation's limit on the JSON header (safetensors' MAX_HEADER_SIZE). */
const MAX_HEADER = 100_000_000;

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Validate a parsed header as the reference implementation does (safetensors' Metadata::validate
 * and deserialize): every entry well formed, dtype known, shape × dtype size = its byte range,
 * the ranges sorted by offset contiguous from 0 (no overlap, no gap) and ending exactly at the end
 * of the file. Throws a UserError naming the file and the tensor.
 */
export function validateHeader(json: unknown, dataBytes: number, name: string): Pick<StHeader, 'tensors' | 'metadata'> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UserError(`${name}: corrupt safetensors header (not a JSON object)`);
  const tensors = new Map<string, StEntry>();
  let metadata: Record<string, string> = {};
  for (const [key, v] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
        throw new UserError(`${name}: corrupt safetensors header (__metadata__ must map strings to strings)`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (!e || typeof e !== 'object' || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new UserError(`${name}: corrupt safetensors header entry for '${key}'`);
    }
    if (!Object.hasOwn(ST_BYTES, e.dtype)) throw new UserError(`${name}: tensor '${key}' has unsupported dtype ${e.dtype}`);
    if (!e.shape.every(isCount)) throw new UserError(`${name}: tensor '${key}' has an invalid shape ${JSON.stringify(e.shape)}`);
    if (e.data_offsets.length !== 2 || !e.data_offsets.every(isCount)) throw new UserError(`${name}: tensor '${key}' has invalid data_offsets ${JSON.stringify(e.data_offsets)}`);
    const dtype = e.dtype as StDType;
    const shape = e.shape as number[];
    const [begin, end] = e.data_offsets as [number, number];
    const expect = shape.reduce((a, d) => a * d, 1) * ST_BYTES[dtype];
    if (!Number.isSafeInteger(expect)) throw new UserError(`${name}: tensor '${key}' of shape [${shape}] is too large`);
    if (end < begin || end - begin !== expect) throw new UserError(`${name}: tensor '${key}' of shape [${shape}] ${dtype} needs ${expect} bytes, header gives ${end - begin}`);
    tensors.set(key, { dtype, shape, begin, end });
  }
  // The byte ranges, in offset order, must tile the data section exactly.
  const sorted = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  for (const [key, e] of sorted) {
    if (e.begin !== at) {
      throw new UserError(e.begin < at
        ? `${name}: corrupt safetensors header (tensor '${key}' overlaps the bytes of another tensor at offset ${e.begin})`
        : `${name}: corrupt safetensors header (bytes ${at}..${e.begin} before tensor '${key}' belong to no tensor)`);
    }
    at = e.end;
  }
  if (at > dataBytes) {
    const last = sorted[sorted.length - 1]![0];
    throw new UserError(`${name}: truncated safetensors file (tensor '${last}' ends at data byte ${at}, the file holds ${dataBytes})`);
  }
  if (at < dataBytes) throw new UserError(`${name}: corrupt safetensors file (${dataBytes - at} bytes after the last tensor belong to no tensor)`);
  return { tensors, metadata };
}

/** Parse and validate the header of a safetensors file; every error names the file. */
export function readSafetensorsHeader(file: string): StHeader {
  const name = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new UserError(`cannot open ${file}`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) throw new UserError(`${name}: truncated safetensors file (${fileSize} bytes, no header)`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > MAX_HEADER) throw new UserError(`${name}: corrupt safetensors file (header length ${n} exceeds the format's limit of ${MAX_HEADER} bytes)`);
    if (8 + n > fileSize) throw new UserError(`${name}: truncated or corrupt safetensors file (header says ${n} bytes, file has ${fileSize})`);
    const hbuf = Buffer.alloc(n);
    fs.readSync(fd, hbuf, 0, n, 8);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(hbuf);
    } catch {
      throw new UserError(`${name}: corrupt safetensors header (not UTF-8)`);
    }
    if (!text.startsWith('{')) throw new UserError(`${name}: corrupt safetensors header (does not start with '{')`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UserError(`${name}: corrupt safetensors header (not valid JSON)`);
    }
    const dataStart = 8 + n;
    return { ...validateHeader(json, fileSize - dataStart, name), dataStart, fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

function allocRaw(dtype: StDType, n: number): RawArray {
  switch (dtype) {
    case 'F64': return new Float64Array(n);
    // weights: large ones on huge pages where the OS grants them (streamed faster by decoding)
    case 'F32': return new Float32Array(largeBuffer(4 * n));
    case 'F16': case 'BF16': return new Uint16Array(largeBuffer(2 * n));
    case 'I64': return new BigInt64Array(n);
    case 'I32': return new Int32Array(n);
    case 'I16': return new Int16Array(n);
    case 'I8': return new Int8Array(n);
    case 'U8': case 'BOOL': return new Uint8Array(n);
  }
}

/** Read tensors (all, or those named) from one safetensors file. */
export function readSafetensors(file: string, names?: Iterable<string>): Map<string, RawTensor> {
  const header = readSafetensorsHeader(file);
  const out = new Map<string, RawTensor>();
  const fd = fs.openSync(file, 'r');
  try {
    const wanted = names ? [...names] : [...header.tensors.keys()];
    for (const key of wanted) {
      const e = header.tensors.get(key);
      if (!e) throw new UserError(`${path.basename(file)}: no tensor named '${key}'`);
      const data = allocRaw(e.dtype, numel(e.shape));
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let done = 0;
      while (done < bytes.length) {
        const r = fs.readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), header.dataStart + e.begin + done);
        if (r <= 0) throw new UserError(`${path.basename(file)}: truncated while reading '${key}'`);
        done += r;
      }
      out.set(key, { dtype: e.dtype, shape: e.shape, data });
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

const MODEL_DTYPES: Partial<Record<StDType, DType>> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };

/**
 * A raw tensor as a model weight (F32, BF16 or F16 only). Weights holding NaN or Inf are refused
 * here, where every weight passes once, so no command ever scores or trains on them.
 */
export function asWeight(name: string, t: RawTensor, file?: string): Tensor {
  const dtype = MODEL_DTYPES[t.dtype];
  if (!dtype) throw new UserError(`weight '${name}' has dtype ${t.dtype}; only F32, BF16 and F16 weights are supported`);
  const data = t.data as Float32Array | Uint16Array;
  const bad = firstNonFinite(data, dtype);
  if (bad >= 0) {
    const at = t.shape.length === 2 ? `[${Math.floor(bad / t.shape[1]!)}, ${bad % t.shape[1]!}]` : `[${bad}]`;
    throw new UserError(`weight '${name}'${file ? ` in ${path.basename(file)}` : ''} holds ${describeNonFinite(data, dtype, bad)} at ${at}: the model's weights are corrupt`);
  }
  return { dtype, shape: t.shape, data };
}

const OUR_TO_ST: Record<DType, StDType> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };

export type WritableTensor = Tensor | RawTensor;

function stDtypeOf(t: WritableTensor): StDType {
  return (t.dtype in OUR_TO_ST ? OUR_TO_ST[t.dtype as DType] : t.dtype) as StDType;
}

/** Serialized size in bytes of the data of these tensors. */
export function dataBytes(t: WritableTensor): number {
  return t.data.byteLength;
}

/**
 * Write tensors to `file` (the caller handles atomicity of the folder). The header is padded with
 * spaces to a multiple of 8 bytes, as Hugging Face's writer does, so data stays aligned.
 */
export function writeSafetensors(file: string, tensors: Map<string, WritableTensor> | [string, WritableTensor][], metadata: Record<string, string> = { format: 'pt' }): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : tensors;
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of entries) {
    const dtype = stDtypeOf(t);
    const expect = numel(t.shape) * ST_BYTES[dtype];
    if (t.data.byteLength !== expect) throw new Error(`tensor ${name}: ${t.data.byteLength} bytes for shape [${t.shape}] ${dtype}`);
    header[name] = { dtype, shape: t.shape, data_offsets: [off, off + expect] };
    off += expect;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const hbytes = Buffer.from(json, 'utf8');
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hbytes.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, hbytes);
    for (const [, t] of entries) {
      const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      let done = 0;
      while (done < b.length) done += fs.writeSync(fd, b, done, Math.min(b.length - done, 1 << 30));
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
