/**
 * Finds the report's input files: each path is a JSON file or a folder searched recursively for
 * *.json. Files whose `kind` the report knows are validated and grouped by kind; other JSON in
 * searched folders (config.json, tokenizer.json, ...) is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import {
  parseReportInput, REPORT_KINDS,
  type ScoreFile, type PruneFile, type PplFile, type TrainFile, type ZeroShotFile, type BenchFile, type GenerationsFile, type SummaryFile,
} from './schemas.js';

/** A validated input with the file it came from. */
export type Sourced<T> = T & { file: string };

export interface ReportData {
  files: string[];
  score: Sourced<ScoreFile>[];
  prune: Sourced<PruneFile>[];
  ppl: Sourced<PplFile>[];
  train: Sourced<TrainFile>[];
  zeroshot: Sourced<ZeroShotFile>[];
  bench: Sourced<BenchFile>[];
  generations: Sourced<GenerationsFile>[];
  summary: Sourced<SummaryFile>[];
}

// Folders that never hold report inputs and can be huge.
const SKIP_DIRS = new Set(['node_modules', '.git']);
// Large JSON in a searched folder is a tokenizer or an index, never a report input.
const MAX_SEARCHED_BYTES = 64 << 20;

function findJson(dir: string, found: string[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) findJson(p, found);
    else if (e.name.endsWith('.json') && !e.isDirectory()) {
      // Follows links to files (not to folders, which could loop); skips dangling ones.
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (st?.isFile() && st.size <= MAX_SEARCHED_BYTES) found.push(p);
    }
  }
}

function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch (e) {
    throw new UserError(`${file}: invalid JSON (${(e as Error).message})`);
  }
}

export function loadReportInputs(inputs: string[]): ReportData {
  if (inputs.length === 0) throw new UserError('report: no inputs given');
  const data: ReportData = { files: [], score: [], prune: [], ppl: [], train: [], zeroshot: [], bench: [], generations: [], summary: [] };
  const seen = new Set<string>();
  for (const input of inputs) {
    if (!fs.existsSync(input)) throw new UserError(`report input not found: ${input}`);
    const explicit = fs.statSync(input).isFile();
    const files: string[] = [];
    if (explicit) files.push(input);
    else findJson(input, files);
    for (const file of files) {
      const abs = path.resolve(file);
      if (seen.has(abs)) continue;
      seen.add(abs);
      const parsed = parseReportInput(readJsonFile(file), file);
      if (!parsed) {
        // A file named on the command line must be an input; one met in a folder may be anything.
        if (explicit) throw new UserError(`${file}: not a report input (needs "kind": one of ${REPORT_KINDS.join(', ')})`);
        continue;
      }
      data.files.push(file);
      // The union narrows per kind, but TS cannot index the record by it; the cast is exact.
      (data[parsed.kind] as Sourced<typeof parsed>[]).push({ ...parsed, file });
    }
  }
  if (data.files.length === 0) throw new UserError(`report: no JSON with a known "kind" (${REPORT_KINDS.join(', ')}) in ${inputs.join(', ')}`);
  return data;
}
