/**
 * Data-parallel micro-batches for small models. The micro-batches of one optimizer step run at
 * the same time: one on the calling thread, one on each worker thread. Every replica is a
 * LlamaRunner over the same weights (moved into SharedArrayBuffers, so the optimizer's in-place
 * update is seen by all) with a GEMM backend of one thread.
 *
 * Why: a small model's step is dominated by work that runs on one thread (norms, attention, copies,
 * per-call overhead), and its GEMMs are too small to keep two threads busy. On 2 cores, training
 * the default model's shape ran 1.45x faster as two one-thread replicas than as one two-thread
 * process (2,150 against 1,470 tokens/s, AVX2 Zen 3).
 *
 * The sums are those of the serial loop: micro-batch j's gradients are added in order j, and its
 * dropout draws come from its own seed, so results do not depend on how many replicas there are.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Batch } from './batch.js';
import type { Param } from './adamw.js';
import type { Grads, GradOptions } from '../model/llama.js';
import type { LlamaModel } from '../model/weights.js';
import type { LoraAdapters } from '../model/lora.js';
import type { Tensor } from '../engine/tensor.js';
import { countParams, type LlamaConfig } from '../io/config.js';
import { nativeBackendLoads } from '../engine/select.js';
import { UserError } from '../util/errors.js';
import { availableBytes, totalBytes, type MemoryEstimate } from '../util/memory.js';

/** Models up to this many parameters train with replicas (the "small-model path": under ~50M). */
export const REPLICA_MAX_PARAMS = 50_000_000;

/** What a replica returns for one micro-batch. */
export interface ReplicaResult {
  /** loss * count */
  sum: number;
  count: number;
  /** the micro-batch's gradients as the runner's backward returned them (null when count is 0) */
  grads: Grads | null;
}

/**
 * A job for a worker replica: a training micro-batch (forward + backward, dropout from `seed`)
 * or a forward that only scores (the loss sum and count of a batch).
 */
export type ReplicaJob =
  | { kind: 'step'; ids: Int32Array; targets: Int32Array; B: number; T: number; seed: number }
  | { kind: 'nll'; ids: Int32Array; B: number; T: number };

/** What a worker is told besides jobs: take a model (replies 'ready'), or drop it (replies 'released'). */
export type ReplicaControl = { kind: 'init'; init: ReplicaInit } | { kind: 'release' };

/** What a worker replica is built from (structured-cloned: shared arrays stay shared). */
export interface ReplicaInit {
  model: LlamaModel;
  adapters: LoraAdapters | null;
  grads: GradOptions;
}

/** Idle worker threads, kept for the next Replicas.start: a warm worker has its code compiled and its GEMM sessions made. */
const idle: Worker[] = [];

/**
 * Worker threads that each run a micro-batch's forward and backward on their own replica.
 * Replica 0 is the caller's own runner; workers are replicas 1..size-1.
 */
export class Replicas {
  private constructor(private workers: Worker[]) {}

  /** replicas in all, the calling thread's included */
  get size(): number { return this.workers.length + 1; }

  /** Start `count` worker replicas of a model whose weights are shared (see shareWeights): idle workers first, then new ones. */
  static async start(count: number, init: ReplicaInit): Promise<Replicas> {
    const url = new URL('./replica-worker.js', import.meta.url);
    const workers = await Promise.all(Array.from({ length: count }, () => new Promise<Worker>((resolve, reject) => {
      const w = idle.pop() ?? new Worker(url);
      w.ref(); // a worker keeps the process alive only while it owes a reply
      w.once('message', (m: unknown) => (m === 'ready' ? resolve(w) : reject(new Error(`replica worker: ${String(m)}`))));
      w.once('error', reject);
      w.postMessage({ kind: 'init', init });
    })));
    for (const w of workers) { w.removeAllListeners('error'); w.unref(); }
    return new Replicas(workers);
  }

  /** Hand the workers back (idle: they keep no model; terminateReplicaWorkers() ends them). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      w.ref();
      w.once('message', () => { w.unref(); idle.push(w); resolve(); });
      w.postMessage({ kind: 'release' });
    })));
    this.workers = [];
  }

  /** Forward + backward of one micro-batch on worker replica i (1-based). */
  run(i: number, b: Batch, seed: number): Promise<ReplicaResult> {
    return this.send(i, { kind: 'step', ids: b.ids, targets: b.targets, B: b.B, T: b.T, seed });
  }

  /** The loss sum (mean NLL times count) and target count of a forward over B rows of T ids (next-token targets) on replica i. */
  nll(i: number, ids: Int32Array, B: number, T: number): Promise<{ sum: number; count: number }> {
    return this.send(i, { kind: 'nll', ids, B, T });
  }

  private send<R>(i: number, job: ReplicaJob): Promise<R> {
    const w = this.workers[i - 1]!;
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => { w.off('message', onMessage); w.unref(); reject(e); };
      const onMessage = (m: R | { error: string }) => {
        w.off('error', onError);
        w.unref();
        if (typeof m === 'object' && m !== null && 'error' in m) reject(m.error.startsWith('UserError: ') ? new UserError(m.error.slice(11)) : new Error(`replica ${i}: ${m.error}`));
        else resolve(m);
      };
      w.ref();
      w.once('message', onMessage);
      w.once('error', onError);
      w.postMessage(job);
    });
  }

}

/** End the idle replica workers (they are unref'd, so a process exits without this). */
export async function terminateReplicaWorkers(): Promise<void> {
  await Promise.all(idle.splice(0).map((w) => w.terminate()));
}

/**
 * How many worker replicas a run gets: one per core beyond the first, at most one per extra
 * micro-batch of a step, for models up to REPLICA_MAX_PARAMS on the native backend, and only as
 * many as the memory holds next to the step's estimate `est` (each adds its own runtime,
 * workspace, activations and backward buffers, and a micro-batch's `gradElements` gradients).
 * SHORTENED_REPLICAS=N sets the number of workers (0: none).
 */
export async function replicaWorkers(cfg: LlamaConfig, microBatchesPerStep: number, est: MemoryEstimate, gradElements: number): Promise<number> {
  const forced = process.env['SHORTENED_REPLICAS'];
  if (forced !== undefined && forced !== '') return Math.max(0, Math.min(Number(forced) | 0, microBatchesPerStep - 1));
  if (countParams(cfg) > REPLICA_MAX_PARAMS || microBatchesPerStep < 2) return 0;
  const cores = os.availableParallelism();
  if (cores < 2 || !(await nativeBackendLoads())) return 0;
  const p = est.parts;
  const extra = (p['runtime'] ?? 0) + (p['workspace'] ?? 0) + (p['activations'] ?? 0) + (p['backward'] ?? 0) + 4 * gradElements;
  let n = Math.min(cores - 1, microBatchesPerStep - 1);
  while (n > 0 && totalBytes(est) + n * extra > availableBytes()) n--;
  return n;
}

/** A copy of a typed array in a SharedArrayBuffer. */
function sharedCopy<T extends Float32Array | Uint16Array>(a: T): T {
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const s = new Ctor(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

/**
 * Moves the model's weights (and LoRA adapters) into SharedArrayBuffers, in place, and re-points
 * the parameters that owned the old arrays: the optimizer then updates the memory every replica
 * reads. A tied head stays the embedding's tensor.
 */
export function shareWeights(model: LlamaModel, params: Param[], adapters: LoraAdapters | null = null): void {
  const moved = new Map<Float32Array | Uint16Array, Float32Array | Uint16Array>();
  const share = <T extends Float32Array | Uint16Array>(a: T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    let s = moved.get(a) as T | undefined;
    if (!s) { s = sharedCopy(a); moved.set(a, s); }
    return s;
  };
  const tensor = (t: Tensor): Tensor => ({ ...t, data: share(t.data as Float32Array | Uint16Array) });
  const w = model.weights;
  const tied = w.lmHead === w.embed;
  const embed = tensor(w.embed);
  model.weights = {
    embed,
    blocks: w.blocks.map((b) => Object.fromEntries(Object.entries(b).map(([n, t]) => [n, tensor(t as Tensor)])) as typeof b),
    norm: tensor(w.norm),
    lmHead: tied ? embed : tensor(w.lmHead),
  };
  for (const block of adapters ?? []) for (const pair of Object.values(block ?? {})) { pair.A = share(pair.A); pair.B = share(pair.B); }
  for (const p of params) { const s = moved.get(p.value); if (s) p.value = s as Float32Array; }
}
