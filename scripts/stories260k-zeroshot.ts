/**
 * The paper's zero-shot table at our scale: the real stories260K model and stories260K with
 * blocks removed by the PPL criterion, each scored on the FULL seven tasks (no --limit), side by
 * side with chance level. Results (lm-eval layout) and partial results live in one folder per
 * model, so an interrupted run resumes where it stopped.
 *   npm run build && node dist/scripts/stories260k-zeroshot.js [--remove 2] [--limit N]
 * Writes runs/stories260k-zeroshot/{table.md,table.json,<model>/results.json}.
 */
import fs from 'node:fs';
import path from 'node:path';
import { importLlama2c } from '../src/io/llama2c.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { EngineScorer } from '../src/eval/loglikelihood.js';
import { runZeroshot, loadBuiltinTask, DEFAULT_TASKS, PARTIAL_FILE, type ZeroshotResults } from '../src/eval/zeroshot/index.js';
import { sharedDir, projectDir, hasShared } from '../src/util/shared.js';
import { argNumber, argString } from '../src/util/args.js';

if (!hasShared()) { console.error('needs ../shared (stories260K, TinyStories text, zero-shot sets)'); process.exit(1); }
const removals = argString('remove', '2').split(',').map(Number);
const limit = argNumber('limit', 0) || undefined;
const out = projectDir('runs', 'stories260k-zeroshot');
fs.mkdirSync(out, { recursive: true });

const base = path.join(out, 'stories260K');
if (!fs.existsSync(path.join(base, 'config.json'))) {
  importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: base });
}
// calibration text for the PPL criterion: TinyStories paragraphs (as in stories260k-prune-table)
const calibFile = path.join(out, 'calib.txt');
if (!fs.existsSync(calibFile)) {
  const paras = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8').split(/\n\s*\n/).map((p) => p.replace(/\n/g, ' ').trim()).filter(Boolean);
  fs.writeFileSync(calibFile, paras.slice(0, Math.floor(paras.length * 0.9)).join('\n') + '\n');
}

const models: { label: string; dir: string; removed: number[] }[] = [{ label: 'stories260K', dir: base, removed: [] }];
for (const n of removals) {
  const dir = path.join(out, `ppl-${n}`);
  if (!fs.existsSync(path.join(dir, 'pruning.json'))) {
    await pruneModelDir(base, dir, 'ppl', { data: calibFile, n: 10, seqLen: 128, seed: 1234 }, { remove: n, protect: [0, 0] });
  }
  const removed = (JSON.parse(fs.readFileSync(path.join(dir, 'pruning.json'), 'utf8')) as { removed_blocks: number[] }).removed_blocks;
  models.push({ label: `PPL, ${n} of 5 blocks removed`, dir, removed });
}

interface Row { label: string; removed: number[]; seconds: number | null; examples: number; res: ZeroshotResults }
const rows: Row[] = [];
for (const m of models) {
  console.log(`\n== ${m.label} (${m.dir})`);
  // scoring time accumulates over interrupted sessions in timing.json (the partial results resume)
  const timingFile = path.join(m.dir, 'zeroshot', 'timing.json');
  const fresh = !fs.existsSync(path.join(m.dir, 'zeroshot', 'zeroshot-partial.jsonl'));
  const prior = fs.existsSync(timingFile) ? (JSON.parse(fs.readFileSync(timingFile, 'utf8')) as { seconds: number | null }).seconds : fresh ? 0 : null;
  const t0 = performance.now();
  const res = await runZeroshot({
    tokenizer: loadTokenizer(m.dir), scorer: new EngineScorer(new LlamaRunner(loadModel(m.dir))),
    tasks: [...DEFAULT_TASKS], limit, outDir: path.join(m.dir, 'zeroshot'), runId: path.resolve(m.dir),
  });
  const examples = Object.values(res['n-samples']).reduce((s, n) => s + n.effective, 0);
  const seconds = prior === null ? null : prior + (performance.now() - t0) / 1000;
  fs.writeFileSync(timingFile, JSON.stringify({ seconds }) + '\n');
  rows.push({ label: m.label, removed: m.removed, seconds, examples, res });
}

// chance: the expected accuracy of a uniform guess, averaged over each task's documents;
// majority: the accuracy of always answering the most common gold position
const chance: Record<string, number> = {}, majority: Record<string, number> = {};
for (const t of DEFAULT_TASKS) {
  const task = loadBuiltinTask(t, sharedDir('data/eval/zeroshot'), 'stop');
  const docs = task.docs.slice(0, limit);
  chance[task.name] = docs.reduce((s, d) => s + 1 / d.choices.length, 0) / Math.max(1, docs.length);
  const counts = new Map<number, number>();
  for (const d of docs) counts.set(d.gold, (counts.get(d.gold) ?? 0) + 1);
  majority[task.name] = Math.max(...counts.values()) / Math.max(1, docs.length);
}

/** Per task, the share of documents on which a model picks its most frequent answer position (by acc). */
function answerBias(dir: string): Record<string, { position: number; share: number }> {
  const byTask = new Map<string, Map<number, number>>();
  for (const line of fs.readFileSync(path.join(dir, 'zeroshot', PARTIAL_FILE), 'utf8').split('\n')) {
    if (!line.startsWith('{"task"')) continue;
    const r = JSON.parse(line) as { task: string; lls: (number | null)[] };
    const ll = r.lls.map((x) => x ?? -Infinity);
    const pick = ll.indexOf(Math.max(...ll));
    const m = byTask.get(r.task) ?? new Map<number, number>();
    m.set(pick, (m.get(pick) ?? 0) + 1);
    byTask.set(r.task, m);
  }
  const out: Record<string, { position: number; share: number }> = {};
  for (const [t, m] of byTask) {
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    const [position, n] = [...m.entries()].sort((a, b) => b[1] - a[1])[0]!;
    out[t] = { position, share: n / total };
  }
  return out;
}
const bias = models.map((m) => answerBias(m.dir));

const first = rows[0]!.res;
const tasks = Object.keys(first.results);
const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : (100 * x).toFixed(2));
const metricOf = (r: ZeroshotResults, t: string) => r.paper.metrics[t] ?? 'acc';
const value = (r: ZeroshotResults, t: string) => { const m = r.results[t]!; return metricOf(r, t) === 'acc_norm' ? m.acc_norm : m.acc; };
const stderr = (r: ZeroshotResults, t: string) => { const m = r.results[t]!; return metricOf(r, t) === 'acc_norm' ? m.acc_norm_stderr : m.acc_stderr; };
const chanceMean = tasks.reduce((s, t) => s + chance[t]!, 0) / tasks.length;
const md = [
  `# stories260K zero-shot accuracy, unpruned and depth-pruned`,
  ``,
  `Full sets from \`../shared/data/eval/zeroshot\`${limit ? ` (first ${limit} per task)` : ''}, zero-shot, scored as lm-evaluation-harness scores them`,
  `(log-likelihood of each choice given the prompt; acc_norm divides it by the choice's length in characters, Python's len, as the harness does;\ncontexts longer than the model's 512 positions are cut from the left, as the harness cuts them).`,
  `Metric per task as in the paper's tables; percent ± standard error. Pruning: PPL criterion, calibration 10 × 128 TinyStories tokens.`,
  `These 260K-parameter models were trained on children's stories only: they sit at chance, as expected; the point is that`,
  `every number is computed on the whole set.`,
  ``,
  `| task | metric | N | chance | majority | ${rows.map((r) => `${r.label}${r.removed.length ? ` (blocks ${r.removed.join(', ')})` : ''}`).join(' | ')} |`,
  `|---|---|---|---|---|${rows.map(() => '---').join('|')}|`,
  ...tasks.map((t) => `| ${t} | ${metricOf(first, t)} | ${first['n-samples'][t]!.effective} | ${pct(chance[t])} | ${pct(majority[t])} | ${rows.map((r) => `${pct(value(r.res, t))} ± ${pct(stderr(r.res, t))}`).join(' | ')} |`),
  `| **mean** | | | ${pct(chanceMean)} | ${pct(tasks.reduce((s, t) => s + majority[t]!, 0) / tasks.length)} | ${rows.map((r) => `**${pct(r.res.paper.mean)}**`).join(' | ')} |`,
  `| scoring time | | | | | ${rows.map((r) => (r.seconds === null ? 'n/a (resumed from partial results of untimed runs)' : `${r.seconds.toFixed(0)} s (${(r.examples / r.seconds).toFixed(1)} examples/s)`)).join(' | ')} |`,
  ``,
  `Chance: a uniform guess. Majority: always answering the most common gold position (BoolQ: "yes").`,
  `Answer bias (share of documents on which the model picks its most frequent answer position, by acc; choice numbers from 0):`,
  ``,
  `| task | ${rows.map((r) => r.label).join(' | ')} |`,
  `|---|${rows.map(() => '---').join('|')}|`,
  ...tasks.map((t) => `| ${t} | ${bias.map((b) => (b[t] ? `choice ${b[t]!.position}: ${pct(b[t]!.share)}%` : 'n/a')).join(' | ')} |`),
  ``,
  `A model that picks the same position on (nearly) every document scores the share of that gold position, not skill:`,
  `read a change in such a task's accuracy as a change of bias. Only differences of several standard errors mean anything.`,
  ``,
].join('\n');
fs.writeFileSync(path.join(out, 'table.md'), md);
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify({ chance, majority, bias, rows }, null, 2) + '\n');
console.log('\n' + md);
