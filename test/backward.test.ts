import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { BLOCK_WEIGHT_NAMES, BLOCK_BIAS_NAMES, hfBlockName } from '../src/model/weights.js';
import { fixtureNames, loadFixture, expectedF, assertClose, maxAbs, SKIP_SHARED } from './fixtures.js';

for (const name of fixtureNames()) {
  test(`gradients match the reference: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const res = await run.forward(f.ids, f.B, f.T, { keep: true });
    const g = await run.backward(res);
    const L = f.model.config.numLayers;
    let checked = 0;
    const cmp = (hf: string, got: Float32Array | null | undefined) => {
      const exp = expectedF(f, `grad.${hf}`);
      assert.ok(got, `no gradient computed for ${hf}`);
      assertClose(got, exp, 1e-3, 1e-4 * maxAbs(exp), `grad.${hf}`);
      checked++;
    };
    for (const li of [0, L - 1]) {
      for (const n of [...BLOCK_WEIGHT_NAMES, ...BLOCK_BIAS_NAMES]) {
        const hf = hfBlockName(li, n);
        if (f.expected.has(`grad.${hf}`)) cmp(hf, g.blocks[li]![n]);
      }
    }
    cmp('model.embed_tokens.weight', g.embed);
    cmp('model.norm.weight', g.norm);
    if (!f.model.config.tieWordEmbeddings) cmp('lm_head.weight', g.lmHead);
    const expectedCount = [...f.expected.keys()].filter((k) => k.startsWith('grad.')).length;
    assert.equal(checked, expectedCount);
  });
}
