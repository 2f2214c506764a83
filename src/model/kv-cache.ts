/**
 * Key/value cache for incremental decoding: per layer, keys and values of every position seen so
 * far, laid out [B*nKV, capacity, d] so a layer's keys for one (row, kv head) are contiguous.
 */
import type { LlamaConfig } from '../io/config.js';

export class KVCache {
  /** positions already in the cache */
  length = 0;
  private k: Float32Array[] = [];
  private v: Float32Array[] = [];
  private viewK = new Float32Array(0);
  private viewV = new Float32Array(0);

  constructor(readonly cfg: LlamaConfig, readonly B: number, readonly capacity: number) {
    for (const l of cfg.layers) {
      this.k.push(new Float32Array(B * l.numKvHeads * capacity * cfg.headDim));
      this.v.push(new Float32Array(B * l.numKvHeads * capacity * cfg.headDim));
    }
  }

  /**
   * Store the new keys/values (heads layout [B*nKV, T, d]) of layer `li` at positions pos0..pos0+T-1
   * and return contiguous [B*nKV, pos0+T, d] views of everything cached for that layer, valid until
   * the next append (they are copies in arrays the cache reuses).
   */
  append(li: number, kh: Float32Array, vh: Float32Array, B: number, T: number, pos0: number): { kh: Float32Array; vh: Float32Array } {
    if (B !== this.B) throw new Error(`KV cache holds ${this.B} rows, got ${B}`);
    const S = pos0 + T;
    if (S > this.capacity) throw new Error(`KV cache capacity ${this.capacity} exceeded (${S})`);
    const d = this.cfg.headDim, nKV = this.cfg.layers[li]!.numKvHeads, cap = this.capacity;
    const K = this.k[li]!, Vv = this.v[li]!;
    for (let r = 0; r < B * nKV; r++) {
      K.set(kh.subarray(r * T * d, (r + 1) * T * d), (r * cap + pos0) * d);
      Vv.set(vh.subarray(r * T * d, (r + 1) * T * d), (r * cap + pos0) * d);
    }
    if (S === cap) return { kh: K, vh: Vv };
    // the contiguous views go into one reused pair of arrays (fresh ones each layer and step were a
    // sixth of a 1.1B model's per-token time outside the GEMVs): they are read by this layer's
    // attention only, before the next append overwrites them
    const n = B * nKV * S * d;
    if (this.viewK.length < n) {
      const most = Math.max(...this.cfg.layers.map((l) => B * l.numKvHeads * cap * d));
      this.viewK = new Float32Array(most); this.viewV = new Float32Array(most);
    }
    const ko = this.viewK.subarray(0, n), vo = this.viewV.subarray(0, n);
    for (let r = 0; r < B * nKV; r++) {
      ko.set(K.subarray(r * cap * d, (r * cap + S) * d), r * S * d);
      vo.set(Vv.subarray(r * cap * d, (r * cap + S) * d), r * S * d);
    }
    return { kh: ko, vh: vo };
  }

  advance(T: number): void {
    this.length += T;
  }

  /**
   * A cache of `rows` rows whose every row starts as a copy of the first `length` positions of
   * row `src` of this cache (shared-prefix scoring: a context computed once, continued by several
   * choices; `length` below this.length drops a right-padded row's padding).
   */
  fork(src: number, rows: number, capacity = this.capacity, length = this.length): KVCache {
    if (length > this.length) throw new Error(`fork of ${length} positions from a cache holding ${this.length}`);
    const c = new KVCache(this.cfg, rows, capacity);
    const d = this.cfg.headDim;
    this.cfg.layers.forEach((l, li) => {
      for (let j = 0; j < l.numKvHeads; j++) {
        const from = (src * l.numKvHeads + j) * this.capacity * d;
        for (let r = 0; r < rows; r++) {
          const to = (r * l.numKvHeads + j) * capacity * d;
          c.k[li]!.set(this.k[li]!.subarray(from, from + length * d), to);
          c.v[li]!.set(this.v[li]!.subarray(from, from + length * d), to);
        }
      }
    });
    c.length = length;
    return c;
  }

  /** Bytes held. */
  bytes(): number {
    return this.k.reduce((s, a) => s + a.byteLength, 0) * 2;
  }
}
