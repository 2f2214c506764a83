/**
 * A pool worker: instantiates the kernels on the shared memory and runs the jobs posted to its
 * slot of the control block (see pool.ts), forever.
 */
import { workerData } from 'node:worker_threads';
import { WasmHeap, type WasmMemory, type WasmModule } from './heap.js';
import { runJob, CTRL_INTS, SLOT_INTS, SEQ, DONE, ERR, READY, SPIN_MS } from './jobs.js';

const { memory, module, ctrl: ctrlPtr, index } = workerData as { memory: WasmMemory; module: WasmModule; ctrl: number; index: number };
const heap = new WasmHeap(true, 0, memory, module);
const ctrl = new Int32Array(memory.buffer, ctrlPtr, CTRL_INTS);
const slot = new Uint32Array(memory.buffer, ctrlPtr + index * SLOT_INTS * 4, SLOT_INTS);

Atomics.add(ctrl, READY, 1);
Atomics.notify(ctrl, READY);

// Jobs may have been posted before this thread got here: count from the pool's initial 0.
let seen = 0;
for (;;) {
  // decode posts a job every few hundred microseconds: spin briefly before sleeping, since waking
  // from Atomics.wait costs tens of microseconds (SPIN_MS bounds the cost when none comes)
  const until = performance.now() + SPIN_MS;
  while (Atomics.load(ctrl, SEQ) === seen && performance.now() < until) { /* spin */ }
  Atomics.wait(ctrl, SEQ, seen);
  seen = Atomics.load(ctrl, SEQ);
  const op = slot[0]!;
  try {
    if (op) runJob(heap.k, op, slot.subarray(1));
  } catch (e) {
    // report to the calling thread (which throws) and stay alive for the next job
    Atomics.store(ctrl, ERR, 1);
    console.error(e);
  } finally {
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}
