/**
 * runZeroshot end to end with a character tokenizer and a deterministic fake scorer:
 * acc / acc_norm / stderr pinned by hand, resumable partial results, malformed rows, the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TextTokenizer } from '../src/io/tokenizer.js';
import type { LoglikelihoodRequest, LoglikelihoodResult, LoglikelihoodScorer } from '../src/eval/loglikelihood-types.js';
import { UserError } from '../src/util/errors.js';
import { runZeroshot, PARTIAL_FILE, RESULTS_FILE, type ZeroshotOptions } from '../src/eval/zeroshot/run.js';
import { formatZeroshotTable } from '../src/eval/zeroshot/table.js';
import { choiceLength, meanStderr, scoreDoc } from '../src/eval/zeroshot/metrics.js';

/** One token per code point (id = code point), BOS 1, EOS 2: encode(a + b) = encode(a) ++ encode(b). */
const charTokenizer: TextTokenizer = {
  encode: (text, opts) => [...(opts?.addSpecialTokens ? [1] : []), ...[...text].map((c) => c.codePointAt(0)!)],
  decode: (ids) => String.fromCodePoint(...ids),
  vocabSize: 0x110000,
  bosId: 1,
  eosId: 2,
};

/** logprob = −(sum of continuation ids) / 100, so for " x" it is −(32 + code(x)) / 100. */
class FakeScorer implements LoglikelihoodScorer {
  calls = 0;
  requests: LoglikelihoodRequest[] = [];
  constructor(private readonly failOnCall = 0) {}
  async score(requests: LoglikelihoodRequest[], onProgress?: (done: number, total: number) => void): Promise<LoglikelihoodResult[]> {
    this.calls++;
    if (this.calls === this.failOnCall) throw new Error('simulated crash');
    this.requests.push(...requests);
    onProgress?.(requests.length, requests.length);
    return requests.map((r) => ({ logprob: -r.continuation.reduce((a, b) => a + b, 0) / 100, isGreedy: r.continuation.length === 2 }));
  }
}

// lp(" a") = −1.29, lp(" b") = −1.30, lp(" bb") = −2.28 (−1.14 per character)
const DOCS = [
  { query: 'Q1', choices: ['a', 'bb'], gold: 0 }, // acc: a wins → 1;  acc_norm: bb wins → 0
  { query: 'Q2', choices: ['bb', 'a'], gold: 0 }, // acc: a wins → 0;  acc_norm: bb wins → 1
  { query: 'Q3', choices: ['a', 'b'], gold: 1 }, //  acc: a wins → 0;  acc_norm: a wins → 0
  { query: 'Q4', choices: ['b', 'a'], gold: 1 }, //  acc: a wins → 1;  acc_norm: a wins → 1
];
// acc = acc_norm = 0.5; sample std = sqrt(4 · 0.25 / 3); stderr = that / sqrt(4)
const STDERR = Math.sqrt(1 / 3) / 2;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'zeroshot-run-'));
}

function taskFile(dir: string, name = 'toy.jsonl', rows: (object | string)[] = DOCS): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return file;
}

function opts(scorer: LoglikelihoodScorer, extra: Partial<ZeroshotOptions>): ZeroshotOptions {
  return { tokenizer: charTokenizer, scorer, progress: false, log: () => {}, ...extra };
}

test('metrics: acc by log-likelihood, acc_norm by log-likelihood per character, first index on ties', () => {
  assert.deepEqual(scoreDoc([-1.29, -2.28], ['a', 'bb'], 0), { acc: 1, acc_norm: 0, pred: 0, predNorm: 1 });
  assert.deepEqual(scoreDoc([-1, -1], ['x', 'y'], 1), { acc: 0, acc_norm: 0, pred: 0, predNorm: 0 });
  // Python's len(): code points, not UTF-16 units and not bytes
  assert.equal(choiceLength('café'), 4);
  assert.equal(choiceLength('😀'), 1);
  assert.equal(meanStderr([1]), null);
  assert.ok(Math.abs(meanStderr([1, 0, 0, 1])! - STDERR) < 1e-15);
});

test('runZeroshot on a generic task file: requests, metrics and the lm-eval results layout', async () => {
  const scorer = new FakeScorer();
  const out = tmpDir();
  const res = await runZeroshot(opts(scorer, { taskFiles: [taskFile(tmpDir())], outDir: out }));
  // requests: context "Q1" as ids, continuation " a" → [32, 97]
  assert.deepEqual(scorer.requests[0], { context: [81, 49], continuation: [32, 97] });
  assert.equal(scorer.requests.length, 8);
  assert.deepEqual(Object.keys(res.results), ['toy']);
  const m = res.results['toy']!;
  assert.equal(m.acc, 0.5);
  assert.equal(m.acc_norm, 0.5);
  assert.ok(Math.abs(m.acc_stderr! - STDERR) < 1e-12);
  assert.ok(Math.abs(m.acc_norm_stderr! - STDERR) < 1e-12);
  assert.deepEqual(res['n-samples'], { toy: { original: 4, effective: 4 } });
  assert.equal(res.paper.metrics['toy'], 'acc');
  assert.equal(res.paper.mean, 0.5);
  assert.equal(res.config.num_fewshot, 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, RESULTS_FILE), 'utf8')), JSON.parse(JSON.stringify(res)));
});

test('addBos puts BOS before every context; limit takes the first N documents', async () => {
  const scorer = new FakeScorer();
  const res = await runZeroshot(opts(scorer, { taskFiles: [taskFile(tmpDir())], addBos: true, limit: 2 }));
  assert.deepEqual(scorer.requests[0], { context: [1, 81, 49], continuation: [32, 97] });
  assert.equal(scorer.requests.length, 4);
  assert.deepEqual(res['n-samples']['toy'], { original: 4, effective: 2 });
  assert.equal(res.results['toy']!.acc, 0.5); // docs 1 and 2: acc 1, 0
  assert.equal(res.config.limit, 2);
});

test('resume: a crashed run keeps its finished documents, the rerun scores only the rest', async () => {
  const data = taskFile(tmpDir());
  const clean = await runZeroshot(opts(new FakeScorer(), { taskFiles: [data] }));

  const out = tmpDir();
  const crashing = new FakeScorer(3); // chunks of one document: the third call dies
  await assert.rejects(runZeroshot(opts(crashing, { taskFiles: [data], outDir: out, chunkDocs: 1, runId: 'model-a' })), /simulated crash/);
  const partial = fs.readFileSync(path.join(out, PARTIAL_FILE), 'utf8').trim().split('\n');
  assert.equal(partial.length, 1 + 2); // header + two documents

  const rerun = new FakeScorer();
  const resumed = await runZeroshot(opts(rerun, { taskFiles: [data], outDir: out, chunkDocs: 1, runId: 'model-a' }));
  assert.deepEqual(rerun.requests.map((r) => r.context), [[81, 51], [81, 51], [81, 52], [81, 52]]); // Q3, Q4 only
  assert.deepEqual(resumed.results, clean.results);

  // once complete, a rerun scores nothing
  const third = new FakeScorer();
  assert.deepEqual((await runZeroshot(opts(third, { taskFiles: [data], outDir: out, runId: 'model-a' }))).results, clean.results);
  assert.equal(third.calls, 0);
});

test('resume: a torn last line is re-scored, an edited document is re-scored, another model is refused', async () => {
  const dir = tmpDir();
  const data = taskFile(dir);
  const out = tmpDir();
  await runZeroshot(opts(new FakeScorer(), { taskFiles: [data], outDir: out, runId: 'model-a' }));
  const file = path.join(out, PARTIAL_FILE);
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length - 20)); // killed mid-write

  const warnings: string[] = [];
  const rerun = new FakeScorer();
  const res = await runZeroshot({ ...opts(rerun, { taskFiles: [data], outDir: out, runId: 'model-a' }), log: (l) => warnings.push(l) });
  assert.equal(rerun.requests.length, 2); // only the torn document
  assert.match(warnings.join('\n'), /ignored 1 unreadable line/);
  assert.equal(res.results['toy']!.acc, 0.5);

  // the same file with one document's choices changed: that document alone is scored again
  taskFile(dir, 'toy.jsonl', [DOCS[0]!, { ...DOCS[1]!, choices: ['a', 'bb'] }, DOCS[2]!, DOCS[3]!]);
  const edited = new FakeScorer();
  await runZeroshot(opts(edited, { taskFiles: [data], outDir: out, runId: 'model-a' }));
  assert.deepEqual(edited.requests.map((r) => r.context), [[81, 50], [81, 50]]);

  await assert.rejects(
    runZeroshot(opts(new FakeScorer(), { taskFiles: [data], outDir: out, runId: 'model-b' })),
    (e: unknown) => e instanceof UserError && /different run/.test(e.message),
  );
  await assert.rejects(
    runZeroshot(opts(new FakeScorer(), { taskFiles: [data], outDir: out, runId: 'model-a', addBos: true })),
    (e: unknown) => e instanceof UserError && /addBos/.test(e.message),
  );
});

test('malformed rows: "skip" warns with file:line and scores the rest; "stop" fails before scoring', async () => {
  const dir = tmpDir();
  const data = taskFile(dir, 'messy.jsonl', [DOCS[0]!, '{not json', { query: 'Q', choices: ['a'], gold: 3 }, { query: 'Q', choices: [], gold: 0 }, DOCS[3]!]);
  const warnings: string[] = [];
  const scorer = new FakeScorer();
  const res = await runZeroshot({ ...opts(scorer, { taskFiles: [data], onError: 'skip' }), log: (l) => warnings.push(l) });
  assert.deepEqual(res['n-samples']['messy'], { original: 5, effective: 2 });
  assert.equal(res.results['messy']!.acc, 1);
  assert.deepEqual(res.problems.map((p) => p.replace(/ \(.*\)$/, '')), [`${data}:2: invalid JSON`, `${data}:3: gold 3 is out of range for 1 choice`, `${data}:4: field "choices" is empty`]);
  assert.equal(warnings.length, 3);
  assert.ok(warnings.every((w) => w.startsWith(`warning: ${data}:`) && w.endsWith('(skipped)')));

  const stopped = new FakeScorer();
  await assert.rejects(
    runZeroshot(opts(stopped, { taskFiles: [data], onError: 'stop' })),
    (e: unknown) => e instanceof UserError && e.message.startsWith(`${data}:2: invalid JSON`),
  );
  assert.equal(stopped.calls, 0);
});

test('bad options are user errors', async () => {
  const data = taskFile(tmpDir());
  await assert.rejects(runZeroshot(opts(new FakeScorer(), { taskFiles: [data], limit: 0 })), UserError);
  await assert.rejects(runZeroshot(opts(new FakeScorer(), { taskFiles: [data, data] })), (e: unknown) => e instanceof UserError && /given twice/.test(e.message));
  await assert.rejects(runZeroshot(opts(new FakeScorer(), { tasks: ['nope'] })), (e: unknown) => e instanceof UserError && /unknown task/.test(e.message));
});

test('built-in tasks from a data folder, and the paper table with its mean', async () => {
  const dir = tmpDir();
  taskFile(dir, 'boolq.jsonl', [{ query: 'Passage: P.\nQuestion: q?', choices: ['no', 'yes'], gold: 0 }]); // " no" beats " yes" → acc 1
  taskFile(dir, 'arc_challenge.jsonl', [
    { query: 'Question: q1', choices: ['a', 'bb'], gold: 1 }, // acc_norm 1
    { query: 'Question: q2', choices: ['a', 'bb'], gold: 0 }, // acc_norm 0
  ]);
  const res = await runZeroshot(opts(new FakeScorer(), { tasks: ['boolq', 'arc_challenge'], dataDir: dir }));
  assert.deepEqual(Object.keys(res.results), ['boolq', 'arc_challenge']);
  assert.deepEqual(res.results['boolq'], { acc: 1, acc_stderr: null }); // BoolQ reports acc only, as the harness does
  assert.equal(res.results['arc_challenge']!.acc_norm, 0.5);
  assert.deepEqual(res.paper.metrics, { boolq: 'acc', arc_challenge: 'acc_norm' });
  assert.equal(res.paper.mean, 0.75);

  const table = formatZeroshotTable(res);
  assert.equal(table, [
    'Task           Metric     Value     Stderr  N',
    '-------------  --------  ------  -  ------  -',
    'boolq          acc       100.00  ±     n/a  1',
    'arc_challenge  acc_norm   50.00  ±   50.00  2',
    '-------------  --------  ------  -  ------  -',
    'Mean                      75.00',
    '',
  ].join('\n'));
});
