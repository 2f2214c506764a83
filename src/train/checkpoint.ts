/**
 * Crash-safe checkpoints. Layout under a checkpoint root:
 *
 *   state.json        {"latest": "step-000120", "best": "step-000100", "bestValLoss": 2.31}
 *   step-000100/      complete checkpoints only
 *   step-000120/
 *
 * A checkpoint is written into a hidden staging folder, every file and the folder are fsynced,
 * and only then is it renamed to step-N (rename is atomic). state.json is replaced the same way
 * (write, fsync, rename, fsync the folder) after the rename, and old folders are deleted only
 * after that. So a SIGKILL at any instant leaves state.json pointing at complete checkpoints:
 * at worst the newest one is unreferenced and the run resumes from the one before.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';

export interface CheckpointState {
  latest: string;
  best?: string;
  bestValLoss?: number;
}

export const STATE_FILE = 'state.json';

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** fsync every file below `dir`, then the folders themselves. */
function syncTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) syncTree(p);
    else if (e.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

/** Replace `file` with `text` atomically and durably. */
export function durableWriteFile(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncPath(path.dirname(file));
}

/** Stage a checkpoint folder with `fill`, make it durable, and rename it to root/name. */
export function writeCheckpoint(root: string, name: string, fill: (dir: string) => void): string {
  fs.mkdirSync(root, { recursive: true });
  const tmp = path.join(root, `.tmp-${name}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    syncTree(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const dest = path.join(root, name);
  // A folder of this name can only be a leftover nobody points at (a crash before state.json moved on).
  const st = readCheckpointState(root);
  if (st && (st.latest === name || st.best === name)) throw new Error(`checkpoint ${name} is referenced and would be overwritten`);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
  fsyncPath(root);
  return dest;
}

export function readCheckpointState(root: string): CheckpointState | null {
  const f = path.join(root, STATE_FILE);
  if (!fs.existsSync(f)) return null;
  let s: CheckpointState;
  try {
    s = JSON.parse(fs.readFileSync(f, 'utf8')) as CheckpointState;
  } catch {
    throw new UserError(`${f}: unreadable checkpoint state`);
  }
  if (typeof s.latest !== 'string' || !fs.existsSync(path.join(root, s.latest))) throw new UserError(`${f}: points at a missing checkpoint`);
  return s;
}

/** Point state.json at new checkpoints, then delete every folder it no longer references. */
export function commitCheckpointState(root: string, s: CheckpointState): void {
  durableWriteFile(path.join(root, STATE_FILE), JSON.stringify(s, null, 2) + '\n');
  removeUnreferenced(root, s);
}

/** Delete staging leftovers and checkpoints that state.json does not name. */
export function removeUnreferenced(root: string, s: CheckpointState | null): void {
  if (!fs.existsSync(root)) return;
  const keep = new Set([s?.latest, s?.best].filter((x): x is string => !!x));
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    if (e.isFile() && e.name.startsWith(`${STATE_FILE}.tmp-`)) fs.rmSync(path.join(root, e.name), { force: true });
    if (!e.isDirectory()) continue;
    if (e.name.startsWith('.tmp-') || (e.name.startsWith('step-') && !keep.has(e.name))) fs.rmSync(path.join(root, e.name), { recursive: true, force: true });
  }
}
