import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  BYTE_TO_CHAR, bpeModelFromHfJson, hfTokenizerConfig, hfTokenizerFiles, hfTokenizerJson, pretokenize,
  referenceEncoder, trainBpe,
} from '../src/data/bpe-train.js';
import { brownSplit, brownText } from '../src/data/brown.js';
import { loadTokenizer, tokenizerFromJson } from '../src/io/tokenizer.js';
import { projectDir } from '../src/util/shared.js';

const DEFAULT_DIR = projectDir('assets', 'default');

const ODD_STRINGS = [
  'héllo wörld — “curly quotes”, naïve café',
  '日本語のテキスト and Ελληνικά',
  'emoji 🤖👍🏽 and a family 👨‍👩‍👧 and a flag 🇺🇸',
  '\ttabs\t\tand  double  spaces   and trailing space ',
  ' leading space\nnewline\n\nblank line\r\nwindows line',
  "they're 'quoted' don't it's we'll I'd I'm you've O'Brien's",
  '3.14159, 1,000,000 and $172,000 (50%) -- [a] {b} <c> ~d| e^f',
  'control \u0000\u0001\u007f bytes and a zero-width\u200bjoiner',
];

test('byte alphabet: 256 distinct printable characters, GPT-2 layout', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[' '.charCodeAt(0)], 'Ġ');
  assert.equal(BYTE_TO_CHAR['\n'.charCodeAt(0)], 'Ċ');
  assert.equal(BYTE_TO_CHAR['a'.charCodeAt(0)], 'a');
  assert.deepEqual(pretokenize("He's here,  now!\n"), ['He', "'s", 'Ġhere', ',', 'Ġ', 'Ġnow', '!', 'Ċ']);
});

test('training on a toy text: most frequent pair first, deterministic, vocab size honoured', () => {
  const text = 'low low low low lower lower newest newest newest widest';
  const model = trainBpe([text], { vocabSize: 2 + 256 + 5 });
  assert.equal(model.vocab.length, 263);
  assert.deepEqual(model.vocab.slice(0, 2), ['<s>', '</s>']);
  // l+o and o+w both occur 6 times ("low" x4, " lower" x2); the tie goes to the smaller ids.
  assert.deepEqual(model.merges[0], ['l', 'o']);
  assert.deepEqual(model.merges[1], ['lo', 'w']);
  assert.deepEqual(trainBpe([text], { vocabSize: 263 }), model);
  // The reference encoder reproduces the library on this small model too.
  const tok = tokenizerFromJson(hfTokenizerJson(model), hfTokenizerConfig(model));
  const ref = referenceEncoder(model);
  for (const s of [text, 'lowest newer wide', ...ODD_STRINGS]) assert.deepEqual(tok.encode(s), ref(s), s);
});

test('assets/default is what the trainer writes (build-tokenizer is reproducible)', () => {
  const model = trainBpe([brownText('train')], { vocabSize: 4096, specialTokens: ['<s>', '</s>'] });
  const files = hfTokenizerFiles(model);
  assert.equal(fs.readFileSync(`${DEFAULT_DIR}/tokenizer.json`, 'utf8'), files.tokenizer);
  assert.equal(fs.readFileSync(`${DEFAULT_DIR}/tokenizer_config.json`, 'utf8'), files.config);
  assert.deepEqual(bpeModelFromHfJson(JSON.parse(files.tokenizer)), model);
});

test('the default tokenizer loads with @huggingface/tokenizers and round-trips', () => {
  const tok = loadTokenizer(DEFAULT_DIR);
  assert.equal(tok.vocabSize, 4096);
  assert.equal(tok.bosId, 0);
  assert.equal(tok.eosId, 1);
  const ids = tok.encode('The jury said.', { addSpecialTokens: true });
  assert.equal(ids[0], 0);
  assert.deepEqual(ids.slice(1), tok.encode('The jury said.'));
  assert.equal(tok.decode(ids), 'The jury said.');
  for (const s of [...brownSplit('validation').slice(0, 200), ...ODD_STRINGS]) {
    const enc = tok.encode(s);
    assert.ok(enc.every((id) => id >= 2 && id < 4096), 'ids in range, no specials');
    assert.equal(tok.decode(enc), s);
  }
  // Compression on held-out text: ~3.5 bytes per token.
  const val = brownText('validation').slice(0, 50_000);
  const bytesPerToken = Buffer.byteLength(val) / tok.encode(val).length;
  assert.ok(bytesPerToken > 3.2, `${bytesPerToken.toFixed(2)} bytes/token`);
});

test('the library and the reference encoder give the same ids', () => {
  const json: unknown = JSON.parse(fs.readFileSync(`${DEFAULT_DIR}/tokenizer.json`, 'utf8'));
  const ref = referenceEncoder(bpeModelFromHfJson(json));
  const tok = loadTokenizer(DEFAULT_DIR);
  const texts = [...brownSplit('test').slice(0, 50), ...ODD_STRINGS, 'aaaaaaa eeeeee ssssss 1111111'];
  for (const s of texts) assert.deepEqual(tok.encode(s), ref(s), s.slice(0, 80));
});
