/**
 * SentencePiece `.model` files (a serialized sentencepiece.ModelProto) read and written with
 * protobufjs. Only the fields a tokenizer needs are declared; protobufjs skips the others
 * (self-test data, training corpus settings) when reading.
 *
 * Field numbers and defaults are those of google/sentencepiece's src/sentencepiece_model.proto
 * (proto2: an absent field reads as its declared default, e.g. add_dummy_prefix = true).
 */
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { UserError } from '../util/errors.js';

const SCHEMA = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional int32 vocab_size = 4 [default = 8000];
  optional bool treat_whitespace_as_suffix = 24 [default = false];
  optional bool split_digits = 25 [default = false];
  optional bool byte_fallback = 35 [default = false];
  optional int32 unk_id = 40 [default = 0];
  optional int32 bos_id = 41 [default = 1];
  optional int32 eos_id = 42 [default = 2];
  optional int32 pad_id = 43 [default = -1];
  optional string unk_piece = 45 [default = "<unk>"];
  optional string bos_piece = 46 [default = "<s>"];
  optional string eos_piece = 47 [default = "</s>"];
  optional string pad_piece = 48 [default = "<pad>"];
}
message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}
message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; UNUSED = 5; BYTE = 6; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

/** SentencePiece.Type values. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
/** TrainerSpec.ModelType values. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePieceEntry {
  piece: string;
  score: number;
  type: number;
}

export interface TrainerSpec {
  modelType: number;
  vocabSize: number;
  treatWhitespaceAsSuffix: boolean;
  splitDigits: boolean;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
}

export interface NormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SentencePieceModel {
  pieces: SentencePieceEntry[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

let modelProto: protobuf.Type | undefined;
function proto(): protobuf.Type {
  modelProto ??= protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('sentencepiece.ModelProto');
  return modelProto;
}

type Raw = Record<string, unknown>;
const num = (o: Raw, k: string): number => Number(o[k]);
const bool = (o: Raw, k: string): boolean => o[k] === true;
const str = (o: Raw, k: string): string => String(o[k] ?? '');

/** Parse the bytes of a `.model` file; `name` only for messages. */
export function decodeSentencePieceModel(bytes: Uint8Array, name = 'tokenizer.model'): SentencePieceModel {
  let obj: Raw;
  try {
    // defaults: true fills absent proto2 fields with their declared defaults
    obj = proto().toObject(proto().decode(bytes), { defaults: true, enums: Number, bytes: Array }) as Raw;
  } catch (e) {
    throw new UserError(`${name}: not a SentencePiece model (${(e as Error).message.split('\n')[0]})`);
  }
  const pieces = (obj['pieces'] as Raw[]).map((p) => ({ piece: str(p, 'piece'), score: num(p, 'score'), type: num(p, 'type') }));
  if (pieces.length === 0) throw new UserError(`${name}: not a SentencePiece model (no pieces)`);
  const empty = (type: string): Raw => { const T = proto().lookupType(type); return T.toObject(T.create(), { defaults: true, enums: Number, bytes: Array }) as Raw; };
  const t = (obj['trainer_spec'] as Raw | undefined) ?? empty('sentencepiece.TrainerSpec');
  const n = (obj['normalizer_spec'] as Raw | undefined) ?? empty('sentencepiece.NormalizerSpec');
  return {
    pieces,
    trainerSpec: {
      modelType: num(t, 'model_type'), vocabSize: num(t, 'vocab_size'),
      treatWhitespaceAsSuffix: bool(t, 'treat_whitespace_as_suffix'), splitDigits: bool(t, 'split_digits'), byteFallback: bool(t, 'byte_fallback'),
      unkId: num(t, 'unk_id'), bosId: num(t, 'bos_id'), eosId: num(t, 'eos_id'), padId: num(t, 'pad_id'),
      unkPiece: str(t, 'unk_piece'), bosPiece: str(t, 'bos_piece'), eosPiece: str(t, 'eos_piece'), padPiece: str(t, 'pad_piece'),
    },
    normalizerSpec: {
      name: str(n, 'name'), precompiledCharsmap: Uint8Array.from((n['precompiled_charsmap'] as number[] | undefined) ?? []),
      addDummyPrefix: bool(n, 'add_dummy_prefix'), removeExtraWhitespaces: bool(n, 'remove_extra_whitespaces'), escapeWhitespaces: bool(n, 'escape_whitespaces'),
    },
  };
}

export function readSentencePieceModel(file: string): SentencePieceModel {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new UserError(`cannot read SentencePiece model ${file}`);
  }
  return decodeSentencePieceModel(bytes, path.basename(file));
}

/** Serialize a model as a `.model` file's bytes (every declared field written). */
export function encodeSentencePieceModel(m: SentencePieceModel): Uint8Array {
  const t = m.trainerSpec, n = m.normalizerSpec;
  const message = proto().fromObject({
    pieces: m.pieces.map((p) => ({ piece: p.piece, score: p.score, type: p.type })),
    trainer_spec: {
      model_type: t.modelType, vocab_size: t.vocabSize, treat_whitespace_as_suffix: t.treatWhitespaceAsSuffix, split_digits: t.splitDigits,
      byte_fallback: t.byteFallback, unk_id: t.unkId, bos_id: t.bosId, eos_id: t.eosId, pad_id: t.padId,
      unk_piece: t.unkPiece, bos_piece: t.bosPiece, eos_piece: t.eosPiece, pad_piece: t.padPiece,
    },
    normalizer_spec: {
      name: n.name, precompiled_charsmap: n.precompiledCharsmap, add_dummy_prefix: n.addDummyPrefix,
      remove_extra_whitespaces: n.removeExtraWhitespaces, escape_whitespaces: n.escapeWhitespaces,
    },
  });
  return proto().encode(message).finish();
}

/** Does `bytes` start like a serialized ModelProto (field 1, length-delimited, non-empty)? */
export function looksLikeSentencePiece(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x0a && bytes[1] !== 0;
}
