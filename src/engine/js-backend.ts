/**
 * Plain TypeScript GEMM: the portable fallback, the reference the fast backends are tested
 * against, and the fastest choice for tiny matrices where a native call costs more than the math.
 */
import { denseA, type Backend, type GemmArgs, type BmmArgs, type BOperand } from './backend.js';
import { toF32, type Tensor } from './tensor.js';

/**
 * Widened copies of SMALL 16-bit weights (at most 256K elements, 1 MB as f32), kept per tensor.
 * The JS path only sees small products, often the same tiny weight every decode step; widening
 * it anew each call cost more than the multiply. Large weights are always widened per call.
 */
const SMALL_WEIGHT = 1 << 18;
const widened = new WeakMap<Tensor, Float32Array>();
const stacked = new WeakMap<Tensor, { parts: (Float32Array | Tensor)[]; out: Float32Array }>();

function tensorF32(t: Tensor): Float32Array {
  if (t.dtype === 'f32' || t.data.length > SMALL_WEIGHT) return toF32(t);
  let w = widened.get(t);
  if (!w) { w = toF32(t); widened.set(t, w); }
  return w;
}

/** The B operand as one f32 array (stacked operands concatenated, stored dtypes widened). */
export function operandF32(b: BOperand): Float32Array {
  if (b instanceof Float32Array) return b;
  if (!Array.isArray(b)) return tensorF32(b);
  // stacked small weights (fused q/k/v, gate/up): the concatenation is cached like a single weight
  const head = b[0];
  const small = b.every((p) => !(p instanceof Float32Array) && p.dtype !== 'f32') && b.reduce((s, p) => s + (p instanceof Float32Array ? p.length : p.data.length), 0) <= 2 * SMALL_WEIGHT;
  if (small && head && !(head instanceof Float32Array)) {
    const hit = stacked.get(head);
    if (hit && hit.parts.length === b.length && hit.parts.every((p, i) => p === b[i])) return hit.out;
  }
  const parts = b.map((p) => (p instanceof Float32Array ? p : tensorF32(p)));
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  if (small && head && !(head instanceof Float32Array)) stacked.set(head, { parts: [...b], out });
  return out;
}

/** C (+)= op(A) op(B), all row-major f32. */
export function gemmF32(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number,
  transA: boolean, transB: boolean, accumulate: boolean, aOff = 0, bOff = 0, cOff = 0): void {
  if (!accumulate) c.fill(0, cOff, cOff + m * n);
  if (!transA && transB) {
    // c[i,j] = sum_p a[i,p] b[j,p]: two contiguous rows per dot product
    for (let i = 0; i < m; i++) {
      const ai = aOff + i * k;
      for (let j = 0; j < n; j++) {
        const bj = bOff + j * k;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let p = 0;
        for (; p + 3 < k; p += 4) {
          s0 += a[ai + p]! * b[bj + p]!;
          s1 += a[ai + p + 1]! * b[bj + p + 1]!;
          s2 += a[ai + p + 2]! * b[bj + p + 2]!;
          s3 += a[ai + p + 3]! * b[bj + p + 3]!;
        }
        for (; p < k; p++) s0 += a[ai + p]! * b[bj + p]!;
        c[cOff + i * n + j]! += s0 + s1 + s2 + s3;
      }
    }
  } else if (!transA && !transB) {
    // c[i,:] += a[i,p] * b[p,:]
    for (let i = 0; i < m; i++) {
      const ci = cOff + i * n;
      for (let p = 0; p < k; p++) {
        const av = a[aOff + i * k + p]!;
        if (av === 0) continue;
        const bp = bOff + p * n;
        for (let j = 0; j < n; j++) c[ci + j]! += av * b[bp + j]!;
      }
    }
  } else if (transA && !transB) {
    // A is [K,M]: c[i,:] += a[p,i] * b[p,:]
    for (let p = 0; p < k; p++) {
      const bp = bOff + p * n;
      for (let i = 0; i < m; i++) {
        const av = a[aOff + p * m + i]!;
        if (av === 0) continue;
        const ci = cOff + i * n;
        for (let j = 0; j < n; j++) c[ci + j]! += av * b[bp + j]!;
      }
    }
  } else {
    // A is [K,M], B is [N,K]
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[aOff + p * m + i]! * b[bOff + j * k + p]!;
        c[cOff + i * n + j]! += s;
      }
    }
  }
}

export const jsBackend: Backend = {
  name: 'js',
  async gemm(args: GemmArgs) {
    const x = denseA(args);
    const b = operandF32(x.b);
    gemmF32(x.a, b, x.c, x.m, x.n, x.k, x.transA ?? false, x.transB ?? false, x.accumulate ?? false);
  },
  async bmm(x: BmmArgs) {
    for (let i = 0; i < x.batch; i++) {
      gemmF32(x.a, x.b, x.c, x.m, x.n, x.k, x.transA ?? false, x.transB ?? false, false, i * x.m * x.k, i * x.k * x.n, i * x.m * x.n);
    }
  },
};
