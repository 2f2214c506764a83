/**
 * A data-parallel replica (see replicas.ts): a LlamaRunner over the shared weights, with one GEMM
 * thread, that runs the forward and backward of each micro-batch it is sent and replies with the
 * loss sum, the target count and the gradients.
 */
import { parentPort } from 'node:worker_threads';
import { LlamaRunner } from '../model/llama.js';
import { backendWithThreads } from '../engine/select.js';
import { Rng } from '../util/rng.js';
import { UserError } from '../util/errors.js';
import type { ReplicaInit, ReplicaJob, ReplicaControl, ReplicaResult } from './replicas.js';

const port = parentPort!;
// one backend for the worker's life: its GEMM sessions outlive the models it serves
const backend = backendWithThreads(1);
let init: ReplicaInit | null = null;
let run: LlamaRunner | null = null;

port.on('message', (msg: ReplicaJob | ReplicaControl) => {
  if (msg.kind === 'init') {
    init = msg.init;
    run = new LlamaRunner(init.model, backend);
    run.adapters = init.adapters;
    run.recycleKept();
    port.postMessage('ready');
    return;
  }
  if (msg.kind === 'release') { init = null; run = null; port.postMessage('released'); return; }
  const job = msg;
  void (async () => {
    try {
      if (!run || !init) throw new Error('no model: a job before init');
      run.invalidate(); // the weights changed since the last micro-batch (norm vectors are cached)
      if (job.kind === 'nll') {
        const res = await run.forward(job.ids, job.B, job.T);
        port.postMessage({ sum: res.loss! * res.count!, count: res.count! });
        return;
      }
      const rng = new Rng(job.seed);
      // a frozen head (LoRA): its gradient at the last block comes out of the forward's head pass
      const headGrad = !init.grads.lmHead && !init.grads.norm;
      const res = await run.forward(job.ids, job.B, job.T, { targets: job.targets, keep: true, rng: () => rng.next(), headGrad });
      const count = res.count!, sum = res.loss! * count;
      const grads = count === 0 ? null : await run.backward(res, init.grads);
      run.reclaim();
      const reply: ReplicaResult = { sum: count === 0 ? 0 : sum, count, grads };
      port.postMessage(reply);
    } catch (e) {
      const msg = e instanceof UserError ? `UserError: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e);
      port.postMessage({ error: msg });
    }
  })();
});
