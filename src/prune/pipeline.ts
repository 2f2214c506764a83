/**
 * Score → select → cut → save: the depth-pruning pipeline behind `shorten score` and `shorten prune`.
 */
import path from 'node:path';
import { loadModel, saveModel, inspectModel } from '../io/model-folder.js';
import { preflight } from '../util/memory.js';
import { criterionMemory } from './memory.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { countParams } from '../io/config.js';
import { LlamaRunner } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import { readDocuments, readIdsFile, sampleCalibration } from './calibration.js';
import { batchesFromRows, type CalibBatch } from './calib-batch.js';
import { scoreBlocks, needsCalibration, type CriterionName } from './score.js';
import { selectBlocks, protectedBlocks, removalCount, type Selection } from './select.js';
import { removeBlocks } from './surgery.js';
import type { CriterionResult } from './criteria/types.js';
import { defaultDocuments, DEFAULT_CORPUS_NAME } from '../data/default-corpus.js';
import { progressCallback } from '../util/progress.js';
import { UserError } from '../util/errors.js';
import { checkOutputFolder } from '../io/output-guard.js';

export interface CalibSource {
  /** text/jsonl file of documents; default: the embedded default corpus, train split */
  data?: string;
  /** {"input_ids": [[...]]} rows used as they are */
  ids?: string;
  n?: number;
  seqLen?: number;
  seed?: number;
  /** taylor: recompute activations in the backward (less memory, one more forward); default: only when they do not fit */
  recompute?: boolean;
}

export interface CalibrationSet {
  batches: CalibBatch[];
  settings: Record<string, unknown>;
}

export function calibrationSet(modelDir: string, src: CalibSource): CalibrationSet {
  if (src.ids) {
    const rows = readIdsFile(src.ids);
    return { batches: batchesFromRows(rows), settings: { source: path.resolve(src.ids), rows: rows.length } };
  }
  const tok = loadTokenizer(modelDir);
  const docs = src.data ? readDocuments(src.data) : defaultDocuments('train');
  const n = src.n ?? 10, seqLen = src.seqLen ?? 128, seed = src.seed ?? 1234;
  const rows = sampleCalibration(docs, tok, { n, seqLen, seed });
  return { batches: batchesFromRows(rows), settings: { source: src.data ? path.resolve(src.data) : `${DEFAULT_CORPUS_NAME}:train`, n, seqLen, seed } };
}

export interface ScoreRun {
  model: LlamaModel;
  result: CriterionResult;
  calibration: Record<string, unknown> | null;
  seconds: number;
}

export async function scoreModelDir(modelDir: string, criterion: CriterionName, calib: CalibSource, sel: Selection = {}): Promise<ScoreRun> {
  const shape = inspectModel(modelDir);
  const cs = needsCalibration(criterion) ? calibrationSet(modelDir, calib) : null;
  preflight(`score --criterion ${criterion}`, criterionMemory(criterion, shape.config, shape.weightBytes, cs?.batches ?? [], calib.recompute));
  const model = loadModel(modelDir);
  const run = new LlamaRunner(model);
  const prot = protectedBlocks(model.config.numLayers, sel.protect ?? [4, 2]);
  // angular picks a span of the requested size; sleb iterates only as far as needed
  const n = sel.blocks ? undefined : (sel.remove ?? (sel.ratio !== undefined && !sel.params ? removalCount(model.config, sel, []) : undefined));
  const t0 = performance.now();
  const result = await scoreBlocks(run, criterion, cs?.batches ?? [], {
    blocksToRemove: n, protectedBlocks: prot, onProgress: progressCallback(`score ${criterion}`, 'steps'), recompute: calib.recompute,
  });
  checkScores(result);
  return { model, result, calibration: cs?.settings ?? null, seconds: (performance.now() - t0) / 1000 };
}

/** A NaN score (a loss or gradient that overflowed) would make the removal order arbitrary: stop. */
export function checkScores(r: CriterionResult): void {
  const bad = r.scores.findIndex((s) => Number.isNaN(s) || s === -Infinity);
  if (bad >= 0) {
    throw new UserError(`the ${r.criterion} score of block ${bad} is ${r.scores[bad]}: the calibration loss or its gradient is not finite, so no removal order can be trusted`);
  }
}

/** The JSON a score run writes (also read by `shorten report`). */
export function scoreJson(modelDir: string, r: ScoreRun): Record<string, unknown> {
  return {
    kind: 'score', model: path.resolve(modelDir), criterion: r.result.criterion,
    scores: r.result.scores.map((s) => (Number.isFinite(s) ? s : null)), order: r.result.order,
    settings: { calibration: r.calibration, seconds: r.seconds }, details: r.result.details,
  };
}

export interface PruneResult {
  removed: number[];
  kept: number[];
  paramsBefore: number;
  paramsAfter: number;
  score: ScoreRun | null;
  pruned: LlamaModel;
}

/** Prune `modelDir` into `out` (written atomically; the source is never touched). */
export async function pruneModelDir(modelDir: string, out: string, criterion: CriterionName | null, calib: CalibSource, sel: Selection, force = false,
  scored?: ScoreRun): Promise<PruneResult> {
  checkOutputFolder(out, force, [modelDir, calib.data, calib.ids]);
  // a score run the caller already made (same model, criterion and calibration) is reused
  const score = sel.blocks ? null : scored ?? await scoreModelDir(modelDir, criterion!, calib, sel);
  const model = score?.model ?? loadModel(modelDir);
  const removed = selectBlocks(model.config, score?.result ?? null, sel);
  const pruned = removeBlocks(model, removed);
  const kept = [...Array(model.config.numLayers).keys()].filter((i) => !removed.includes(i));
  const info = {
    method: 'depth pruning (Shortened LLaMA)',
    source_model: path.resolve(modelDir),
    criterion: score ? criterion : 'explicit',
    removed_blocks: removed,
    kept_blocks: kept,
    num_hidden_layers_before: model.config.numLayers,
    num_hidden_layers_after: pruned.config.numLayers,
    params_before: countParams(model.config),
    params_after: countParams(pruned.config),
    selection: { ...sel, protect: sel.protect ?? [4, 2] },
    calibration: score?.calibration ?? null,
    scores: score?.result.scores.map((s) => (Number.isFinite(s) ? s : null)) ?? null,
    order: score?.result.order ?? null,
  };
  saveModel(pruned, out, { sourceDir: modelDir, force, extraFiles: { 'pruning.json': info } });
  return { removed, kept, paramsBefore: info.params_before, paramsAfter: info.params_after, score, pruned };
}
