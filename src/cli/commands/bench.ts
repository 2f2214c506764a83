import { guardOutput } from '../../io/output-guard.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadModel, inspectModel } from '../../io/model-folder.js';
import { decodeMemory } from '../../model/memory.js';
import { preflight } from '../../util/memory.js';
import { LlamaRunner } from '../../model/llama.js';
import type { LlamaModel } from '../../model/weights.js';
import type { DType } from '../../engine/dtype.js';
import { randomModel, TINYLLAMA_CONFIG } from '../../bench/random-model.js';
import { benchModel, fullGc, DEFAULT_GEN_BENCH, type GenBenchModel, type GenBenchSettings } from '../../bench/generation.js';
import { benchLockstep } from '../../bench/lockstep.js';
import { copyBandwidth, weightBytesPerToken, engineBytesPerToken } from '../../bench/membw.js';
import { benchMarkdown, boundMarkdown, type BoundRow } from '../../bench/bench-table.js';
import { latencyChart, throughputChart } from '../../report/charts.js';
import { renderSvg } from '../../report/render.js';
import type { BenchFile } from '../../report/schemas.js';
import { UserError } from '../../util/errors.js';
import { int, intList, printJson } from '../options.js';
import { engineOptions, type EngineOpts } from '../engine-options.js';
import { parseConfig, countParams } from '../../io/config.js';
import { readJson } from '../../io/model-folder.js';
import { LlamaCppEngine } from '../../llamacpp/engine.js';
import { cachedGgufForFolder, cachedGgufForModel } from '../../llamacpp/gguf-cache.js';
import type { GgufDtype } from '../../export/gguf-llama.js';
import type { GenerationTarget } from '../../bench/generation.js';

/** A model to benchmark, built only when its turn comes (one in memory at a time unless --interleave). */
export interface ModelSource {
  name: string;
  load: () => LlamaModel;
  /** the llama.cpp engine on this model's cached GGUF (default dtype: the model's storage dtype) */
  llamaCpp: (o: EngineOpts, contextSize: number) => Promise<{ engine: LlamaCppEngine; params: number; vocabSize: number; maxPositionEmbeddings: number; dtype: GgufDtype }>;
}

/** llama.cpp on a GGUF file read into memory (no page faults in the timings), with a float32 KV cache for f32 exports. */
async function openGguf(file: string, dtype: GgufDtype, contextSize: number, threads?: number): Promise<LlamaCppEngine> {
  return LlamaCppEngine.open(file, { contextSize, f32Cache: dtype === 'f32', threads, preload: true });
}

/**
 * `tinyllama[:layers][:dtype]`: random weights in TinyLlama-1.1B's shapes (speed depends only on
 * shapes), e.g. tinyllama, tinyllama:11, tinyllama:22:f32. Default 22 layers, bf16.
 */
export function randomSource(spec: string): ModelSource {
  const [kind, ...rest] = spec.split(':');
  if (kind !== 'tinyllama') throw new UserError(`--random: unknown model '${kind}' (known: tinyllama[:layers][:dtype])`);
  let layers = TINYLLAMA_CONFIG['num_hidden_layers'] as number, dtype: DType = 'bf16';
  for (const p of rest) {
    if (p === 'f32' || p === 'bf16' || p === 'f16') dtype = p;
    else if (/^\d+$/.test(p) && Number(p) >= 1) layers = Number(p);
    else throw new UserError(`--random: bad part '${p}' in '${spec}' (expected a layer count or f32/bf16/f16)`);
  }
  const name = `tinyllama-shape-${layers}L-${dtype}`;
  const load = () => randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: layers }, dtype);
  return {
    name, load,
    llamaCpp: async (o, contextSize) => {
      const d = o.ggufDtype ?? dtype;
      const cfg = parseConfig({ ...TINYLLAMA_CONFIG, num_hidden_layers: layers });
      const file = cachedGgufForModel(load, name, d, o.ggufCache);
      return { engine: await openGguf(file, d, contextSize, o.threads), params: countParams(cfg), vocabSize: cfg.vocabSize, maxPositionEmbeddings: cfg.maxPositionEmbeddings, dtype: d };
    },
  };
}

export function folderSource(dir: string): ModelSource {
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new UserError(`model folder not found (no config.json): ${dir}`);
  return {
    name: path.basename(path.resolve(dir)), load: () => loadModel(dir),
    llamaCpp: async (o, contextSize) => {
      const raw = readJson(path.join(dir, 'config.json'));
      const cfg = parseConfig(raw);
      const stored = raw['torch_dtype'] === 'bfloat16' ? 'bf16' : raw['torch_dtype'] === 'float16' ? 'f16' : 'f32';
      const d = o.ggufDtype ?? stored;
      const file = cachedGgufForFolder(dir, d, o.ggufCache);
      return { engine: await openGguf(file, d, contextSize, o.threads), params: countParams(cfg), vocabSize: cfg.vocabSize, maxPositionEmbeddings: cfg.maxPositionEmbeddings, dtype: d };
    },
  };
}

/** Unique display names (two folders may share a basename). */
function uniqueNames(sources: ModelSource[]): void {
  const seen = new Map<string, number>();
  for (const s of sources) {
    const k = (seen.get(s.name) ?? 0) + 1;
    seen.set(s.name, k);
    if (k > 1) s.name = `${s.name} #${k}`;
  }
}

/** The JSON `shorten bench` writes (the report's "bench" kind, plus our extra fields). */
export function benchJson(models: GenBenchModel[], settings: Record<string, unknown>): BenchFile & { models: GenBenchModel[] } {
  return { kind: 'bench', models, settings };
}

/** bench.json, bench.md and the two charts into `out`. */
export async function writeBenchOutputs(out: string, json: BenchFile, markdown: string): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'bench.json'), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(out, 'bench.md'), markdown);
  for (const c of [latencyChart([json]), throughputChart([json])]) fs.writeFileSync(path.join(out, `${c.name}.svg`), await renderSvg(c.spec));
}

interface BenchOpts extends EngineOpts {
  model: string[]; random: string[]; batchSizes: number[]; promptLen: number; newTokens: number; warmup: number; warmupTokens?: number;
  repeats: number; seed: number; interleave?: boolean; membw?: boolean; json?: boolean; out?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerBench(program: Command): void {
  const d = DEFAULT_GEN_BENCH;
  engineOptions(program.command('bench')
    .description('generation latency and throughput over batch sizes (a short prompt replicated over the batch, fixed new tokens), models side by side')
    .option('--model <dir>', 'model folder (repeat for several)', collect, [])
    .option('--random <spec>', 'random weights of known shapes: tinyllama[:layers][:f32|bf16] (repeatable)', collect, [])
    .option('--batch-sizes <list>', 'batch sizes', intList('--batch-sizes'), d.batchSizes)
    .option('--prompt-len <n>', 'prompt tokens', int('--prompt-len'), d.promptLen)
    .option('--new-tokens <n>', 'generated tokens per row', int('--new-tokens'), d.newTokens)
    .option('--warmup <n>', 'discarded warm-up runs per batch size', int('--warmup'), d.warmup)
    .option('--warmup-tokens <n>', 'new tokens of a warm-up run (default: --new-tokens)', int('--warmup-tokens'))
    .option('--repeats <n>', 'timed runs per batch size', int('--repeats'), d.repeats)
    .option('--seed <n>', 'seed of the random prompt', int('--seed'), d.seed)
    .option('--interleave', 'keep all models loaded and run them in lockstep, one decode step each in turn (fair under changing load; peak RSS is then process-wide)')
    .option('--membw', "measure the machine's copy bandwidth and compare each model's batch-1 decode speed with the bound it sets")
    .option('--json', 'print the results as JSON')
    .option('--out <dir>', 'write bench.json, bench.md, latency.svg and throughput.svg there'), "the model's storage dtype")
    .action(async (o: BenchOpts) => {
      if (o.out) guardOutput(o.out, o.model);
      const sources = [...o.model.map(folderSource), ...o.random.map(randomSource)];
      if (sources.length === 0) throw new UserError('give at least one --model DIR or --random SPEC');
      uniqueNames(sources);
      const s: GenBenchSettings = { batchSizes: o.batchSizes, promptLen: o.promptLen, newTokens: o.newTokens, warmup: o.warmup, warmupTokens: o.warmupTokens, repeats: o.repeats, seed: o.seed };
      const log = (name: string, b: number, i: number, n: number, ms: number) => process.stderr.write(`bench ${name}: batch ${b} run ${i}/${n}${i <= o.warmup ? ' (warm-up)' : ''} ${ms.toFixed(0)} ms\n`);
      const bw = o.membw ? copyBandwidth() : null;
      const results: GenBenchModel[] = [];
      let backendName = '';
      const bounds: BoundRow[] = [];
      const boundOf = (name: string, m: LlamaModel, r: GenBenchModel) => {
        const b1 = r.results.find((x) => x.batch === 1);
        if (!bw || !b1) return;
        const bytes = weightBytesPerToken(m);
        bounds.push({ name, measured: b1.decodeTokensPerSec, bound: (bw.gbPerSec * 1e9) / bytes, engineBound: (bw.gbPerSec * 1e9) / engineBytesPerToken(m), weightMB: bytes / 1e6 });
      };
      if (o.engine !== 'llama.cpp') {
        // our engine: each folder's generation at the largest batch, before any weight is read
        // (--interleave keeps every model loaded: their weights add up)
        const shapes = o.model.map((dir) => ({ dir, ...inspectModel(dir) }));
        const others = (dir: string) => (o.interleave ? shapes.filter((x) => x.dir !== dir).reduce((a, x) => a + x.weightBytes, 0) : 0);
        for (const x of shapes) {
          const e = decodeMemory(x.config, x.weightBytes, { B: Math.max(...o.batchSizes), prompt: o.promptLen, newTokens: o.newTokens + 1 });
          preflight(`bench ${path.basename(path.resolve(x.dir))}`, { ...e, parts: { ...e.parts, ...(o.interleave ? { 'other models': others(x.dir) } : {}) } });
        }
      }
      if (o.engine === 'llama.cpp') {
        if (o.interleave) throw new UserError('--interleave runs our engine only; drop it for --engine llama.cpp');
        if (bw) throw new UserError('--membw compares our engine with its bound; drop it for --engine llama.cpp');
        backendName = 'llama.cpp (node-llama-cpp 3.21.1, CPU)';
        const dtypes: string[] = [];
        for (const src of sources) {
          const l = await src.llamaCpp(o, s.promptLen + s.newTokens + 1);
          const target: GenerationTarget = { params: l.params, vocabSize: l.vocabSize, maxPositionEmbeddings: l.maxPositionEmbeddings, time: (p, B, n) => l.engine.timeGeneration(p, B, n) };
          try {
            results.push(await benchModel(src.name, target, s, log));
          } finally {
            await l.engine.dispose();
          }
          dtypes.push(l.dtype);
        }
        backendName += ` ${[...new Set(dtypes)].join('/')}`;
      } else if (o.interleave) {
        const loaded = sources.map((src) => ({ name: src.name, model: src.load() }));
        const runs = loaded.map((m) => ({ name: m.name, run: new LlamaRunner(m.model) }));
        const r = await benchLockstep(runs, s, log);
        backendName = runs[0]!.run.be.name;
        results.push(...r);
        loaded.forEach((m, k) => boundOf(m.name, m.model, r[k]!));
      } else {
        for (const src of sources) {
          let model: LlamaModel | null = src.load();
          const run = new LlamaRunner(model);
          const r = await benchModel(src.name, run, s, log);
          backendName = run.be.name;
          results.push(r);
          boundOf(src.name, model, r);
          model = null;
          fullGc();
        }
      }
      const settings: Record<string, unknown> = {
        engine: o.engine, promptLen: s.promptLen, newTokens: s.newTokens, warmup: s.warmup, repeats: s.repeats, lockstep: !!o.interleave,
        backend: backendName, cpus: (await import('node:os')).cpus().length,
        ...(bw ? { copyBandwidthGBs: bw.gbPerSec } : {}),
      };
      const json = benchJson(results, settings);
      const md = benchMarkdown(results) + (bw && bounds.length ? '\n' + boundMarkdown(bounds, bw.gbPerSec) : '');
      if (o.out) await writeBenchOutputs(o.out, json, md);
      if (o.json) printJson(bw ? { ...json, bounds } : json);
      else process.stdout.write(md);
    });
}
