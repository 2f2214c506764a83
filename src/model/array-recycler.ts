/**
 * Float32Arrays handed out for one training micro-batch (kept activations, backward buffers) and
 * taken back together when the caller says they are dead, so the next micro-batch of the same
 * shape reuses them. Without it a small model's training step allocates a few hundred MB of
 * typed arrays per micro-batch, and V8's major GCs they trigger (and their marking threads,
 * which compete with the GEMM threads) cost as much as the arithmetic.
 */
export class ArrayRecycler {
  private free = new Map<number, Float32Array[]>();
  private handed: Float32Array[] = [];

  /** An array of n floats: recycled (with stale contents unless `zero`) or new. */
  take(n: number, zero = false): Float32Array {
    const a = this.free.get(n)?.pop();
    if (a) {
      if (zero) a.fill(0);
      this.handed.push(a);
      return a;
    }
    const b = new Float32Array(n);
    this.handed.push(b);
    return b;
  }

  /** Everything handed out since the last reclaim is free again. */
  reclaimAll(): void { this.reclaimSince(0); }

  /** A point in the hand-outs, for reclaimSince. */
  mark(): number { return this.handed.length; }

  /** Everything handed out since `mark` is free again (what came before stays handed out). */
  reclaimSince(mark: number): void {
    for (const a of this.handed.splice(mark)) {
      let list = this.free.get(a.length);
      if (!list) this.free.set(a.length, (list = []));
      list.push(a);
    }
  }

  /** Bytes held, handed out or free. */
  bytes(): number {
    let n = 0;
    for (const a of this.handed) n += a.byteLength;
    for (const l of this.free.values()) for (const a of l) n += a.byteLength;
    return n;
  }
}
