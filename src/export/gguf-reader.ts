/**
 * A small GGUF reader: metadata, tensor infos and (on request) one tensor's bytes. Used to check
 * what the writer wrote and what a cached export holds; the layout is described in gguf-writer.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { GGUF_MAGIC, GGUF_ALIGNMENT, GgufType, GgmlType, GGML_TYPE_BYTES, alignUp, type GgmlTypeName } from './gguf-writer.js';

export type GgufReadValue = number | bigint | boolean | string | (number | bigint | boolean | string)[];

export interface GgufTensorInfo {
  name: string;
  /** outermost first, as the writer was given it */
  shape: number[];
  type: GgmlTypeName;
  /** absolute byte offset of the data in the file */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufReadValue>;
  tensors: Map<string, GgufTensorInfo>;
  dataStart: number;
}

const TYPE_NAMES = new Map<number, GgmlTypeName>(Object.entries(GgmlType).map(([k, v]) => [v, k as GgmlTypeName]));

/** The buffer ends before the header does: read more of the file. */
class HeaderCut extends Error {}

class Cursor {
  pos = 0;
  constructor(private buf: Buffer, private name: string) {}
  need(n: number): void { if (this.pos + n > this.buf.length) throw new HeaderCut(); }
  u32(): number { this.need(4); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(): number { this.need(8); const v = Number(this.buf.readBigUInt64LE(this.pos)); this.pos += 8; return v; }
  str(): string { const n = this.u64(); this.need(n); const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n; return s; }
  value(type: number): GgufReadValue {
    const b = this.buf;
    const take = (n: number) => { this.need(n); const p = this.pos; this.pos += n; return p; };
    switch (type) {
      case GgufType.u8: return b.readUInt8(take(1));
      case GgufType.i8: return b.readInt8(take(1));
      case GgufType.u16: return b.readUInt16LE(take(2));
      case GgufType.i16: return b.readInt16LE(take(2));
      case GgufType.u32: return b.readUInt32LE(take(4));
      case GgufType.i32: return b.readInt32LE(take(4));
      case GgufType.f32: return b.readFloatLE(take(4));
      case GgufType.bool: return b.readUInt8(take(1)) !== 0;
      case GgufType.string: return this.str();
      case GgufType.u64: return b.readBigUInt64LE(take(8));
      case GgufType.i64: return b.readBigInt64LE(take(8));
      case GgufType.f64: return b.readDoubleLE(take(8));
      case GgufType.array: {
        const of = this.u32();
        const n = this.u64();
        const out: (number | bigint | boolean | string)[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(of) as number | bigint | boolean | string);
        return out;
      }
      default: throw new UserError(`${this.name}: unknown GGUF value type ${type}`);
    }
  }
}

/** Read the header (metadata and tensor infos), reading more of the file only while it is cut off. */
export function readGguf(file: string): GgufFile {
  let size: number;
  try { size = fs.statSync(file).size; } catch { throw new UserError(`cannot read ${file}`); }
  for (let n = Math.min(size, 1 << 23); ; n = Math.min(size, n * 4)) {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(n);
    try { fs.readSync(fd, buf, 0, n, 0); } finally { fs.closeSync(fd); }
    try {
      return parseHeader(buf, path.basename(file), size);
    } catch (e) {
      if (!(e instanceof HeaderCut) || n === size) throw e instanceof HeaderCut ? new UserError(`${path.basename(file)}: truncated GGUF header`) : e;
    }
  }
}

function parseHeader(buf: Buffer, name: string, fileSize: number): GgufFile {
  const c = new Cursor(buf, name);
  if (c.u32() !== GGUF_MAGIC) throw new UserError(`${name}: not a GGUF file`);
  const version = c.u32();
  const nTensors = c.u64();
  const nKv = c.u64();
  const metadata = new Map<string, GgufReadValue>();
  for (let i = 0; i < nKv; i++) {
    const k = c.str();
    metadata.set(k, c.value(c.u32()));
  }
  const infos: { name: string; shape: number[]; type: GgmlTypeName; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const tname = c.str();
    const nd = c.u32();
    const dims: number[] = [];
    for (let j = 0; j < nd; j++) dims.push(c.u64());
    const t = TYPE_NAMES.get(c.u32());
    if (!t) throw new UserError(`${name}: tensor ${tname} has a ggml type this reader does not know`);
    infos.push({ name: tname, shape: dims.reverse(), type: t, rel: c.u64() });
  }
  const align = Number(metadata.get('general.alignment') ?? GGUF_ALIGNMENT);
  const dataStart = alignUp(c.pos, align);
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of infos) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[t.type];
    if (dataStart + t.rel + bytes > fileSize) throw new UserError(`${name}: truncated GGUF file (tensor ${t.name})`);
    tensors.set(t.name, { name: t.name, shape: t.shape, type: t.type, offset: dataStart + t.rel, bytes });
  }
  return { version, metadata, tensors, dataStart };
}

/** One tensor's raw bytes. */
export function readGgufTensor(file: string, info: GgufTensorInfo): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(info.bytes);
    fs.readSync(fd, b, 0, info.bytes, info.offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}
