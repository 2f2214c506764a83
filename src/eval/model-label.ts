/** What a model folder says about its own history: pruning.json and training info, for labels. */
import fs from 'node:fs';
import path from 'node:path';
import type { Retraining } from '../report/schemas.js';

export interface ModelHistory {
  label: string;
  removedBlocks: number;
  criterion?: string;
  retraining?: Retraining;
}

function readMaybe(file: string): Record<string, unknown> | null {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>; } catch { return null; }
}

export function modelHistory(dir: string): ModelHistory {
  const pruning = readMaybe(path.join(dir, 'pruning.json'));
  const training = readMaybe(path.join(dir, 'training.json'));
  const removed = Array.isArray(pruning?.['removed_blocks']) ? (pruning!['removed_blocks'] as unknown[]).length : 0;
  const criterion = typeof pruning?.['criterion'] === 'string' ? (pruning['criterion'] as string) : undefined;
  const method = training?.['method'];
  const retraining: Retraining = (['lora', 'cpt', 'cpt+lora', 'kd', 'kd+lora', 'iterative'] as const).find((m) => m === method) ?? 'none';
  return { label: path.basename(path.resolve(dir)), removedBlocks: removed, criterion, retraining };
}
