import test from 'node:test';
import { LlamaRunner } from '../src/model/llama.js';
import { fixtureNames, loadFixture, expectedF, assertClose, SKIP_SHARED } from './fixtures.js';

for (const name of fixtureNames()) {
  test(`forward matches the reference: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const r = await run.forward(f.ids, f.B, f.T, { hidden: true, logits: true });
    assertClose(r.logits!, expectedF(f, 'logits'), 1e-4, 1e-5, 'logits');
    const nll = new Float32Array(f.B * (f.T - 1));
    for (let b = 0; b < f.B; b++) for (let t = 0; t < f.T - 1; t++) nll[b * (f.T - 1) + t] = r.nll![b * f.T + t]!;
    assertClose(nll, expectedF(f, 'nll'), 1e-5, 1e-5, 'nll');
    assertClose([r.loss!], [f.json.scalars.loss], 1e-5, 1e-6, 'loss');
    const hs = new Float32Array(r.hidden!.length * r.hidden![0]!.length);
    r.hidden!.forEach((h, i) => hs.set(h, i * h.length));
    assertClose(hs, expectedF(f, 'hidden_states'), 1e-4, 1e-5, 'hidden_states');
  });
}
