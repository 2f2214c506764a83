/**
 * GGUF files (llama.cpp's model format, version 3), written from scratch:
 *
 *   u32 magic "GGUF", u32 version 3, u64 tensor count, u64 metadata count,
 *   metadata: (string key, u32 value type, value)*,
 *   tensor infos: (string name, u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset)*,
 *   zero padding to the alignment (32), then every tensor's data, each padded to the alignment.
 *
 * Strings are u64 byte length + UTF-8 bytes; arrays are u32 element type + u64 count + elements.
 * All little-endian. Tensor data is produced one tensor at a time while writing, so a model is
 * never held twice in memory. The file is written to FILE.tmp-PID and renamed into place.
 */
import fs from 'node:fs';
import path from 'node:path';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value types (gguf-py GGUFValueType). */
export const GgufType = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type ScalarKind = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';

export type GgufValue =
  | { type: Exclude<ScalarKind, 'string' | 'bool'>; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; of: Exclude<ScalarKind, 'string' | 'bool'>; value: ArrayLike<number> }
  | { type: 'array'; of: 'string'; value: readonly string[] };

/** ggml tensor types we write (ggml.h / gguf-py GGMLQuantizationType). */
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;
export const GGML_TYPE_BYTES: Record<GgmlTypeName, number> = { F32: 4, F16: 2, BF16: 2 };

export interface GgufTensor {
  name: string;
  /** row-major shape as PyTorch/Hugging Face give it, outermost first (written reversed) */
  shape: number[];
  type: GgmlTypeName;
  /** the tensor's bytes, produced when its turn comes */
  data: () => Uint8Array;
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const str = (s: string) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([u64(b.length), b]); };
export const alignUp = (x: number, a = GGUF_ALIGNMENT) => Math.ceil(x / a) * a;

function scalar(kind: ScalarKind, v: number | boolean | string): Buffer {
  switch (kind) {
    case 'u8': { const b = Buffer.alloc(1); b.writeUInt8(v as number); return b; }
    case 'i8': { const b = Buffer.alloc(1); b.writeInt8(v as number); return b; }
    case 'u16': { const b = Buffer.alloc(2); b.writeUInt16LE(v as number); return b; }
    case 'i16': { const b = Buffer.alloc(2); b.writeInt16LE(v as number); return b; }
    case 'u32': return u32(v as number);
    case 'i32': { const b = Buffer.alloc(4); b.writeInt32LE(v as number); return b; }
    case 'f32': { const b = Buffer.alloc(4); b.writeFloatLE(v as number); return b; }
    case 'bool': return Buffer.from([v ? 1 : 0]);
    case 'string': return str(v as string);
    case 'u64': return u64(v as number);
    case 'i64': { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v as number)); return b; }
    case 'f64': { const b = Buffer.alloc(8); b.writeDoubleLE(v as number); return b; }
  }
}

function encodeValue(v: GgufValue): Buffer {
  if (v.type !== 'array') return Buffer.concat([u32(GgufType[v.type]), scalar(v.type, v.value)]);
  if (v.value.length === 0) throw new Error('GGUF arrays must not be empty');
  const parts: Buffer[] = [u32(GgufType.array), u32(GgufType[v.of]), u64(v.value.length)];
  for (let i = 0; i < v.value.length; i++) parts.push(scalar(v.of, v.value[i]!));
  return Buffer.concat(parts);
}

function tensorBytes(t: GgufTensor): number {
  return t.shape.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[t.type];
}

/** Everything before the tensor data, padded to the alignment. */
export function encodeHeader(metadata: [string, GgufValue][], tensors: GgufTensor[]): Buffer {
  const parts: Buffer[] = [u32(GGUF_MAGIC), u32(GGUF_VERSION), u64(tensors.length), u64(metadata.length)];
  const keys = new Set<string>();
  for (const [k, v] of metadata) {
    if (keys.has(k)) throw new Error(`duplicate GGUF key ${k}`);
    keys.add(k);
    parts.push(str(k), encodeValue(v));
  }
  let offset = 0;
  for (const t of tensors) {
    parts.push(str(t.name), u32(t.shape.length));
    for (let j = t.shape.length - 1; j >= 0; j--) parts.push(u64(t.shape[j]!));
    parts.push(u32(GgmlType[t.type]), u64(offset));
    offset += alignUp(tensorBytes(t));
  }
  const head = Buffer.concat(parts);
  return Buffer.concat([head, Buffer.alloc(alignUp(head.length) - head.length)]);
}

/** Write a GGUF file atomically: FILE.tmp-PID, then rename. */
export function writeGguf(file: string, metadata: [string, GgufValue][], tensors: GgufTensor[]): void {
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const writeAll = (buf: Uint8Array) => {
      for (let done = 0; done < buf.length;) done += fs.writeSync(fd, buf, done, Math.min(buf.length - done, 1 << 30));
    };
    writeAll(encodeHeader(metadata, tensors));
    for (const t of tensors) {
      const data = t.data();
      if (data.byteLength !== tensorBytes(t)) throw new Error(`GGUF tensor ${t.name}: ${data.byteLength} bytes, shape [${t.shape}] ${t.type} needs ${tensorBytes(t)}`);
      writeAll(data);
      const pad = alignUp(data.byteLength) - data.byteLength;
      if (pad) writeAll(new Uint8Array(pad));
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, abs);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
