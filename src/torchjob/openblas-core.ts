/**
 * Which OpenBLAS kernels torch will run here. OpenBLAS picks its kernels from the CPU's model
 * number; a model newer than the library (Debian's 0.3.21 on a 2023 Xeon) falls back to Prescott,
 * SSE3 kernels at a fifth of the speed the CPU has. Then the best core the CPU's instruction set
 * supports is named in OPENBLAS_CORETYPE, so a PyTorch peer runs at its real speed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface OpenblasCore {
  /** the core OpenBLAS chose by itself ("" when it printed none: not OpenBLAS, or it failed) */
  detected: string;
  /** the core set instead, when the detected one is below what the CPU supports */
  forced?: string;
}

/** Cores that use no more than SSE3 (what OpenBLAS's unknown-CPU fallbacks run). */
const SSE_CORES = new Set(['prescott', 'core2', 'penryn', 'dunnington', 'nehalem', 'atom', 'katmai', 'coppermine', 'northwood', 'banias', 'opteron', 'barcelona']);

/** The best OpenBLAS x86 core for this CPU's flags, or null when its flags do not say. */
export function bestCoreForFlags(flags: Set<string>): string | null {
  if (flags.has('avx512f') && flags.has('avx512bw') && flags.has('avx512vl')) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

function cpuFlags(): Set<string> {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
  } catch { return new Set(); }
}

const cache = new Map<string, OpenblasCore>();

/** Ask `python`'s torch which core OpenBLAS picks (OPENBLAS_VERBOSE=2 prints it at load). */
export function openblasCore(python: string, baseEnv: NodeJS.ProcessEnv): OpenblasCore {
  const hit = cache.get(python);
  if (hit) return hit;
  const r = spawnSync(python, ['-c', 'import torch; torch.ones(8, 8) @ torch.ones(8, 8)'], { encoding: 'utf8', env: { ...baseEnv, OPENBLAS_VERBOSE: '2' }, timeout: 120_000 });
  const detected = /Core:\s*(\S+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? '';
  const best = process.arch === 'x64' ? bestCoreForFlags(cpuFlags()) : null;
  const out: OpenblasCore = { detected };
  if (detected && best && SSE_CORES.has(detected.toLowerCase())) out.forced = best;
  cache.set(python, out);
  return out;
}
