/**
 * The zero-shot tasks: each turns one stored JSONL row into the (context, continuation) string
 * pairs that lm-evaluation-harness sends to `loglikelihood()` for that document, plus the gold
 * index and the strings whose lengths normalise acc_norm.
 *
 * Prompts follow the harness's task configs (v0.4 YAMLs; v0.3, which the paper pinned, builds the
 * same strings). The shared files are not the harness's raw datasets: where a file's `query` adds
 * formatting of its own, the raw fields are recovered from it and the harness prompt rebuilt.
 * Every choice is sent as continuation `target_delimiter + choice` with the harness's default
 * delimiter " ", except WinoGrande, whose choices go in the context (see `winogrande`).
 *
 * Malformed rows never crash a run: each problem is reported as `file:line: message`, and the
 * caller decides whether to skip the row or stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';

export type MetricName = 'acc' | 'acc_norm';

/** One document, ready to be encoded: the harness's loglikelihood requests as strings. */
export interface ZeroshotDoc {
  /** 0-based position among the file's non-blank lines (the harness's doc id) */
  index: number;
  /** `file:line`, for messages */
  where: string;
  /** one (context, continuation) pair per choice, in choice order */
  pairs: { context: string; continuation: string }[];
  /** the harness's `doc_to_choice` strings; acc_norm divides by their lengths */
  choices: string[];
  gold: number;
}

export interface ZeroshotTask {
  /** the name results are reported under (lm-eval's task name for the built-in seven) */
  name: string;
  file: string;
  /** metrics the harness reports for this task */
  metrics: MetricName[];
  /** the metric the paper's tables use */
  paperMetric: MetricName;
  docs: ZeroshotDoc[];
  /** rows that could not be turned into documents, as `file:line: message` (only with onError 'skip') */
  problems: string[];
}

/** Thrown by row parsers; the loader adds file and line. */
class RowError extends Error {}

type Row = Record<string, unknown>;
type Parsed = Omit<ZeroshotDoc, 'index' | 'where'>;

interface TaskSpec {
  /** file name under the data folder */
  file: string;
  metrics: MetricName[];
  paperMetric: MetricName;
  parse(row: Row): Parsed;
}

// ---------------------------------------------------------------------------------------------
// field helpers

function str(row: Row, key: string): string {
  const v = row[key];
  if (typeof v !== 'string') throw new RowError(`field "${key}" must be a string`);
  return v;
}

function strList(row: Row, key: string): string[] {
  const v = row[key];
  if (!Array.isArray(v)) throw new RowError(`field "${key}" must be a list of strings`);
  if (v.length === 0) throw new RowError(`field "${key}" is empty`);
  v.forEach((c, i) => {
    if (typeof c !== 'string') throw new RowError(`${key}[${i}] is not a string`);
    // an empty choice has length 0, which acc_norm would divide by
    if (c.length === 0) throw new RowError(`${key}[${i}] is an empty string`);
  });
  return v as string[];
}

/** gold index: an integer (or, as in HellaSwag's `label`, an integer string) within [0, n) */
function goldIndex(row: Row, key: string, n: number): number {
  const v = row[key];
  const g = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof g !== 'number' || !Number.isInteger(g)) throw new RowError(`field "${key}" must be an integer`);
  if (g < 0 || g >= n) throw new RowError(`${key} ${g} is out of range for ${n} choice${n === 1 ? '' : 's'}`);
  return g;
}

function stripPrefix(s: string, prefix: string, what: string): string {
  if (!s.startsWith(prefix)) throw new RowError(`${what} does not start with ${JSON.stringify(prefix)}`);
  return s.slice(prefix.length);
}

/** The common case: one context, each choice as `" " + choice`. */
function choicePairs(context: string, choices: string[]): Parsed['pairs'] {
  return choices.map((c) => ({ context, continuation: ' ' + c }));
}

function multipleChoice(context: string, row: Row, choicesKey = 'choices', goldKey = 'gold'): Parsed {
  const choices = strList(row, choicesKey);
  return { pairs: choicePairs(context, choices), choices, gold: goldIndex(row, goldKey, choices.length) };
}

// ---------------------------------------------------------------------------------------------
// HellaSwag

/** The harness's `preprocess` (tasks/hellaswag/utils.py), step for step. */
export function hellaswagPreprocess(text: string): string {
  let t = text.trim();
  t = t.replaceAll(' [title]', '. '); // WikiHow section markers
  t = t.replace(/\[.*?\]/g, '');
  t = t.replaceAll('  ', ' '); // one pass, like Python's str.replace
  return t;
}

/** Python's str.capitalize: first character upper-cased, the rest lower-cased. */
function capitalize(s: string): string {
  const cps = [...s];
  if (cps.length === 0) return s;
  return cps[0]!.toUpperCase() + cps.slice(1).join('').toLowerCase();
}

/**
 * The harness builds `ctx_a + " " + ctx_b.capitalize()`; the shared file stores only
 * `ctx = ctx_a + " " + ctx_b` with ctx_b as in the dataset. We recover ctx_b as follows (checked on
 * all 10,042 validation rows): an ActivityNet context ends mid-sentence, and its ctx_b ("he",
 * "the lady", "5 the guy") is everything after the last sentence end; a WikiHow context ends
 * with its sentence punctuation and has an empty ctx_b, so it is left as it is.
 */
export function hellaswagContext(ctx: string): string {
  if (/[.!?]["')]*$/.test(ctx)) return ctx; // complete sentence: ctx_b is empty
  let start = -1;
  for (const m of ctx.matchAll(/[.!?]\s+/g)) start = m.index + m[0].length;
  if (start < 0) return ctx; // no sentence before it: cannot tell ctx_a from ctx_b, keep as stored
  return ctx.slice(0, start) + capitalize(ctx.slice(start));
}

const hellaswag: TaskSpec = {
  file: 'hellaswag.jsonl',
  metrics: ['acc', 'acc_norm'],
  paperMetric: 'acc_norm',
  parse(row) {
    const query = hellaswagPreprocess(str(row, 'activity_label') + ': ' + hellaswagContext(str(row, 'ctx')));
    const endings = strList(row, 'endings').map(hellaswagPreprocess);
    endings.forEach((e, i) => {
      if (e.length === 0) throw new RowError(`endings[${i}] is empty after preprocessing`);
    });
    return { pairs: choicePairs(query, endings), choices: endings, gold: goldIndex(row, 'label', endings.length) };
  },
};

// ---------------------------------------------------------------------------------------------
// the other six

/** "{passage}\nQuestion: {question}?\nAnswer:" → " no" / " yes"; stored query "Passage: {passage}\nQuestion: {question}?" */
const boolq: TaskSpec = {
  file: 'boolq.jsonl',
  metrics: ['acc'],
  paperMetric: 'acc',
  parse(row) {
    const query = stripPrefix(str(row, 'query'), 'Passage: ', 'query');
    // the last "\nQuestion: " starts the question (a passage may quote one, as row 2418 does)
    const q = query.lastIndexOf('\nQuestion: ');
    if (q < 0) throw new RowError('query has no "\\nQuestion: " line');
    if (!query.endsWith('?')) throw new RowError('query does not end with "?"');
    const passage = query.slice(0, q);
    const question = query.slice(q + '\nQuestion: '.length, -1);
    return multipleChoice(`${passage}\nQuestion: ${question}?\nAnswer:`, row);
  },
};

/** "Question: {goal}\nAnswer:" → " {sol}"; stored query "Question: {goal}\n" */
const piqa: TaskSpec = {
  file: 'piqa.jsonl',
  metrics: ['acc', 'acc_norm'],
  paperMetric: 'acc',
  parse(row) {
    let goal = stripPrefix(str(row, 'query'), 'Question: ', 'query');
    if (goal.endsWith('\n')) goal = goal.slice(0, -1);
    return multipleChoice(`Question: ${goal}\nAnswer:`, row);
  },
};

/** "Question: {question}\nAnswer:" → " {choice}"; stored query "Question: {question}" */
function arc(file: string, paperMetric: MetricName): TaskSpec {
  return {
    file,
    metrics: ['acc', 'acc_norm'],
    paperMetric,
    parse(row) {
      const question = stripPrefix(str(row, 'query'), 'Question: ', 'query');
      return multipleChoice(`Question: ${question}\nAnswer:`, row);
    },
  };
}

/** "{question_stem}" → " {choice}"; the stored query is the stem itself */
const openbookqa: TaskSpec = {
  file: 'openbook_qa.jsonl',
  metrics: ['acc', 'acc_norm'],
  paperMetric: 'acc_norm',
  parse(row) {
    return multipleChoice(str(row, 'query'), row);
  },
};

/**
 * WinoGrande, partial evaluation: the context is the sentence up to the blank with an option
 * substituted (`doc_to_choice`), the continuation is `" " + the rest after the blank, stripped`
 * (`doc_to_target`), the same for both options. The file stores exactly those two contexts and
 * the stripped rest. The harness scores only acc here; its choices are the two contexts.
 */
const winogrande: TaskSpec = {
  file: 'winogrande.jsonl',
  metrics: ['acc'],
  paperMetric: 'acc',
  parse(row) {
    const contexts = strList(row, 'context_options');
    const target = str(row, 'continuation').trim();
    if (target.length === 0) throw new RowError('field "continuation" is empty');
    return {
      pairs: contexts.map((context) => ({ context, continuation: ' ' + target })),
      choices: contexts,
      gold: goldIndex(row, 'gold', contexts.length),
    };
  },
};

/** Any `{query, choices, gold}` file: context = query, continuations " {choice}". */
const generic: Omit<TaskSpec, 'file'> = {
  metrics: ['acc', 'acc_norm'],
  paperMetric: 'acc',
  parse(row) {
    return multipleChoice(str(row, 'query'), row);
  },
};

/** The paper's seven, under lm-eval's task names, in the paper's column order. */
export const BUILTIN_TASKS: Readonly<Record<string, TaskSpec>> = {
  boolq,
  piqa,
  hellaswag,
  winogrande,
  arc_easy: arc('arc_easy.jsonl', 'acc'),
  arc_challenge: arc('arc_challenge.jsonl', 'acc_norm'),
  openbookqa,
};

export const DEFAULT_TASKS: readonly string[] = Object.keys(BUILTIN_TASKS);

const ALIASES: Readonly<Record<string, string>> = { openbook_qa: 'openbookqa', arc_e: 'arc_easy', arc_c: 'arc_challenge' };

/** lm-eval's name for a user-typed task name, or null if it is not one of the seven. */
export function canonicalTaskName(name: string): string | null {
  const n = name.trim().toLowerCase();
  const c = ALIASES[n] ?? n;
  return c in BUILTIN_TASKS ? c : null;
}

// ---------------------------------------------------------------------------------------------
// loading

export type OnError = 'skip' | 'stop';

/** Parse JSONL text into documents; problems either throw (stop) or are collected (skip). */
export function parseTaskText(text: string, file: string, spec: Omit<TaskSpec, 'file'>, onError: OnError): { docs: ZeroshotDoc[]; problems: string[] } {
  const docs: ZeroshotDoc[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  let index = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    const docIndex = index++; // malformed rows keep their number, so ids match the file
    let problem: string;
    try {
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new RowError(`invalid JSON (${(e as Error).message})`);
      }
      if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new RowError('not a JSON object');
      docs.push({ index: docIndex, where, ...spec.parse(row as Row) });
      continue;
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      problem = `${where}: ${e.message}`;
    }
    if (onError === 'stop') throw new UserError(problem);
    problems.push(problem);
  }
  return { docs, problems };
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `task file not found: ${file}` : `cannot read task file ${file}: ${(e as Error).message}`);
  }
}

/** One of the seven, from `dataDir`. */
export function loadBuiltinTask(name: string, dataDir: string, onError: OnError): ZeroshotTask {
  const canonical = canonicalTaskName(name);
  if (!canonical) throw new UserError(`unknown task "${name}" (known: ${DEFAULT_TASKS.join(', ')}; use --task-file for others)`);
  const spec = BUILTIN_TASKS[canonical]!;
  const file = path.join(dataDir, spec.file);
  const { docs, problems } = parseTaskText(readText(file), file, spec, onError);
  return { name: canonical, file, metrics: spec.metrics, paperMetric: spec.paperMetric, docs, problems };
}

/** A generic `{query, choices, gold}` file, named after its base name. */
export function loadTaskFile(file: string, onError: OnError): ZeroshotTask {
  const name = path.basename(file).replace(/\.jsonl?$/i, '');
  const { docs, problems } = parseTaskText(readText(file), file, generic, onError);
  return { name, file, metrics: generic.metrics, paperMetric: generic.paperMetric, docs, problems };
}
