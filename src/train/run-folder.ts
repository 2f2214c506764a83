/**
 * The output folder of a training run:
 *
 *   <out>/checkpoints/      resumable checkpoints (see checkpoint.ts); removed after success
 *   <out>/train-log.json    the loss curve ({"kind": "train", ...}); "complete": true at the end
 *   <out>/...               the result (adapter files, model/, merged/)
 *
 * A run that finished is recognised by its complete log, so --resume on it does nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { durableWriteFile } from './checkpoint.js';
import { guardOutput, checkReplaceable, writeOutputMarker } from '../io/output-guard.js';
import type { TrainLog } from './trainer.js';

export const CKPT_DIR = 'checkpoints';
export const LOG_FILE = 'train-log.json';

export type FinalLog = TrainLog & { complete?: boolean; seconds?: number };

/**
 * Fail early (before any work) if `out` may not be used: it must not overlap any input, and an
 * existing folder is replaced only with --force and only if shorten wrote it.
 */
export function checkOutput(out: string, o: { resume?: boolean; force?: boolean }, inputs: readonly (string | undefined)[] = []): void {
  guardOutput(out, inputs);
  if (fs.existsSync(out) && !o.resume && !o.force) {
    const hint = fs.existsSync(path.join(out, CKPT_DIR)) ? ' holds checkpoints of an unfinished run (use --resume to continue it, or --force to start over)' : ' exists (use --force to replace it)';
    throw new UserError(`output folder ${out}${hint}`);
  }
  if (!o.resume) checkReplaceable(out);
}

/** Make `out` ready: a fresh folder, or the existing one when resuming. */
export function prepareOutput(out: string, o: { resume?: boolean; force?: boolean }, inputs: readonly (string | undefined)[] = []): void {
  checkOutput(out, o, inputs);
  if (fs.existsSync(out) && !o.resume) fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  writeOutputMarker(out);
}

/** The log of a run that completed in `out`, if it did. */
export function completedLog(out: string): FinalLog | null {
  const f = path.join(out, LOG_FILE);
  if (!fs.existsSync(f)) return null;
  try {
    const log = JSON.parse(fs.readFileSync(f, 'utf8')) as FinalLog;
    return log.complete ? log : null;
  } catch {
    return null;
  }
}

export function writeLog(out: string, log: FinalLog): void {
  durableWriteFile(path.join(out, LOG_FILE), JSON.stringify(log, null, 2) + '\n');
}

/** Let `fill` write files into a staging folder, then move each into `out` by an atomic rename. */
export function publishFiles(out: string, fill: (dir: string) => void): void {
  const stage = path.join(out, `.publish-${process.pid}`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage);
  try {
    fill(stage);
    for (const name of fs.readdirSync(stage)) {
      const fd = fs.openSync(path.join(stage, name), 'r');
      try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
      fs.renameSync(path.join(stage, name), path.join(out, name));
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
