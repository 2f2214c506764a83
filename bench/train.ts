/**
 * Training throughput of a TinyLlama-1.1B-shaped random bf16 model, next to the forward rate of
 * the same run: tokens/s and GFLOP/s of
 *   forward     no gradients (the reference)
 *   LoRA step   forward keeping activations + backward with the base frozen + AdamW on A/B;
 *               no base-weight gradients, so it should cost about 2 forwards
 *   full step   f32 master weights, forward + backward with every weight gradient + AdamW;
 *               about 3 forwards
 * and the peak resident memory of the LoRA step (Linux VmHWM, reset just before the step, and the
 * largest RSS sampled every 20 ms during it).
 *
 *   node dist/bench/train.js [--layers 22] [--batch 4] [--seq 256] [--mode both|lora|full|cpt] [--rank 8] [--reps 1] [--model DIR]
 *
 * GFLOP/s counts the model's nominal FLOPs: forward F, LoRA step 2F, full step 3F (the LoRA
 * matrices and the head's recomputation in backward are not counted).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { trainCpt } from '../src/train/cpt.js';
import { projectDir } from '../src/util/shared.js';
import { getBackend } from '../src/engine/select.js';
import { randomModel, forwardFlops, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import type { LlamaModel } from '../src/model/weights.js';
import { LORA_TARGETS, type LoraTarget } from '../src/model/lora.js';
import { initLora, adapterTensors, peftKey } from '../src/train/peft.js';
import { AdamW, accumulateGrad, param, type Param } from '../src/train/adamw.js';
import { masterCopy } from '../src/train/trainer.js';
import { BLOCK_WEIGHT_NAMES, hfBlockName } from '../src/model/weights.js';
import { Rng, mulberry32 } from '../src/util/rng.js';
import { argNumber, argString } from '../src/util/args.js';

const layers = argNumber('layers', 22), B = argNumber('batch', 4), T = argNumber('seq', 256);
const mode = argString('mode', 'both'), rank = argNumber('rank', 8), reps = argNumber('reps', 1);
const N = B * T;
const GB = 1024 ** 3;

/** Peak RSS since the last reset (Linux), in bytes; null elsewhere. */
function hwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch { return null; }
}
function resetHwm(): boolean {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; }
}

/** Time `fn` (best of reps) while sampling RSS; returns seconds and the peaks seen. */
async function measure(fn: () => Promise<void>): Promise<{ s: number; sampled: number; hwm: number | null }> {
  let best = Infinity, sampled = 0;
  for (let r = 0; r < reps; r++) {
    (globalThis as { gc?: () => void }).gc?.();
    resetHwm();
    const timer = setInterval(() => { sampled = Math.max(sampled, process.memoryUsage().rss); }, 20);
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
    clearInterval(timer);
    sampled = Math.max(sampled, process.memoryUsage().rss);
  }
  return { s: best, sampled, hwm: hwm() };
}

function line(what: string, s: number, flops: number, fwd: number): string {
  return `${what.padEnd(12)} ${s.toFixed(2).padStart(8)} s  ${(N / s).toFixed(0).padStart(7)} tokens/s  ${(flops / s / 1e9).toFixed(1).padStart(7)} GFLOP/s  ${(s / fwd).toFixed(2).padStart(5)} x forward`;
}

const be = getBackend();
// --config FILE: another shape (e.g. assets/default/config.json, the default model's)
const configFile = argString('config', '');
const cfg: Record<string, unknown> = configFile ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : { ...TINYLLAMA_CONFIG, num_hidden_layers: layers };
console.log(`${configFile || `TinyLlama-1.1B shapes with ${layers} layers`}, bf16; micro-batch ${B} x ${T} = ${N} tokens`);
const rng = mulberry32(1);
const ids = Int32Array.from({ length: N }, () => Math.floor(rng() * (cfg['vocab_size'] as number)));

async function forwardTime(model: LlamaModel): Promise<number> {
  const run = new LlamaRunner(model, be);
  await run.forward(ids.subarray(0, 2 * 16), 2, 16); // warm-up (graph sessions)
  return (await measure(async () => { await run.forward(ids, B, T); })).s;
}

const results: Record<string, unknown> = { layers, batch: B, seq: T };

if (mode === 'both' || mode === 'lora') {
  const model = randomModel(cfg, 'bf16');
  const F = forwardFlops(model, B, T);
  const fwd = await forwardTime(model);
  console.log(`GEMM backend: ${be.name}`);
  console.log(line('forward', fwd, F, fwd));
  const run = new LlamaRunner(model, be);
  run.adapters = initLora(model, { r: rank, alpha: 2 * rank, dropout: 0.05, targets: [...LORA_TARGETS] }, 1);
  const params: Param[] = adapterTensors(run.adapters).map(([name, t]) => param(name, t.shape, t.data as Float32Array, false));
  const byName = new Map(params.map((p) => [p.name, p]));
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const drop = new Rng(2);
  const rssBefore = process.memoryUsage().rss;
  const phases = { forward: 0, backward: 0, update: 0 };
  const m = await measure(async () => {
    let t = performance.now();
    const res = await run.forward(ids, B, T, { keep: true, rng: () => drop.next() });
    phases.forward = (performance.now() - t) / 1000; t = performance.now();
    const g = await run.backward(res, { blocks: false, embed: false, norm: false, lmHead: false });
    phases.backward = (performance.now() - t) / 1000; t = performance.now();
    g.lora.forEach((block, li) => {
      for (const [t, lg] of Object.entries(block ?? {})) {
        accumulateGrad(byName.get(peftKey(li, t as LoraTarget, 'A'))!, lg!.A, 1);
        accumulateGrad(byName.get(peftKey(li, t as LoraTarget, 'B'))!, lg!.B, 1);
      }
    });
    opt.step(1e-4);
    phases.update = (performance.now() - t) / 1000;
  });
  console.log(line('LoRA step', m.s, 2 * F, fwd));
  console.log(`  of which: forward keeping activations ${phases.forward.toFixed(2)} s (${(phases.forward / fwd).toFixed(2)} x), backward ${phases.backward.toFixed(2)} s (${(phases.backward / fwd).toFixed(2)} x), AdamW ${phases.update.toFixed(2)} s`);
  const peak = Math.max(m.sampled, m.hwm ?? 0);
  console.log(`LoRA step peak memory: ${(peak / GB).toFixed(2)} GB (VmHWM ${m.hwm ? (m.hwm / GB).toFixed(2) + ' GB' : 'n/a'}, sampled RSS ${(m.sampled / GB).toFixed(2)} GB; ${(rssBefore / GB).toFixed(2)} GB before the step)`);
  results['lora'] = { forward_s: fwd, step_s: m.s, phases_s: phases, ratio: m.s / fwd, tokens_per_s: N / m.s, gflops: (2 * F) / m.s / 1e9, forward_gflops: F / fwd / 1e9, peak_bytes: peak, rss_before_bytes: rssBefore };
}

if (mode === 'both' || mode === 'full') {
  const model = randomModel(cfg, 'bf16');
  const F = forwardFlops(model, B, T);
  // f32 masters, as `shorten train cpt` trains
  const params: Param[] = [];
  const w = model.weights;
  const master = (name: string, t: (typeof w)['embed']) => {
    const value = masterCopy(t);
    params.push(param(name, t.shape, value, t.shape.length === 2));
    return { dtype: 'f32' as const, shape: t.shape, data: value };
  };
  const embed = master('embed', w.embed);
  const blocks = w.blocks.map((b, li) => {
    const nb = { ...b };
    for (const n of BLOCK_WEIGHT_NAMES) nb[n] = master(hfBlockName(li, n), b[n]);
    return nb;
  });
  model.weights = { embed, blocks, norm: master('norm', w.norm), lmHead: model.config.tieWordEmbeddings ? embed : master('lm_head', w.lmHead) };
  const fwd = await forwardTime(model);
  console.log(line('forward f32', fwd, F, fwd));
  const byName = new Map(params.map((p) => [p.name, p]));
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const run = new LlamaRunner(model, be);
  const fphases = { forward: 0, backward: 0, update: 0 };
  const m = await measure(async () => {
    let t = performance.now();
    const res = await run.forward(ids, B, T, { keep: true });
    fphases.forward = (performance.now() - t) / 1000; t = performance.now();
    const g = await run.backward(res);
    fphases.backward = (performance.now() - t) / 1000; t = performance.now();
    g.blocks.forEach((bg, li) => { for (const [n, grad] of Object.entries(bg)) accumulateGrad(byName.get(hfBlockName(li, n as (typeof BLOCK_WEIGHT_NAMES)[number]))!, grad!, 1); });
    accumulateGrad(byName.get('embed')!, g.embed!, 1);
    accumulateGrad(byName.get('norm')!, g.norm!, 1);
    if (g.lmHead) accumulateGrad(byName.get('lm_head')!, g.lmHead, 1);
    opt.step(1e-4);
    run.invalidate();
    fphases.update = (performance.now() - t) / 1000;
  });
  console.log(line('full step', m.s, 3 * F, fwd));
  console.log(`  of which: forward keeping activations ${fphases.forward.toFixed(2)} s (${(fphases.forward / fwd).toFixed(2)} x), backward ${fphases.backward.toFixed(2)} s (${(fphases.backward / fwd).toFixed(2)} x), gradient accumulation + AdamW on ${(params.reduce((s, p) => s + p.value.length, 0) / 1e6).toFixed(0)}M parameters ${fphases.update.toFixed(2)} s`);
  console.log(`full step peak memory: ${(Math.max(m.sampled, m.hwm ?? 0) / GB).toFixed(2)} GB`);
  results['full'] = { forward_s: fwd, step_s: m.s, phases_s: fphases, ratio: m.s / fwd, tokens_per_s: N / m.s, gflops: (3 * F) / m.s / 1e9, forward_gflops: F / fwd / 1e9, peak_bytes: Math.max(m.sampled, m.hwm ?? 0) };
}
// --mode cpt: the CPT trainer itself (`shorten train cpt` on the default corpus, --config's model
// folder or assets/default): data, GC, optimizer and validation all counted. Two runs of S and S+20
// steps; their difference is 20 steady-state steps (startup and the first steps' warm-up cancel).
if (mode === 'cpt') {
  const modelDir = argString('model', projectDir('assets', 'default'));
  const extra = 20, base = 4;
  const time = async (steps: number): Promise<number> => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cpt-'));
    const t0 = performance.now();
    await trainCpt({ model: modelDir, out, maxSteps: steps, seqLen: T, batchSize: B, microBatch: B, lr: 1e-4, warmup: 1, saveEvery: 1000, valSeqs: B, final: 'last', force: true, label: 'bench' });
    const s = (performance.now() - t0) / 1000;
    fs.rmSync(out, { recursive: true, force: true });
    return s;
  };
  await time(base);
  const s0 = await time(base), s1 = await time(base + extra);
  const step = (s1 - s0) / extra;
  console.log(`CPT trainer on ${modelDir}: ${step.toFixed(3)} s a step of ${B} x ${T}, ${(N / step).toFixed(0)} tokens/s (${extra}-step difference of two runs)`);
  results['cpt'] = { model: modelDir, step_s: step, tokens_per_s: N / step };
}

console.log(JSON.stringify({ kind: 'train-bench', backend: be.name, ...results }));
