import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepMask, mulberry32 } from '../src/util/rng.js';

test('keepMask draws the mulberry32 stream: 0 where the draw falls below the drop probability', () => {
  const n = 20000, drop = 0.3, seed = 1234;
  const mask = keepMask(n, drop, seed);
  const r = mulberry32(seed);
  for (let i = 0; i < n; i++) assert.equal(mask[i], r() >= drop ? 1 : 0, `element ${i}`);
  const kept = mask.reduce((s, m) => s + m, 0) / n;
  assert.ok(Math.abs(kept - 0.7) < 0.02, `kept fraction ${kept}`);
  assert.deepEqual(keepMask(16, 0, 9), new Uint8Array(16).fill(1));
});
