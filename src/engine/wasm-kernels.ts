/**
 * The memory-bound kernels in WebAssembly SIMD (assembly/kernels.ts), with the same meaning as
 * their plain TypeScript references in kernels.ts / attention.ts (test/kernels.test.ts checks
 * each against them), plus row strides so fused GEMM outputs ([q|k|v], [gate|up]) are read in place.
 *
 * Arguments may be any arrays. When all of them live in the activation heap the kernel runs on
 * them directly (the forward pass allocates its buffers there); arrays from outside are copied in
 * and back, into free activation-heap space or else a scratch heap (correct, slower).
 */
import { activationHeap, copyHeap, type HeapArray, type KernelExports, type WasmHeap } from './wasm/heap.js';
import { rmsnormBackward as refRmsnormBackward } from './kernels.js';

interface Arg {
  a: HeapArray;
  /** elements used, from a[0] */
  n: number;
  /** read by the kernel (copied in on the copy path); default true */
  read?: boolean;
  /** written by the kernel (copied back on the copy path) */
  write?: boolean;
}

/** Bytes the kernels copied in and out because arguments lived outside the activation heap. */
export const kernelCopyStats = { stagedBytes: 0, scratchBytes: 0 };

function run(args: Arg[], f: (k: KernelExports, p: number[]) => void): void {
  const H = activationHeap();
  const direct = args.map((x) => H.ptrOf(x.a));
  if (direct.every((p) => p >= 0)) { f(H.k, direct); return; }
  for (const x of args) if (x.a.length < x.n) throw new RangeError(`kernel argument has ${x.a.length} elements, needs ${x.n} (a detached heap view?)`);
  // Stage the outside arrays into free activation-heap space (tryAlloc never grows the heap, so
  // no live view is detached); when there is no room, copy everything into the scratch heap.
  let mark = H.mark();
  try {
    const staged = direct.map((p, i) => (p >= 0 ? p : H.tryAlloc(args[i]!.n * args[i]!.a.BYTES_PER_ELEMENT)));
    if (staged.every((p) => p >= 0)) {
      args.forEach((x, i) => { if (direct[i]! < 0) kernelCopyStats.stagedBytes += x.n * x.a.BYTES_PER_ELEMENT; });
      copyIn(H, args, staged, direct);
      f(H.k, staged);
      copyOut(H, args, staged, direct);
      return;
    }
  } finally {
    H.release(mark);
  }
  const S = copyHeap();
  mark = S.mark();
  try {
    const ptrs = args.map((x) => S.alloc(x.n * x.a.BYTES_PER_ELEMENT)); // may grow S: make views after
    for (const x of args) kernelCopyStats.scratchBytes += x.n * x.a.BYTES_PER_ELEMENT;
    copyIn(S, args, ptrs, null);
    f(S.k, ptrs);
    copyOut(S, args, ptrs, null);
  } finally {
    S.release(mark);
  }
}

/** Copy the read arguments into their heap slots (all, or those not already in place). */
function copyIn(H: WasmHeap, args: Arg[], ptrs: number[], inPlace: number[] | null): void {
  args.forEach((x, i) => {
    if ((inPlace && inPlace[i]! >= 0) || x.read === false || x.n === 0) return;
    H.viewLike(x.a, ptrs[i]!, x.n).set(x.a.subarray(0, x.n));
  });
}

function copyOut(H: WasmHeap, args: Arg[], ptrs: number[], inPlace: number[] | null): void {
  args.forEach((x, i) => {
    if ((inPlace && inPlace[i]! >= 0) || !x.write || x.n === 0) return;
    x.a.set(H.viewLike(x.a, ptrs[i]!, x.n));
  });
}

/** Elements a row-strided operand spans: n rows of `width` at stride `ld`. */
const span = (n: number, width: number, ld: number) => (n > 0 ? (n - 1) * ld + width : 0);

export function widenBf16(src: Uint16Array, dst: Float32Array, n = dst.length): void {
  run([{ a: src, n }, { a: dst, n, read: false, write: true }], (k, [s, d]) => k.widen_bf16(s!, d!, n));
}

export function widenF16(src: Uint16Array, dst: Float32Array, n = dst.length): void {
  run([{ a: src, n }, { a: dst, n, read: false, write: true }], (k, [s, d]) => k.widen_f16(s!, d!, n));
}

/** out[i,:] = x[i,:] * rstd[i] * w, rstd[i] = 1/sqrt(mean(x[i,:]^2) + eps) */
export function rmsnormForward(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array | null, n: number, h: number, eps: number): void {
  const args: Arg[] = [{ a: x, n: n * h }, { a: w, n: h }, { a: out, n: n * h, read: false, write: true }];
  if (rstd) args.push({ a: rstd, n, read: false, write: true });
  run(args, (k, p) => k.rmsnorm_fwd(p[0]!, p[1]!, p[2]!, rstd ? p[3]! : 0, n, h, eps));
}

/** Rotary embedding in place on n rows of nHeads*d (row stride ld); see kernels.rope. */
export function rope(x: Float32Array, pos: Int32Array, cos: Float32Array, sin: Float32Array, n: number, nHeads: number, d: number,
  inverse = false, ld = nHeads * d): void {
  let maxPos = 0;
  for (let i = 0; i < n; i++) maxPos = Math.max(maxPos, pos[i]!);
  const tab = (maxPos + 1) * (d / 2);
  run([{ a: x, n: span(n, nHeads * d, ld), write: true }, { a: pos, n }, { a: cos, n: tab }, { a: sin, n: tab }],
    (k, [px, pp, pc, ps]) => k.rope(px!, ld, pp!, pc!, ps!, n, nHeads, d, inverse ? 1 : 0));
}

/** Causal softmax in place over [nBatch, rows, S] scores scaled by `scale` (see attentionForward). */
export function softmaxCausal(p: Float32Array, nBatch: number, rows: number, S: number, T: number, pos0: number, scale: number): void {
  run([{ a: p, n: nBatch * rows * S, write: true }], (k, [pp]) => k.softmax_causal(pp!, nBatch, rows, S, T, pos0, scale));
}

/** sum |w * g| over n elements: w f32 or bf16 bits (Uint16Array), g f32; the sum in f64. */
export function sumAbsProduct(w: Float32Array | Uint16Array, g: Float32Array, n: number): number {
  let s = 0;
  run([{ a: w, n }, { a: g, n }], (k, [pw, pg]) => { s = k.sum_abs_prod(pw!, w instanceof Uint16Array ? 1 : 0, pg!, n); });
  return s;
}

/** Softmax backward in place over n rows of S scores (see kernels.softmaxBackward). */
export function softmaxBackward(p: Float32Array, dp: Float32Array, n: number, S: number, scale: number): void {
  run([{ a: p, n: n * S }, { a: dp, n: n * S, write: true }], (k, [pp, pd]) => k.softmax_backward(pp!, pd!, n, S, scale));
}

/** out [n, I] = silu(gate) * up, gate/up rows at stride ld (I when separate, 2I for [gate|up]). */
export function siluMul(gate: Float32Array, up: Float32Array, out: Float32Array, n: number, I: number, ld = I): void {
  run([{ a: gate, n: span(n, I, ld) }, { a: up, n: span(n, I, ld) }, { a: out, n: n * I, read: false, write: true }],
    (k, [g, u, o]) => k.silu_mul(g!, u!, ld, o!, n, I));
}

/** Backward of silu(gate)*up; rows of gu and dgu are [gate | up]; see kernels.siluMulBackward. */
export function siluMulBackward(dOut: Float32Array, gu: Float32Array, dgu: Float32Array, rows: number, I: number): void {
  run([{ a: dOut, n: rows * I }, { a: gu, n: rows * 2 * I }, { a: dgu, n: rows * 2 * I, read: false, write: true }],
    (k, [d, g, dg]) => k.silu_mul_bwd(d!, g!, dg!, rows, I));
}

/** Backward of rmsnorm, accumulating into dx (and dw); see kernels.rmsnormBackward. */
export function rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array,
  dw: Float32Array | Float64Array | null, n: number, h: number): void {
  if (dw instanceof Float64Array) return refRmsnormBackward(dy, x, w, rstd, dx, dw, n, h); // f32 kernel only
  const args: Arg[] = [{ a: dy, n: n * h }, { a: x, n: n * h }, { a: w, n: h }, { a: rstd, n }, { a: dx, n: n * h, write: true }];
  if (dw) args.push({ a: dw, n: h, write: true });
  run(args, (k, p) => k.rmsnorm_bwd(p[0]!, p[1]!, p[2]!, p[3]!, p[4]!, dw ? p[5]! : 0, n, h));
}

/** out = a + b */
export function add(a: Float32Array, b: Float32Array, out: Float32Array, n = out.length): void {
  run([{ a, n }, { a: b, n }, { a: out, n, read: false, write: true }], (k, [pa, pb, po]) => k.add(pa!, pb!, po!, n));
}

/** y[i, 0..d) += b for n rows of stride ld */
export function addBias(y: Float32Array, b: Float32Array, n: number, d: number, ld = d): void {
  run([{ a: y, n: span(n, d, ld), write: true }, { a: b, n: d }], (k, [py, pb]) => k.add_bias(py!, ld, pb!, n, d));
}

/** [B*T rows (stride ldx), nHeads*d] -> [B*nKV, group*T, d]; see attention.toHeads. */
export function toHeads(x: Float32Array, out: Float32Array, B: number, T: number, nHeads: number, nKV: number, d: number, ldx = nHeads * d): void {
  run([{ a: x, n: span(B * T, nHeads * d, ldx) }, { a: out, n: B * T * nHeads * d, read: false, write: true }],
    (k, [px, po]) => k.to_heads(px!, ldx, po!, B, T, nHeads, nKV, d));
}

/** Inverse of toHeads into rows of stride ldo (accumulating when asked). */
export function fromHeads(x: Float32Array, out: Float32Array, B: number, T: number, nHeads: number, nKV: number, d: number, accumulate = false, ldo = nHeads * d): void {
  const full = ldo === nHeads * d && !accumulate;
  run([{ a: x, n: B * T * nHeads * d }, { a: out, n: span(B * T, nHeads * d, ldo), read: !full, write: true }],
    (k, [px, po]) => k.from_heads(px!, po!, ldo, B, T, nHeads, nKV, d, accumulate ? 1 : 0));
}

/** Per row of logits (rows x cols, stride ld): m[i] = max, s[i] = sum exp(x - m[i]). */
export function rowMaxSumExp(x: Float32Array, rows: number, cols: number, ld: number, m: Float32Array, s: Float64Array): void {
  run([{ a: x, n: span(rows, cols, ld) }, { a: m, n: rows, read: false, write: true }, { a: s, n: rows, read: false, write: true }],
    (k, [px, pm, ps]) => k.row_max_sumexp(px!, rows, cols, ld, pm!, ps!));
}

/** x[i, j] = exp(x[i, j] - lse[i]) * scale[i] over rows x cols (stride ld): softmax from a known log-sum-exp. */
export function softmaxRowsLse(x: Float32Array, rows: number, cols: number, ld: number, lse: Float32Array, scale: Float32Array): void {
  run([{ a: x, n: span(rows, cols, ld), write: true }, { a: lse, n: rows }, { a: scale, n: rows }],
    (k, [px, pl, ps]) => k.softmax_rows_lse(px!, rows, cols, ld, pl!, ps!));
}

/** y (row stride ldy) += xa bt, the LoRA delta; see kernels.loraAdd. */
export function loraAdd(y: Float32Array, ldy: number, xa: Float32Array, bt: Float32Array, n: number, out: number, r: number): void {
  run([{ a: y, n: span(n, out, ldy), write: true }, { a: xa, n: n * r }, { a: bt, n: r * out }],
    (k, [py, px, pb]) => k.lora_add(py!, ldy, px!, pb!, n, out, r));
}

/** A dropout keep-mask: util/rng.ts keepMask's bytes (the same mulberry32 stream), five times faster. */
export function keepMask(n: number, drop: number, seed: number): Uint8Array {
  const mask = new Uint8Array(n);
  const threshold = BigInt(Math.ceil(drop * 4294967296));
  run([{ a: mask, n, read: false, write: true }], (k, [pm]) => k.keep_mask(pm!, n, threshold, seed >>> 0));
  return mask;
}

/** out = x * mask * s; see kernels.dropoutApply. */
export function dropoutApply(x: Float32Array, mask: Uint8Array, s: number, out: Float32Array, n: number): void {
  run([{ a: x, n }, { a: mask, n }, { a: out, n, read: false, write: true }], (k, [px, pm, po]) => k.dropout_apply(px!, pm!, s, po!, n));
}

/** dx += dh * mask * s; see kernels.dropoutAdd. */
export function dropoutAdd(dx: Float32Array, dh: Float32Array, mask: Uint8Array, s: number, n: number): void {
  run([{ a: dx, n, write: true }, { a: dh, n }, { a: mask, n }], (k, [pd, ph, pm]) => k.dropout_add(pd!, ph!, pm!, s, n));
}

/** Elements per AdamW kernel call: bounds the heap space its arrays are staged in. */
const ADAMW_CHUNK = 1 << 20;

/**
 * One AdamW update of w (with moments m, v) from the gradient g * gs, in f32 as torch computes
 * it; see train/adamw.ts for the formula. Runs in chunks so large tensors stage in bounded space.
 */
export function adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, gs: number,
  c: { beta1: number; beta2: number; eps: number; decay: number; stepSize: number; bc2: number }): void {
  for (let i0 = 0; i0 < w.length; i0 += ADAMW_CHUNK) {
    const n = Math.min(ADAMW_CHUNK, w.length - i0), sub = (a: Float32Array) => a.subarray(i0, i0 + n);
    run([{ a: sub(w), n, write: true }, { a: sub(g), n }, { a: sub(m), n, write: true }, { a: sub(v), n, write: true }],
      (k, [pw, pg, pm, pv]) => k.adamw(pw!, pg!, pm!, pv!, n, gs, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.eps, c.decay, c.stepSize, c.bc2));
  }
}
