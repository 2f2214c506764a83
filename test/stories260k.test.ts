/**
 * The real pretrained stories260K (llama2.c) end to end: import, score TinyStories text as
 * ../shared/README.md describes (known mean NLL about 1.409), generate a story.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importLlama2c } from '../src/io/llama2c.js';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { LlamaRunner } from '../src/model/llama.js';
import { generate } from '../src/model/generate.js';
import { perplexity } from '../src/eval/ppl.js';
import { sharedDir } from '../src/util/shared.js';
import { SKIP_SHARED } from './fixtures.js';

test('stories260K: mean NLL on TinyStories ~ 1.409 and a coherent greedy story', { skip: SKIP_SHARED }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's260-'));
  const out = path.join(dir, 'model');
  importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out });
  const tok = loadTokenizer(out);
  const run = new LlamaRunner(loadModel(out));
  const paras = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8').split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  const stream: number[] = [];
  for (const p of paras) {
    stream.push(...tok.encode(p, { addSpecialTokens: true }));
    if (stream.length >= 20000) break;
  }
  const ids = stream.slice(0, 20000);
  const rows: number[][] = [];
  for (let i = 0; i + 512 <= ids.length; i += 512) rows.push(ids.slice(i, i + 512));
  const r = await perplexity(run, rows, 8);
  assert.ok(Math.abs(r.nll - 1.409) / 1.409 < 0.01, `mean NLL ${r.nll}`);

  const g = await generate(run, [tok.encode('Once upon a time', { addSpecialTokens: true })], { maxNewTokens: 60 });
  const text = tok.decode(g.tokens[0]!);
  const words = text.split(/\s+/).filter(Boolean);
  assert.ok(words.length > 30, text);
  // TinyStories vocabulary: a story about someone, in English words from the tokenizer
  assert.match(text, /\b(she|he|they|was|the)\b/i);
  fs.rmSync(dir, { recursive: true, force: true });
});
