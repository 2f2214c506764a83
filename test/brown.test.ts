import test from 'node:test';
import assert from 'node:assert/strict';
import { brownDocuments, brownSplit, brownSplitOf, brownText, detokenize, type BrownSplit } from '../src/data/brown.js';

test('the corpus: 500 documents, ~1M words', () => {
  const docs = brownDocuments();
  assert.equal(docs.length, 500);
  assert.equal(new Set(docs.map((d) => d.id)).size, 500);
  assert.equal(new Set(docs.map((d) => d.category)).size, 15);
  assert.equal(docs.find((d) => d.id === 'cr09')?.category, 'humor');
  let words = 0;
  for (const d of docs) for (const p of d.paragraphs) words += p.split(' ').length;
  assert.ok(words > 1.0e6 && words < 1.2e6, `${words} words`);
});

test('plain text: no tags, no corpus quote marks, one clean line per paragraph', () => {
  // Tags that would be everywhere if stripping failed ("and/or" is real text, so not /cc).
  const tag = /\S\/(at|nn|nns|np|jj|vbd|vbn|vbz|bez|bedz|pps|ppss|ppo|wdt|hvd)(-tl|-hl|-nc)?\b/;
  for (const d of brownDocuments()) {
    for (const p of d.paragraphs) {
      assert.ok(!tag.test(p), `${d.id}: tag left in ${p.slice(0, 80)}`);
      // '' survives only as inches: 4' 10''.
      assert.ok(!p.includes('``') && !/(^|[^0-9])''/.test(p), `${d.id}: corpus quotes in ${p.slice(0, 80)}`);
      assert.ok(p.length > 0 && p === p.trim() && !/[\n\t]|  /.test(p), `${d.id}: bad spacing in ${JSON.stringify(p.slice(0, 80))}`);
      assert.ok(!/ [,.;:!?)]( |$)/.test(p), `${d.id}: space before punctuation in ${p.slice(0, 80)}`);
    }
  }
});

test('sentences read naturally', () => {
  const ca01 = brownDocuments()[0]!;
  assert.equal(ca01.id, 'ca01');
  assert.equal(ca01.category, 'news');
  assert.equal(ca01.paragraphs[0],
    'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election ' +
    'produced "no evidence" that any irregularities took place.');
  // A headline is its own paragraph; the "Jr. ." of the corpus keeps one period.
  assert.ok(ca01.paragraphs.includes('Merger proposed'));
  assert.ok(ca01.paragraphs[2]!.endsWith('won by Mayor-nominate Ivan Allen Jr.'));
  const ck01 = brownDocuments().find((d) => d.id === 'ck01')!;
  assert.equal(ck01.paragraphs[1]!.split('. ')[0], 'Scotty did not go back to school');
});

test('detokenize places punctuation and quotes', () => {
  assert.equal(detokenize(['He', 'said', ',', '``', 'Hi', '(', 'there', ')', "''", '.']), 'He said, "Hi (there)".');
  assert.equal(detokenize(['Why', '?', '?', 'A', ';', ';', 'b', '--', 'c', '.']), 'Why? A; b--c.');
  assert.equal(detokenize(['the', "'", 'Met', "'", 'again', ',', "'", 'he', "'", '.']), "the 'Met' again, 'he'.");
  assert.equal(detokenize(['Allen', 'Jr.', '.']), 'Allen Jr.');
});

test('splits: disjoint by document, 450 / 25 / 25, deterministic', () => {
  const docs = brownDocuments();
  const splits: BrownSplit[] = ['train', 'validation', 'test'];
  const bySplit = new Map(splits.map((s) => [s, docs.filter((d) => brownSplitOf(d.id) === s)]));
  assert.deepEqual(splits.map((s) => bySplit.get(s)!.length), [450, 25, 25]);
  for (const s of splits) {
    assert.deepEqual(brownSplit(s), bySplit.get(s)!.flatMap((d) => d.paragraphs));
    assert.equal(brownText(s), brownSplit(s).join('\n'));
  }
  assert.equal(brownSplitOf('ca10'), 'validation');
  assert.equal(brownSplitOf('ca20'), 'test');
  // Every genre with 20+ documents is represented in validation.
  const valGenres = new Set(bySplit.get('validation')!.map((d) => d.category));
  for (const g of ['news', 'learned', 'belles_lettres', 'lore', 'fiction', 'romance']) assert.ok(valGenres.has(g), g);
});
