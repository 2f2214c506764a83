/**
 * `shorten eval zeroshot`: load the tasks, encode each document's choices the harness's way,
 * score them with a LoglikelihoodScorer, and aggregate acc / acc_norm with standard errors into
 * lm-evaluation-harness's results layout.
 *
 * Long runs are resumable: with an output folder, each scored document is appended to
 * `zeroshot-partial.jsonl` as soon as its chunk is done, and a later run with the same folder
 * skips documents already there. Records are keyed by the document's request strings, so an
 * edited data file re-scores only the documents that changed; a header line ties the file to one
 * model/tokenizer/BOS setting, and a mismatch is refused rather than silently mixed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { progress, type Progress } from '../../util/progress.js';
import type { TextTokenizer } from '../../io/tokenizer.js';
import type { LoglikelihoodRequest, LoglikelihoodScorer } from '../loglikelihood-types.js';
import { UserError } from '../../util/errors.js';
import { sharedDir } from '../../util/shared.js';
import { DEFAULT_TASKS, loadBuiltinTask, loadTaskFile, type MetricName, type OnError, type ZeroshotDoc, type ZeroshotTask } from './tasks.js';
import { encodeDocPairs, EncodeError } from './requests.js';
import { mean, meanStderr, scoreDoc } from './metrics.js';

export interface ZeroshotOptions {
  tokenizer: TextTokenizer;
  scorer: LoglikelihoodScorer;
  /** built-in task names (default: all seven, unless only taskFiles are given) */
  tasks?: string[];
  /** generic `{query, choices, gold}` JSONL files, each a task named after its base name */
  taskFiles?: string[];
  /** score only the first N documents of each task (the harness's --limit) */
  limit?: number;
  /** folder for resumable partial results and results.json */
  outDir?: string;
  /** what to do with a malformed row: report and skip it, or stop with its file:line */
  onError?: OnError;
  /** folder holding the seven tasks' files (default ../shared/data/eval/zeroshot) */
  dataDir?: string;
  /** prepend BOS to contexts (lm-eval's add_bos_token=True); default false */
  addBos?: boolean;
  /** identifies the model in the partial-results header (e.g. the model folder's path) */
  runId?: string;
  /** documents per scorer call, i.e. between checkpoints (default 32) */
  chunkDocs?: number;
  /** show progress on stderr (default true): a bar on a terminal, a line every few seconds in logs */
  progress?: boolean;
  /** where warnings go (default: stderr) */
  log?: (line: string) => void;
}

/** One task's entry in `results`, named as lm-eval names them. */
export interface TaskMetrics {
  acc: number;
  acc_stderr: number | null;
  acc_norm?: number;
  acc_norm_stderr?: number | null;
}

export interface ZeroshotResults {
  results: Record<string, TaskMetrics>;
  versions: Record<string, number>;
  'n-samples': Record<string, { original: number; effective: number }>;
  config: { model: string | null; num_fewshot: 0; limit: number | null; add_bos_token: boolean; max_length: number | null; target_delimiter: ' '; acc_norm_length: 'characters' };
  /** the metric the paper reports per task, and their mean over the tasks run */
  paper: { metrics: Record<string, MetricName>; mean: number | null };
  /** rows skipped as malformed, as `file:line: message` */
  problems: string[];
}

export const PARTIAL_FILE = 'zeroshot-partial.jsonl';
export const RESULTS_FILE = 'results.json';
const PARTIAL_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// partial results

interface DocRecord {
  task: string;
  doc: number;
  key: string;
  lls: (number | null)[];
  greedy: number[];
}

interface PartialHeader {
  kind: 'header';
  version: number;
  runId: string | null;
  addBos: boolean;
  /** the scorer's context length (requests beyond it are cut from the left) */
  maxLength: number | null;
  tokenizer: string;
}

/** FNV-1a, 32 bits, as hex: a cheap fingerprint, not a security measure. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

function docKey(doc: ZeroshotDoc): string {
  return fnv1a(JSON.stringify(doc.pairs));
}

/** Which tokenizer made the ids: its encoding of a probe string, with its vocabulary size. */
function tokenizerFingerprint(tok: TextTokenizer): string {
  return fnv1a(`${tok.vocabSize}:${tok.bosId}:${tok.eosId}:${tok.encode('Zero-shot probe: \n Ünïcode 123.').join(',')}`);
}

class PartialStore {
  private readonly done = new Map<string, DocRecord>();

  constructor(private readonly file: string | null, header: PartialHeader, log: (line: string) => void) {
    if (!file) return;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file) || fs.statSync(file).size === 0) {
      fs.writeFileSync(file, JSON.stringify(header) + '\n');
      return;
    }
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    let first: Partial<PartialHeader> = {};
    try {
      first = JSON.parse(lines[0] ?? '') as Partial<PartialHeader>;
    } catch {
      // handled below
    }
    if (first.kind !== 'header') throw new UserError(`${file}: not a zero-shot partial-results file; use another --out folder or delete it`);
    const differs = (['version', 'runId', 'addBos', 'maxLength', 'tokenizer'] as const).filter((k) => first[k] !== header[k]);
    if (differs.length > 0) {
      throw new UserError(`${file} holds partial results of a different run (${differs.join(', ')} differ: ${JSON.stringify(first.runId)} vs ${JSON.stringify(header.runId)}); use another --out folder or delete it`);
    }
    let bad = 0;
    for (let i = 1; i < lines.length; i++) {
      if (lines[i]!.trim() === '') continue;
      try {
        const r = JSON.parse(lines[i]!) as DocRecord;
        if (typeof r.task !== 'string' || typeof r.doc !== 'number' || !Array.isArray(r.lls)) throw new Error('bad record');
        this.done.set(`${r.task}\u0000${r.doc}`, r);
      } catch {
        bad++; // typically the last line of a run killed mid-write
      }
    }
    if (bad > 0) log(`warning: ${file}: ignored ${bad} unreadable line(s); those documents will be scored again`);
    if (!fs.readFileSync(file, 'utf8').endsWith('\n')) fs.appendFileSync(file, '\n');
  }

  get(task: string, doc: ZeroshotDoc): DocRecord | undefined {
    const r = this.done.get(`${task}\u0000${doc.index}`);
    return r && r.key === docKey(doc) && r.lls.length === doc.pairs.length ? r : undefined;
  }

  add(records: DocRecord[]): void {
    for (const r of records) this.done.set(`${r.task}\u0000${r.doc}`, r);
    if (this.file && records.length > 0) fs.appendFileSync(this.file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
}

// ---------------------------------------------------------------------------------------------
// running

function loadTasks(opts: ZeroshotOptions, onError: OnError): ZeroshotTask[] {
  const names = opts.tasks ?? (opts.taskFiles && opts.taskFiles.length > 0 ? [] : [...DEFAULT_TASKS]);
  const dataDir = opts.dataDir ?? sharedDir('data', 'eval', 'zeroshot');
  const tasks = [...names.map((n) => loadBuiltinTask(n, dataDir, onError)), ...(opts.taskFiles ?? []).map((f) => loadTaskFile(f, onError))];
  if (tasks.length === 0) throw new UserError('no tasks to run');
  const seen = new Set<string>();
  for (const t of tasks) {
    if (seen.has(t.name)) throw new UserError(`task "${t.name}" is given twice (task files are named after their base name)`);
    seen.add(t.name);
  }
  return tasks;
}

function makeBar(enabled: boolean, name: string, total: number): Progress | null {
  return enabled && total > 0 ? progress(name.padEnd(14), total, 'docs') : null;
}

/** Score the documents not yet in the store, a chunk at a time, checkpointing after each. */
async function scoreTask(task: ZeroshotTask, opts: ZeroshotOptions, store: PartialStore, onError: OnError, log: (line: string) => void): Promise<void> {
  const todo = task.docs.filter((d) => !store.get(task.name, d));
  const chunk = Math.max(1, opts.chunkDocs ?? 32);
  const bar = makeBar(opts.progress ?? true, task.name, task.docs.length);
  bar?.update(task.docs.length - todo.length);
  try {
    for (let start = 0; start < todo.length; start += chunk) {
      const docs: ZeroshotDoc[] = [];
      const requests: LoglikelihoodRequest[] = [];
      for (const doc of todo.slice(start, start + chunk)) {
        try {
          requests.push(...encodeDocPairs(opts.tokenizer, doc.pairs, { addBos: opts.addBos ?? false }));
          docs.push(doc);
        } catch (e) {
          if (!(e instanceof EncodeError)) throw e;
          const problem = `${doc.where}: ${e.message}`;
          if (onError === 'stop') throw new UserError(problem);
          task.problems.push(problem);
          log(`warning: ${problem} (skipped)`);
        }
      }
      if (requests.length === 0) continue;
      const maxLen = opts.scorer.maxLength;
      const cut = maxLen === undefined ? 0 : requests.filter((r) => r.continuation.length > maxLen).length;
      if (cut > 0) log(`warning: ${task.name}: ${cut} continuation(s) longer than the model's context (${maxLen}); only their last ${maxLen} tokens are scored`);
      const before = task.docs.length - todo.length + start;
      const results = await opts.scorer.score(requests, (done, total) => bar?.update(before + Math.floor((done / total) * docs.length)));
      if (results.length !== requests.length) throw new Error(`scorer returned ${results.length} results for ${requests.length} requests`);
      let k = 0;
      store.add(docs.map((doc) => {
        const rs = results.slice(k, (k += doc.pairs.length));
        // JSON has no -Infinity: a vanishing probability is stored as null and read back as -Infinity
        return { task: task.name, doc: doc.index, key: docKey(doc), lls: rs.map((r) => (Number.isFinite(r.logprob) ? r.logprob : null)), greedy: rs.map((r) => (r.isGreedy ? 1 : 0)) };
      }));
      bar?.update(before + docs.length);
    }
  } finally {
    bar?.stop();
  }
}

function aggregate(task: ZeroshotTask, store: PartialStore): { metrics: TaskMetrics; n: number } {
  const acc: number[] = [];
  const accNorm: number[] = [];
  for (const doc of task.docs) {
    const r = store.get(task.name, doc);
    if (!r) continue; // failed to encode and was skipped
    const s = scoreDoc(r.lls.map((x) => x ?? -Infinity), doc.choices, doc.gold);
    acc.push(s.acc);
    accNorm.push(s.acc_norm);
  }
  const n = acc.length;
  const metrics: TaskMetrics = { acc: n ? mean(acc) : NaN, acc_stderr: meanStderr(acc) };
  if (task.metrics.includes('acc_norm')) {
    metrics.acc_norm = n ? mean(accNorm) : NaN;
    metrics.acc_norm_stderr = meanStderr(accNorm);
  }
  return { metrics, n };
}

/** Run zero-shot evaluation; see ZeroshotOptions. */
export async function runZeroshot(opts: ZeroshotOptions): Promise<ZeroshotResults> {
  const onError = opts.onError ?? 'stop';
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0)) throw new UserError(`--limit must be a positive integer, got ${opts.limit}`);

  const tasks = loadTasks(opts, onError);
  for (const t of tasks) for (const p of t.problems) log(`warning: ${p} (skipped)`);
  const original: Record<string, number> = {};
  for (const t of tasks) {
    original[t.name] = t.docs.length + t.problems.length;
    if (opts.limit !== undefined) t.docs = t.docs.slice(0, opts.limit);
  }

  const header: PartialHeader = { kind: 'header', version: PARTIAL_VERSION, runId: opts.runId ?? null, addBos: opts.addBos ?? false, maxLength: opts.scorer.maxLength ?? null, tokenizer: tokenizerFingerprint(opts.tokenizer) };
  const store = new PartialStore(opts.outDir ? path.join(opts.outDir, PARTIAL_FILE) : null, header, log);

  const out: ZeroshotResults = {
    results: {},
    versions: {},
    'n-samples': {},
    config: { model: opts.runId ?? null, num_fewshot: 0, limit: opts.limit ?? null, add_bos_token: opts.addBos ?? false, max_length: opts.scorer.maxLength ?? null, target_delimiter: ' ', acc_norm_length: 'characters' },
    paper: { metrics: {}, mean: null },
    problems: [],
  };
  for (const task of tasks) {
    await scoreTask(task, opts, store, onError, log);
    const { metrics, n } = aggregate(task, store);
    out.results[task.name] = metrics;
    out.versions[task.name] = 1;
    out['n-samples'][task.name] = { original: original[task.name]!, effective: n };
    out.paper.metrics[task.name] = task.paperMetric;
    out.problems.push(...task.problems);
  }
  const paperValues = tasks.map((t) => out.results[t.name]![t.paperMetric]).filter((v): v is number => v !== undefined && Number.isFinite(v));
  out.paper.mean = paperValues.length > 0 ? mean(paperValues) : null;

  if (opts.outDir) fs.writeFileSync(path.join(opts.outDir, RESULTS_FILE), JSON.stringify(out, null, 2) + '\n');
  return out;
}
