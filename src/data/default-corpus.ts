/** The embedded default corpus: Brown documents (whole documents, paragraphs joined by newlines). */
import { brownDocuments, brownSplitOf, type BrownSplit } from './brown.js';

export function defaultDocuments(split: BrownSplit = 'train'): string[] {
  return brownDocuments().filter((d) => brownSplitOf(d.id) === split).map((d) => d.paragraphs.join('\n'));
}
