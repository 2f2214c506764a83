import test from 'node:test';
import assert from 'node:assert/strict';
import { sampleQuality, readsAsText, sampleWords } from '../src/eval/sample-quality.js';

test('sample checks: repeated words and distinct bigrams', () => {
  assert.deepEqual(sampleWords("The jury's verdict, said he."), ['the', "jury's", 'verdict', 'said', 'he']);
  const loop = sampleQuality('The the the the man');
  assert.equal(loop.longestRepeat, 4);
  assert.equal(readsAsText(loop), false);
  const cycle = sampleQuality('of the of the of the of the');
  assert.equal(cycle.longestRepeat, 1);
  assert.equal(cycle.distinctBigrams, 2 / 7);
  assert.equal(readsAsText(cycle), false);
  const prose = sampleQuality('The jury said it did not find any evidence that the election was conducted badly.');
  assert.equal(prose.longestRepeat, 1);
  assert.equal(prose.distinctBigrams, 1);
  assert.equal(readsAsText(prose), true);
  assert.deepEqual(sampleQuality(''), { words: 0, longestRepeat: 0, distinctBigrams: 1 });
});
