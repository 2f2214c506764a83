/**
 * Our engine against PyTorch on the same CPU, in one sequential run, as one table (issue 11,
 * "Engine speed"): raw GEMM, forward 10x128, Taylor+ (forward + backward with weight gradients),
 * the PPL criterion (L removals), decode at batch 1 next to the machine's memory-bandwidth bound,
 * and full training of the default model's shape, each with the issue's pass target.
 *
 *   npm run bench:vs-torch [-- --layers 22 --workloads gemm,forward,taylor,pplcrit,decode,train
 *                             --new-tokens 128 --no-torch --no-llamacpp]
 *
 * Both sides read the same random TinyLlama-1.1B-shaped bf16 folder (written once, cached under
 * runs/vs-torch/, or runs/scale/tinyllama/model when bench:scale wrote one); training reads
 * assets/default. PyTorch runs as the anchors of ../shared/anchors (torch_anchor.py,
 * torch_train_anchor.py), one child process per workload and precision, right after our side of
 * that workload, so outside load falls on both. The table goes to stdout and runs/vs-torch/result.md
 * (--quick, a shrunken shape for checking the script, to result-quick.md).
 * Without torch (no interpreter that imports it, or --no-torch) the torch columns show "–".
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { writeRandomFolder } from '../src/bench/random-folder.js';
import { gemmBuffers, gemmRate } from '../src/bench/gemm-rate.js';
import { copyBandwidth, weightBytesPerToken } from '../src/bench/membw.js';
import { benchModel, fullGc, type GenerationTarget } from '../src/bench/generation.js';
import { LlamaCppEngine } from '../src/llamacpp/engine.js';
import { cachedGgufForFolder } from '../src/llamacpp/gguf-cache.js';
import { vsTorchRows, rowsMarkdown, type VsTorchResults } from '../src/bench/vs-torch-table.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import type { LlamaModel } from '../src/model/weights.js';
import { getBackend, backendWithThreads, backendWithCompute, bf16ComputeAvailable } from '../src/engine/select.js';
import { taylorScores } from '../src/prune/criteria/taylor.js';
import { pplScores } from '../src/prune/criteria/ppl.js';
import { masterParams, accumulateModelGrads } from '../src/train/cpt.js';
import { AdamW, gradNorm, clipFactor } from '../src/train/adamw.js';
import { lmBatch, type Batch } from '../src/train/batch.js';
import { Replicas, replicaWorkers, shareWeights } from '../src/train/replicas.js';
import { cptStepMemory } from '../src/model/memory.js';
import { countParams, type LlamaConfig } from '../src/io/config.js';
import { findTorchPython, torchEnv } from '../src/torchjob/launch.js';
import { openblasCore } from '../src/torchjob/openblas-core.js';
import { projectDir, sharedDir, hasShared } from '../src/util/shared.js';
import { argNumber, argString, argFlag } from '../src/util/args.js';
import { mulberry32 } from '../src/util/rng.js';
import { UserError } from '../src/util/errors.js';

const WORKLOADS = ['gemm', 'forward', 'taylor', 'pplcrit', 'decode', 'train'] as const;
type Workload = (typeof WORKLOADS)[number];

// what the anchors fix: 10x128 calibration tokens, a 12-token prompt, 128 new tokens (torch side)
const B = 10, T = 128, PROMPT = 12, TORCH_NEW_TOKENS = 128;
// torch_train_anchor.py's recipe: micro-batch 16x128, 10 timed steps after one warm-up step,
// AdamW lr 1e-4, betas (0.9, 0.95), weight decay 0.1, eps 1e-8, gradient norm clipped at 1.0
const TRAIN = { B: 16, T: 128, steps: 10, lr: 1e-4, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, eps: 1e-8, maxGradNorm: 1 };
const GEMM = { m: 1024, n: 2048, k: 2048, reps: 5, rounds: 3 };
const DECODE_ROUNDS = 3;

async function main(): Promise<void> {
  const layers = argNumber('layers', 22), newTokens = argNumber('new-tokens', 128);
  // --quick (development only): a narrow model of the same layout and 2 training steps; not a result
  const quick = argFlag('quick');
  if (!(Number.isInteger(layers) && layers >= 1)) throw new UserError('--layers must be a positive integer');
  if (!(Number.isInteger(newTokens) && newTokens >= 2)) throw new UserError('--new-tokens must be at least 2');
  const want = argString('workloads', WORKLOADS.join(',')).split(',').map((w) => w.trim()).filter(Boolean);
  for (const w of want) if (!(WORKLOADS as readonly string[]).includes(w)) throw new UserError(`--workloads: unknown '${w}' (known: ${WORKLOADS.join(', ')})`);
  const has = (w: Workload) => want.includes(w);
  const trainSteps = quick ? 2 : TRAIN.steps;

  const found = argFlag('no-torch') ? { torch: null, why: '--no-torch' } : findTorch();
  const torch = found.torch;
  if (!torch) console.log(`PyTorch: not run (${found.why}); its columns show "–"`);
  // PyTorch's bf16 path is a peer only where the CPU has bf16 arithmetic (AVX-512 BF16, AMX):
  // elsewhere it runs on one thread at a fraction of fp32's speed (a 1.1B forward takes many
  // minutes), so no user would pick it. A short GEMM probe decides before any bf16 workload runs.
  const bf16Probe = torch && (['forward', 'pplcrit', 'decode'] as const).some(has) ? torchBf16Probe(torch.python) : null;
  const torchBf16 = bf16Probe !== null && bf16Probe.bf16 >= bf16Probe.fp32 / 2;
  const bf16Note = bf16Probe && !torchBf16
    ? `PyTorch bf16: not run; on this CPU its bf16 matmul runs at ${bf16Probe.bf16.toFixed(1)} GFLOP/s against ${bf16Probe.fp32.toFixed(1)} in fp32 (no bf16 arithmetic in hardware), so fp32 is the peer; its bf16 cells show "–".`
    : null;
  if (bf16Note) console.log(bf16Note);
  const out = projectDir('runs', 'vs-torch');
  fs.mkdirSync(out, { recursive: true });

  // the model both sides read
  const shape = quick
    ? { ...TINYLLAMA_CONFIG, hidden_size: 256, intermediate_size: 704, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 4096, num_hidden_layers: layers }
    : { ...TINYLLAMA_CONFIG, num_hidden_layers: layers };
  const scaleDir = projectDir('runs', 'scale', 'tinyllama', 'model');
  const modelDir = !quick && layers === 22 && fs.existsSync(path.join(scaleDir, 'config.json')) ? scaleDir : path.join(out, `${quick ? 'quick' : 'tinyllama'}-${layers}L`, 'model');
  const needModel = (['forward', 'taylor', 'pplcrit', 'decode'] as const).some(has);
  if (needModel && !fs.existsSync(modelDir)) {
    console.log(`writing a random ${quick ? 'narrow (--quick)' : 'TinyLlama-1.1B'}-shaped bf16 model, ${layers} layers, to ${path.relative(process.cwd(), modelDir)} ...`);
    writeRandomFolder(modelDir, shape);
    fullGc();
  }
  const trainDir = projectDir('assets', 'default');

  const be = getBackend();
  await be.gemm({ a: new Float32Array(1), b: new Float32Array(1), c: new Float32Array(1), m: 1, n: 1, k: 1 }); // settles which backend runs, for the machine line
  const r: VsTorchResults = {};
  const loadStart = os.loadavg();
  console.log(machineLine(torch, be.name, loadStart));

  if (has('gemm')) {
    const label = `raw GEMM ${GEMM.m}×${GEMM.k}×${GEMM.n} fp32`;
    // three rounds, ours then torch's in each, and each side's best: the machine's speed drifts
    // by 10-15% within minutes, and a single pair of measurements seconds apart carries that drift
    // into the ratio (the first calls of a process also run below the steady rate)
    const bufs = gemmBuffers({ m: GEMM.m, n: GEMM.n, k: GEMM.k, bf16: false });
    let ours = 0, peer: number | null = null;
    for (let round = 0; round < GEMM.rounds; round++) {
      const x = await gemmRate(be, bufs, GEMM.reps);
      ours = Math.max(ours, x);
      console.log(`[gemm] round ${round + 1}: ours (${be.name}) ${x.toFixed(1)} GFLOP/s`);
      const y = torch ? torchGemm(torch.python) : null;
      if (y !== null) peer = Math.max(peer ?? 0, y);
    }
    console.log(`[gemm] ours: ${ours.toFixed(1)} GFLOP/s (best of ${GEMM.rounds} rounds)`);
    if (torch) console.log(`[gemm] torch.matmul: ${peer?.toFixed(1) ?? 'failed'} GFLOP/s (best of ${GEMM.rounds} rounds)`);
    r.gemm = { label, ours, torch: peer };
  }

  let model: LlamaModel | null = null, run: LlamaRunner | null = null;
  if (needModel) {
    console.log(`loading ${path.relative(process.cwd(), modelDir)} (bf16) ...`);
    model = loadModel(modelDir);
    run = new LlamaRunner(model, be);
  }
  const V = model?.config.vocabSize ?? 0;
  const rng = mulberry32(1);
  const ids = model ? Int32Array.from({ length: B * T }, () => 2 + Math.floor(rng() * (V - 2))) : new Int32Array(0);
  const calib = [{ ids, B, T }];
  // bf16 compute (AMX), PyTorch bf16's arithmetic, where this CPU has it: its own rows beside f32's
  const runBf16 = run && (await bf16ComputeAvailable()) ? new LlamaRunner(model!, backendWithCompute('bf16')) : null;
  let oursForward: number | null = null, oursForwardBf16: number | null = null;
  const forwardBf16Seconds = async (): Promise<number | null> => {
    if (!runBf16 || oursForwardBf16 !== null) return oursForwardBf16;
    await runBf16.forward(ids.subarray(0, 32), 1, 32);
    oursForwardBf16 = await seconds(() => runBf16.forward(ids, B, T));
    console.log(`[forward] ours, bf16 compute: ${oursForwardBf16.toFixed(2)} s for ${B}×${T} tokens`);
    return oursForwardBf16;
  };
  const forwardSeconds = async (): Promise<number> => {
    if (oursForward !== null) return oursForward;
    await run!.forward(ids.subarray(0, 32), 1, 32); // warm-up, as the anchor's 1x32 forward
    oursForward = await seconds(() => run!.forward(ids, B, T));
    console.log(`[forward] ours: ${oursForward.toFixed(2)} s for ${B}×${T} tokens`);
    return oursForward;
  };
  const shapeLabel = `${quick ? 'narrow --quick' : 'TinyLlama-1.1B'} shape, ${plural(layers, 'layer')}`;

  if (has('forward')) {
    const ours = await forwardSeconds(), oursBf16 = await forwardBf16Seconds();
    const fp32 = torch ? anchorField(torch.python, modelDir, 'fp32', 'forward', 'forward_s') : null;
    const bf16 = torch && torchBf16 ? anchorField(torch.python, modelDir, 'bf16', 'forward', 'forward_s') : null;
    r.forward = { label: `forward ${B}×${T} (${shapeLabel}, random bf16 weights)`, ours, oursBf16, fp32, bf16 };
  }
  if (has('taylor')) {
    // its unit is our forward at the time it ran: the mean of one right before and one right after
    // (the machine's speed drifts by 10-15% within minutes; one forward minutes earlier carries that)
    await forwardSeconds(); // warm (measured once for the forward row)
    const before = await seconds(() => run!.forward(ids, B, T));
    const ours = await seconds(() => taylorScores(run!, calib));
    const after = await seconds(() => run!.forward(ids, B, T));
    const fw = (before + after) / 2;
    console.log(`[taylor] ours: ${ours.toFixed(2)} s (${(ours / fw).toFixed(2)} forwards; forward ${before.toFixed(2)} s before, ${after.toFixed(2)} s after)`);
    const fp32 = torch ? anchorField(torch.python, modelDir, 'fp32', 'taylor', 'taylor_s') : null;
    r.taylor = { label: `taylor (forward + backward with weight gradients, ${B}×${T})`, ours, oursForward: fw, fp32 };
  }
  if (has('pplcrit')) {
    const fw = await forwardSeconds();
    const ours = await seconds(() => pplScores(run!, calib));
    console.log(`[pplcrit] ours: ${ours.toFixed(2)} s (${(ours / fw).toFixed(2)} forwards, shared prefixes)`);
    const fwBf16 = await forwardBf16Seconds();
    const oursBf16 = runBf16 ? await seconds(() => pplScores(runBf16, calib)) : null;
    if (oursBf16 !== null) console.log(`[pplcrit] ours, bf16 compute: ${oursBf16.toFixed(2)} s (${(oursBf16 / fwBf16!).toFixed(2)} of its forwards)`);
    const fp32 = torch ? anchorField(torch.python, modelDir, 'fp32', 'pplcrit', 'pplcrit_s') : null;
    const bf16 = torch && torchBf16 ? anchorField(torch.python, modelDir, 'bf16', 'pplcrit', 'pplcrit_s') : null;
    r.pplcrit = { label: `ppl criterion (${plural(layers, 'removal')}, ${B}×${T})`, ours, oursForward: fw, oursBf16, fp32, bf16, bf16NotPeer: bf16Note !== null };
  }
  if (has('decode')) {
    // rounds of the bound (bandwidth / bytes of weights one decode step reads), ours and
    // llama.cpp, and each side's best, as for the GEMM: the machine's memory speed drifts by 10-20%
    // within minutes, and one bound measured before one decode carries that drift into the ratio
    const bytes = weightBytesPerToken(model!);
    const llama = argFlag('no-llamacpp') ? null : await openLlamaCpp(modelDir, model!.config, newTokens);
    let bound = 0, ours = 0, llamacpp: number | null = null;
    try {
      for (let round = 0; round < DECODE_ROUNDS; round++) {
        const bw = copyBandwidth(quick ? 1 << 26 : 1 << 30);
        fullGc();
        const b = (bw.gbPerSec * 1e9) / bytes;
        const g = await benchModel('ours', run!, { batchSizes: [1], promptLen: PROMPT, newTokens, warmup: 1, repeats: 1, seed: 0, warmupTokens: Math.min(8, newTokens) });
        const x = g.results[0]!.decodeTokensPerSec;
        const y = llama ? await llama.decode() : null;
        bound = Math.max(bound, b); ours = Math.max(ours, x);
        if (y !== null) llamacpp = Math.max(llamacpp ?? 0, y);
        console.log(`[decode] round ${round + 1}: copy bandwidth ${bw.gbPerSec.toFixed(1)} GB/s, bound ${b.toFixed(2)} tok/s; ours ${x.toFixed(2)} tok/s (${(100 * x / b).toFixed(0)}%)` +
          (y !== null ? `, llama.cpp ${y.toFixed(2)} (${(100 * y / b).toFixed(0)}%)` : ''));
      }
    } finally {
      await llama?.dispose();
    }
    console.log(`[decode] best of ${DECODE_ROUNDS} rounds: bound ${bound.toFixed(2)} tok/s; ours ${ours.toFixed(2)} tok/s (${(100 * ours / bound).toFixed(0)}% of bound)` +
      (llamacpp !== null ? `; llama.cpp ${llamacpp.toFixed(2)} tok/s (${(100 * llamacpp / bound).toFixed(0)}% of bound)` : ''));
    const bf16 = torch && torchBf16 ? anchorField(torch.python, modelDir, 'bf16', 'decode', 'decode_b1_tok_s') : null;
    const torchNote = newTokens === TORCH_NEW_TOKENS ? '' : `; torch ${TORCH_NEW_TOKENS}`;
    r.decode = { label: `decode batch 1, bf16 weights (${PROMPT}-token prompt, ${newTokens} new tokens${torchNote}; best of ${DECODE_ROUNDS} rounds)`, ours, bound, bf16, llamacpp };
  }
  run = null; model = null;
  fullGc();

  if (has('train')) {
    const { tokensPerSec: ours, replicas } = await trainTokensPerSec(trainDir, trainSteps);
    console.log(`[train] ours: ${ours.toFixed(0)} tok/s (${replicas > 1 ? `${replicas} data-parallel replicas of ${TRAIN.B / replicas} rows` : 'one process'})`);
    const fp32 = torch ? torchTrain(torch.python, trainDir, trainSteps) : null;
    if (torch) console.log(`[train] torch fp32: ${fp32?.toFixed(0) ?? 'failed'} tok/s`);
    const c = JSON.parse(fs.readFileSync(path.join(trainDir, 'config.json'), 'utf8')) as Record<string, number>;
    r.train = { label: `full training, default model's shape (${c['num_hidden_layers']} blocks, hidden ${c['hidden_size']}), ${TRAIN.B}×${TRAIN.T}${replicas > 1 ? ` (ours: ${replicas} replicas × ${TRAIN.B / replicas})` : ''}, AdamW, ${trainSteps} steps`, ours, fp32 };
  }

  const table = rowsMarkdown(vsTorchRows(r));
  const lines = [
    `# Our engine against PyTorch, one sequential run (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    ...(quick ? ['**--quick: shrunken shapes for checking the script; not a result.**', ''] : []),
    machineLine(torch, be.name, loadStart, os.loadavg()),
    ...(torch ? [] : ['', `PyTorch: not run (${found.why}); its columns show "–".`]),
    ...(bf16Note ? ['', bf16Note] : []),
    '',
    table,
    'Speed ratios are above 1 when ours is faster (ours / peer for rates, peer / ours for times). PyTorch runs as ../shared/anchors/torch_anchor.py and torch_train_anchor.py (OpenBLAS presets unset, its best core for this CPU set where it does not know the CPU, OMP_WAIT_POLICY=PASSIVE); its PPL criterion is one removal timed and multiplied by L, as the reference code runs L full forwards.',
  ];
  const md = lines.join('\n') + '\n';
  console.log('\n' + md);
  const file = path.join(out, quick ? 'result-quick.md' : 'result.md'), tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, md);
  fs.renameSync(tmp, file);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

/**
 * llama.cpp's batch-1 decode on a GGUF export of the same folder (bf16, cached under
 * runs/gguf-cache), timed as ours: the same prompt and new tokens, one warm-up run, all cores,
 * the weights read into memory. Null (and why, in one line) where node-llama-cpp cannot load.
 */
async function openLlamaCpp(dir: string, c: LlamaConfig, newTokens: number): Promise<{ decode(): Promise<number | null>; dispose(): Promise<void> } | null> {
  const fail = (e: unknown): null => {
    console.log(`[decode] llama.cpp: not run (${(e instanceof Error ? e.message : String(e)).split('\n')[0]}); its cell shows "–"`);
    return null;
  };
  let engine: LlamaCppEngine;
  try {
    const file = cachedGgufForFolder(dir, 'bf16', undefined, (s) => console.log(s));
    engine = await LlamaCppEngine.open(file, { contextSize: PROMPT + newTokens + 1, preload: true, threads: os.availableParallelism() });
  } catch (e) {
    return fail(e);
  }
  const target: GenerationTarget = { params: countParams(c), vocabSize: c.vocabSize, maxPositionEmbeddings: c.maxPositionEmbeddings, time: (p, b, n) => engine.timeGeneration(p, b, n) };
  return {
    decode: async () => {
      try {
        const g = await benchModel('llama.cpp', target, { batchSizes: [1], promptLen: PROMPT, newTokens, warmup: 1, repeats: 1, seed: 0, warmupTokens: Math.min(8, newTokens) });
        return g.results[0]!.decodeTokensPerSec;
      } catch (e) {
        return fail(e);
      }
    },
    dispose: () => engine.dispose(),
  };
}

interface Torch { python: string; version: string }

/** The interpreter and version of torch, or why there is none. */
function findTorch(): { torch: Torch | null; why: string } {
  const anchor = sharedDir('anchors', 'torch_anchor.py');
  if (!hasShared() || !fs.existsSync(anchor)) return { torch: null, why: `no ${anchor}` };
  const python = findTorchPython();
  if (!python) return { torch: null, why: 'no python3 here imports torch; Debian: apt-get install python3-torch libopenblas0-pthread' };
  const v = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env: torchEnv(python) });
  return { torch: { python, version: v.stdout.trim() || '?' }, why: '' };
}

function machineLine(torch: Torch | null, backend: string, start: number[], end?: number[]): string {
  const cpu = os.cpus();
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const core = torch ? openblasCore(torch.python, torchEnv()) : null;
  const blas = !core?.detected ? '' : core.forced ? `, OpenBLAS core ${core.forced} (set: it picked ${core.detected} for this CPU)` : `, OpenBLAS core ${core.detected}`;
  return `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), load average ${la(start)}${end ? ` at the start, ${la(end)} at the end` : ''}; node ${process.version}, backend ${backend}; torch ${torch?.version ?? '–'}${blas}`;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

/** Run a torch command (the anchors' environment, this process's left as it is); its last stdout line as JSON, or null. */
function torchJson(python: string, args: string[], what: string): Record<string, unknown> | null {
  console.log(`[torch] ${what} ...`);
  const t0 = performance.now();
  const p = spawnSync(python, args, { encoding: 'utf8', env: torchEnv(python), stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  const last = (p.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    if (p.status !== 0) throw new Error(`exit status ${p.status ?? p.signal}`);
    const j = JSON.parse(last) as Record<string, unknown>;
    console.log(`[torch] ${what}: ${last} (${((performance.now() - t0) / 1000).toFixed(0)} s with loading)`);
    return j;
  } catch (e) {
    console.log(`[torch] ${what} failed (${(e as Error).message}); its cell shows "–"`);
    return null;
  }
}

function anchorField(python: string, dir: string, prec: 'fp32' | 'bf16', what: string, field: string): number | null {
  const j = torchJson(python, [sharedDir('anchors', 'torch_anchor.py'), dir, prec, what], `torch_anchor.py ${prec} ${what}`);
  const x = j?.[field];
  return typeof x === 'number' ? x : null;
}

/** Python that times torch.matmul of an m x k by k x n product in `dtype`, best of `reps` after one warm-up call, and prints its GFLOP/s. */
function matmulCode(m: number, n: number, k: number, reps: number, dtype: 'float32' | 'bfloat16'): string {
  return [
    'import json, os, time, torch',
    'torch.set_num_threads(os.cpu_count())',
    `a = torch.full((${m}, ${k}), 0.01, dtype=torch.${dtype}); b = torch.full((${k}, ${n}), 0.01, dtype=torch.${dtype}); c = torch.matmul(a, b)`,
    'best = float("inf")',
    `for _ in range(${reps}):`,
    '    t = time.perf_counter(); torch.matmul(a, b, out=c); best = min(best, time.perf_counter() - t)',
    `print(json.dumps({"gflops": ${2 * m * n * k} / best / 1e9, "threads": torch.get_num_threads()}))`,
  ].join('\n');
}

/** torch.matmul on the raw GEMM shape, fp32, best of a few after one warm-up call. */
function torchGemm(python: string): number | null {
  const { m, n, k, reps } = GEMM;
  const x = torchJson(python, ['-c', matmulCode(m, n, k, reps, 'float32')], 'torch.matmul fp32')?.['gflops'];
  return typeof x === 'number' ? x : null;
}

/** torch.matmul's GFLOP/s in fp32 and bf16 on a decoder-sized product (1 s or so even where bf16 is slow), or null when either failed. */
function torchBf16Probe(python: string): { fp32: number; bf16: number } | null {
  const rate = (dtype: 'float32' | 'bfloat16') => torchJson(python, ['-c', matmulCode(128, 2048, 2048, 3, dtype)], `torch.matmul 128×2048×2048 ${dtype} (bf16 probe)`)?.['gflops'];
  const fp32 = rate('float32'), bf16 = rate('bfloat16');
  return typeof fp32 === 'number' && typeof bf16 === 'number' ? { fp32, bf16 } : null;
}

function torchTrain(python: string, dir: string, steps: number): number | null {
  const x = torchJson(python, [sharedDir('anchors', 'torch_train_anchor.py'), dir, String(TRAIN.B), String(TRAIN.T), String(steps), 'fp32'], 'torch_train_anchor.py fp32')?.['tokens_per_s'];
  return typeof x === 'number' ? x : null;
}

/**
 * Full training as torch_train_anchor.py runs it, with `shorten train cpt`'s pieces: f32 masters
 * of every weight, forward + backward, the global gradient norm clipped, AdamW; one warm-up step,
 * then `steps` timed ones on one fixed random batch of TRAIN.B x TRAIN.T. As `shorten train` runs a
 * small model on several cores, the batch is two micro-batches of half the rows on data-parallel
 * replicas (src/train/replicas.ts; the same sums as one micro-batch up to float rounding, the
 * same tokens per optimizer step as PyTorch's); where replicas are off, one micro-batch.
 */
async function trainTokensPerSec(dir: string, steps: number): Promise<{ tokensPerSec: number; replicas: number }> {
  const model = loadModel(dir);
  const { params } = masterParams(model);
  const byName = new Map(params.map((p) => [p.name, p]));
  const opt = new AdamW(params, { beta1: TRAIN.beta1, beta2: TRAIN.beta2, eps: TRAIN.eps, weightDecay: TRAIN.weightDecay });
  const half = TRAIN.B / 2;
  const workers = await replicaWorkers(model.config, 2, cptStepMemory(model.config, { B: half, T: TRAIN.T }, true), countParams(model.config));
  if (workers > 0) shareWeights(model, params);
  const replicas = workers > 0 ? await Replicas.start(workers, { model, adapters: null, grads: { blocks: true, embed: true, norm: true, lmHead: true } }) : null;
  const run = new LlamaRunner(model, replicas ? backendWithThreads(1) : getBackend());
  const rng = mulberry32(2), V = model.config.vocabSize;
  const rows = Array.from({ length: TRAIN.B }, () => Int32Array.from({ length: TRAIN.T }, () => 2 + Math.floor(rng() * (V - 2))));
  const batches = replicas ? [lmBatch(rows.slice(0, half)), lmBatch(rows.slice(half))] : [lmBatch(rows)];
  const local = async (b: Batch) => {
    const res = await run.forward(b.ids, b.B, b.T, { targets: b.targets, keep: true });
    accumulateModelGrads(byName, await run.backward(res), res.count!);
    return res.count!;
  };
  const step = async () => {
    let count = 0;
    if (replicas) {
      const [c0, r1] = await Promise.all([local(batches[0]!), replicas.run(1, batches[1]!, 0)]);
      accumulateModelGrads(byName, r1.grads!, r1.count);
      count = c0 + r1.count;
    } else {
      count = await local(batches[0]!);
    }
    const norm = gradNorm(params, 1 / count);
    opt.step(TRAIN.lr, clipFactor(norm, TRAIN.maxGradNorm) / count);
    run.invalidate();
  };
  try {
    await step();
    const s = await seconds(async () => { for (let i = 0; i < steps; i++) await step(); });
    return { tokensPerSec: (steps * TRAIN.B * TRAIN.T) / s, replicas: workers + 1 };
  } finally {
    await replicas?.close();
  }
}

main().catch((e: unknown) => {
  if (e instanceof UserError) { console.error(`bench:vs-torch: ${e.message}`); process.exit(1); }
  throw e;
});
