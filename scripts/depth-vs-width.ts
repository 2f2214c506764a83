/**
 * Depth versus width pruning at matched parameter counts, measured like the Shortened LLaMA paper
 * (its first claim: removing whole blocks speeds up generation, above all at small batch sizes,
 * where width pruning barely helps).
 *
 *   Speed: a TinyLlama-1.1B-shaped model with random weights (speed depends only on shapes).
 *     depth: the middle blocks removed by explicit indices, as many as come closest to each ratio
 *            of the parameters;
 *     width: the same number of kv groups and MLP channels removed in every block (the last
 *            ones; no calibration is meaningful on random weights) until the parameter count
 *            matches the depth variant (within 1%).
 *     All variants are benchmarked together, alternating run by run, and batch-1 decode speed is
 *     set against the memory-bandwidth bound of this machine.
 *   Quality: stories260K (a real pretrained model): depth (PPL criterion) against Wanda-sp and FLAP
 *     at the same parameter counts; TinyStories and WikiText-2 perplexity, and batch-1 speed.
 *
 *   Both engines by default (--engines ours,llama.cpp): the same variants, exported to GGUF, also
 *   run in llama.cpp (node-llama-cpp, CPU), and each engine's speedups are set side by side.
 *
 *   npx tsc -p . && node dist/scripts/depth-vs-width.js                 # quick default, a few minutes
 *   node dist/scripts/depth-vs-width.js --batch-sizes 1,8,16,32,64 --new-tokens 128 --dtype bf16   # the paper's protocol (hours on 2 cores)
 *
 * Writes runs/depth-vs-width/: results.md, speed.json + quality.json (report "summary" inputs),
 * bench-tinyllama.json + bench-stories260k.json (report "bench" inputs), charts, and the pruned
 * stories260K folders under models/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import type { GenBenchModel, GenBenchSettings } from '../src/bench/generation.js';
import { benchLockstep } from '../src/bench/lockstep.js';
import { copyBandwidth, weightBytesPerToken, engineBytesPerToken, type Bandwidth } from '../src/bench/membw.js';
import { benchMarkdown } from '../src/bench/bench-table.js';
import { countParams, type LlamaConfig } from '../src/io/config.js';
import type { DType } from '../src/engine/dtype.js';
import { LlamaRunner } from '../src/model/llama.js';
import type { LlamaModel } from '../src/model/weights.js';
import { removeBlocks } from '../src/prune/surgery.js';
import { removalCount } from '../src/prune/select.js';
import { pruneModelDir, calibrationSet, type CalibSource } from '../src/prune/pipeline.js';
import { pruneWidth, widthInfo, type WidthMethod } from '../src/width/pipeline.js';
import { loadModel, saveModel } from '../src/io/model-folder.js';
import { loadTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { importLlama2c } from '../src/io/llama2c.js';
import { perplexity, pplWindows, readLines } from '../src/eval/ppl.js';
import { latencyChart, throughputChart } from '../src/report/charts.js';
import { renderSvg } from '../src/report/render.js';
import { sharedDir, hasShared, projectDir } from '../src/util/shared.js';
import { benchModel, benchAlternating, type GenerationTarget } from '../src/bench/generation.js';
import { LlamaCppEngine } from '../src/llamacpp/engine.js';
import { cachedGgufForModel } from '../src/llamacpp/gguf-cache.js';

const { values: a } = parseArgs({
  options: {
    ratios: { type: 'string', default: '0.2,0.35' },
    'no-speed': { type: 'boolean', default: false },
    'no-quality': { type: 'boolean', default: false },
    layers: { type: 'string', default: '22' },
    dtype: { type: 'string', default: 'f32' },
    'batch-sizes': { type: 'string', default: '1' },
    'prompt-len': { type: 'string', default: '12' },
    'new-tokens': { type: 'string', default: '16' },
    warmup: { type: 'string', default: '1' },
    'warmup-tokens': { type: 'string', default: '2' },
    repeats: { type: 'string', default: '3' },
    'membw-mb': { type: 'string', default: '1024' },
    'wiki-windows': { type: 'string', default: '200' },
    'calib-n': { type: 'string', default: '32' },
    'stories-new-tokens': { type: 'string', default: '64' },
    'stories-repeats': { type: 'string', default: '5' },
    'stories-batch-sizes': { type: 'string', default: '1,16' },
    engines: { type: 'string', default: 'ours,llama.cpp' },
    threads: { type: 'string' },
    out: { type: 'string', default: projectDir('runs', 'depth-vs-width') },
  },
});
const ratios = a.ratios!.split(',').map(Number);
const engines = a.engines!.split(',').map((x) => x.trim());
const nums = (s: string) => s.split(',').map(Number);
const outDir = path.resolve(a.out!);
fs.mkdirSync(outDir, { recursive: true });
const md: string[] = ['# Depth vs width pruning at matched parameter counts', '', `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average at start ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}.`, ''];
const log = (s: string) => process.stderr.write(s + '\n');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const shapeOf = (c: LlamaConfig) => {
  const l = c.layers[0]!, same = c.layers.every((x) => x.numHeads === l.numHeads && x.intermediateSize === l.intermediateSize);
  return same ? `${c.numLayers} × (${l.numKvHeads} kv/${l.numHeads} q heads, ${l.intermediateSize} ch)` : `${c.numLayers} blocks, ${c.layers.map((x) => `${x.numKvHeads}/${x.intermediateSize}`).join(' ')} (kv/ch)`;
};

function writeJson(name: string, v: unknown): void {
  fs.writeFileSync(path.join(outDir, name), JSON.stringify(v, null, 2) + '\n');
}

interface Variant { name: string; kind: 'original' | 'depth' | 'width'; ratio: number; model: LlamaModel; note: string }

/** The middle `n` blocks of L. */
function middleBlocks(L: number, n: number): number[] {
  const start = Math.floor((L - n) / 2);
  return [...Array(n).keys()].map((i) => start + i);
}

/** Decode speedup against the first model, per batch size. */
function speedups(models: GenBenchModel[], batch: number): { decode: number; e2e: number }[] {
  const b0 = models[0]!.results.find((r) => r.batch === batch)!;
  return models.map((m) => {
    const r = m.results.find((x) => x.batch === batch)!;
    return { decode: r.decodeTokensPerSec / b0.decodeTokensPerSec, e2e: r.tokensPerSec / b0.tokensPerSec };
  });
}

async function charts(prefix: string, json: { kind: 'bench'; models: GenBenchModel[]; settings: Record<string, unknown> }): Promise<void> {
  for (const c of [latencyChart([json]), throughputChart([json])]) fs.writeFileSync(path.join(outDir, `${prefix}-${c.name}.svg`), await renderSvg(c.spec));
}

// ---- speed: TinyLlama-1.1B shapes, random weights ------------------------------------------------

async function speed(): Promise<void> {
  if (!engines.includes('ours')) throw new Error('--engines must include ours (its tables are the reference)');
  const L = Number(a.layers), dtype = a.dtype as DType;
  const settings: GenBenchSettings = {
    batchSizes: nums(a['batch-sizes']!), promptLen: Number(a['prompt-len']), newTokens: Number(a['new-tokens']),
    warmup: Number(a.warmup), warmupTokens: Number(a['warmup-tokens']), repeats: Number(a.repeats), seed: 0,
  };
  log(`speed: copy bandwidth (${a['membw-mb']} MB)...`);
  const bw: Bandwidth = copyBandwidth(Number(a['membw-mb']) * 2 ** 20, 5);
  log(`speed: ${bw.gbPerSec.toFixed(1)} GB/s; building the ${L}-block TinyLlama-shaped ${dtype} model and its variants...`);
  const base = randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: L }, dtype, 0);
  const P0 = countParams(base.config);
  const variants: Variant[] = [{ name: 'original', kind: 'original', ratio: 0, model: base, note: '' }];
  for (const ratio of ratios) {
    const n = removalCount(base.config, { ratio, params: true }, [...Array(L).keys()]);
    const blocks = middleBlocks(L, n);
    const depth = removeBlocks(base, blocks);
    variants.push({ name: `depth-${Math.round(ratio * 100)}%`, kind: 'depth', ratio, model: depth, note: `block${n > 1 ? `s ${blocks[0]}–${blocks[n - 1]}` : ` ${blocks[0]}`} removed` });
    const w = await pruneWidth(base, [], { method: 'uniform', target: { params: countParams(depth.config) } });
    const l0 = base.config.layers[0]!, l1 = w.pruned.config.layers[0]!;
    variants.push({ name: `width-${Math.round(ratio * 100)}%`, kind: 'width', ratio, model: w.pruned, note: `every block: −${l0.numKvHeads - l1.numKvHeads} kv groups, −${l0.intermediateSize - l1.intermediateSize} channels` });
  }
  log(`speed: benchmarking ${variants.length} models in lockstep (${JSON.stringify(settings)})`);
  const res = await benchLockstep(variants.map((v) => ({ name: v.name, run: new LlamaRunner(v.model) })), settings,
    (name, b, i, n, ms) => log(`  ${name} batch ${b} run ${i}/${n}${i <= settings.warmup ? ' (warm-up)' : ''}: ${(ms / 1000).toFixed(2)} s`));
  const backend = new LlamaRunner(base).be.name;
  const benchJson = { kind: 'bench' as const, models: res, settings: { ...settings, backend, dtype, layers: L, weights: 'random (TinyLlama-1.1B shapes)', copyBandwidthGBs: bw.gbPerSec, lockstep: true, peakMem: 'process-wide RSS (all variants in memory)' } };
  writeJson('bench-tinyllama.json', benchJson);
  await charts('tinyllama', benchJson);

  const rows: Record<string, string | number>[] = [];
  md.push(`## Speed: TinyLlama-1.1B shapes (${L} blocks, random ${dtype} weights)`, '',
    'Random weights: speed depends on shapes only. Depth variants remove the middle blocks by explicit index (as many as come closest to the parameter ratio); width variants remove the same number of kv groups (each: one kv head and its 8 query heads) and MLP channels from every block, matched to the depth variant\'s parameter count (±1%). All variants run in one process in lockstep (the prefill of every variant, then decode step 1 of every variant, step 2, ...), so load changes from other processes hit all alike.', '',
    `Protocol: prompt ${settings.promptLen} tokens replicated over the batch, ${settings.newTokens} new tokens (greedy, no early stop), ${settings.warmup} warm-up run(s) of ${settings.warmupTokens} tokens discarded, mean ± std over ${settings.repeats} runs; GEMM backend ${backend}. Decode tokens/s = batch × (new tokens − 1) / time of the single-token steps; tokens/s = batch × new tokens / end-to-end latency.`, '');
  for (const B of settings.batchSizes) {
    const sp = speedups(res, B);
    md.push(`### Batch ${B}`, '', '| variant | params | removed | structure | latency ms (± std) | tokens/s | decode tokens/s | decode speedup | end-to-end speedup |', '|---|---:|---:|---|---:|---:|---:|---:|---:|');
    res.forEach((m, k) => {
      const v = variants[k]!, r = m.results.find((x) => x.batch === B)!;
      const removed = 1 - m.params / P0;
      md.push(`| ${v.name} | ${(m.params / 1e6).toFixed(1)}M | ${pct(removed)} | ${shapeOf(v.model.config)}${v.note ? ` — ${v.note}` : ''} | ${r.latencyMs.toFixed(0)} ± ${r.latencyStd.toFixed(0)} | ${r.tokensPerSec.toFixed(3)} | ${r.decodeTokensPerSec.toFixed(3)} | ${sp[k]!.decode.toFixed(2)}× | ${sp[k]!.e2e.toFixed(2)}× |`);
      rows.push({ variant: v.name, batch: B, params: m.params, removed_pct: +(100 * removed).toFixed(2), structure: shapeOf(v.model.config), latency_ms: +r.latencyMs.toFixed(1), latency_std_ms: +r.latencyStd.toFixed(1), tokens_per_s: +r.tokensPerSec.toFixed(4), decode_tokens_per_s: +r.decodeTokensPerSec.toFixed(4), decode_speedup: +sp[k]!.decode.toFixed(3), e2e_speedup: +sp[k]!.e2e.toFixed(3), prefill_ms: +r.prefillMs.toFixed(1) });
    });
    md.push('');
  }
  if (engines.includes('llama.cpp')) await llamaCppSpeed(variants, settings, res, dtype, L);
  const b1 = settings.batchSizes.includes(1);
  if (b1) {
    md.push('### Batch-1 decode speed against the memory-bandwidth bound', '',
      `Copy bandwidth of this machine: ${bw.gbPerSec.toFixed(1)} GB/s (TypedArray.set of ${(bw.bytes / 2 ** 20).toFixed(0)} MiB, read + written bytes, best of 5). At batch 1 every weight is read once per token, so tokens/s ≤ bandwidth / weight bytes. The engine-traffic bound counts what this engine moves: 16-bit weights are widened to an f32 copy before each GEMM (2 B read + 4 B written + 4 B read per weight).`, '',
      '| variant | weights read / token | decode tokens/s | bound tokens/s | % of bound | engine-traffic bound |', '|---|---:|---:|---:|---:|---:|');
    res.forEach((m, k) => {
      const v = variants[k]!, r = m.results.find((x) => x.batch === 1)!;
      const bytes = weightBytesPerToken(v.model), bound = (bw.gbPerSec * 1e9) / bytes, eng = (bw.gbPerSec * 1e9) / engineBytesPerToken(v.model);
      md.push(`| ${v.name} | ${(bytes / 1e9).toFixed(2)} GB | ${r.decodeTokensPerSec.toFixed(3)} | ${bound.toFixed(2)} | ${pct(r.decodeTokensPerSec / bound)} | ${eng.toFixed(2)} |`);
      const row = rows.find((x) => x['variant'] === v.name && x['batch'] === 1)!;
      Object.assign(row, { weight_bytes_per_token: bytes, bandwidth_bound_tokens_per_s: +bound.toFixed(3), pct_of_bound: +(100 * r.decodeTokensPerSec / bound).toFixed(2) });
    });
    md.push('');
  }
  md.push('Full table (peak RSS is process-wide here: all variants share one process):', '', benchMarkdown(res));
  writeJson('speed.json', { kind: 'summary', title: `Depth vs width: speed, TinyLlama-1.1B shapes (${dtype}, random weights)`, rows });
}

// ---- speed in llama.cpp: the same variants as GGUF files -----------------------------------------

/** Each engine's speedups, side by side, and whether they agree with the paper's first claim. */
async function llamaCppSpeed(variants: Variant[], settings: GenBenchSettings, ours: GenBenchModel[], dtype: DType, L: number): Promise<void> {
  const ggufDir = path.join(outDir, 'gguf');
  // every variant loaded into memory at once, timed in alternation run by run (as ours in lockstep)
  const engines: LlamaCppEngine[] = [];
  let theirs: GenBenchModel[];
  try {
    const targets = [];
    for (const v of variants) {
      const file = cachedGgufForModel(() => v.model, `tinyllama-${L}L-${v.name}`, dtype, ggufDir);
      log(`speed: llama.cpp loads ${path.basename(file)}`);
      const engine = await LlamaCppEngine.open(file, { contextSize: settings.promptLen + settings.newTokens + 1, threads: a.threads ? Number(a.threads) : undefined, preload: true });
      engines.push(engine);
      targets.push({ name: v.name, target: { params: countParams(v.model.config), vocabSize: v.model.config.vocabSize, maxPositionEmbeddings: v.model.config.maxPositionEmbeddings, time: (p: number[], B: number, n: number) => engine.timeGeneration(p, B, n) } satisfies GenerationTarget });
    }
    theirs = await benchAlternating(targets, settings, (name, b, i, n, ms) => log(`  llama.cpp ${name} batch ${b} run ${i}/${n}${i <= settings.warmup ? ' (warm-up)' : ''}: ${(ms / 1000).toFixed(2)} s`));
  } finally {
    for (const e of engines) await e.dispose();
  }
  writeJson('bench-tinyllama-llamacpp.json', { kind: 'bench', models: theirs, settings: { ...settings, engine: 'llama.cpp (node-llama-cpp 3.21.1, CPU)', dtype, layers: L, lockstep: false, alternating: 'run by run', preloaded: true } });
  md.push(`### Both engines: decode speedups over the original (${dtype})`, '',
    `llama.cpp runs the same variants exported to GGUF, all loaded into memory, timed in alternation run by run (not step by step; depth and width variants as \`llama\` architecture: uniform blocks). Our engine's numbers are the lockstep ones above.`, '');
  const claims: string[] = [];
  for (const B of settings.batchSizes) {
    const so = speedups(ours, B), st = speedups(theirs, B);
    md.push(`#### Batch ${B}`, '', '| variant | params | ours: decode tokens/s | ours: speedup | llama.cpp: decode tokens/s | llama.cpp: speedup |', '|---|---:|---:|---:|---:|---:|');
    variants.forEach((v, k) => {
      const ro = ours[k]!.results.find((x) => x.batch === B)!, rt = theirs[k]!.results.find((x) => x.batch === B)!;
      md.push(`| ${v.name} | ${(ours[k]!.params / 1e6).toFixed(1)}M | ${ro.decodeTokensPerSec.toFixed(2)} | ${so[k]!.decode.toFixed(2)}× | ${rt.decodeTokensPerSec.toFixed(2)} | ${st[k]!.decode.toFixed(2)}× |`);
    });
    md.push('');
    for (const ratio of ratios) {
      const d = variants.findIndex((v) => v.kind === 'depth' && v.ratio === ratio), w = variants.findIndex((v) => v.kind === 'width' && v.ratio === ratio);
      for (const [engine, sp, models] of [['ours', so, ours], ['llama.cpp', st, theirs]] as const) {
        claims.push(`- ${engine}, ${pct(ratio)} removed, batch ${B}: ${claimCheck(ratio, sp[d]!.decode, sp[w]!.decode, noiseOf(models, [0, d, w], B))}`);
      }
    }
  }
  md.push("The paper's claim (its Table 2, GPU, batch 1: depth pruning ≈ 1.2× at 20% and ≈ 1.5× at 35%, width pruning ≈ 1.0×), checked on each engine's measurements:", '', ...claims, '',
    'Why: on a CPU, decoding at batch 1 is bound by reading the weights, so width pruning gains its share of removed bytes just as depth pruning does: the paper\'s "width ≈ 1.0×" comes from GPUs, where a batch-1 step is bound by kernel launches and narrower matrices take as long as wide ones. Removing whole blocks also removes their per-block fixed costs (thread syncs, norms, attention over the cache), which width pruning keeps: what is left of the depth advantage here. At batch 16 the matrices do more work per byte, and the gap depends on how well each engine keeps narrower GEMMs efficient.', '');
}

/** Relative run-to-run noise of the decode speeds of these variants (the largest std/mean). */
function noiseOf(models: GenBenchModel[], idx: number[], B: number): number {
  return Math.max(...idx.map((k) => { const r = models[k]!.results.find((x) => x.batch === B)!; return r.decodeStd / r.decodeMs; }));
}

/** The paper's batch-1 claim against one engine's speedups: each half on its own, and the depth-width gap against the noise. */
function claimCheck(ratio: number, depth: number, width: number, noise: number): string {
  const paperDepth = ratio < 0.3 ? 1.2 : 1.5;
  const depthOk = depth >= 0.9 * paperDepth, widthOk = width <= 1.1;
  const gap = depth / width - 1, significant = Math.abs(gap) > 2 * noise;
  return `depth ${depth.toFixed(2)}× (paper ≈ ${paperDepth}×: ${depthOk ? 'reproduces' : 'does not reproduce'}), width ${width.toFixed(2)}× (paper ≈ 1.0×: ${widthOk ? 'reproduces' : 'does not reproduce: width pruning speeds decoding up too'}); depth ${gap >= 0 ? 'faster' : 'slower'} than width by ${(100 * Math.abs(gap)).toFixed(1)}% (${significant ? 'more than' : 'within'} twice the run-to-run noise, ±${(100 * noise).toFixed(1)}%)`;
}

// ---- quality: stories260K --------------------------------------------------------------------------

/** TinyStories rows as ../shared/README.md's known figure: BOS per paragraph, first 20,000 tokens, windows of 512. */
function storiesRows(tok: TextTokenizer, paras: string[]): { rows: number[][]; used: number } {
  const stream: number[] = [];
  let used = 0;
  for (const p of paras) {
    if (stream.length >= 20000) break;
    stream.push(...tok.encode(p, { addSpecialTokens: true }));
    used++;
  }
  const ids = stream.slice(0, 20000), rows: number[][] = [];
  for (let i = 0; i + 512 <= ids.length; i += 512) rows.push(ids.slice(i, i + 512));
  return { rows, used };
}

async function quality(): Promise<void> {
  const models = path.join(outDir, 'models');
  const src = path.join(models, 'stories260K');
  if (!fs.existsSync(src)) importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: src });
  const tok = loadTokenizer(src);
  const paras = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8').split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  const stories = storiesRows(tok, paras);
  // Calibration: TinyStories paragraphs after the evaluated ones, three to a document.
  const rest = paras.slice(stories.used), docs: string[] = [];
  for (let i = 0; i + 3 <= rest.length; i += 3) docs.push(rest.slice(i, i + 3).join(' ').replace(/\s+/g, ' '));
  const calibFile = path.join(outDir, 'calib-tinystories.txt');
  fs.writeFileSync(calibFile, docs.join('\n') + '\n');
  const calib: CalibSource = { data: calibFile, n: Number(a['calib-n']), seqLen: 128, seed: 1234 };
  const wikiAll = pplWindows(readLines(sharedDir('data/eval/wikitext2/wiki.test.raw')), tok, 128, 'first');
  const wiki = wikiAll.slice(0, Number(a['wiki-windows']));
  const base = loadModel(src), P0 = countParams(base.config);
  const cs = calibrationSet(src, calib);

  const variants: { name: string; dir: string; kind: string }[] = [{ name: 'original', dir: src, kind: 'original' }];
  const roundTrips: string[] = [];
  for (const ratio of ratios) {
    const tag = Math.round(ratio * 100);
    const dDir = path.join(models, `depth-ppl-${tag}`);
    log(`quality: depth pruning (PPL criterion) to ${tag}% of the parameters...`);
    const d = await pruneModelDir(src, dDir, 'ppl', calib, { ratio, params: true, protect: [0, 0] }, true);
    variants.push({ name: `depth-ppl-${tag}% (blocks ${d.removed.join(',')})`, dir: dDir, kind: 'depth' });
    for (const method of ['wanda-sp', 'flap'] as WidthMethod[]) {
      log(`quality: ${method} to ${d.paramsAfter} parameters...`);
      const o = { method, target: { params: d.paramsAfter } };
      const r = await pruneWidth(base, cs.batches, o);
      const wDir = path.join(models, `${method}-${tag}`);
      saveModel(r.pruned, wDir, { sourceDir: src, force: true, extraFiles: { 'pruning.json': widthInfo(src, o, r, cs.settings) } });
      // the saved folder must give exactly the in-memory model's logits
      const row = Int32Array.from(stories.rows[0]!);
      const [x, y] = await Promise.all([r.pruned, loadModel(wDir)].map(async (m) => (await new LlamaRunner(m).forward(row, 1, row.length, { logits: true })).logits!));
      const same = x!.length === y!.length && x!.every((v, i) => v === y![i]);
      roundTrips.push(`${method}-${tag}%: ${same ? 'identical logits' : 'LOGITS DIFFER'}`);
      variants.push({ name: `${method}-${tag}%`, dir: wDir, kind: 'width' });
    }
  }
  const rows: Record<string, string | number>[] = [];
  const loaded: { name: string; run: LlamaRunner }[] = [];
  md.push('## Quality: stories260K (real weights)', '',
    `Depth: PPL criterion (no "+" protection: 5 blocks), blocks removed to come closest to each parameter ratio. Width: Wanda-sp (uniform per block, sequential) and FLAP (WIFV, global allocation, bias compensation) pruned to the depth variant's parameter count (±1%). Calibration for all: ${cs.batches.reduce((n, b) => n + b.B, 0)} windows of 128 tokens from TinyStories paragraphs not used for evaluation. TinyStories PPL: the known-figure procedure (first 20,000 tokens, windows of 512, BOS per paragraph; the original scores NLL ≈ 1.409). WikiText-2 PPL: the first ${wiki.length} of ${wikiAll.length} windows of 128 tokens of the raw test split (out of domain for a 512-token TinyStories vocabulary, so only the ranking matters).`, '',
    '| variant | params | removed | structure | TinyStories PPL | WikiText-2 PPL |', '|---|---:|---:|---|---:|---:|');
  for (const v of variants) {
    const m = loadModel(v.dir), run = new LlamaRunner(m);
    const ts = await perplexity(run, stories.rows, 8), wk = await perplexity(run, wiki, 16);
    const P = countParams(m.config);
    log(`quality: ${v.name}: TinyStories ${ts.ppl.toFixed(3)}, WikiText-2 ${wk.ppl.toFixed(1)}`);
    md.push(`| ${v.name} | ${(P / 1e3).toFixed(1)}K | ${pct(1 - P / P0)} | ${shapeOf(m.config)} | ${ts.ppl.toFixed(3)} | ${wk.ppl.toFixed(1)} |`);
    rows.push({ variant: v.name, kind: v.kind, params: P, removed_pct: +(100 * (1 - P / P0)).toFixed(2), structure: shapeOf(m.config), tinystories_ppl: +ts.ppl.toFixed(4), wikitext2_ppl: +wk.ppl.toFixed(3) });
    loaded.push({ name: v.name, run });
  }
  md.push('', `Width-pruned folders saved, loaded back and run on a TinyStories window: ${roundTrips.join('; ')}.`, '');
  const s: GenBenchSettings = { batchSizes: nums(a['stories-batch-sizes']!), promptLen: 12, newTokens: Number(a['stories-new-tokens']), warmup: 1, repeats: Number(a['stories-repeats']), seed: 0 };
  log('quality: speed of the stories260K variants...');
  const res = await benchLockstep(loaded, s);
  md.push('### stories260K speed: a tiny model', '', `Prompt 12, ${s.newTokens} new tokens, 1 warm-up, mean ± std of ${s.repeats} lockstep runs. At this size every GEMM is tiny and time goes to fixed per-block costs (and to how well the kernels handle the odd widths width pruning leaves), the regime the paper's GPU finding comes from.`, '',
    `| variant | ${s.batchSizes.map((b) => `batch ${b}: decode tokens/s | speedup`).join(' | ')} |`, `|---|${s.batchSizes.map(() => '---:|---:').join('|')}|`);
  const sps = s.batchSizes.map((b) => speedups(res, b));
  res.forEach((m, k) => {
    const cells = s.batchSizes.map((b, i) => {
      const r = m.results.find((x) => x.batch === b)!;
      rows[k]![`decode_tokens_per_s_batch${b}`] = +r.decodeTokensPerSec.toFixed(1);
      rows[k]![`decode_speedup_batch${b}`] = +sps[i]![k]!.decode.toFixed(3);
      return `${r.decodeTokensPerSec.toFixed(0)} ± ${(r.decodeTokensPerSec * r.decodeStd / r.decodeMs).toFixed(0)} | ${sps[i]![k]!.decode.toFixed(2)}×`;
    });
    md.push(`| ${m.name} | ${cells.join(' | ')} |`);
  });
  md.push('');
  const bj = { kind: 'bench' as const, models: res, settings: { ...s, model: 'stories260K', lockstep: true } };
  writeJson('bench-stories260k.json', bj);
  await charts('stories260k', bj);
  writeJson('quality.json', { kind: 'summary', title: 'Depth vs width: stories260K quality at matched parameter counts', rows });
}

const t0 = performance.now();
if (!a['no-speed']) await speed();
if (!a['no-quality']) {
  if (hasShared()) await quality();
  else md.push('## Quality', '', 'Skipped: ../shared (stories260K, TinyStories, WikiText-2) not found.', '');
}
md.push(`Total run time ${((performance.now() - t0) / 60000).toFixed(1)} min.`, '');
fs.writeFileSync(path.join(outDir, 'results.md'), md.join('\n'));
process.stdout.write(md.join('\n'));
