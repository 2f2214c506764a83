import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner } from '../src/model/llama.js';
import { batchesFromRows } from '../src/prune/calib-batch.js';
import { taylorScores } from '../src/prune/criteria/taylor.js';
import { magnitudeScores } from '../src/prune/criteria/magnitude.js';
import { pplScores, slebScores } from '../src/prune/criteria/ppl.js';
import { blockInfluence, angularDistance } from '../src/prune/criteria/hidden.js';
import { fixtureNames, loadFixture, expectedF, assertClose, SKIP_SHARED, type Fixture } from './fixtures.js';

function rows(f: Fixture): number[][] {
  return [...Array(f.B).keys()].map((b) => [...f.ids.subarray(b * f.T, (b + 1) * f.T)]);
}

for (const name of fixtureNames()) {
  test(`block criteria match the reference: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const batches = batchesFromRows(rows(f));
    const L = f.model.config.numLayers;

    const tay = await taylorScores(run, batches);
    assertClose((tay.details['perTensor'] as number[][]).flat(), expectedF(f, 'taylor_per_tensor'), 1e-4, 0, 'taylor_per_tensor');
    assertClose(tay.scores, expectedF(f, 'taylor_block'), 1e-4, 0, 'taylor_block');
    assert.deepEqual(tay.order, f.json.taylor.block_order);
    // the recomputing path, and several batches (one row each) summed block by block, match too
    const oneRowEach = rows(f).map((r) => batchesFromRows([r])[0]!);
    for (const [label, t] of [['recompute', await taylorScores(run, batches, { recompute: true })], ['per-row batches', await taylorScores(run, oneRowEach)]] as const) {
      assert.equal(t.details['recompute'], label === 'recompute');
      assertClose((t.details['perTensor'] as number[][]).flat(), expectedF(f, 'taylor_per_tensor'), 1e-4, 0, `taylor_per_tensor (${label})`);
      assert.deepEqual(t.order, f.json.taylor.block_order);
    }

    const mag = magnitudeScores(f.model);
    assertClose((mag.details['perTensor'] as number[][]).flat(), expectedF(f, 'magnitude_per_tensor'), 1e-5, 0, 'magnitude_per_tensor');
    assertClose(mag.scores, expectedF(f, 'magnitude_block'), 1e-5, 0, 'magnitude_block');
    assert.deepEqual(mag.order, f.json.magnitude.block_order);

    const ppl = await pplScores(run, batches);
    assertClose(ppl.scores, expectedF(f, 'ppl_removed'), 1e-5, 0, 'ppl_removed');
    assert.deepEqual(ppl.order, f.json.ppl_criterion.block_order);

    const bi = await blockInfluence(run, batches);
    assertClose(bi.scores, expectedF(f, 'bi'), 1e-4, 1e-6, 'bi');
    assert.deepEqual(bi.order, f.json.bi_criterion.block_order);

    const ang = await angularDistance(run, batches);
    const mat = (ang.details['angular'] as (number | null)[][]).flat().map((v) => (v === null ? NaN : v));
    assertClose(mat, expectedF(f, 'angular'), 1e-4, 1e-6, 'angular');
    assert.deepEqual(ang.details['bestStart'], f.json.angular_criterion.best_start);

    const sleb = await slebScores(run, batches);
    assert.deepEqual(sleb.details['order'], f.json.sleb.order);
    assertClose(sleb.details['pplAfterRemoval'] as number[], f.json.sleb.ppl_after_removal, 1e-5, 0, 'sleb ppl');
    assert.equal(sleb.order.length, L);
  });
}
