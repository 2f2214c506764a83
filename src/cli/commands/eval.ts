import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../../io/model-folder.js';
import { guardOutput } from '../../io/output-guard.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { LlamaRunner } from '../../model/llama.js';
import { perplexity, pplWindows, readLines, type BosMode } from '../../eval/ppl.js';
import { EngineScorer } from '../../eval/loglikelihood.js';
import { runZeroshot, formatZeroshotTable, DEFAULT_TASKS } from '../../eval/zeroshot/index.js';
import { modelHistory } from '../../eval/model-label.js';
import { sharedDir } from '../../util/shared.js';
import { progressCallback } from '../../util/progress.js';
import { UserError } from '../../util/errors.js';
import { int, oneOf, printJson } from '../options.js';
import { engineOptions, openLlamaCpp, type EngineOpts } from '../engine-options.js';
import { LlamaCppEngine } from '../../llamacpp/engine.js';
import { inspectModel } from '../../io/model-folder.js';
import { forwardMemory, zeroshotMemory } from '../../model/memory.js';
import { CONTEXT_BATCH_TOKENS } from '../../eval/loglikelihood.js';
import { preflight, totalBytes, type MemoryEstimate } from '../../util/memory.js';
import type { LlamaConfig } from '../../io/config.js';

/** The model as the chosen engine runs it. */
type Engine = LlamaRunner | LlamaCppEngine;

/**
 * The model as the chosen engine runs it; for ours, the memory preflight first: the largest of
 * the stages' estimates (perplexity windows, zero-shot batches), before any weight is read.
 */
async function openEngine(o: EngineOpts & { model: string }, label: string, stages: (c: LlamaConfig, w: number) => MemoryEstimate[]): Promise<Engine> {
  if (o.engine === 'llama.cpp') return openLlamaCpp(o.model, o, 'f32');
  const shape = inspectModel(o.model);
  preflight(label, stages(shape.config, shape.weightBytes).reduce((a, e) => (totalBytes(e) > totalBytes(a) ? e : a)));
  return new LlamaRunner(loadModel(o.model));
}

const pplMemory = (o: PplOpts, c: LlamaConfig, w: number) => forwardMemory(c, w, { B: o.batchSize, T: o.seqLen });
const zsMemory = (c: LlamaConfig, w: number) => zeroshotMemory(c, w, CONTEXT_BATCH_TOKENS);

async function closeEngine(e: Engine): Promise<void> {
  if (e instanceof LlamaCppEngine) await e.dispose();
}

/** The paper's perplexity sets, read from the shared data folder unless given. */
const PPL_SETS: Record<string, string> = {
  wikitext2: 'data/eval/wikitext2/wiki.test.raw',
  ptb: 'data/eval/ptb/ptb.test.txt',
};

interface PplOpts extends EngineOpts { model: string; datasets: string; text?: string[]; seqLen: number; bos: BosMode; batchSize: number; maxWindows?: number }
interface ZsOpts extends EngineOpts { model: string; tasks?: string; taskFile?: string[]; limit?: number; onError: 'skip' | 'stop'; addBos?: boolean }

function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

async function evalPpl(o: PplOpts, run: Engine): Promise<Record<string, unknown>[]> {
  const tok = loadTokenizer(o.model);
  const sets: [string, string][] = [];
  for (const name of o.datasets.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (name === 'none') continue;
    const rel = PPL_SETS[name];
    if (!rel) throw new UserError(`unknown perplexity dataset '${name}' (known: ${Object.keys(PPL_SETS).join(', ')}; use --text FILE for others)`);
    const file = sharedDir(rel);
    if (!fs.existsSync(file)) throw new UserError(`${name} not found at ${file} (set SHORTENED_SHARED or pass --text FILE)`);
    sets.push([name, file]);
  }
  for (const f of o.text ?? []) sets.push([path.basename(f), f]);
  const hist = modelHistory(o.model);
  const rows: Record<string, unknown>[] = [];
  for (const [name, file] of sets) {
    const all = pplWindows(readLines(file), tok, o.seqLen, o.bos);
    const windows = o.maxWindows !== undefined ? all.slice(0, o.maxWindows) : all;
    const r = await perplexity(run, windows, o.batchSize, progressCallback(`ppl ${name}`, 'windows'));
    rows.push({
      kind: 'ppl', model: path.resolve(o.model), label: hist.label, removedBlocks: hist.removedBlocks, criterion: hist.criterion,
      retraining: hist.retraining, dataset: name, ...(windows.length < all.length ? { windows: windows.length, of_windows: all.length } : {}), ppl: r.ppl, nll: r.nll, tokens: r.tokens, seqLen: o.seqLen, bos: o.bos, engine: o.engine,
    });
  }
  return rows;
}

async function evalZeroshot(o: ZsOpts, run: Engine, outDir: string | undefined): Promise<Record<string, unknown>> {
  const tok = loadTokenizer(o.model);
  const res = await runZeroshot({
    tokenizer: tok, scorer: run instanceof LlamaCppEngine ? run : new EngineScorer(run),
    tasks: o.tasks ? o.tasks.split(',').map((s) => s.trim()).filter(Boolean) : (o.taskFile?.length ? [] : [...DEFAULT_TASKS]),
    taskFiles: o.taskFile, limit: o.limit, outDir, onError: o.onError, addBos: o.addBos,
    // partial results of one engine are never resumed with another
    runId: path.resolve(o.model) + (o.engine === 'llama.cpp' ? `#llama.cpp-${o.ggufDtype ?? 'f32'}` : ''),
  });
  return { kind: 'zeroshot', model: path.resolve(o.model), label: modelHistory(o.model).label, engine: o.engine, ...res };
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function pplOptions(cmd: Command, defaultSets: string): Command {
  return cmd
    .option('--datasets <list>', 'perplexity sets: wikitext2, ptb (from the shared data) or none', defaultSets)
    .option('--text <file>', 'also score this text file (repeatable)', collect)
    .option('--seq-len <n>', 'perplexity window length', int('--seq-len'), 128)
    .option('--bos <mode>', 'first | every | none', oneOf('--bos', ['first', 'every', 'none'] as const), 'first')
    .option('--batch-size <n>', 'windows per forward', int('--batch-size'), 8)
    .option('--max-windows <n>', 'score only the first N windows of each set (a quick check; the paper\'s numbers use all)', int('--max-windows'));
}

function zsOptions(cmd: Command): Command {
  return cmd
    .option('--tasks <list>', `zero-shot tasks (default: ${DEFAULT_TASKS.join(',')})`)
    .option('--task-file <file>', 'a {query, choices, gold} jsonl run as a multiple-choice task (repeatable)', collect)
    .option('--limit <n>', 'only the first N examples of each task', int('--limit'))
    .option('--on-error <mode>', 'malformed rows: skip (report and go on) or stop', oneOf('--on-error', ['skip', 'stop'] as const), 'stop')
    .option('--add-bos', 'prepend BOS to every context (lm-eval add_bos_token=True)');
}

function pplTable(rows: Record<string, unknown>[]): string {
  return rows.map((r) => `${String(r['dataset']).padEnd(12)} ppl ${Number(r['ppl']).toFixed(3).padStart(10)}   (${r['tokens']} tokens${r['windows'] !== undefined ? `, first ${r['windows']} of ${r['of_windows']} windows` : ''})`).join('\n');
}

export function registerEval(program: Command): void {
  const ev = program.command('eval').description('evaluate a model: perplexity and zero-shot accuracy');

  engineOptions(pplOptions(zsOptions(ev.command('all', { isDefault: true })
    .description('a row of the paper\'s tables: WikiText-2 and PTB perplexity, then the seven zero-shot tasks')
    .requiredOption('--model <dir>', 'Hugging Face model folder')), 'wikitext2,ptb')
    .option('--no-zeroshot', 'perplexity only')
    .option('--json', 'print the results as JSON')
    .option('--out <dir>', 'write ppl.json, zeroshot results.json (resumable) there'), 'f32')
    .action(async (o: PplOpts & ZsOpts & { zeroshot: boolean; json?: boolean; out?: string }) => {
      if (o.out) guardOutput(o.out, [o.model, ...(o.text ?? []), ...(o.taskFile ?? [])]);
      const run = await openEngine(o, 'eval', (c, w) => [pplMemory(o, c, w), ...(o.zeroshot ? [zsMemory(c, w)] : [])]);
      const ppl = await evalPpl(o, run);
      if (o.out) ppl.forEach((r) => writeJsonAtomic(path.join(o.out!, `ppl-${String(r['dataset'])}.json`), r));
      const zs = o.zeroshot ? await evalZeroshot(o, run, o.out) : null;
      await closeEngine(run);
      if (o.out && zs) writeJsonAtomic(path.join(o.out, 'zeroshot.json'), zs);
      if (o.json) printJson({ ppl, zeroshot: zs });
      else {
        process.stdout.write(pplTable(ppl) + '\n');
        if (zs) process.stdout.write(formatZeroshotTable(zs as unknown as Parameters<typeof formatZeroshotTable>[0]) + '\n');
      }
    });

  engineOptions(pplOptions(ev.command('ppl').description('WikiText-2 / PTB perplexity with the Llama-2-style protocol')
    .requiredOption('--model <dir>', 'Hugging Face model folder'), 'wikitext2,ptb')
    .option('--json', 'print the results as JSON')
    .option('--out <dir>', 'write ppl-<dataset>.json there'), 'f32')
    .action(async (o: PplOpts & { json?: boolean; out?: string }) => {
      if (o.out) guardOutput(o.out, [o.model, ...(o.text ?? [])]);
      const run = await openEngine(o, 'eval ppl', (c, w) => [pplMemory(o, c, w)]);
      const rows = await evalPpl(o, run);
      await closeEngine(run);
      if (o.out) rows.forEach((r) => writeJsonAtomic(path.join(o.out!, `ppl-${String(r['dataset'])}.json`), r));
      if (o.json) printJson(rows);
      else process.stdout.write(pplTable(rows) + '\n');
    });

  engineOptions(zsOptions(ev.command('zeroshot').description('zero-shot accuracy on the paper\'s seven commonsense tasks (lm-evaluation-harness scoring)')
    .requiredOption('--model <dir>', 'Hugging Face model folder'))
    .option('--json', 'print results as JSON (lm-evaluation-harness layout)')
    .option('--out <dir>', 'folder for resumable partial results and results.json'), 'f32')
    .action(async (o: ZsOpts & { json?: boolean; out?: string }) => {
      if (o.out) guardOutput(o.out, [o.model, ...(o.taskFile ?? [])]);
      const run = await openEngine(o, 'eval zeroshot', (c, w) => [zsMemory(c, w)]);
      const zs = await evalZeroshot(o, run, o.out);
      await closeEngine(run);
      if (o.out) writeJsonAtomic(path.join(o.out, 'zeroshot.json'), zs);
      if (o.json) printJson(zs);
      else process.stdout.write(formatZeroshotTable(zs as unknown as Parameters<typeof formatZeroshotTable>[0]) + '\n');
    });
}
