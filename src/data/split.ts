/** The split rule every embedded corpus uses: 90 / 5 / 5, spread evenly through the documents. */
export type CorpusSplit = 'train' | 'validation' | 'test';

/** Documents in corpus order: every 20th from the 10th on is validation, every 20th from the 20th on is test. */
export function splitOfIndex(index: number): CorpusSplit {
  const r = index % 20;
  return r === 9 ? 'validation' : r === 19 ? 'test' : 'train';
}
