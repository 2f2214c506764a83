/**
 * Large buffers on huge pages (src/engine/huge-pages.ts): zeroed, the size asked for, writable,
 * independent, freed with their last reference; weights loaded from safetensors land on them and
 * keep their values; and where Linux offers transparent huge pages, the buffers are backed by them.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { largeBuffer, hugePagesAvailable, HUGE_PAGE_MIN_BYTES } from '../src/engine/huge-pages.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';

const thpMode = (() => {
  try { return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? null; } catch { return null; }
})();

function anonHugeKb(): number {
  try { return Number(/AnonHugePages:\s+(\d+)/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0); } catch { return 0; }
}

test('largeBuffer: zeroed, exactly the size asked for, writable and independent, small and large', () => {
  for (const bytes of [0, 1, 4096, HUGE_PAGE_MIN_BYTES - 4, HUGE_PAGE_MIN_BYTES, HUGE_PAGE_MIN_BYTES + 12, 3 * (2 << 20) + 8]) {
    const a = new Uint8Array(largeBuffer(bytes)), b = new Uint8Array(largeBuffer(bytes));
    assert.equal(a.byteLength, bytes);
    assert.ok(a.every((x) => x === 0), `${bytes} bytes: zeroed`);
    a.fill(7);
    if (bytes) { assert.equal(a[bytes - 1], 7); assert.equal(b[bytes - 1], 0); }
    const f = new Float32Array(largeBuffer(bytes - (bytes % 4)));
    if (f.length) { f[f.length - 1] = 1.5; assert.equal(f[f.length - 1], 1.5); }
  }
});

test('largeBuffer: many large buffers dropped one after another are freed by V8 as any other', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 40; i++) {
    const a = new Uint8Array(largeBuffer(32 << 20));
    a.fill(1);
    if (i % 8 === 7) gc();
  }
  gc();
  // 40 x 32 MB = 1.25 GB touched, in a loop that never yields to the event loop: without frees
  // (as with external buffers, whose finalizers wait for the loop) rss would grow by all of it
  const grew = process.memoryUsage().rss - before;
  assert.ok(grew < 640 * 2 ** 20, `rss grew by ${(grew / 2 ** 20).toFixed(0)} MB`);
});

test('huge pages: offered where Linux has transparent huge pages (madvise or always) and the addon is built', (t) => {
  if (process.env.SHORTENED_HUGE_PAGES === 'off') { t.skip('SHORTENED_HUGE_PAGES=off'); return; }
  if (process.platform !== 'linux' || thpMode === null || thpMode === 'never') {
    assert.equal(hugePagesAvailable() && process.platform !== 'linux', false);
    t.diagnostic(`no transparent huge pages here (${process.platform}, ${thpMode ?? 'no THP'}): plain buffers`);
    return;
  }
  assert.equal(hugePagesAvailable(), true);
  // the kernel backs a touched, advised 2 MB-aligned buffer with huge pages (it may refuse under
  // fragmentation, so this only reports)
  const before = anonHugeKb();
  const a = new Uint8Array(largeBuffer(16 << 20));
  a.fill(3);
  t.diagnostic(`AnonHugePages grew by ${anonHugeKb() - before} kB for a 16 MB buffer`);
  assert.equal(a[(16 << 20) - 1], 3);
});

test('safetensors: large weights read onto huge-page buffers keep every value', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shortened-huge-'));
  try {
    const n = (HUGE_PAGE_MIN_BYTES >> 1) + 999;  // bf16 elements: over the threshold
    const w = new Uint16Array(n), f = new Float32Array((HUGE_PAGE_MIN_BYTES >> 2) + 5);
    for (let i = 0; i < n; i++) w[i] = (i * 2654435761) >>> 17;
    for (let i = 0; i < f.length; i++) f[i] = Math.sin(i);
    const file = path.join(dir, 'w.safetensors');
    writeSafetensors(file, [['w', { dtype: 'bf16', shape: [n], data: w }], ['f', { dtype: 'f32', shape: [f.length], data: f }]]);
    const back = readSafetensors(file);
    assert.deepEqual(back.get('w')!.data, w);
    assert.deepEqual(back.get('f')!.data, f);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
