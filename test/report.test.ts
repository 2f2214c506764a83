import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildReport } from '../src/report/build.js';
import { normalizeImportance } from '../src/report/charts.js';
import { scopeSvgIds, svgToPng, fontSetup, FONT_STACK } from '../src/report/render.js';
import { zeroShotTable } from '../src/report/tables.js';
import { UserError } from '../src/util/errors.js';
import type {
  ScoreFile, PruneFile, PplFile, TrainFile, ZeroShotFile, BenchFile, GenerationsFile, SummaryFile, ReportInput,
} from '../src/report/schemas.js';

// ---- sample inputs: what score / prune / eval / train / bench would write for a 32-block model ----

const BLOCKS = 32;
const MODEL = 'llama-7b-sample';

/** Deterministic noise in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function ascending(scores: number[]): number[] {
  return scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
}

export function sampleInputs(): Record<string, ReportInput> {
  const r = rng(7);
  // Taylor: high = important; first and last blocks matter most, as in the paper.
  const taylor = Array.from({ length: BLOCKS }, (_, i) => 0.2 + 2 / (1 + i) + 1.5 / (BLOCKS - i) + 0.3 * r());
  // PPL criterion: perplexity with the block removed; removing block 0 is catastrophic.
  const pplScores = Array.from({ length: BLOCKS }, (_, i) => (i === 0 ? 4200 : i === 1 ? 310 : 13 + 6 / (BLOCKS - i) + 3 * r()));
  // Magnitude with the opposite direction, to exercise the normalization flip: low = important.
  const magnitude = taylor.map((t) => 10 - t);
  const taylorOrder = ascending(taylor);
  const pplOrder = ascending(pplScores);
  const files: Record<string, ReportInput> = {};
  const score = (criterion: string, scores: number[], order: number[]): ScoreFile => ({ kind: 'score', model: MODEL, criterion, scores, order, settings: { calibration: 'bookcorpus', samples: 10 } });
  files['score/taylor.json'] = score('taylor', taylor, taylorOrder);
  files['score/ppl.json'] = score('ppl', pplScores, pplOrder);
  files['score/magnitude.json'] = score('magnitude', magnitude, [...taylorOrder]);
  const prune = (criterion: string, removed: number[]): PruneFile => ({ kind: 'prune', model: MODEL, criterion, numBlocks: BLOCKS, removed, out: `out/${criterion}-20` });
  files['pruned/taylor-20/pruning.json'] = prune('taylor', taylorOrder.slice(0, 6));
  files['pruned/ppl-20/pruning.json'] = prune('ppl', pplOrder.slice(0, 6));
  const ppl = (label: string, removedBlocks: number, value: number, criterion?: string, retraining?: PplFile['retraining']): PplFile => ({
    kind: 'ppl', model: criterion ? `${MODEL}-${label}` : MODEL, label, removedBlocks, ...(criterion ? { criterion } : {}), ...(retraining ? { retraining } : {}),
    dataset: 'wikitext2', ppl: value, nll: Math.log(value), tokens: 287_000,
  });
  files['eval/base.json'] = ppl('original', 0, 12.6);
  for (const n of [2, 4, 6, 8, 10]) {
    files[`eval/taylor-${n}.json`] = ppl(`taylor-${n}`, n, 12.6 * Math.exp(0.09 * n * n / 4), 'taylor', 'none');
    files[`eval/taylor-${n}-lora.json`] = ppl(`taylor-${n}-lora`, n, 12.6 * Math.exp(0.03 * n * n / 4), 'taylor', 'lora');
    files[`eval/ppl-${n}.json`] = ppl(`ppl-${n}`, n, 12.6 * Math.exp(0.05 * n), 'ppl', 'none');
    files[`eval/ppl-${n}-lora.json`] = ppl(`ppl-${n}-lora`, n, 12.6 * Math.exp(0.03 * n), 'ppl', 'lora');
  }
  const train = (label: string, method: TrainFile['method'], start: number): TrainFile => ({
    kind: 'train', label, method, model: `${MODEL}-${label}`,
    steps: Array.from({ length: 100 }, (_, i) => ({
      step: (i + 1) * 10, loss: start * Math.exp(-i / 30) + 2.1 + 0.08 * r(), lr: 1e-4 * Math.min(1, (i + 1) / 10),
      ...((i + 1) % 10 === 0 ? { valLoss: start * Math.exp(-i / 30) + 2.2 } : {}),
    })),
    settings: { rank: 8, alpha: 16, lr: 1e-4 },
  });
  files['train/taylor-lora.json'] = train('taylor-20%-lora', 'lora', 1.2);
  files['train/ppl-cpt.json'] = train('ppl-20%-cpt', 'cpt', 2.0);
  const zs = (model: string, label: string, base: number, withNorm = true): ZeroShotFile => {
    const task = (acc: number) => ({ acc: acc * base, acc_stderr: 0.012, ...(withNorm ? { acc_norm: acc * base + 0.02, acc_norm_stderr: 0.011 } : {}) });
    return {
      kind: 'zeroshot', model, label,
      results: { boolq: task(0.75), piqa: task(0.79), hellaswag: task(0.56), winogrande: task(0.70), arc_easy: task(0.75), arc_challenge: task(0.42), openbookqa: task(0.44) },
    };
  };
  files['eval/zeroshot-base.json'] = zs(MODEL, 'LLaMA-7B (original)', 1.0);
  files['eval/zeroshot-taylor.json'] = zs(`${MODEL}-taylor-20`, 'Taylor+ 20% | LoRA', 0.93);
  files['eval/zeroshot-ppl.json'] = zs(`${MODEL}-ppl-20`, 'PPL 20% | LoRA', 0.95);
  const bench: BenchFile = {
    kind: 'bench',
    settings: { promptLen: 12, genLen: 128, device: 'cpu', repeats: 5 },
    models: [
      { name: 'original', params: 6.74e9, frac: 1.0 },
      { name: 'taylor-20%', params: 5.5e9, frac: 0.8 },
      { name: 'width-20%', params: 5.5e9, frac: 0.93 },
    ].map((m) => ({
      name: m.name, params: m.params,
      results: [1, 2, 4, 8, 16, 32, 64].map((batch) => {
        const latencyMs = m.frac * (2400 + 35 * batch);
        return { batch, latencyMs, latencyStd: 0.03 * latencyMs, tokensPerSec: (batch * 128) / (latencyMs / 1000), prefillMs: m.frac * 30 * Math.sqrt(batch), peakMemMB: m.params * 2 / 2 ** 20 + batch * 40 };
      }),
    })),
  };
  files['bench/bench.json'] = bench;
  const gens: GenerationsFile = {
    kind: 'generations',
    items: [
      { model: 'original', prompt: 'AI can create a logo in seconds', text: ' using a few simple prompts. <b>Designers</b> | still matter.' },
      { model: 'taylor-20%', prompt: 'AI can create a logo in seconds', text: ' and the logo is a good logo.\n```\ncode fence\n```' },
      { model: 'original', prompt: 'What is the capital of France?', text: ' Paris.' },
    ],
  };
  files['gen/generations.json'] = gens;
  const summary: SummaryFile = {
    kind: 'summary', title: 'Pruned models',
    rows: [
      { model: 'original', blocks: 32, params: '6.74B', 'wikitext2 ppl': 12.6 },
      { model: 'taylor-20%', blocks: 26, params: '5.50B', 'wikitext2 ppl': 20.2 },
    ],
  };
  files['summary.json'] = summary;
  return files;
}

function writeInputs(dir: string, files: Record<string, unknown>): void {
  for (const [rel, v] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, JSON.stringify(v, null, 2));
  }
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'report-test-'));
}

function section(html: string, id: string): string | undefined {
  return html.match(new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`))?.[1];
}

/** Number of drawn items (<path>, <line>, <text>) inside vega mark groups of one mark type. */
function countMarks(svgHtml: string, markClass: string): number {
  let n = 0;
  const re = new RegExp(`<g class="mark-${markClass} role-mark[^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g');
  for (const m of svgHtml.matchAll(re)) n += (m[1]!.match(/<(path|line|text)\b/g) ?? []).length;
  return n;
}

// ---- tests --------------------------------------------------------------------------------------

test('sample report: every section rendered with data marks, md tables, PNGs', async () => {
  const dir = tmpDir();
  try {
    const inputs = path.join(dir, 'runs');
    writeInputs(inputs, sampleInputs());
    // Noise a folder search must skip: a model config and a tokenizer.
    writeInputs(inputs, { 'pruned/taylor-20/config.json': { num_hidden_layers: 26 }, 'pruned/taylor-20/tokenizer.json': { model: { vocab: {} } } });
    const out = path.join(dir, 'report');
    const res = await buildReport({ inputs: [inputs], out, title: 'Sample <report>' });
    if (process.env['REPORT_KEEP']) fs.cpSync(out, process.env['REPORT_KEEP'], { recursive: true });

    const html = fs.readFileSync(res.html, 'utf8');
    assert.equal(res.html, path.join(out, 'report.html'));
    assert.match(html, /<title>Sample &lt;report&gt;<\/title>/);
    assert.doesNotMatch(html, /<script|<link|src="http|href="http|@import/, 'self-contained');

    const importance = section(html, 'importance');
    assert.ok(importance, 'importance section');
    assert.ok(countMarks(importance, 'rect') >= 3 * BLOCKS, `one bar per block per criterion, got ${countMarks(importance, 'rect')}`);
    assert.ok(countMarks(importance, 'text') >= 12, 'removal picks labelled (6 per pruned criterion)');
    const ppl = section(html, 'perplexity');
    assert.ok(ppl && countMarks(ppl, 'line') >= 4, 'a line per criterion/retraining');
    assert.ok(countMarks(ppl, 'symbol') >= 4 * 6, 'a point per ppl value');
    const training = section(html, 'training');
    assert.ok(training && countMarks(training, 'line') >= 4, 'train + val per run');
    const speed = section(html, 'speed');
    assert.ok(speed && (speed.match(/<svg/g) ?? []).length === 2, 'latency and throughput charts');
    assert.ok(countMarks(speed, 'line') >= 6 && countMarks(speed, 'rule') >= 21, 'lines and error bars');
    const zeroshot = section(html, 'zeroshot');
    assert.ok(zeroshot && /<th class="num">Mean<\/th>/.test(zeroshot));
    assert.doesNotMatch(zeroshot, /<svg/);
    const gens = section(html, 'generations');
    assert.ok(gens && gens.includes('&lt;b&gt;Designers&lt;/b&gt;'), 'generated text escaped');
    assert.ok(section(html, 'summary')?.includes('wikitext2 ppl'));

    // Inlined SVGs must not share element ids (clip paths would resolve to the wrong chart).
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'unique ids');

    const md = fs.readFileSync(res.markdown, 'utf8');
    assert.match(md, /^# Sample &lt;report&gt;/);
    assert.match(md, /\| model \| BoolQ \| PIQA \| HellaSwag \| WinoGrande \| ARC-e \| ARC-c \| OBQA \| Mean \|/);
    // Original row: acc 75, 79, 70, 75 and acc_norm 58, 44, 46 -> mean 63.857
    assert.match(md, /\| \*\*LLaMA-7B \(original\)\*\* \| 75\.00 \| 79\.00 \| 58\.00 \| 70\.00 \| 75\.00 \| 44\.00 \| 46\.00 \| \*\*63\.86\*\* \|/);
    assert.match(md, /\*\*Taylor\+ 20% \\\| LoRA\*\*/, 'pipes escaped in cells');
    for (const name of ['importance', 'ppl', 'loss', 'latency', 'throughput']) {
      assert.ok(md.includes(`(charts/${name}.png)`) && md.includes(`(charts/${name}.svg)`), `md links ${name}`);
    }
    assert.match(md, /````text\n and the logo/, 'fence longer than the text\'s backticks');

    assert.equal(res.charts.length, 10);
    for (const f of res.charts) {
      const buf = fs.readFileSync(f);
      assert.ok(buf.length > 1024, `${f} is ${buf.length} bytes`);
      if (f.endsWith('.png')) assert.deepEqual([...buf.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      else assert.match(buf.toString('utf8', 0, 200), /^<svg/);
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['report', 'runs'], 'no temporary files left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sections without inputs are omitted; rebuilding into the inputs folder keeps them', async () => {
  const dir = tmpDir();
  try {
    const all = sampleInputs();
    writeInputs(dir, { 'zs.json': all['eval/zeroshot-base.json'], 'zs2.json': all['eval/zeroshot-taylor.json'] });
    for (let i = 0; i < 2; i++) {
      const res = await buildReport({ inputs: [dir], out: dir });
      const html = fs.readFileSync(res.html, 'utf8');
      assert.ok(section(html, 'zeroshot'));
      for (const id of ['importance', 'perplexity', 'training', 'speed', 'generations', 'summary']) assert.equal(section(html, id), undefined, id);
      assert.doesNotMatch(html, /<svg/);
      assert.deepEqual(res.charts, []);
      assert.match(fs.readFileSync(res.markdown, 'utf8'), /Mean/);
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['charts', 'report.html', 'report.md', 'zs.json', 'zs2.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed inputs give a UserError naming the file and the field', async () => {
  const dir = tmpDir();
  try {
    const all = sampleInputs();
    const cases: [string, unknown, RegExp][] = [
      ['no-order.json', { ...all['score/taylor.json'], order: undefined }, /no-order\.json: missing field 'order'/],
      ['bad-batch.json', { kind: 'bench', models: [{ name: 'm', params: 1, results: [{ batch: '4', latencyMs: 1, latencyStd: 0, tokensPerSec: 1 }] }] }, /bad-batch\.json: field 'models\[0\]\.results\[0\]\.batch' must be a finite number, got string/],
      ['percent.json', { kind: 'zeroshot', model: 'm', results: { boolq: { acc: 75, acc_stderr: 1 } } }, /percent\.json: field 'results\.boolq\.acc' must be <= 1/],
      ['bad-block.json', { ...all['score/taylor.json'], order: [0, 99] }, /bad-block\.json: field 'order\[1\]' must be <= 31/],
      ['bad-method.json', { kind: 'train', label: 'x', method: 'sgd', steps: [{ step: 1, loss: 1, lr: 1 }] }, /bad-method\.json: field 'method' must be one of lora, cpt, cpt\+lora/],
    ];
    for (const [name, value, re] of cases) {
      const sub = path.join(dir, name.replace('.json', ''));
      writeInputs(sub, { [name]: value });
      // Found by a folder search or named directly: same error.
      await assert.rejects(buildReport({ inputs: [sub], out: path.join(dir, 'out') }), (e: Error) => e instanceof UserError && re.test(e.message));
      await assert.rejects(buildReport({ inputs: [path.join(sub, name)], out: path.join(dir, 'out') }), (e: Error) => e instanceof UserError && re.test(e.message));
    }
    fs.writeFileSync(path.join(dir, 'truncated.json'), '{"kind": "ppl", "model"');
    await assert.rejects(buildReport({ inputs: [path.join(dir, 'truncated.json')], out: path.join(dir, 'out') }), (e: Error) => e instanceof UserError && /truncated\.json: invalid JSON/.test(e.message));
    fs.writeFileSync(path.join(dir, 'config.json'), '{"hidden_size": 8}');
    await assert.rejects(buildReport({ inputs: [path.join(dir, 'config.json')], out: path.join(dir, 'out') }), (e: Error) => e instanceof UserError && /config\.json: not a report input/.test(e.message));
    const empty = path.join(dir, 'empty');
    writeInputs(empty, { 'config.json': { hidden_size: 8 } });
    await assert.rejects(buildReport({ inputs: [empty], out: path.join(dir, 'out') }), (e: Error) => e instanceof UserError && /no JSON with a known "kind"/.test(e.message));
    assert.equal(fs.existsSync(path.join(dir, 'out')), false, 'nothing written on error');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('importance normalization: 1 = most important whatever the direction; log for wide ranges', () => {
  // high = important
  assert.deepEqual(normalizeImportance([1, 3, 2], [0, 2, 1]), [0, 1, 0.5]);
  // low = important (e.g. a distance to the next block's input where small means redundant is inverted)
  assert.deepEqual(normalizeImportance([1, 3, 2], [1, 2, 0]), [1, 0, 0.5]);
  // a partial order still tells the direction
  assert.deepEqual(normalizeImportance([1, 3, 2], [1]), [1, 0, 0.5]);
  // ppl-like: one catastrophic block does not flatten the rest
  const n = normalizeImportance([10000, 10, 100], [1, 2, 0]);
  assert.deepEqual(n.map((x) => +x.toFixed(3)), [1, 0, 0.333]);
  // null (never removed by SLEB) is most important
  assert.deepEqual(normalizeImportance([null, 2, 1, null], [2, 1]), [1, 1, 0, 1]);
});

test('zero-shot table: acc_norm fallback and partial rows are marked', () => {
  const t = zeroShotTable([
    { kind: 'zeroshot', model: 'a', results: { boolq: { acc: 0.5, acc_stderr: 0.01 }, hellaswag: { acc: 0.4, acc_stderr: 0.01 } } },
    { kind: 'zeroshot', model: 'b', results: { boolq: { acc: 0.6, acc_stderr: 0.01 }, lambada: { acc: 0.3, acc_stderr: 0.01 } } },
  ]);
  assert.deepEqual(t.head, ['model', 'BoolQ', 'HellaSwag', 'lambada', 'Mean']);
  assert.deepEqual(t.rows.map((r) => r.map((c) => c.text)), [['a', '50.00', '40.00†', '–', '45.00*'], ['b', '60.00', '–', '30.00', '45.00*']]);
  assert.equal(t.notes?.length, 3);
});

test('scopeSvgIds prefixes ids and their references', () => {
  const svg = '<svg><clipPath id="clip1"><rect/></clipPath><g clip-path="url(#clip1)"/><use href="#clip1"/><g id="clip10"/></svg>';
  assert.equal(scopeSvgIds(svg, 'x'), '<svg><clipPath id="x-clip1"><rect/></clipPath><g clip-path="url(#x-clip1)"/><use href="#x-clip1"/><g id="x-clip10"/></svg>');
});

test('chart variants: several datasets, models of different depth, no val loss, one batch size', async () => {
  const dir = tmpDir();
  try {
    const ppl = (dataset: string, removedBlocks: number, value: number, criterion?: string): PplFile => ({
      kind: 'ppl', model: 'm', label: `${criterion ?? 'original'}-${removedBlocks}`, removedBlocks, ...(criterion ? { criterion } : {}), dataset, ppl: value, nll: Math.log(value), tokens: 1000,
    });
    writeInputs(dir, {
      'a.json': { kind: 'score', model: 'small', criterion: 'bi', scores: [0.9, 0.1, 0.2, 0.8], order: [1, 2], settings: {}, removed: [1] },
      'b.json': { kind: 'score', model: 'big', criterion: 'angular', scores: [5, 1, 1, 1, 2, 6], order: [1], settings: {} },
      // SLEB as the pipeline writes it: never-removed blocks score +Infinity, i.e. null in JSON.
      'c.json': { kind: 'score', model: '/models/small', criterion: 'sleb', scores: [null, 12.5, 11.9, null], order: [2, 1, 0, 3], settings: { calibration: null }, details: {} },
      // The pruning.json prune writes into the pruned folder (no kind).
      'pruned/pruning.json': { method: 'depth pruning (Shortened LLaMA)', source_model: '/models/small', criterion: 'sleb', removed_blocks: [2], kept_blocks: [0, 1, 3], num_hidden_layers_before: 4, num_hidden_layers_after: 3 },
      'p0.json': ppl('wikitext2', 0, 12), 'p1.json': ppl('ptb', 0, 22), 'p2.json': ppl('wikitext2', 2, 14, 'sleb'), 'p3.json': ppl('ptb', 2, 25, 'sleb'),
      't.json': { kind: 'train', label: 'run', method: 'cpt+lora', steps: [{ step: 0, loss: 3, lr: 0 }, { step: 1, loss: 2.5, lr: 1e-4 }] },
      'bench.json': { kind: 'bench', models: [{ name: 'x', params: 1.1e9, results: [{ batch: 1, latencyMs: 100, latencyStd: 0, tokensPerSec: 1280 }] }] },
    });
    const res = await buildReport({ inputs: [dir], out: path.join(dir, 'out') });
    const html = fs.readFileSync(res.html, 'utf8');
    assert.ok(countMarks(section(html, 'importance')!, 'rect') >= 14);
    assert.ok(countMarks(section(html, 'importance')!, 'text') >= 2, 'picks of bi (own list) and sleb (pruning.json)');
    const md = fs.readFileSync(res.markdown, 'utf8');
    assert.match(md, /\| \*\*small · sleb\*\* \| small \| 2, 1, 0, 3 \| 2 \|/, 'pruning.json picks, model path shortened');
    assert.ok(countMarks(section(html, 'perplexity')!, 'line') >= 2, 'one line per dataset facet');
    assert.ok(countMarks(section(html, 'training')!, 'line') >= 1);
    assert.ok(countMarks(section(html, 'speed')!, 'symbol') >= 2);
    assert.equal(res.charts.length, 10);
    if (process.env['REPORT_KEEP']) fs.cpSync(path.join(dir, 'out'), `${process.env['REPORT_KEEP']}-variants`, { recursive: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('PNG text is drawn when fonts exist', (t) => {
  const fonts = fontSetup();
  if (fonts.count === 0) return t.skip('no font files on this machine');
  const svg = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">${body}</svg>`;
  const blank = svgToPng(svg(''));
  const text = svgToPng(svg(`<text x="5" y="28" font-family="${FONT_STACK}" font-size="20">Perplexity 12.6</text>`));
  // A white PNG compresses to almost nothing; glyphs add hundreds of bytes.
  assert.ok(text.length > blank.length + 300, `text ${text.length} B vs blank ${blank.length} B (font family ${fonts.family ?? 'fallback'})`);
});
