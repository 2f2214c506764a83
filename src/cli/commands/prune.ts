import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { scoreModelDir, scoreJson, pruneModelDir, type CalibSource } from '../../prune/pipeline.js';
import { pruneIteratively } from '../../prune/iterative.js';
import { roundRetrainer, retrainInfo, RETRAIN_METHODS, type RetrainMethod, type RoundRetrainOptions } from '../../train/retrainer.js';
import { checkCriterion, CRITERIA } from '../../prune/score.js';
import type { Selection } from '../../prune/select.js';
import { UserError } from '../../util/errors.js';
import { guardOutput } from '../../io/output-guard.js';
import { int, float, intList, oneOf, printJson } from '../options.js';

interface CalibOpts { data?: string; calibIds?: string; n: number; seqLen: number; seed: number; recompute?: boolean }
interface IterOpts { iterative?: boolean; retrain: RetrainMethod; retrainSteps?: number; perRound: number; retrainData?: string[]; teacher?: string; retrainLr?: number; retrainBatchSize?: number; retrainSeqLen?: number }
interface SelOpts { remove?: number; ratio?: number; params?: boolean; blocks?: number[]; plus: boolean; protect?: number[] }

function withCalibration(cmd: Command): Command {
  return cmd
    .option('--data <file>', 'calibration text: one document a line, or jsonl {"text"} (default: the embedded default corpus, train split)')
    .option('--calib-ids <file>', 'calibration token rows {"input_ids": [[...]]}, used as they are')
    .option('--n <n>', 'calibration samples', int('--n'), 10)
    .option('--seq-len <n>', 'tokens per calibration sample', int('--seq-len'), 128)
    .option('--seed <n>', 'sampling seed', int('--seed'), 1234)
    .option('--recompute', 'taylor: recompute activations in the backward (less memory, one more forward; default: only when keeping them does not fit)');
}

function withSelection(cmd: Command): Command {
  return cmd
    .option('--remove <n>', 'number of blocks to remove', int('--remove'))
    .option('--ratio <r>', 'fraction of blocks (or, with --params, of parameters) to remove', float('--ratio'))
    .option('--params', '--ratio counts parameters rather than blocks')
    .option('--blocks <list>', 'remove exactly these blocks (comma-separated indices)', intList('--blocks'))
    .option('--no-plus', 'turn off the "+" heuristic (which protects the first 4 and last 2 blocks)')
    .option('--protect <first,last>', 'protect this many first and last blocks', intList('--protect'));
}

function calibSource(o: CalibOpts): CalibSource {
  if (o.data && o.calibIds) throw new UserError('give at most one of --data and --calib-ids');
  return { data: o.data, ids: o.calibIds, n: o.n, seqLen: o.seqLen, seed: o.seed, ...(o.recompute ? { recompute: true } : {}) };
}

function selection(o: SelOpts): Selection {
  const given = [o.remove !== undefined, o.ratio !== undefined, o.blocks !== undefined].filter(Boolean).length;
  if (given > 1) throw new UserError('give only one of --remove, --ratio and --blocks');
  if (o.protect && o.protect.length !== 2) throw new UserError('--protect takes two numbers: first,last');
  const protect: [number, number] = !o.plus ? [0, 0] : o.protect ? [o.protect[0]!, o.protect[1]!] : [4, 2];
  return { remove: o.remove, ratio: o.ratio, params: o.params, blocks: o.blocks, protect };
}

/** A terminal bar chart of per-block scores. */
function scoreTable(scores: number[], order: number[]): string {
  const finite = scores.filter(Number.isFinite);
  const max = Math.max(...finite), min = Math.min(0, ...finite);
  const rank = new Map(order.map((b, i) => [b, i + 1]));
  return scores.map((s, i) => {
    const w = Number.isFinite(s) ? Math.round(((s - min) / (max - min || 1)) * 40) : 0;
    return `block ${String(i).padStart(3)}  ${Number.isFinite(s) ? s.toPrecision(6).padStart(12) : 'kept'.padStart(12)}  ${'#'.repeat(w).padEnd(40)}  removal rank ${rank.get(i)}`;
  }).join('\n');
}

export function registerScore(program: Command): void {
  withSelection(withCalibration(program.command('score')
    .description('score the importance of every block')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--criterion <name>', `one of ${CRITERIA.join(', ')}`)))
    .option('--json', 'print {"criterion", "scores", "order", ...} as JSON')
    .option('--out <dir>', 'write score.json and score.csv there')
    .action(async (o: CalibOpts & SelOpts & { model: string; criterion: string; json?: boolean; out?: string }) => {
      const criterion = checkCriterion(o.criterion);
      if (o.out) guardOutput(o.out, [o.model, o.data, o.calibIds]);
      const r = await scoreModelDir(o.model, criterion, calibSource(o), selection(o));
      const json = scoreJson(o.model, r);
      if (o.out) {
        fs.mkdirSync(o.out, { recursive: true });
        const tmp = path.join(o.out, `.score-${process.pid}.json`);
        fs.writeFileSync(tmp, JSON.stringify(json, null, 2) + '\n');
        fs.renameSync(tmp, path.join(o.out, `score-${criterion}.json`));
        const csv = ['block,score,removal_rank', ...r.result.scores.map((s, i) => `${i},${s},${r.result.order.indexOf(i) + 1}`)].join('\n') + '\n';
        fs.writeFileSync(path.join(o.out, `score-${criterion}.csv`), csv);
      }
      if (o.json) printJson(json);
      else process.stdout.write(`${criterion} scores (higher = more important), ${r.seconds.toFixed(2)} s\n${scoreTable(r.result.scores, r.result.order)}\nremoval order: ${r.result.order.join(', ')}\n`);
    });
}

export function registerPrune(program: Command): void {
  withSelection(withCalibration(program.command('prune')
    .description('remove the least important blocks in one shot and save the pruned model')
    .requiredOption('--model <dir>', 'Hugging Face model folder (never modified)')
    .option('--criterion <name>', `one of ${CRITERIA.join(', ')}`, 'taylor')))
    .requiredOption('--out <dir>', 'output folder (appears only when complete)')
    .option('--iterative', 'remove blocks a round at a time, retraining briefly and re-scoring between rounds')
    .option('--per-round <k>', 'with --iterative: blocks removed per round', int('--per-round'), 1)
    .option('--retrain <method>', `with --iterative: retraining between rounds (${RETRAIN_METHODS.join(', ')})`, oneOf('--retrain', RETRAIN_METHODS), 'cpt')
    .option('--retrain-steps <n>', 'with --iterative: optimizer steps of each round\'s retraining', int('--retrain-steps'))
    .option('--retrain-data <files...>', 'with --iterative: training text (cpt, kd; default: the embedded default corpus, train split) or LoRA data (lora)')
    .option('--teacher <dir>', 'with --retrain kd: the teacher (default: --model, the unpruned model)')
    .option('--retrain-lr <x>', 'with --iterative: peak learning rate of each round', float('--retrain-lr'))
    .option('--retrain-batch-size <n>', 'with --iterative: rows per optimizer step', int('--retrain-batch-size'))
    .option('--retrain-seq-len <n>', 'with --iterative --retrain cpt|kd: tokens per packed sequence', int('--retrain-seq-len'))
    .option('--force', 'replace an existing output folder')
    .option('--json', 'print the pruning summary as JSON')
    .action(async (o: CalibOpts & SelOpts & IterOpts & { model: string; criterion: string; out: string; force?: boolean; json?: boolean }) => {
      const sel = selection(o);
      if (o.iterative) return pruneIterativeCli(o, sel);
      const r = await pruneModelDir(o.model, o.out, sel.blocks ? null : checkCriterion(o.criterion), calibSource(o), sel, o.force);
      const summary = { out: o.out, removed_blocks: r.removed, kept_blocks: r.kept, params_before: r.paramsBefore, params_after: r.paramsAfter };
      if (o.json) printJson(summary);
      else process.stdout.write(`removed blocks ${r.removed.join(', ')} -> ${r.kept.length} blocks, ${r.paramsAfter.toLocaleString('en-US')} parameters (${(100 * (1 - r.paramsAfter / r.paramsBefore)).toFixed(1)}% fewer); wrote ${o.out}\n`);
    });
}

async function pruneIterativeCli(o: CalibOpts & IterOpts & { model: string; criterion: string; out: string; force?: boolean; json?: boolean }, sel: Selection): Promise<void> {
  if (o.retrainSteps === undefined) throw new UserError('--iterative needs --retrain-steps N (optimizer steps of retraining per round)');
  const train = { ...(o.retrainLr !== undefined ? { lr: o.retrainLr } : {}), ...(o.retrainBatchSize !== undefined ? { batchSize: o.retrainBatchSize } : {}) };
  const rt: RoundRetrainOptions = {
    method: o.retrain, steps: o.retrainSteps, data: o.retrainData, teacher: o.retrain === 'kd' ? o.teacher ?? o.model : undefined,
    cpt: { ...train, ...(o.retrainSeqLen !== undefined ? { seqLen: o.retrainSeqLen } : {}) }, lora: train,
  };
  const r = await pruneIteratively({
    model: o.model, out: o.out, criterion: checkCriterion(o.criterion), calib: calibSource(o), sel, perRound: o.perRound, force: o.force,
    retrain: roundRetrainer(rt), retrainInfo: retrainInfo(rt), retrainInputs: [...(o.retrainData ?? []), rt.teacher],
  });
  const summary = { out: o.out, removed_blocks: r.removed, kept_blocks: r.kept, params_before: r.paramsBefore, params_after: r.paramsAfter, rounds: r.rounds, seconds: r.seconds };
  if (o.json) { printJson(summary); return; }
  const lines = r.rounds.map((x) => `round ${x.round}: removed block ${x.removed.join(', ')} of ${x.blocks_before} (original ${x.removed_original.join(', ')}), calibration PPL ${x.ppl_after_cut.toFixed(3)} after the cut, ${x.ppl_after_retrain.toFixed(3)} after ${x.retrain.steps} ${o.retrain} steps`);
  process.stdout.write(`${lines.join('\n')}\nremoved blocks ${r.removed.join(', ')} -> ${r.kept.length} blocks, ${r.paramsAfter.toLocaleString('en-US')} parameters (${(100 * (1 - r.paramsAfter / r.paramsBefore)).toFixed(1)}% fewer); wrote ${o.out}\n`);
}
