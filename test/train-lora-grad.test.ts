/**
 * LoRA gradients (A and B of several modules) against central finite differences of the loss,
 * on fixture models, with the base frozen (no weight gradients requested).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import type { LoraTarget } from '../src/model/lora.js';
import { initLora } from '../src/train/peft.js';
import { Rng } from '../src/util/rng.js';
import { loadFixture, SKIP_SHARED } from './fixtures.js';

for (const [name, nCases] of [['llama1', 3], ['qwen2-bias', 1]] as const) {
  test(`LoRA gradients match central finite differences: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const L = f.model.config.numLayers;
    run.adapters = initLora(f.model, { r: 4, alpha: 8, dropout: 0, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] }, 7);
    // B = 0 at init would make every A-gradient zero: give B values so both paths are exercised.
    const rng = new Rng(3);
    for (const block of run.adapters) for (const p of Object.values(block)) for (let i = 0; i < p!.B.length; i++) p!.B[i] = (rng.next() - 0.5) * 0.2;
    const loss = async () => (await run.forward(f.ids, f.B, f.T)).loss!;
    const res = await run.forward(f.ids, f.B, f.T, { keep: true });
    const g = await run.backward(res, { blocks: false, embed: false, norm: false, lmHead: false });
    assert.ok(g.blocks.every((b) => Object.keys(b ?? {}).length === 0), 'no base-weight gradients when frozen');
    assert.equal(g.embed, null);
    assert.equal(g.lmHead, null);
    const h = 1e-2;
    let worst = 0;
    const cases = ([[0, 'q'], [L - 1, 'down'], [Math.floor(L / 2), 'v'], [1, 'gate']] as [number, LoraTarget][]).slice(0, nCases);
    for (const [li, t] of cases) {
      const p = run.adapters[li]![t]!;
      for (const which of ['A', 'B'] as const) {
        const w = p[which], gr = g.lora[li]![t]![which];
        // the largest-gradient entry and a random one
        const idx = [...gr.keys()].sort((a, b) => Math.abs(gr[b]!) - Math.abs(gr[a]!)).slice(0, 1);
        idx.push(rng.int(w.length));
        const scale = Math.max(...idx.map((i) => Math.abs(gr[i]!)));
        for (const i of idx) {
          const w0 = w[i]!;
          w[i] = w0 + h; const lp = await loss();
          w[i] = w0 - h; const lm = await loss();
          w[i] = w0;
          const fd = (lp - lm) / (2 * h);
          const err = Math.abs(fd - gr[i]!) / scale;
          worst = Math.max(worst, err);
          assert.ok(err < 2e-2, `${name} layer ${li} ${t}.lora_${which}[${i}]: analytic ${gr[i]}, finite difference ${fd} (error ${err.toExponential(2)} of the largest)`);
        }
      }
    }
    console.log(`${name}: worst FD error ${worst.toExponential(2)} (relative to the module's largest gradient entry)`);
  });
}

test('LoRA gradients with dropout (same seeded masks in every forward) match finite differences', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('llama1');
  const run = new LlamaRunner(f.model);
  run.adapters = initLora(f.model, { r: 4, alpha: 8, dropout: 0.3, targets: ['q', 'v', 'up', 'down'] }, 7);
  const rng = new Rng(3);
  for (const block of run.adapters) for (const p of Object.values(block)) for (let i = 0; i < p!.B.length; i++) p!.B[i] = (rng.next() - 0.5) * 0.2;
  const masks = () => { const r = new Rng(99); return () => r.next(); };
  const loss = async () => (await run.forward(f.ids, f.B, f.T, { rng: masks() })).loss!;
  const res = await run.forward(f.ids, f.B, f.T, { keep: true, rng: masks() });
  assert.ok(Math.abs(res.loss! - (await run.forward(f.ids, f.B, f.T)).loss!) > 1e-5, 'dropout is active');
  const g = await run.backward(res, { blocks: false, embed: false, norm: false, lmHead: false });
  const h = 1e-2;
  let worst = 0;
  for (const [li, t] of [[0, 'q'], [3, 'down'], [5, 'up']] as [number, LoraTarget][]) {
    for (const which of ['A', 'B'] as const) {
      const w = run.adapters[li]![t]![which], gr = g.lora[li]![t]![which];
      const i = [...gr.keys()].sort((a, b) => Math.abs(gr[b]!) - Math.abs(gr[a]!))[0]!;
      const w0 = w[i]!;
      w[i] = w0 + h; const lp = await loss();
      w[i] = w0 - h; const lm = await loss();
      w[i] = w0;
      const err = Math.abs((lp - lm) / (2 * h) - gr[i]!) / Math.abs(gr[i]!);
      worst = Math.max(worst, err);
      assert.ok(err < 2e-2, `layer ${li} ${t}.lora_${which}[${i}]: analytic ${gr[i]}, finite difference ${(lp - lm) / (2 * h)}`);
    }
  }
  console.log(`llama1 with dropout 0.3: worst FD error ${worst.toExponential(2)}`);
});
