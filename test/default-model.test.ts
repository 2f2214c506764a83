/**
 * The embedded default model is a language model, as its card says: perplexity on a slice of the
 * Brown test split well below the bar of the card (150), agreeing with the card's full-split
 * figure, and a sample that reads as text.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { LlamaRunner } from '../src/model/llama.js';
import { generate } from '../src/model/generate.js';
import { perplexity, pplWindows } from '../src/eval/ppl.js';
import { brownSplit } from '../src/data/brown.js';
import { sampleQuality, readsAsText } from '../src/eval/sample-quality.js';
import { projectDir } from '../src/util/shared.js';

const DIR = projectDir('assets', 'default');

test('the default model: Brown test perplexity under 150, as its card says; English-like samples', async () => {
  const card = JSON.parse(fs.readFileSync(projectDir('assets', 'default', 'model-card.json'), 'utf8')) as { test_ppl: number };
  assert.ok(card.test_ppl <= 150, `card: ${card.test_ppl}`);
  const tok = loadTokenizer(DIR);
  const run = new LlamaRunner(loadModel(DIR));
  const windows = pplWindows(brownSplit('test'), tok, 128, 'first');
  // every 8th window: an eighth of the split, spread over its documents
  const r = await perplexity(run, windows.filter((_, i) => i % 8 === 0), 16);
  assert.ok(r.ppl < 150, `slice perplexity ${r.ppl}`);
  assert.ok(Math.abs(Math.log(r.ppl / card.test_ppl)) < 0.15, `slice ${r.ppl} vs card ${card.test_ppl}`);
  const g = await generate(run, [tok.encode('The jury said', { addSpecialTokens: true })], { maxNewTokens: 40, temperature: 0.8, topP: 0.9, seed: 0 });
  const q = sampleQuality('The jury said' + tok.decode(g.tokens[0]!));
  assert.ok(readsAsText(q), JSON.stringify(q));
});
