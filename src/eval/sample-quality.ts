/**
 * Two cheap checks that a sample reads as text rather than a loop: the longest run of one word
 * repeated back to back ("the the the"), and the share of distinct word bigrams. Words are
 * lower-cased runs of letters, digits and apostrophes; punctuation is ignored.
 */

export interface SampleQuality {
  words: number;
  /** the most times one word appears in a row */
  longestRepeat: number;
  /** distinct bigrams / bigrams (1 when there are fewer than two words) */
  distinctBigrams: number;
}

export function sampleWords(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9']+/g) ?? [];
}

export function sampleQuality(text: string): SampleQuality {
  const w = sampleWords(text);
  let longest = w.length ? 1 : 0, run = 1;
  for (let i = 1; i < w.length; i++) {
    run = w[i] === w[i - 1] ? run + 1 : 1;
    longest = Math.max(longest, run);
  }
  const bigrams = new Set<string>();
  for (let i = 1; i < w.length; i++) bigrams.add(`${w[i - 1]} ${w[i]}`);
  return { words: w.length, longestRepeat: longest, distinctBigrams: w.length < 2 ? 1 : bigrams.size / (w.length - 1) };
}

/** The bar for a sample: no word more than three times in a row, at least half the bigrams distinct. */
export function readsAsText(q: SampleQuality): boolean {
  return q.longestRepeat <= 3 && q.distinctBigrams >= 0.5;
}
