/**
 * Jobs a pool thread can run, and the layout of the control block they are posted through.
 * Shared by the calling thread (pool.ts) and the workers (worker.ts).
 */
import type { KernelExports } from './heap.js';

/** Per-thread slot of u32s: [op, args...] */
export const SLOT_INTS = 32;
export const MAX_THREADS = 64;
export const CTRL_INTS = SLOT_INTS * MAX_THREADS;
/** Slot 0 belongs to the calling thread, which never reads it: its first ints hold the counters. */
export const SEQ = 0, DONE = 1, ERR = 2, READY = 3;

/** how long a thread spins on the control block before sleeping in Atomics.wait (ms) */
export const SPIN_MS = 0.25;

export const OP_IDLE = 0, OP_GEMM = 1, OP_BMM = 2, OP_GEMV = 3, OP_GEMV_PARTS = 4;
/** most weights one OP_GEMV_PARTS job covers (its slot holds 7 + 5 per part u32s) */
export const GEMV_MAX_PARTS = 5;

/**
 * OP_GEMM: a, lda, b, ldb, btype, transB, c, ldc, m, n0, n1, k, accumulate, work
 * OP_BMM: a, b, c, m, n, k, transB, batch0, batch1, work  (f32, contiguous batches, C overwritten)
 * OP_GEMV: a, m, k, w, btype, j0, j1, c, ldc  (C[:, j0:j1] = A W[j0:j1]^T, W rows of k, small m)
 * OP_GEMV_PARTS: a, ae, m, k, ldc, parts, then per part w, btype, j0, j1, c  (OP_GEMV over several
 *   stacked weights in one dispatch: each part's rows j0..j1 into its own columns starting at c;
 *   ae, when not 0, is A de-interleaved by deinterleave8 for bf16 parts)
 */
export function runJob(k: KernelExports, op: number, a: ArrayLike<number>): void {
  if (op === OP_GEMM) {
    k.gemm(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!);
  } else if (op === OP_GEMV) {
    const wBytes = a[4] === 0 ? 4 : 2;
    k.gemv_nt(a[0]!, a[1]!, a[2]!, a[3]! + a[5]! * a[2]! * wBytes, a[4]!, a[6]! - a[5]!, a[7]! + a[5]! * 4, a[8]!);
  } else if (op === OP_GEMV_PARTS) {
    const [pa, ae, m, kk, ldc, parts] = [a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!];
    for (let i = 0; i < parts; i++) {
      const o = 6 + 5 * i, w = a[o]!, btype = a[o + 1]!, j0 = a[o + 2]!, j1 = a[o + 3]!, c = a[o + 4]!;
      if (j1 <= j0) continue;
      const wj = w + j0 * kk * (btype === 0 ? 4 : 2);
      if (btype === 1 && ae !== 0) k.gemv_bf16_eo(pa, ae, m, kk, wj, j1 - j0, c + j0 * 4, ldc);
      else k.gemv_nt(pa, m, kk, wj, btype, j1 - j0, c + j0 * 4, ldc);
    }
  } else if (op === OP_BMM) {
    const [pa, pb, pc, m, n, kk, transB, b0, b1, work] = [a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!];
    for (let i = b0; i < b1; i++) {
      k.gemm(pa + i * m * kk * 4, kk, pb + i * kk * n * 4, transB ? kk : n, 0, transB, pc + i * m * n * 4, n, m, 0, n, kk, 0, work);
    }
  }
}
