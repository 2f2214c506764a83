/**
 * Iterative depth pruning (as SLEB and LaCo remove blocks one at a time, here with retraining in
 * between): score the current model, remove the `perRound` least important blocks, retrain
 * briefly, and repeat until the target is reached.
 *
 *   current = model
 *   until n blocks are gone:  score current -> cut k -> retrain -> current = retrained
 *
 * Each round's scores, choice and calibration perplexity (after the cut and after retraining)
 * go into the result's pruning.json (`iterative.rounds`). Block numbers there are of the model
 * the round scored; `removed_original` and `kept_blocks` are in the original numbering, and every
 * intermediate model carries a pruning.json with that map (so distillation between rounds pairs
 * each kept block with its block in the original model).
 *
 * How a round retrains is the caller's (a Retrainer: CPT, KD or LoRA from src/train), so pruning
 * does not depend on training. Rounds run in a work folder next to the output, removed at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspectModel, loadModel, saveModel } from '../io/model-folder.js';
import { countParams } from '../io/config.js';
import { LlamaRunner } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import { scoreModelDir, calibrationSet, type CalibSource } from './pipeline.js';
import { selectBlocks, protectedBlocks, removalCount, type Selection } from './select.js';
import { removeBlocks } from './surgery.js';
import type { CalibBatch } from './calib-batch.js';
import type { CriterionName } from './score.js';
import { checkOutputFolder } from '../io/output-guard.js';
import { UserError } from '../util/errors.js';

/** What a round's retraining reports. */
export interface RetrainResult {
  /** the retrained model folder */
  model: string;
  steps: number;
  seconds: number;
  finalLoss: number | null;
  bestValLoss: number | null;
}

/** Retrain the model in `modelDir`, writing under `outDir` (round counts from 1). */
export type Retrainer = (modelDir: string, outDir: string, round: number) => Promise<RetrainResult>;

export interface IterativeOptions {
  model: string;
  out: string;
  criterion: CriterionName;
  calib: CalibSource;
  /** how many blocks in all: remove or ratio (of blocks), and the "+" protection */
  sel: Selection;
  /** blocks removed per round (the last round may remove fewer) */
  perRound?: number;
  retrain: Retrainer;
  /** how the rounds retrain, recorded in pruning.json */
  retrainInfo: Record<string, unknown>;
  /** inputs of the retraining (data files, teacher), guarded like the model */
  retrainInputs?: (string | undefined)[];
  force?: boolean;
}

export interface IterativeRound {
  round: number;
  blocks_before: number;
  /** the criterion's scores and removal order for the blocks of the model this round scored */
  scores: (number | null)[];
  order: number[];
  /** the blocks cut, in this round's numbering and in the original model's */
  removed: number[];
  removed_original: number[];
  /** original indices of the blocks left after the round */
  kept_blocks: number[];
  /** calibration perplexity right after the cut and after retraining */
  ppl_after_cut: number;
  ppl_after_retrain: number;
  retrain: { steps: number; seconds: number; final_loss: number | null; best_val_loss: number | null };
}

export interface IterativeResult {
  removed: number[];
  kept: number[];
  paramsBefore: number;
  paramsAfter: number;
  rounds: IterativeRound[];
  seconds: number;
}

/** Perplexity of a model on calibration batches. */
async function calibrationPpl(model: LlamaModel, batches: CalibBatch[]): Promise<number> {
  const run = new LlamaRunner(model);
  let sum = 0, count = 0;
  for (const b of batches) {
    const r = await run.forward(b.ids, b.B, b.T);
    sum += r.loss! * r.count!;
    count += r.count!;
  }
  return Math.exp(sum / count);
}

export async function pruneIteratively(o: IterativeOptions): Promise<IterativeResult> {
  checkOutputFolder(o.out, o.force ?? false, [o.model, o.calib.data, o.calib.ids, ...(o.retrainInputs ?? [])]);
  if (o.sel.blocks) throw new UserError('--iterative chooses the blocks itself: give --remove or --ratio, not --blocks');
  if (o.sel.params) throw new UserError('--iterative counts blocks: --ratio with --params is not supported');
  const perRound = o.perRound ?? 1;
  if (!(Number.isInteger(perRound) && perRound >= 1)) throw new UserError(`--per-round must be a positive integer (got ${perRound})`);
  const cfg = inspectModel(o.model).config;
  const L = cfg.numLayers;
  const protect = o.sel.protect ?? [4, 2];
  const n = removalCount(cfg, o.sel, []);
  const free = L - protectedBlocks(L, protect).size;
  if (n >= L) throw new UserError(`cannot remove ${n} of ${L} blocks: at least one block must remain`);
  if (n > free) throw new UserError(`cannot remove ${n} blocks: only ${free} of ${L} are unprotected by the "+" heuristic (first ${protect[0]}, last ${protect[1]}); use --no-plus or --protect`);

  const t0 = performance.now();
  const calib = calibrationSet(o.model, o.calib);
  const work = `${path.resolve(o.out)}.rounds-${process.pid}`;
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  try {
    let current = o.model;
    let kept = [...Array(L).keys()];
    const rounds: IterativeRound[] = [];
    const removedAll: number[] = [];
    const mapInfo = (k: number[]) => ({
      method: 'iterative depth pruning', source_model: path.resolve(o.model), criterion: o.criterion,
      removed_blocks: [...Array(L).keys()].filter((i) => !k.includes(i)), kept_blocks: k,
      num_hidden_layers_before: L, num_hidden_layers_after: k.length,
    });
    for (let round = 1; removedAll.length < n; round++) {
      const k = Math.min(perRound, n - removedAll.length);
      const sel: Selection = { remove: k, protect };
      const sc = await scoreModelDir(current, o.criterion, o.calib, sel);
      const removed = selectBlocks(sc.model.config, sc.result, sel);
      const pruned = removeBlocks(sc.model, removed);
      const pplCut = await calibrationPpl(pruned, calib.batches);
      const removedOriginal = removed.map((i) => kept[i]!);
      kept = kept.filter((_, i) => !removed.includes(i));
      removedAll.push(...removedOriginal);
      const cutDir = path.join(work, `round-${round}`, 'pruned');
      saveModel(pruned, cutDir, { sourceDir: current, extraFiles: { 'pruning.json': mapInfo(kept) } });
      const rt = await o.retrain(cutDir, path.join(work, `round-${round}`, 'retrain'), round);
      const pplRetrained = await calibrationPpl(loadModel(rt.model), calib.batches);
      rounds.push({
        round, blocks_before: sc.model.config.numLayers,
        scores: sc.result.scores.map((s) => (Number.isFinite(s) ? s : null)), order: sc.result.order,
        removed, removed_original: removedOriginal, kept_blocks: [...kept],
        ppl_after_cut: pplCut, ppl_after_retrain: pplRetrained,
        retrain: { steps: rt.steps, seconds: rt.seconds, final_loss: rt.finalLoss, best_val_loss: rt.bestValLoss },
      });
      current = rt.model;
    }

    const final = loadModel(current);
    const info = {
      ...mapInfo(kept),
      params_before: countParams(cfg), params_after: countParams(final.config),
      selection: { ...o.sel, protect }, calibration: calib.settings,
      // the first round's scores are the one-shot criterion's on the original model
      scores: rounds[0]!.scores, order: rounds[0]!.order,
      iterative: { per_round: perRound, ...o.retrainInfo, rounds },
    };
    const training = { source_model: path.resolve(o.model), method: 'iterative', retrain: o.retrainInfo, rounds: rounds.length };
    saveModel(final, o.out, { sourceDir: current, force: o.force ?? false, extraFiles: { 'pruning.json': info, 'training.json': training } });
    return { removed: info.removed_blocks, kept, paramsBefore: info.params_before, paramsAfter: info.params_after, rounds, seconds: (performance.now() - t0) / 1000 };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
