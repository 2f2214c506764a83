/** Shared helpers for tests against ../shared/fixtures (golden float64 reference outputs). */
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { sharedDir, hasShared } from '../src/util/shared.js';
import { loadModel } from '../src/io/model-folder.js';
import { readSafetensors, type RawTensor } from '../src/io/safetensors.js';
import type { LlamaModel } from '../src/model/weights.js';

export const SKIP_SHARED = hasShared() ? false : 'shared data (../shared) not found: skipping';

export function fixtureNames(): string[] {
  if (!hasShared()) return [];
  return fs.readdirSync(sharedDir('fixtures')).filter((n) => fs.existsSync(sharedDir('fixtures', n, 'expected.json'))).sort();
}

export interface Fixture {
  name: string;
  dir: string;
  model: LlamaModel;
  ids: Int32Array;
  B: number;
  T: number;
  expected: Map<string, RawTensor>;
  json: Record<string, any>;
}

export function loadFixture(name: string): Fixture {
  const dir = sharedDir('fixtures', name);
  const rows = (JSON.parse(fs.readFileSync(path.join(dir, 'input_ids.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
  const B = rows.length, T = rows[0]!.length;
  return {
    name, dir, B, T,
    model: loadModel(path.join(dir, 'model')),
    ids: Int32Array.from(rows.flat()),
    expected: readSafetensors(path.join(dir, 'expected.safetensors')),
    json: JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')),
  };
}

export function expectedF(f: Fixture, name: string): Float64Array {
  const t = f.expected.get(name);
  assert.ok(t, `fixture ${f.name} has no ${name}`);
  if (t.data instanceof BigInt64Array) return Float64Array.from(t.data, (v) => Number(v));
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** |a - e| <= atol + rtol*|e| elementwise; reports the worst element. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} vs ${expected.length}`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!, a = actual[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) { worst = i; worstExcess = excess; }
  }
  if (worst >= 0) assert.fail(`${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
}

export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}
