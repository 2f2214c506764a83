/**
 * The embedded default corpus (src/data/default-corpus.ts): Brown, State of the Union and
 * Moby-Dick, each split 90 / 5 / 5 by document; the training mixture counts Brown twice; the
 * validation and test splits are Brown's.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { defaultDocuments } from '../src/data/default-corpus.js';
import { sotuAddresses, sotuSplit } from '../src/data/sotu.js';
import { mobyDickChapters, mobyDickSplit } from '../src/data/moby-dick.js';
import { brownDocuments, brownSplitOf } from '../src/data/brown.js';

test('State of the Union: every address, chronological, split 90/5/5', () => {
  const all = sotuAddresses();
  assert.ok(all.length >= 230, `${all.length} addresses`);
  assert.equal(all[0]!.year, 1790);
  assert.match(all[0]!.text, /^Fellow-Citizens of the Senate and House of Representatives/);
  for (let i = 1; i < all.length; i++) assert.ok(all[i]!.year >= all[i - 1]!.year);
  const [tr, va, te] = (['train', 'validation', 'test'] as const).map((s) => sotuSplit(s).length);
  assert.equal(tr! + va! + te!, all.length);
  assert.equal(va, Math.floor((all.length + 10) / 20));
});

test('Moby-Dick: 135 chapters and the epilogue, paragraphs as lines', () => {
  const ch = mobyDickChapters();
  assert.equal(ch.length, 136);
  assert.match(ch[0]!, /^CHAPTER 1\. Loomings\.\nCall me Ishmael\./);
  assert.equal(mobyDickSplit('train').length + mobyDickSplit('validation').length + mobyDickSplit('test').length, 136);
});

test('the default training mixture: Brown twice, SOTU and Moby-Dick once, no held-out document', () => {
  const train = defaultDocuments('train');
  const brownTrain = brownDocuments().filter((d) => brownSplitOf(d.id) === 'train').map((d) => d.paragraphs.join('\n'));
  assert.equal(train.length, 2 * brownTrain.length + sotuSplit('train').length + mobyDickSplit('train').length);
  const counts = new Map<string, number>();
  for (const d of train) counts.set(d, (counts.get(d) ?? 0) + 1);
  assert.equal(counts.get(brownTrain[0]!), 2);
  assert.equal(counts.get(sotuSplit('train')[0]!), 1);
  const heldOut = [...defaultDocuments('validation'), ...defaultDocuments('test'), ...sotuSplit('test'), ...mobyDickSplit('test')];
  for (const d of heldOut) assert.equal(counts.has(d), false);
  // one seeded order, the same every call; the sources are interleaved, not concatenated
  assert.deepEqual(defaultDocuments('train').slice(0, 5), train.slice(0, 5));
  const firstSotu = train.findIndex((d) => d.startsWith('Fellow') || d.startsWith('Gentlemen') || d.startsWith('To the Senate'));
  assert.ok(firstSotu >= 0 && firstSotu < 50, `first address at ${firstSotu}`);
  assert.equal(defaultDocuments('validation').length, 25);
  assert.equal(defaultDocuments('test').length, 25);
});
