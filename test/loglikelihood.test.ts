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

test('requests longer than the context are cut from the left, as lm-evaluation-harness cuts them', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture(fixtureNames()[0]!);
  const run = new LlamaRunner(f.model);
  const row = [...f.ids.subarray(0, f.T)];
  const maxLength = 16;
  const scorer = new EngineScorer(run, { maxLength });
  assert.equal(new EngineScorer(run).maxLength, f.model.config.maxPositionEmbeddings);
  // 20 context + 5 continuation = 25 tokens > 17: the model sees the last 17 (input = 16 tokens)
  const long = { context: row.slice(0, 20), continuation: row.slice(20, 25) };
  const cut = { context: row.slice(8, 20), continuation: row.slice(20, 25) };
  const [a] = await scorer.score([long]);
  const [b] = await new EngineScorer(run).score([cut]);
  assert.ok(Math.abs(a!.logprob - b!.logprob) < 1e-5, `${a!.logprob} vs ${b!.logprob}`);
  // and it differs from scoring the whole context (the cut is real)
  const [c] = await new EngineScorer(run).score([long]);
  assert.ok(Math.abs(a!.logprob - c!.logprob) > 1e-4);
  // a continuation longer than the window: its last 16 tokens are scored, the one before them as context
  const [d] = await scorer.score([{ context: [1], continuation: row.slice(0, 20) }]);
  const [e] = await new EngineScorer(run).score([{ context: row.slice(3, 4), continuation: row.slice(4, 20) }]);
  assert.ok(Math.abs(d!.logprob - e!.logprob) < 1e-5, `${d!.logprob} vs ${e!.logprob}`);
});
