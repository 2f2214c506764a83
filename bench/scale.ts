/**
 * Real model sizes: peak memory and wall time of each stage as its own `shorten` process, next to
 * the preflight's estimate for it, on a random bf16 model of a real shape written to disk once
 * (sharded as the hub shards it, tensor by tensor: the whole model is never in memory here).
 *
 *   npm run bench:scale -- --shape tinyllama|llama2-7b|llama3-8b [--stages ppl,magnitude,taylor,...]
 *                          [--n 10] [--seq-len 128] [--recompute]
 *
 * Stages: ppl (load + perplexity of 2x128 ids), magnitude, bi, angular, ppl-criterion, sleb-1x (one
 * SLEB round on 2x128), taylor, prune (surgery of 25% of the blocks), eval-ppl (16 WikiText-2
 * windows), zeroshot (2 documents of each task), generate (8 tokens), bench (batch 1 and 4),
 * lora-1x256 (one LoRA step, micro-batch 1x256, frozen bf16 base, gradient checkpointing).
 * --estimate-only prints the preflight's estimates without writing or running anything. Peaks are the kernel's maxRSS of each process; estimates come from the same
 * functions the preflight uses. Prints a Markdown table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseConfig } from '../src/io/config.js';
import { TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { writeRandomFolder } from '../src/bench/random-folder.js';
import { forwardMemory, loraStepMemory, decodeMemory, zeroshotMemory, paramElements, RUNTIME_BYTES } from '../src/model/memory.js';
import { CONTEXT_BATCH_TOKENS } from '../src/eval/loglikelihood.js';
import { criterionMemory } from '../src/prune/memory.js';
import { batchesFromRows } from '../src/prune/calib-batch.js';
import type { CriterionName } from '../src/prune/score.js';
import { totalBytes, type MemoryEstimate } from '../src/util/memory.js';
import { projectDir } from '../src/util/shared.js';
import { argString, argNumber, argFlag } from '../src/util/args.js';
import { mulberry32 } from '../src/util/rng.js';

const SHAPES: Record<string, Record<string, unknown>> = {
  tinyllama: TINYLLAMA_CONFIG,
  'llama2-7b': { ...TINYLLAMA_CONFIG, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096 },
  'llama3-8b': { ...TINYLLAMA_CONFIG, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8,
    vocab_size: 128256, rope_theta: 500000, max_position_embeddings: 8192, bos_token_id: 128000, eos_token_id: 128001 },
};

const shapeName = argString('shape', 'tinyllama');
const raw = SHAPES[shapeName];
if (!raw) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
const cfg = parseConfig(raw);
const n = argNumber('n', 10), seqLen = argNumber('seq-len', 128);
const stages = argString('stages', 'ppl,magnitude,bi,angular,sleb-1x,ppl-criterion,taylor,prune,eval-ppl,zeroshot,generate,bench,lora-1x256').split(',');
const recompute = argFlag('recompute');
const root = projectDir('runs', 'scale', shapeName);
const modelDir = path.join(root, 'model');
const G = 2 ** 30;

// --estimate-only: print the preflight's estimate of every stage, without writing or running anything
const estimateOnly = argFlag('estimate-only');
if (!estimateOnly && !fs.existsSync(modelDir)) {
  console.log(`writing a random ${shapeName} model to ${path.relative(process.cwd(), modelDir)} ...`);
  writeRandomFolder(modelDir, raw);
  // the shards' arrays are garbage now: give their memory back before the stages measure theirs
  (globalThis as { gc?: () => void }).gc?.();
}
const weightBytes = estimateOnly ? 2 * paramElements(cfg) : JSON.parse(fs.readFileSync(path.join(modelDir, 'model.safetensors.index.json'), 'utf8')).metadata.total_size as number;
fs.mkdirSync(root, { recursive: true });

const rng = mulberry32(7);
const rows = (r: number, t: number) => [...Array(r)].map(() => [...Array(t)].map(() => 3 + Math.floor(rng() * (cfg.vocabSize - 3))));
const calibFile = path.join(root, `calib-${n}x${seqLen}.json`);
fs.writeFileSync(calibFile, JSON.stringify({ input_ids: rows(n, seqLen) }));
const pplFile = path.join(root, 'ppl-2x128.json');
fs.writeFileSync(pplFile, JSON.stringify({ input_ids: rows(2, 128) }));
const calib = batchesFromRows(JSON.parse(fs.readFileSync(calibFile, 'utf8')).input_ids);

/** Long Alpaca-style records (the base's tokenizer is not needed: LoRA reads the folder's). */
function alpacaFile(): string {
  const f = path.join(root, 'alpaca.json');
  const words = 'the model reads a long instruction and writes a long answer about pruning blocks'.split(' ');
  const text = (k: number) => [...Array(k)].map((_, i) => words[i % words.length]).join(' ');
  fs.writeFileSync(f, JSON.stringify([...Array(4)].map(() => ({ instruction: text(60), input: '', output: text(300) }))));
  return f;
}

interface Stage { args: string[]; estimate: MemoryEstimate }
const score = (c: CriterionName, extra: string[] = [], file = calibFile, batches = calib): Stage => ({
  args: ['score', '--model', modelDir, '--criterion', c, '--calib-ids', file, '--json', ...extra, ...(recompute && c === 'taylor' ? ['--recompute'] : [])],
  estimate: criterionMemory(c, cfg, weightBytes, batches, c === 'taylor' && recompute ? true : undefined),
});
// SLEB: each removal round is a full ppl-criterion pass (~L/2 forwards with shared prefixes) and
// rounds do not add memory: one round on 2x128 tokens shows its peak at a tenth of the time
const slebFile = path.join(root, 'calib-2x128.json');
fs.writeFileSync(slebFile, JSON.stringify({ input_ids: rows(2, 128) }));
const slebCalib = batchesFromRows(JSON.parse(fs.readFileSync(slebFile, 'utf8')).input_ids);
const quarter = String(Math.round(cfg.numLayers / 4));
const PROMPT = 'Once upon a time, there was a little girl who';
const STAGES: Record<string, () => Stage> = {
  ppl: () => ({ args: ['ppl', '--model', modelDir, '--ids', pplFile, '--json'], estimate: forwardMemory(cfg, weightBytes, { B: 2, T: 128 }) }),
  magnitude: () => score('magnitude'),
  bi: () => score('bi'),
  'ppl-criterion': () => score('ppl'),
  angular: () => score('angular', ['--remove', quarter]),
  'sleb-1x': () => score('sleb', ['--remove', '1'], slebFile, slebCalib),
  // WikiText-2 windows as the paper scores them (128 tokens, 8 per forward), the first 16
  'eval-ppl': () => ({
    args: ['eval', 'ppl', '--model', modelDir, '--datasets', 'wikitext2', '--max-windows', '16', '--json'],
    estimate: forwardMemory(cfg, weightBytes, { B: 8, T: 128 }),
  }),
  // the seven zero-shot tasks, two documents each
  zeroshot: () => ({ args: ['eval', 'zeroshot', '--model', modelDir, '--limit', '2', '--json'], estimate: zeroshotMemory(cfg, weightBytes, CONTEXT_BATCH_TOKENS) }),
  generate: () => ({
    args: ['generate', '--model', modelDir, '--prompt', PROMPT, '--max-new-tokens', '8', '--json'],
    estimate: decodeMemory(cfg, weightBytes, { B: 1, prompt: 13, newTokens: 8 }),
  }),
  bench: () => ({
    args: ['bench', '--model', modelDir, '--batch-sizes', '1,4', '--prompt-len', '16', '--new-tokens', '8', '--repeats', '1', '--warmup', '0', '--json'],
    estimate: decodeMemory(cfg, weightBytes, { B: 4, prompt: 16, newTokens: 9 }),
  }),
  taylor: () => score('taylor'),
  'lora-1x256': () => ({
    args: ['train', 'lora', '--model', modelDir, '--data', alpacaFile(), '--out', path.join(root, 'lora'), '--force', '--micro-batch', '1', '--batch-size', '1', '--cutoff', '256', '--max-steps', '1', '--val-size', '0', '--gradient-checkpointing', 'on', '--json'],
    estimate: loraStepMemory(cfg, weightBytes, { B: 1, T: 256 }, 8, ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], true),
  }),
  prune: () => {
    const out = path.join(root, 'pruned');
    fs.rmSync(out, { recursive: true, force: true });
    const k = Math.round(cfg.numLayers / 4);
    const blocks = [...Array(k).keys()].map((i) => cfg.numLayers - 3 - i).sort((a, b) => a - b);
    return { args: ['prune', '--model', modelDir, '--blocks', blocks.join(','), '--out', out, '--json'], estimate: { parts: { weights: weightBytes, runtime: RUNTIME_BYTES }, lower: '' } };
  },
};

if (estimateOnly) {
  console.log(`${shapeName}: ${(weightBytes / G).toFixed(2)} GiB of bf16 weights, calibration ${n}x${seqLen}: preflight estimates (GiB)`);
  for (const name of stages) console.log(`| ${name} | ${(totalBytes(STAGES[name]!().estimate) / G).toFixed(2)} |`);
  process.exit(0);
}

const table: string[] = [`| stage | wall s | peak RSS GiB | estimate GiB | estimate / peak |`, `|---|---:|---:|---:|---:|`];
console.log(`${shapeName}: ${(weightBytes / G).toFixed(2)} GiB of bf16 weights, calibration ${n}x${seqLen}${recompute ? ', taylor --recompute' : ''}`);
for (const name of stages) {
  const mk = STAGES[name];
  if (!mk) throw new Error(`unknown stage ${name} (known: ${Object.keys(STAGES).join(', ')})`);
  const st = mk();
  const peakFile = path.join(root, `peak-${name}.json`);
  fs.rmSync(peakFile, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [projectDir('bin', 'shorten.js'), ...st.args], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1', SHORTENED_PEAK_FILE: peakFile } });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) { console.log(`${name}: exit ${r.status}: ${r.stderr.trim()}`); table.push(`| ${name} | ${wall.toFixed(0)} | failed: ${r.stderr.trim().slice(0, 80)} | | |`); continue; }
  const peak = (JSON.parse(fs.readFileSync(peakFile, 'utf8')) as { peakRssBytes: number }).peakRssBytes;
  const est = totalBytes(st.estimate);
  const row = `| ${name} | ${wall.toFixed(0)} | ${(peak / G).toFixed(2)} | ${(est / G).toFixed(2)} | ${(est / peak).toFixed(2)} |`;
  console.log(row);
  table.push(row);
}
console.log(`\n${table.join('\n')}`);
