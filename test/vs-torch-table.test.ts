import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verdict, ratio, fmt, vsTorchRows, rowsMarkdown, type VsTorchResults } from '../src/bench/vs-torch-table.js';

test('verdict: any failed condition fails, all true passes, else unknown', () => {
  assert.equal(verdict([true, true]), 'pass');
  assert.equal(verdict([true, false]), 'fail');
  assert.equal(verdict([null, false]), 'fail');
  assert.equal(verdict([true, null]), '–');
  assert.equal(verdict([null]), '–');
});

test('ratio and fmt treat missing figures as "–"', () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(3, null), null);
  assert.equal(ratio(3, 0), null);
  assert.equal(fmt(1.234, 1, ' s'), '1.2 s');
  assert.equal(fmt(null, 1, ' s'), '–');
  assert.equal(fmt(NaN), '–');
});

const full: VsTorchResults = {
  gemm: { label: 'gemm', ours: 96, torch: 100 },
  forward: { label: 'forward', ours: 10, fp32: 20, bf16: 5 },
  taylor: { label: 'taylor', ours: 31, oursForward: 10, fp32: 70 },
  pplcrit: { label: 'ppl', ours: 100, oursForward: 10, fp32: 300, bf16: 200 },
  decode: { label: 'decode', ours: 4, bound: 6, bf16: 8 },
  train: { label: 'train', ours: 4000, fp32: 3500 },
};

test('rows: speed ratios, targets and verdicts of every workload', () => {
  const rows = vsTorchRows(full);
  assert.deepEqual(rows.map((r) => r.workload), ['gemm', 'forward', 'taylor', 'ppl', 'decode', 'train']);
  const by = Object.fromEntries(rows.map((r) => [r.workload, r]));
  // 96 / 100 = 0.96 >= 0.95
  assert.equal(by['gemm']!.ratio, '0.96×');
  assert.equal(by['gemm']!.verdict, 'pass');
  // times: peer / ours; 20 / 10 vs fp32 passes, bf16 is faster but not the target
  assert.equal(by['forward']!.ratio, '2.00× vs fp32, 0.50× vs bf16');
  assert.equal(by['forward']!.verdict, 'pass');
  // 3.1 forwards fails the forwards part although faster than fp32
  assert.equal(by['taylor']!.ours, '31.00 s (3.10 forwards)');
  assert.equal(by['taylor']!.verdict, 'fail');
  assert.equal(by['ppl']!.ours, '100.00 s (10.00 forwards)');
  assert.equal(by['ppl']!.ratio, '3.00× vs fp32, 2.00× vs bf16');
  assert.equal(by['ppl']!.verdict, 'pass');
  // 4 / 6 = 67% of the bound < 80%
  assert.equal(by['decode']!.ours, '4.00 tok/s (67% of 6.00 tok/s bound)');
  assert.equal(by['decode']!.ratio, '0.50×');
  assert.equal(by['decode']!.verdict, 'fail');
  assert.equal(by['train']!.ratio, '1.14×');
  assert.equal(by['train']!.verdict, 'pass');
});

test('rows: a ratio that two digits would round onto its bar shows three (0.948 is no 0.95)', () => {
  const rows = vsTorchRows({ gemm: { label: 'gemm', ours: 377.8, torch: 398.4 }, taylor: { label: 'taylor', ours: 30.04, oursForward: 10, fp32: 70 },
    train: { label: 'train', ours: 998, fp32: 1000 } });
  const by = Object.fromEntries(rows.map((r) => [r.workload, r]));
  assert.equal(by['gemm']!.ratio, '0.948×');
  assert.equal(by['gemm']!.verdict, 'fail');
  assert.equal(by['taylor']!.ours, '30.04 s (3.004 forwards)');
  assert.equal(by['taylor']!.verdict, 'fail');
  assert.equal(by['train']!.ratio, '0.998×');
  assert.equal(vsTorchRows({ gemm: { label: 'gemm', ours: 380, torch: 398.4 } })[0]!.ratio, '0.954×');
  assert.equal(vsTorchRows({ gemm: { label: 'gemm', ours: 390, torch: 398.4 } })[0]!.ratio, '0.98×');
});

test('rows without torch: "–" in the peer columns, verdicts only where ours decides them', () => {
  const rows = vsTorchRows({
    gemm: { ...full.gemm!, torch: null },
    taylor: { ...full.taylor!, ours: 25, fp32: null },
    decode: { ...full.decode!, ours: 5, bf16: null },
  });
  assert.deepEqual(rows.map((r) => [r.fp32, r.bf16, r.ratio, r.verdict]), [
    ['–', '–', '–', '–'],
    ['–', '–', '–', '–'], // 2.5 forwards passes, "faster than fp32" is unknown
    ['–', '–', '–', 'pass'], // 5 / 6 = 83% of the bound
  ]);
});

test('decode: llama.cpp beside PyTorch bf16, each ratio named, both against the same bound', () => {
  const [both] = vsTorchRows({ decode: { ...full.decode!, llamacpp: 5 } });
  assert.equal(both!.llamacpp, '5.00 tok/s (83% of bound)');
  assert.equal(both!.ratio, '0.50× vs bf16, 0.80× vs llama.cpp');
  assert.equal(both!.verdict, 'fail'); // the target is ours against the bound: 4 / 6
  const [alone] = vsTorchRows({ decode: { ...full.decode!, bf16: null, llamacpp: 2 } });
  assert.equal(alone!.ratio, '2.00× vs llama.cpp');
  const [none] = vsTorchRows({ decode: full.decode! });
  assert.equal(none!.llamacpp, '–');
});

test('ppl criterion where PyTorch bf16 is no peer (no bf16 hardware): judged against fp32', () => {
  const [faster] = vsTorchRows({ pplcrit: { ...full.pplcrit!, bf16: null, bf16NotPeer: true } });
  assert.equal(faster!.verdict, 'pass'); // 300 s vs 100 s
  assert.match(faster!.target, /than fp32/);
  const [slower] = vsTorchRows({ pplcrit: { ...full.pplcrit!, ours: 400, bf16: null, bf16NotPeer: true } });
  assert.equal(slower!.verdict, 'fail');
  const [unknown] = vsTorchRows({ pplcrit: { ...full.pplcrit!, bf16: null } }); // bf16 failed to run: undecided
  assert.equal(unknown!.verdict, '–');
});

test('bf16 compute: shown after our f32 figure and set against PyTorch bf16 (the same arithmetic)', () => {
  const [fw, ppl] = vsTorchRows({
    forward: { ...full.forward!, oursBf16: 4 },
    pplcrit: { ...full.pplcrit!, ours: 400, oursBf16: 150 },
  });
  assert.equal(fw!.ours, '10.00 s; bf16 compute 4.00 s');
  assert.equal(fw!.ratio, '2.00× vs fp32, bf16 compute 1.25× vs bf16');
  assert.equal(fw!.verdict, 'pass'); // the target is f32 against fp32
  // our f32 run (400 s) is slower than PyTorch bf16 (200 s), bf16 compute (150 s) is faster
  assert.equal(ppl!.ours, '400.00 s (40.00 forwards); bf16 compute 150.00 s');
  assert.equal(ppl!.ratio, '0.75× vs fp32, bf16 compute 1.33× vs bf16');
  assert.equal(ppl!.verdict, 'pass');
  const [none] = vsTorchRows({ pplcrit: { ...full.pplcrit!, ours: 400, oursBf16: null } });
  assert.equal(none!.verdict, 'fail');
});

test('markdown: a header, an alignment row and one row per workload with eight cells', () => {
  const md = rowsMarkdown(vsTorchRows(full));
  const lines = md.trimEnd().split('\n');
  assert.equal(lines.length, 2 + 6);
  assert.match(lines[0]!, /^\| workload \| ours \| PyTorch fp32 \| PyTorch bf16 \| llama\.cpp \| ours \/ peer \(speed\) \| target \| pass \|$/);
  for (const l of lines) assert.equal(l.split(/(?<!\\)\|/).length - 2, 8, l);
});
