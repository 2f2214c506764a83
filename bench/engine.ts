/**
 * Engine benchmark: forward tokens/s and GFLOP/s of a TinyLlama-1.1B-shaped random bf16 model on
 * 10x128 tokens, next to the raw GEMM rate of the same backend measured in the same run.
 *   npm run bench:engine [-- --layers 22 --batch 10 --seq 128 --reps 2 --backend ort|wasm|js]
 *
 * The machine may be shared: raw GEMMs and forwards are interleaved, rep by rep, and the best of
 * each is compared, so a burst of outside load hits both sides rather than one. The 1-minute load
 * average is printed so noisy runs can be recognized.
 */
import { loadavg, cpus } from 'node:os';
import { getBackend } from '../src/engine/select.js';
import { OrtBackend } from '../src/engine/ort-backend.js';
import { WasmBackend } from '../src/engine/wasm-backend.js';
import { jsBackend } from '../src/engine/js-backend.js';
import type { Backend, GemmArgs, BmmArgs } from '../src/engine/backend.js';
import { randomModel, forwardFlops, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import { mulberry32 } from '../src/util/rng.js';
import { kernelCopyStats } from '../src/engine/wasm-kernels.js';
import { activationHeap } from '../src/engine/wasm/heap.js';
import { argNumber, argString } from '../src/util/args.js';
import { gemmBuffers, gemmRate } from '../src/bench/gemm-rate.js';


const layers = argNumber('layers', 22), B = argNumber('batch', 10), T = argNumber('seq', 128), reps = argNumber('reps', 2);
const which = argString('backend', 'default');
const inner: Backend = which === 'ort' ? new OrtBackend() : which === 'wasm' ? new WasmBackend() : which === 'js' ? jsBackend : getBackend();

/** Times every GEMM/bmm call, so the forward's time splits into matmul and everything else. */
class Timed implements Backend {
  ms = 0;
  flop = 0;
  constructor(readonly be: Backend) {}
  get name() { return this.be.name; }
  async gemm(x: GemmArgs) { const t = performance.now(); await this.be.gemm(x); this.ms += performance.now() - t; this.flop += 2 * x.m * x.n * x.k; }
  async bmm(x: BmmArgs) { const t = performance.now(); await this.be.bmm(x); this.ms += performance.now() - t; this.flop += 2 * x.batch * x.m * x.n * x.k; }
}
const be = new Timed(inner);

const N = B * T;
const rawShapes = [
  { label: 'fp32 1024x2048x2048', m: 1024, n: 2048, k: 2048, bf16: false },
  { label: `bf16 weights ${N}x5632x2048`, m: N, n: 5632, k: 2048, bf16: true },
];
const rawBufs = rawShapes.map(gemmBuffers);

console.log(`building random TinyLlama-shaped model (${layers} layers, bf16)...`);
const model = randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: layers }, 'bf16');
const run = new LlamaRunner(model, be);
const rng = mulberry32(1);
const ids = Int32Array.from({ length: N }, () => Math.floor(rng() * 32000));
await run.forward(ids.subarray(0, 2 * T), 2, T); // warm-up: sessions, heaps, backend choice
console.log(`backend: ${be.name}   cores: ${cpus().length}   load average: ${loadavg()[0]!.toFixed(1)}`);

const flops = forwardFlops(model, B, T);
const raw = rawShapes.map(() => 0);
let best = Infinity, bestSplit = { gemmMs: 0, gemmFlop: 0 };
for (let r = 0; r < reps; r++) {
  for (let i = 0; i < rawBufs.length; i++) raw[i] = Math.max(raw[i]!, await gemmRate(inner, rawBufs[i]!));
  be.ms = 0; be.flop = 0;
  const t0 = performance.now();
  await run.forward(ids, B, T);
  const dt = (performance.now() - t0) / 1000;
  console.log(`  rep ${r + 1}: forward ${dt.toFixed(2)} s (${(flops / dt / 1e9).toFixed(1)} GFLOP/s), raw GEMM ${raw.map((g) => g.toFixed(1)).join(' / ')} GFLOP/s, load ${loadavg()[0]!.toFixed(1)}`);
  if (dt < best) { best = dt; bestSplit = { gemmMs: be.ms, gemmFlop: be.flop }; }
}
for (let i = 0; i < rawShapes.length; i++) console.log(`raw GEMM ${rawShapes[i]!.label}: ${raw[i]!.toFixed(1)} GFLOP/s`);
const rate = flops / best / 1e9;
console.log(`forward ${B}x${T} tokens, ${layers} layers: ${best.toFixed(2)} s, ${(N / best).toFixed(0)} tokens/s, ${rate.toFixed(1)} GFLOP/s`);
const gemmS = bestSplit.gemmMs / 1000;
console.log(`  of which GEMM/bmm calls: ${gemmS.toFixed(2)} s (${(bestSplit.gemmFlop / gemmS / 1e9).toFixed(1)} GFLOP/s inside them), everything else: ${(best - gemmS).toFixed(2)} s`);
const H = activationHeap();
console.log(`  activation heap: ${(H.capacity / 2 ** 20).toFixed(0)} MiB, fallback allocations: ${H.fallbacks}, kernel copies: ${((kernelCopyStats.stagedBytes + kernelCopyStats.scratchBytes) / 2 ** 20).toFixed(0)} MiB over all runs`);
console.log(`forward / raw fp32 GEMM: ${(100 * rate / raw[0]!).toFixed(0)}%   forward / raw bf16-weight GEMM: ${(100 * rate / raw[1]!).toFixed(0)}%   (target >= 70%)`);
