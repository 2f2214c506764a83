/**
 * SentencePiece tokenizer.model files: read with protobufjs, converted to tokenizer.json as
 * transformers' LlamaConverter does. Llama 2's tokenizer.model must give Hugging Face's own
 * tokenizer.json and its ids on the evaluation texts; a llama2.c checkpoint imported with a
 * .model must give the folder its tokenizer.bin gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { readSentencePieceModel, decodeSentencePieceModel, encodeSentencePieceModel, PieceType } from '../src/io/sentencepiece-model.js';
import { sentencePieceToHf } from '../src/io/sentencepiece-convert.js';
import { loadTokenizer, tokenizerFromJson, sentencePieceFolderTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { importLlama2c } from '../src/io/llama2c.js';
import { readLlama2cTokenizer } from '../src/io/llama2c-tokenizer.js';
import { UserError } from '../src/util/errors.js';
import { sharedDir, hasShared } from '../src/util/shared.js';

const SKIP = hasShared() ? false : 'needs ../shared (Llama 2 tokenizer, stories260K, eval data); skipped';
if (SKIP) console.log(`# sentencepiece.test: ${SKIP}`);
const LLAMA2 = sharedDir('tokenizers', 'llama2');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shortened-spm-'));
}

/** Every k-th item, from the first: a deterministic sample spread over the whole file. */
const everyKth = <T>(items: T[], k: number): T[] => items.filter((_, i) => i % k === 0);

function lines(...parts: string[]): string[] {
  return fs.readFileSync(sharedDir(...parts), 'utf8').split('\n');
}

/** The texts the evaluations tokenize: zero-shot queries (and contexts) of every task. */
function zeroshotTexts(k: number): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync(sharedDir('data', 'eval', 'zeroshot')).sort()) {
    const recs = lines('data', 'eval', 'zeroshot', f).filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of everyKth(recs, k)) {
      for (const key of ['query', 'ctx', 'continuation']) if (typeof r[key] === 'string') out.push(r[key] as string);
      for (const key of ['choices', 'endings', 'context_options']) if (Array.isArray(r[key])) out.push(...(r[key] as string[]));
    }
  }
  return out;
}

/** Same ids as the reference tokenizer on every text, and decoding gives the text back. */
function sameIds(ours: TextTokenizer, ref: TextTokenizer, texts: string[], what: string): number {
  let tokens = 0;
  for (const t of texts) {
    const got = ours.encode(t, { addSpecialTokens: true });
    const want = ref.encode(t, { addSpecialTokens: true });
    assert.deepEqual(got, want, `${what}: ${JSON.stringify(t.slice(0, 80))}`);
    tokens += got.length;
    assert.equal(ours.decode(got, { skipSpecialTokens: false }), ref.decode(want, { skipSpecialTokens: false }));
    // A literal <unk>/<s>/</s> is a special token, and the text after it gets its own dummy prefix.
    if (!/<unk>|<\/?s>/.test(t)) assert.equal(ours.decode(got), t, `${what}: decode(encode(x)) != x`);
  }
  return tokens;
}

test('Llama 2 tokenizer.model: pieces, types and settings read with protobufjs', { skip: SKIP }, () => {
  const m = readSentencePieceModel(path.join(LLAMA2, 'tokenizer.model'));
  assert.equal(m.pieces.length, 32000);
  assert.deepEqual(m.pieces.slice(0, 4), [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN }, { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL }, { piece: '<0x00>', score: 0, type: PieceType.BYTE },
  ]);
  assert.equal(m.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  assert.deepEqual(m.pieces[260], { piece: '\u2581t', score: -1, type: PieceType.NORMAL });
  assert.equal(m.trainerSpec.modelType, 2, 'BPE');
  assert.equal(m.trainerSpec.byteFallback, true);
  assert.deepEqual([m.trainerSpec.unkId, m.trainerSpec.bosId, m.trainerSpec.eosId, m.trainerSpec.padId], [0, 1, 2, -1]);
  assert.equal(m.normalizerSpec.name, 'identity');
  assert.equal(m.normalizerSpec.addDummyPrefix, true);
  assert.equal(m.normalizerSpec.removeExtraWhitespaces, false);
  // What we write reads back the same.
  assert.deepEqual(decodeSentencePieceModel(encodeSentencePieceModel(m)), m);
});

test('Llama 2 tokenizer.model converts to exactly Hugging Face\'s tokenizer.json', { skip: SKIP }, () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(LLAMA2, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const ours = sentencePieceFolderTokenizer(path.join(LLAMA2, 'tokenizer.model'), cfg);
  const ref = JSON.parse(fs.readFileSync(path.join(LLAMA2, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'added_tokens']) assert.deepEqual(ours.tokenizer[key], ref[key], key);
  // The whole file, key order included: written out, it is the same bytes as HF's.
  assert.equal(JSON.stringify(ours.tokenizer), JSON.stringify(ref));
  for (const [k, v] of Object.entries(cfg)) assert.deepEqual(ours.tokenizerConfig[k], v, `tokenizer_config ${k}`);
});

test('a folder with only tokenizer.model encodes WikiText-2, PTB and zero-shot texts to HF\'s ids', { skip: SKIP }, () => {
  const dir = tmpDir();
  try {
    fs.copyFileSync(path.join(LLAMA2, 'tokenizer.model'), path.join(dir, 'tokenizer.model'));
    const ours = loadTokenizer(dir); // no tokenizer_config.json either: the .model's own settings
    const ref = loadTokenizer(LLAMA2);
    assert.deepEqual([ours.vocabSize, ours.bosId, ours.eosId], [32000, 1, 2]);
    // Samples keep the suite fast; scripts/check-sentencepiece.ts runs the full sets (same result).
    const wiki = sameIds(ours, ref, everyKth(lines('data', 'eval', 'wikitext2', 'wiki.test.raw'), 4), 'wikitext2');
    const ptb = sameIds(ours, ref, everyKth(lines('data', 'eval', 'ptb', 'ptb.test.txt'), 4), 'ptb');
    const zs = sameIds(ours, ref, zeroshotTexts(25), 'zeroshot');
    assert.ok(wiki > 80_000 && ptb > 20_000 && zs > 20_000, `${wiki} ${ptb} ${zs} tokens`);
    const hand = ['', ' ', '  two leading', 'tab\there', 'naïve café — “quotes” 😀 中文', 'line\n\nbreaks\n', 'x <unk> y </s> z'];
    sameIds(ours, ref, hand, 'hand-picked');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tokenizer_config settings: legacy false (Metaspace), add_prefix_space false, add_eos_token, added tokens', { skip: SKIP }, () => {
  const file = path.join(LLAMA2, 'tokenizer.model');
  const nonLegacy = sentencePieceFolderTokenizer(file, { legacy: false });
  assert.equal(nonLegacy.tokenizer['normalizer'], null);
  assert.deepEqual(nonLegacy.tokenizer['pre_tokenizer'], { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false });
  const ref = loadTokenizer(LLAMA2);
  const nl = tokenizerFromJson(nonLegacy.tokenizer, nonLegacy.tokenizerConfig);
  assert.deepEqual(nl.encode('Hello world'), ref.encode('Hello world'));
  const noPrefix = tokenizerFromJson(...files(sentencePieceFolderTokenizer(file, { add_prefix_space: false })));
  // Without the dummy prefix ' Hello' is what 'Hello' is with it; and decoding strips nothing.
  assert.deepEqual(noPrefix.encode(' Hello'), ref.encode('Hello'));
  assert.notDeepEqual(noPrefix.encode('Hello'), ref.encode('Hello'));
  assert.equal(noPrefix.decode(noPrefix.encode(' Hello world')), ' Hello world');
  // Legacy: the text after a special token gets a dummy prefix again; non-legacy: only the first.
  assert.deepEqual(ref.encode('</s>Hi'), [2, ...ref.encode('Hi')]);
  assert.deepEqual(nl.encode('</s>Hi'), [2, ...noPrefix.encode('Hi')]);
  const withEos = tokenizerFromJson(...files(sentencePieceFolderTokenizer(file, { add_eos_token: true })));
  assert.deepEqual(withEos.encode('Hi', { addSpecialTokens: true }), [1, ...ref.encode('Hi'), 2]);
  const padded = sentencePieceFolderTokenizer(file, { added_tokens_decoder: { 32000: { content: '<pad>', special: true, normalized: false } } });
  const pt = tokenizerFromJson(padded.tokenizer, padded.tokenizerConfig);
  assert.equal(pt.vocabSize, 32001);
  assert.deepEqual(pt.encode('a<pad>'), [...ref.encode('a'), 32000]);
  assert.throws(() => sentencePieceFolderTokenizer(file, { added_tokens_decoder: { 5: { content: 'nope' } } }), UserError);
});

const files = (f: { tokenizer: Record<string, unknown>; tokenizerConfig: Record<string, unknown> }): [object, Record<string, unknown>] => [f.tokenizer, f.tokenizerConfig];

test('bad .model files and unsupported settings fail with one-line UserErrors', { skip: SKIP }, () => {
  const dir = tmpDir();
  try {
    const good = fs.readFileSync(path.join(LLAMA2, 'tokenizer.model'));
    const cut = path.join(dir, 'cut.model');
    fs.writeFileSync(cut, good.subarray(0, 1000));
    const oneLine = (e: unknown): boolean => e instanceof UserError && !e.message.includes('\n');
    assert.throws(() => readSentencePieceModel(cut), oneLine);
    assert.throws(() => readSentencePieceModel(path.join(dir, 'missing.model')), oneLine);
    assert.throws(() => readSentencePieceModel(sharedDir('models', 'stories260K', 'tok512.bin')), oneLine);
    const m = readSentencePieceModel(path.join(LLAMA2, 'tokenizer.model'));
    assert.throws(() => sentencePieceToHf({ ...m, trainerSpec: { ...m.trainerSpec, modelType: 1 } }), /UNIGRAM models are not supported/);
    assert.throws(() => sentencePieceToHf({ ...m, normalizerSpec: { ...m.normalizerSpec, name: 'nmt_nfkc', precompiledCharsmap: Uint8Array.of(1) } }), /normalization 'nmt_nfkc'/);
    assert.throws(() => sentencePieceToHf({ ...m, normalizerSpec: { ...m.normalizerSpec, removeExtraWhitespaces: true } }), /remove_extra_whitespaces/);
    const dup = m.pieces.slice();
    dup[400] = { ...dup[401]! };
    assert.throws(() => sentencePieceToHf({ ...m, pieces: dup }), /pieces 400 and 401/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * tok512.bin's vocabulary written as a SentencePiece .model by protobufjs directly, with a schema
 * declared here (independent of src/io/sentencepiece-model.ts): the pieces as SentencePiece names
 * them, the types by llama2.c's fixed ids, and the settings of llama2.c's train_vocab.sh.
 */
function tok512AsModel(file: string): Uint8Array {
  const root = protobuf.parse(`
    syntax = "proto2";
    message Piece { optional string piece = 1; optional float score = 2; optional int32 type = 3; }
    message Trainer { optional int32 model_type = 3; optional int32 vocab_size = 4; optional bool split_digits = 25;
                      optional bool byte_fallback = 35; optional int32 pad_id = 43; }
    message Normalizer { optional string name = 1; optional bool add_dummy_prefix = 3; optional bool remove_extra_whitespaces = 4; }
    message Model { repeated Piece pieces = 1; optional Trainer trainer_spec = 2; optional Normalizer normalizer_spec = 3; }
  `, { keepCase: true }).root;
  const v = readLlama2cTokenizer(file);
  const pieces = v.pieces.map((p, id) => ({
    piece: id < 3 ? p.trim() : p.replaceAll(' ', '\u2581'),
    score: v.scores[id]!,
    type: id === 0 ? 2 : id < 3 ? 3 : id < 259 ? 6 : 1,
  }));
  const Model = root.lookupType('Model');
  return Model.encode(Model.fromObject({
    pieces,
    trainer_spec: { model_type: 2, vocab_size: pieces.length, split_digits: true, byte_fallback: true, pad_id: -1 },
    normalizer_spec: { name: 'identity', add_dummy_prefix: true, remove_extra_whitespaces: false },
  })).finish();
}

test('stories260K imported with a .model tokenizer gives the same folder as with tok512.bin', { skip: SKIP }, () => {
  const dir = tmpDir();
  try {
    const bin = sharedDir('models', 'stories260K', 'stories260K.bin');
    const tokBin = sharedDir('models', 'stories260K', 'tok512.bin');
    const tokModel = path.join(dir, 'tok512.model');
    fs.writeFileSync(tokModel, tok512AsModel(tokBin));
    const a = path.join(dir, 'from-bin'), b = path.join(dir, 'from-model');
    importLlama2c({ model: bin, tokenizer: tokBin, out: a });
    importLlama2c({ model: bin, tokenizer: tokModel, out: b });
    const names = fs.readdirSync(a).sort();
    assert.deepEqual(fs.readdirSync(b).sort(), names);
    assert.ok(names.includes('tokenizer.json'));
    for (const f of names) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f} differs`);
    // Also without the .model extension (recognized by its first bytes), and a wrong-size vocab.
    const noExt = path.join(dir, 'tok512');
    fs.copyFileSync(tokModel, noExt);
    importLlama2c({ model: bin, tokenizer: noExt, out: path.join(dir, 'c') });
    assert.ok(fs.readFileSync(path.join(dir, 'c', 'tokenizer.json')).equals(fs.readFileSync(path.join(a, 'tokenizer.json'))));
    assert.throws(() => importLlama2c({ model: bin, tokenizer: path.join(LLAMA2, 'tokenizer.model'), out: path.join(dir, 'd') }),
      (e: unknown) => e instanceof UserError && /32000 pieces, the model's vocab_size is 512/.test(e.message));
    assert.ok(!fs.existsSync(path.join(dir, 'd')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
