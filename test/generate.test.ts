import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { generate } from '../src/model/generate.js';
import { fixtureNames, loadFixture, expectedF, assertClose, SKIP_SHARED } from './fixtures.js';

for (const name of fixtureNames()) {
  test(`greedy generation with KV cache matches the reference: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const prompt = [...expectedF(f, 'gen_prompt')];
    const expTokens = [...expectedF(f, 'gen_tokens')];
    const g = await generate(run, [prompt], { maxNewTokens: expTokens.length }, true);
    assert.deepEqual(g.tokens[0], expTokens);
    const logits = new Float32Array(g.stepLogits!.length * f.model.config.vocabSize);
    g.stepLogits!.forEach((l, i) => logits.set(l, i * l.length));
    assertClose(logits, expectedF(f, 'gen_step_logits'), 1e-4, 1e-5, 'gen_step_logits');
  });
}

test('sampling is reproducible from its seed and respects top-k', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture(fixtureNames()[0]!);
  const run = new LlamaRunner(f.model);
  const prompt = [[...f.ids.subarray(0, 4)]];
  const a = await generate(run, prompt, { maxNewTokens: 8, temperature: 1, topK: 5, seed: 7 });
  const b = await generate(run, prompt, { maxNewTokens: 8, temperature: 1, topK: 5, seed: 7 });
  assert.deepEqual(a.tokens, b.tokens);
});
