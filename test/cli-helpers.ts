/** Running the `shorten` CLI in tests, and the shape every user error must have. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { projectDir } from '../src/util/shared.js';

export const BIN = projectDir('bin', 'shorten.js');

export function shorten(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1', ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The command fails with exactly one `error:` line matching `pattern` and no stack; returns the line. */
export function expectUserError(args: string[], pattern: RegExp): string {
  const r = shorten(args);
  assert.notEqual(r.code, 0, `expected failure: ${args.join(' ')}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return lines[0]!;
}
