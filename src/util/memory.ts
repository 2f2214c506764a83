/**
 * How much memory this process may use, and the preflight that refuses a stage whose estimated
 * peak exceeds it: one line with the estimate, what is available and the option that lowers it,
 * before any work (rather than a kill by the kernel an hour in).
 *
 * Available = the smallest of MemAvailable (/proc/meminfo) plus what this process already holds
 * (its resident set counts toward a stage's peak, so it is not "used up"), the cgroup's limit
 * (containers), and SHORTENED_MEMORY_LIMIT (e.g. "24G": to plan for a smaller machine, and for
 * tests). SHORTENED_NO_PREFLIGHT=1 turns the refusal off.
 */
import fs from 'node:fs';
import os from 'node:os';
import { UserError } from './errors.js';

const GiB = 2 ** 30;

/** "24G", "512M", "1.5T" or plain bytes. */
export function parseBytes(s: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*$/i.exec(s);
  if (!m) throw new UserError(`not a memory size: '${s}' (use e.g. 24G, 512M)`);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

function readNumber(file: string): number | null {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    const n = Number(t);
    return t !== 'max' && Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

/** Bytes this process can count on for its peak (see the file comment). */
export function availableBytes(): number {
  const env = process.env['SHORTENED_MEMORY_LIMIT'];
  const own = process.memoryUsage.rss();
  const limits = [memAvailable() + own];
  const cgMax = readNumber('/sys/fs/cgroup/memory.max') ?? readNumber('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const cgCur = readNumber('/sys/fs/cgroup/memory.current') ?? readNumber('/sys/fs/cgroup/memory/memory.usage_in_bytes');
  if (cgMax !== null && cgMax < 2 ** 60) limits.push(cgMax - (cgCur ?? 0) + own);
  if (env) limits.push(parseBytes(env));
  return Math.min(...limits);
}

export const formatGiB = (b: number): string => `${(b / GiB).toFixed(1)} GiB`;

/** A stage's estimated peak resident memory, by part (bytes). */
export interface MemoryEstimate {
  parts: Record<string, number>;
  /** what the user can change to lower it, e.g. "--n or --seq-len" */
  lower: string;
}

export const totalBytes = (e: MemoryEstimate): number => Object.values(e.parts).reduce((a, b) => a + b, 0);

/** Refuse `stage` at once if its estimated peak exceeds the memory available. */
export function preflight(stage: string, e: MemoryEstimate): void {
  if (process.env['SHORTENED_NO_PREFLIGHT'] === '1') return;
  const need = totalBytes(e), have = availableBytes();
  if (need <= have) return;
  const biggest = Object.entries(e.parts).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${formatGiB(v)}`).join(', ');
  throw new UserError(`${stage} needs about ${formatGiB(need)} of memory (${biggest}), ${formatGiB(have)} is available; lower ${e.lower} (SHORTENED_NO_PREFLIGHT=1 runs it anyway)`);
}
