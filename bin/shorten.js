#!/usr/bin/env node
// V8's parallel GC threads compete with the engine's GEMM threads for the cores; on a small model
// that made training up to 1.8x slower (docs/results/bench-train.md). They can only be turned off
// at startup, so the CLI re-runs itself once with --single-threaded-gc (SHORTENED_PARALLEL_GC=1 keeps them).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';

if (process.execArgv.includes('--single-threaded-gc') || process.env.SHORTENED_PARALLEL_GC === '1') {
  await import('../dist/src/cli/main.js');
} else {
  const r = spawnSync(process.execPath, [...process.execArgv, '--single-threaded-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.error) throw r.error;
  process.exit(r.status ?? 128 + (constants.signals[r.signal] ?? 15));
}
