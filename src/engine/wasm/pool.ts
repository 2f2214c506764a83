/**
 * A fork-join pool of worker threads running the SIMD kernels on one shared WebAssembly memory.
 *
 * The calling thread is thread 0; workers 1..n-1 sleep in Atomics.wait on a control block at the
 * bottom of the shared heap. run() writes each thread's job (an op code and up to 30 u32
 * arguments), wakes the workers, does thread 0's share, and waits until all are done. Job
 * dispatch costs a few microseconds, so this is meant for kernels of a millisecond or more.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { WasmHeap, kernelsModule } from './heap.js';
import { runJob, CTRL_INTS, SLOT_INTS, SEQ, DONE, ERR, READY, SPIN_MS } from './jobs.js';

/** How long the first job waits for the workers to come up before running single-threaded. */
const STARTUP_MS = 30_000;

export class ThreadPool {
  readonly heap: WasmHeap;
  threads: number;
  private started = false;
  private workers: Worker[] = [];
  private ctrlPtr: number;
  /** heap top after the control block and resident data: run() callers allocate above it and release back to it */
  get base(): number { return this.baseTop; }
  private baseTop: number;

  constructor(threads = availableParallelism()) {
    this.threads = Math.max(1, threads);
    this.heap = new WasmHeap(true, 64 << 20);
    this.ctrlPtr = this.heap.alloc(CTRL_INTS * 4);
    this.baseTop = this.heap.mark();
    const module = kernelsModule(true);
    for (let t = 1; t < this.threads; t++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { memory: this.heap.memory, module, ctrl: this.ctrlPtr, index: t } });
      w.unref(); // idle workers must not keep the process alive
      this.workers.push(w);
    }
  }

  /**
   * Block until every worker has instantiated the kernels. A worker that cannot start (it failed
   * to load) would otherwise leave run() waiting forever: after STARTUP_MS the pool gives up on
   * its workers and runs everything on the calling thread.
   */
  private awaitWorkers(ctrl: Int32Array): void {
    this.started = true;
    const deadline = performance.now() + STARTUP_MS;
    for (;;) {
      const ready = Atomics.load(ctrl, READY);
      if (ready >= this.threads - 1) return;
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctrl, READY, ready, left);
    }
    process.emitWarning(`wasm backend: worker threads did not start within ${STARTUP_MS / 1000} s; running single-threaded`);
    for (const w of this.workers) void w.terminate();
    this.workers = [];
    this.threads = 1;
  }

  /**
   * Bytes that stay for the pool's lifetime (weights kept resident for every thread to read),
   * placed below every caller's scratch. Call only between runs, with no scratch in use.
   */
  allocResident(bytes: number): number {
    this.heap.release(this.baseTop);
    const p = this.heap.alloc(bytes);
    this.baseTop = this.heap.mark();
    return p;
  }

  private ctrl(): Int32Array { return new Int32Array(this.heap.memory.buffer, this.ctrlPtr, CTRL_INTS); }

  /**
   * Run one job per thread: jobs[t] = [op, ...args] (u32 args), or null for an idle thread.
   * Thread 0's job runs on the calling thread.
   */
  run(jobs: (number[] | null)[]): void {
    const ctrl = this.ctrl();
    if (!this.started) this.awaitWorkers(ctrl);
    if (this.threads === 1) {
      // no workers (or they never came up): every job on this thread
      for (const job of jobs) if (job) runJob(this.heap.k, job[0]!, job.slice(1));
      return;
    }
    const u = new Uint32Array(ctrl.buffer, ctrl.byteOffset, CTRL_INTS);
    let pending = 0;
    for (let t = 1; t < this.threads; t++) {
      const job = jobs[t] ?? null;
      const slot = t * SLOT_INTS;
      u[slot] = job ? job[0]! : 0;
      if (job) { for (let i = 1; i < job.length; i++) u[slot + i] = job[i]!; pending++; }
    }
    if (pending > 0) {
      Atomics.store(ctrl, ERR, 0);
      Atomics.store(ctrl, DONE, 0);
      Atomics.add(ctrl, SEQ, 1);
      Atomics.notify(ctrl, SEQ);
    }
    try {
      const own = jobs[0];
      if (own) runJob(this.heap.k, own[0]!, own.slice(1));
    } finally {
      // even when thread 0 failed, the workers must finish before the caller frees their buffers
      if (pending > 0) {
        const until = performance.now() + SPIN_MS;
        for (;;) {
          const done = Atomics.load(ctrl, DONE);
          if (done >= this.threads - 1) break;
          if (performance.now() < until) continue; // the workers are usually a few microseconds behind
          Atomics.wait(ctrl, DONE, done, 1000);
        }
      }
    }
    if (pending > 0 && Atomics.load(ctrl, ERR)) throw new Error('a wasm pool worker failed (see its error above)');
  }
}
