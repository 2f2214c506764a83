import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { EngineScorer } from '../src/eval/loglikelihood.js';
import { fixtureNames, loadFixture, SKIP_SHARED } from './fixtures.js';

test('shared-prefix scoring equals full-sequence scoring and the fixture NLL', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture(fixtureNames()[1]!);
  const run = new LlamaRunner(f.model);
  const row = [...f.ids.subarray(0, f.T)];
  const ctx = row.slice(0, 20);
  const reqs = [
    { context: ctx, continuation: row.slice(20, 25) },
    { context: ctx, continuation: row.slice(20, 23) },
    { context: ctx, continuation: [5, 6, 7, 8, 9] },
    { context: ctx, continuation: [3] },
    { context: row.slice(0, 10), continuation: row.slice(10, 33) },
  ];
  const shared = new EngineScorer(run);
  const whole = new EngineScorer(run, { shareContext: false });
  const a = await shared.score(reqs);
  const b = await whole.score(reqs);
  for (let i = 0; i < reqs.length; i++) {
    assert.ok(Math.abs(a[i]!.logprob - b[i]!.logprob) < 1e-4, `request ${i}: ${a[i]!.logprob} vs ${b[i]!.logprob}`);
    assert.equal(a[i]!.isGreedy, b[i]!.isGreedy);
  }
  // request 4 covers tokens 10..32 of row 0: the sum of the fixture's per-token NLL there
  const full = await run.forward(f.ids.subarray(0, f.T), 1, f.T);
  let s = 0;
  for (let t = 9; t < 32; t++) s += full.nll![t]!;
  assert.ok(Math.abs(a[4]!.logprob + s) < 1e-3, `${a[4]!.logprob} vs ${-s}`);
  assert.ok(shared.stats.tokensComputed < whole.stats.tokensComputed);
});
