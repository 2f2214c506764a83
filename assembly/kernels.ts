/**
 * WebAssembly SIMD kernels (AssemblyScript). Compiled twice by assembly/build.mjs: once against a
 * plain imported memory (main-thread kernels, whose buffers onnxruntime can read), once against a
 * shared memory (the threaded GEMM of the portable WASM backend).
 *
 * Everything works on raw pointers into the imported memory, which the JS side manages: no AS
 * runtime allocation happens here. Pointers are byte addresses; sizes count elements.
 * f32 everywhere; reductions that the JS reference does in float64 (sums of squares, softmax and
 * log-sum-exp denominators) accumulate in f64x2 lanes so results stay within a few ulp of it.
 */

// ---------------------------------------------------------------------------------------------
// exp(x) on four lanes: Cephes expf (range reduction by ln2 + degree-6 polynomial, ~1 ulp).
// Inputs are clamped to [-87, 88] (exp(-87) ~ 1.6e-38 stands in for 0, exp(88) stays finite).
//
// The constants live in a table in low memory (written by init()): V8 rebuilds every SIMD
// constant from an immediate with three instructions at each use inside a loop, which doubled
// the cost of exp; a memory operand is free. Hot loops also run two exp4 chains per iteration,
// since one chain (~60 cycles of dependent latency) leaves the FP units idle.

/** Byte address of the exp constant table (below the first address the JS side allocates). */
const EXP_K: usize = 256;

/** Fill the constant tables; called once per instance (idempotent, so shared memories are fine). */
export function init(): void {
  v128.store(EXP_K, f32x4.splat(-87.0), 0);
  v128.store(EXP_K, f32x4.splat(88.0), 16);
  v128.store(EXP_K, f32x4.splat(1.44269504088896341), 32); // log2(e)
  v128.store(EXP_K, f32x4.splat(12582912.0), 48);           // 1.5 * 2^23: round-to-integer trick
  v128.store(EXP_K, f32x4.splat(0.693359375), 64);          // ln2, high part
  v128.store(EXP_K, f32x4.splat(-2.12194440e-4), 80);       // ln2, low part
  v128.store(EXP_K, f32x4.splat(1.9875691500e-4), 96);
  v128.store(EXP_K, f32x4.splat(1.3981999507e-3), 112);
  v128.store(EXP_K, f32x4.splat(8.3334519073e-3), 128);
  v128.store(EXP_K, f32x4.splat(4.1665795894e-2), 144);
  v128.store(EXP_K, f32x4.splat(1.6666665459e-1), 160);
  v128.store(EXP_K, f32x4.splat(5.0000001201e-1), 176);
  v128.store(EXP_K, f32x4.splat(1.0), 192);
  v128.store(EXP_K, i32x4.splat(127), 208);
}

@inline function exp4(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, v128.load(EXP_K, 0)), v128.load(EXP_K, 16));
  // round x*log2(e) to an integer by adding 1.5*2^23: the integer lands in the low mantissa bits
  const t = f32x4.add(f32x4.mul(x, v128.load(EXP_K, 32)), v128.load(EXP_K, 48));
  const fx = f32x4.sub(t, v128.load(EXP_K, 48));
  let r = f32x4.sub(x, f32x4.mul(fx, v128.load(EXP_K, 64)));
  r = f32x4.sub(r, f32x4.mul(fx, v128.load(EXP_K, 80)));
  let y = f32x4.add(f32x4.mul(v128.load(EXP_K, 96), r), v128.load(EXP_K, 112));
  y = f32x4.add(f32x4.mul(y, r), v128.load(EXP_K, 128));
  y = f32x4.add(f32x4.mul(y, r), v128.load(EXP_K, 144));
  y = f32x4.add(f32x4.mul(y, r), v128.load(EXP_K, 160));
  y = f32x4.add(f32x4.mul(y, r), v128.load(EXP_K, 176));
  y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(y, r), r), r), v128.load(EXP_K, 192));
  // 2^fx in the exponent bits: (n + 127) << 23, where bits(t) = bits(1.5*2^23) + n and the
  // constant's bits shift out
  return f32x4.mul(y, i32x4.shl(i32x4.add(t, v128.load(EXP_K, 208)), 23));
}

/** Scalar exp with the same algorithm (tails of vector loops). */
@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** Horizontal sum of an f64x2. */
@inline function hsum2(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** Adds the four f32 lanes of v to acc as f64. */
@inline function accF64(acc: v128, v: v128): v128 {
  return f64x2.add(f64x2.add(acc, f64x2.promote_low_f32x4(v)), f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
}

// ---------------------------------------------------------------------------------------------
// Widening stored weights to f32.

/** bf16 -> f32: the bf16 bits are the high half of the f32 (exact). */
export function widen_bf16(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}

/**
 * sum_i |w_i * g_i| over n elements (Taylor+'s score), w bf16 (wtype 1) or f32 (wtype 0), g f32;
 * products in f32, the sum in f64.
 */
export function sum_abs_prod(w: usize, wtype: i32, g: usize, n: i32): f64 {
  let acc = f64x2.splat(0), acc2 = f64x2.splat(0);
  let i = 0;
  if (wtype == 1) {
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(w + (<usize>i << 1));
      const q = g + (<usize>i << 2);
      acc = accF64(acc, f32x4.abs(f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h), 16), v128.load(q))));
      acc2 = accF64(acc2, f32x4.abs(f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), v128.load(q, 16))));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const p = w + (<usize>i << 2), q = g + (<usize>i << 2);
      acc = accF64(acc, f32x4.abs(f32x4.mul(v128.load(p), v128.load(q))));
      acc2 = accF64(acc2, f32x4.abs(f32x4.mul(v128.load(p, 16), v128.load(q, 16))));
    }
  }
  let s = hsum2(f64x2.add(acc, acc2));
  for (; i < n; i++) {
    const wi = wtype == 1 ? reinterpret<f32>(<u32>load<u16>(w + (<usize>i << 1)) << 16) : load<f32>(w + (<usize>i << 2));
    s += <f64>abs<f32>(wi * load<f32>(g + (<usize>i << 2)));
  }
  return s;
}

/**
 * f16 -> f32, exact: shift exponent+mantissa into place and multiply by 2^112 to rebias the
 * exponent (this also turns half subnormals into the right normal f32); inf/NaN get exponent 255.
 */
@inline function half4(h: v128): v128 {
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const scaled = f32x4.mul(em, f32x4.splat(5.192296858534828e33)); // 2^112
  const isInfNan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const mag = v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), scaled, isInfNan);
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

export function widen_f16(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), half4(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>i << 2), half4(i32x4.extend_high_i16x8_u(h)), 16);
  }
  for (; i < n; i++) {
    const h = i32x4.splat(<i32>load<u16>(src + (<usize>i << 1)));
    store<f32>(dst + (<usize>i << 2), f32x4.extract_lane(half4(h), 0));
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization, rotary embedding, activations.

/** out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * w; rstd[i] = that 1/rms (rstd may be 0). */
export function rmsnorm_fwd(x: usize, w: usize, out: usize, rstd: usize, n: i32, h: i32, eps: f32): void {
  for (let i = 0; i < n; i++) {
    const xr = x + (<usize>i * <usize>h << 2), orow = out + (<usize>i * <usize>h << 2);
    let acc = f64x2.splat(0);
    let j = 0;
    for (; j + 4 <= h; j += 4) {
      const v = v128.load(xr + (<usize>j << 2));
      acc = accF64(acc, f32x4.mul(v, v)); // squares in f32 are exact enough; the sum is f64
    }
    let ss = hsum2(acc);
    for (; j < h; j++) { const v = <f64>load<f32>(xr + (<usize>j << 2)); ss += v * v; }
    const r = <f32>(1.0 / Math.sqrt(ss / <f64>h + <f64>eps));
    if (rstd) store<f32>(rstd + (<usize>i << 2), r);
    const rv = f32x4.splat(r);
    j = 0;
    for (; j + 4 <= h; j += 4) {
      const o = <usize>j << 2;
      v128.store(orow + o, f32x4.mul(f32x4.mul(v128.load(xr + o), rv), v128.load(w + o)));
    }
    for (; j < h; j++) store<f32>(orow + (<usize>j << 2), load<f32>(xr + (<usize>j << 2)) * r * load<f32>(w + (<usize>j << 2)));
  }
}

/**
 * Rotary embedding in place, HF rotate_half layout: in each head, element j pairs with j + d/2.
 * Row i starts at x + i*ld floats and holds nHeads heads of d; pos[i] indexes cos/sin [*, d/2].
 */
export function rope(x: usize, ld: i32, pos: usize, cos: usize, sin: usize, n: i32, nHeads: i32, d: i32, inverse: i32): void {
  const half = d >> 1;
  const sgn = f32x4.splat(inverse ? -1.0 : 1.0);
  for (let i = 0; i < n; i++) {
    const t = <usize>load<i32>(pos + (<usize>i << 2)) * <usize>half;
    const c0 = cos + (t << 2), s0 = sin + (t << 2);
    for (let hh = 0; hh < nHeads; hh++) {
      const a0 = x + ((<usize>i * <usize>ld + <usize>hh * <usize>d) << 2);
      const b0 = a0 + (<usize>half << 2);
      let j = 0;
      for (; j + 4 <= half; j += 4) {
        const o = <usize>j << 2;
        const c = v128.load(c0 + o), s = f32x4.mul(v128.load(s0 + o), sgn);
        const a = v128.load(a0 + o), b = v128.load(b0 + o);
        v128.store(a0 + o, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
        v128.store(b0 + o, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
      }
      for (; j < half; j++) {
        const o = <usize>j << 2;
        const c = load<f32>(c0 + o), s = load<f32>(s0 + o) * (inverse ? -1.0 : 1.0);
        const a = load<f32>(a0 + o), b = load<f32>(b0 + o);
        store<f32>(a0 + o, a * c - b * s);
        store<f32>(b0 + o, b * c + a * s);
      }
    }
  }
}

/**
 * Causal softmax of scores in place: nBatch blocks of `rows` rows of S scores; row r of a block
 * sees keys 0..pos0 + r % T (the GQA layout stacks `group` query heads of T rows each).
 * Scores are scaled by `scale` first; masked entries become 0.
 */
export function softmax_causal(p: usize, nBatch: i32, rows: i32, S: i32, T: i32, pos0: i32, scale: f32): void {
  const sc = f32x4.splat(scale);
  for (let bj = 0; bj < nBatch; bj++) {
    for (let r = 0; r < rows; r++) {
      const row = p + ((<usize>bj * <usize>rows + <usize>r) * <usize>S << 2);
      const len = min(pos0 + (r % T) + 1, S);
      let mv = f32x4.splat(-Infinity);
      let s = 0;
      for (; s + 4 <= len; s += 4) {
        const v = f32x4.mul(v128.load(row + (<usize>s << 2)), sc);
        v128.store(row + (<usize>s << 2), v);
        mv = f32x4.pmax(mv, v);
      }
      let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (; s < len; s++) {
        const v = load<f32>(row + (<usize>s << 2)) * scale;
        store<f32>(row + (<usize>s << 2), v);
        m = max(m, v);
      }
      const mm = f32x4.splat(m);
      let acc = f64x2.splat(0), acc2 = f64x2.splat(0);
      s = 0;
      for (; s + 8 <= len; s += 8) {
        const q = row + (<usize>s << 2);
        const e0 = exp4(f32x4.sub(v128.load(q), mm)), e1 = exp4(f32x4.sub(v128.load(q, 16), mm));
        v128.store(q, e0); v128.store(q, e1, 16);
        acc = accF64(acc, e0); acc2 = accF64(acc2, e1);
      }
      acc = f64x2.add(acc, acc2);
      for (; s + 4 <= len; s += 4) {
        const e = exp4(f32x4.sub(v128.load(row + (<usize>s << 2)), mm));
        v128.store(row + (<usize>s << 2), e);
        acc = accF64(acc, e);
      }
      let sum = hsum2(acc);
      for (; s < len; s++) {
        const e = exp1(load<f32>(row + (<usize>s << 2)) - m);
        store<f32>(row + (<usize>s << 2), e);
        sum += <f64>e;
      }
      const inv = <f32>(1.0 / sum);
      const iv = f32x4.splat(inv);
      s = 0;
      for (; s + 4 <= len; s += 4) v128.store(row + (<usize>s << 2), f32x4.mul(v128.load(row + (<usize>s << 2)), iv));
      for (; s < len; s++) store<f32>(row + (<usize>s << 2), load<f32>(row + (<usize>s << 2)) * inv);
      for (s = len; s < S; s++) store<f32>(row + (<usize>s << 2), 0);
    }
  }
}

/**
 * Softmax backward in place over n rows of S: dp <- p * (dp - sum_j dp_j p_j) * scale (the
 * attention's 1/sqrt(d) folded in). The row sums accumulate in f64.
 */
export function softmax_backward(p: usize, dp: usize, n: i32, S: i32, scale: f32): void {
  for (let r = 0; r < n; r++) {
    const pr = p + (<usize>r * <usize>S << 2), dr = dp + (<usize>r * <usize>S << 2);
    let acc = f64x2.splat(0);
    let s = 0;
    for (; s + 4 <= S; s += 4) acc = accF64(acc, f32x4.mul(v128.load(dr + (<usize>s << 2)), v128.load(pr + (<usize>s << 2))));
    let dot = hsum2(acc);
    for (; s < S; s++) dot += <f64>(load<f32>(dr + (<usize>s << 2)) * load<f32>(pr + (<usize>s << 2)));
    const dv = f32x4.splat(<f32>dot), sc = f32x4.splat(scale);
    const d1 = <f32>dot;
    s = 0;
    for (; s + 4 <= S; s += 4) {
      const q = <usize>s << 2;
      v128.store(dr + q, f32x4.mul(f32x4.mul(v128.load(pr + q), f32x4.sub(v128.load(dr + q), dv)), sc));
    }
    for (; s < S; s++) {
      const q = <usize>s << 2;
      store<f32>(dr + q, load<f32>(pr + q) * (load<f32>(dr + q) - d1) * scale);
    }
  }
}

/**
 * out[i, 0..I) = silu(gate[i,:]) * up[i,:], where gate row i starts at gate + i*ld and up row i
 * at up + i*ld (ld = I for separate buffers, 2I for a fused [gate|up] GEMM output).
 */
export function silu_mul(gate: usize, up: usize, ld: i32, out: usize, n: i32, I: i32): void {
  const one = f32x4.splat(1.0);
  for (let i = 0; i < n; i++) {
    const g0 = gate + (<usize>i * <usize>ld << 2), u0 = up + (<usize>i * <usize>ld << 2), o0 = out + (<usize>i * <usize>I << 2);
    let j = 0;
    for (; j + 8 <= I; j += 8) {
      const o = <usize>j << 2;
      const g = v128.load(g0 + o), h = v128.load(g0 + o, 16);
      const eg = exp4(f32x4.neg(g)), eh = exp4(f32x4.neg(h));
      v128.store(o0 + o, f32x4.mul(f32x4.div(g, f32x4.add(one, eg)), v128.load(u0 + o)));
      v128.store(o0 + o, f32x4.mul(f32x4.div(h, f32x4.add(one, eh)), v128.load(u0 + o, 16)), 16);
    }
    for (; j + 4 <= I; j += 4) {
      const o = <usize>j << 2;
      const g = v128.load(g0 + o);
      v128.store(o0 + o, f32x4.mul(f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g)))), v128.load(u0 + o)));
    }
    for (; j < I; j++) {
      const o = <usize>j << 2;
      const g = load<f32>(g0 + o);
      store<f32>(o0 + o, g / (1.0 + exp1(-g)) * load<f32>(u0 + o));
    }
  }
}

/**
 * Backward of silu(gate)*up on the stacked layout: rows of gu (and of dgu) are [gate | up], dOut
 * is [rows, I]; dUp = dOut*silu(g), dGate = dOut*up*sig*(1 + g*(1 - sig)).
 */
export function silu_mul_bwd(dOut: usize, gu: usize, dgu: usize, rows: i32, I: i32): void {
  const one = f32x4.splat(1.0);
  const ld = <usize>(2 * I) << 2, off = <usize>I << 2;
  for (let r = 0; r < rows; r++) {
    const d0 = dOut + (<usize>r * <usize>I << 2), g0 = gu + <usize>r * ld, u0 = g0 + off;
    const dg0 = dgu + <usize>r * ld, du0 = dg0 + off;
    let j = 0;
    for (; j + 4 <= I; j += 4) {
      const o = <usize>j << 2;
      const g = v128.load(g0 + o), d = v128.load(d0 + o);
      const sig = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(g))));
      v128.store(du0 + o, f32x4.mul(d, f32x4.mul(g, sig)));
      const t = f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sig)));
      v128.store(dg0 + o, f32x4.mul(f32x4.mul(f32x4.mul(d, v128.load(u0 + o)), sig), t));
    }
    for (; j < I; j++) {
      const o = <usize>j << 2;
      const g = load<f32>(g0 + o), d = load<f32>(d0 + o);
      const sig: f32 = 1.0 / (1.0 + exp1(-g));
      store<f32>(du0 + o, d * g * sig);
      store<f32>(dg0 + o, d * load<f32>(u0 + o) * sig * (1.0 + g * (1.0 - sig)));
    }
  }
}

/**
 * Backward of rmsnorm, accumulating: dx += r*w*dy - x * r^3/h * sum(dy*w*x); dw (if not 0)
 * += dy*x*r, row by row as the reference does (the row dot product in f64).
 */
export function rmsnorm_bwd(dy: usize, x: usize, w: usize, rstd: usize, dx: usize, dw: usize, n: i32, h: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i * <usize>h << 2;
    const r = load<f32>(rstd + (<usize>i << 2));
    let acc = f64x2.splat(0);
    let j = 0;
    for (; j + 4 <= h; j += 4) {
      const q = o + (<usize>j << 2);
      acc = accF64(acc, f32x4.mul(f32x4.mul(v128.load(dy + q), v128.load(w + (<usize>j << 2))), v128.load(x + q)));
    }
    let dot = hsum2(acc);
    for (; j < h; j++) dot += <f64>(load<f32>(dy + o + (<usize>j << 2)) * load<f32>(w + (<usize>j << 2)) * load<f32>(x + o + (<usize>j << 2)));
    const c = <f32>(dot * <f64>r * <f64>r * <f64>r / <f64>h);
    const rv = f32x4.splat(r), cv = f32x4.splat(c);
    j = 0;
    for (; j + 4 <= h; j += 4) {
      const q = o + (<usize>j << 2), wj = <usize>j << 2;
      const dyv = v128.load(dy + q), xv = v128.load(x + q);
      v128.store(dx + q, f32x4.add(v128.load(dx + q), f32x4.sub(f32x4.mul(f32x4.mul(dyv, v128.load(w + wj)), rv), f32x4.mul(xv, cv))));
      if (dw) v128.store(dw + wj, f32x4.add(v128.load(dw + wj), f32x4.mul(f32x4.mul(dyv, xv), rv)));
    }
    for (; j < h; j++) {
      const q = o + (<usize>j << 2), wj = <usize>j << 2;
      const dyv = load<f32>(dy + q), xv = load<f32>(x + q);
      store<f32>(dx + q, load<f32>(dx + q) + (dyv * load<f32>(w + wj) * r - xv * c));
      if (dw) store<f32>(dw + wj, load<f32>(dw + wj) + dyv * xv * r);
    }
  }
}

/** out = a + b (out may alias a or b). */
export function add(a: usize, b: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}

/** Adds bias b[0..d) to n rows of y (row stride ld). */
export function add_bias(y: usize, ld: i32, b: usize, n: i32, d: i32): void {
  for (let i = 0; i < n; i++) add(y + (<usize>i * <usize>ld << 2), b, y + (<usize>i * <usize>ld << 2), d);
}

// ---------------------------------------------------------------------------------------------
// AdamW over f32 master weights, in f32 as torch.optim.AdamW computes it:
//   g' = g * gs ; m = b1 m + (1 - b1) g' ; v = b2 v + (1 - b2) g'^2
//   w = w * decay - stepSize * m / (sqrt(v) / bc2 + eps)

export function adamw(w: usize, g: usize, m: usize, v: usize, n: i32, gs: f32, b1: f32, c1: f32, b2: f32, c2: f32, eps: f32, decay: f32, stepSize: f32, bc2: f32): void {
  // c1 = 1 - b1 and c2 = 1 - b2 come from the caller in f64 (1 - f32(0.999) loses 4 digits)
  const vgs = f32x4.splat(gs), vb1 = f32x4.splat(b1), vc1 = f32x4.splat(c1), vb2 = f32x4.splat(b2), vc2 = f32x4.splat(c2);
  const veps = f32x4.splat(eps), vdec = f32x4.splat(decay), vss = f32x4.splat(stepSize), vbc2 = f32x4.splat(bc2);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gi = f32x4.mul(v128.load(g + o), vgs);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(vc1, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(vc2, f32x4.mul(gi, gi)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const den = f32x4.add(f32x4.div(f32x4.sqrt(vi), vbc2), veps);
    v128.store(w + o, f32x4.sub(f32x4.mul(v128.load(w + o), vdec), f32x4.div(f32x4.mul(vss, mi), den)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o) * gs;
    const mi = b1 * load<f32>(m + o) + c1 * gi;
    const vi = b2 * load<f32>(v + o) + c2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(w + o, load<f32>(w + o) * decay - stepSize * mi / (Mathf.sqrt(vi) / bc2 + eps));
  }
}

// ---------------------------------------------------------------------------------------------
// LoRA: the rank-r delta and the dropout mask (one byte per element, 1 = kept).

/**
 * y[i, 0..out) += sum_k xa[i, k] * bt[k, 0..out) for n rows (y row stride ldy): the LoRA delta
 * xa B^T with B [out, r] given transposed as bt [r, out]. One pass over y; bt stays in cache.
 */
export function lora_add(y: usize, ldy: i32, xa: usize, bt: usize, n: i32, out: i32, r: i32): void {
  const rowB = <usize>out << 2;
  for (let i = 0; i < n; i++) {
    const yr = y + (<usize>i * <usize>ldy << 2), xr = xa + (<usize>i * <usize>r << 2);
    let j = 0;
    // 32 columns at a time: eight independent sums hide the add latency (r is small, ~8)
    for (; j + 32 <= out; j += 32) {
      const o = <usize>j << 2, yo = yr + o;
      let a0 = v128.load(yo), a1 = v128.load(yo, 16), a2 = v128.load(yo, 32), a3 = v128.load(yo, 48);
      let a4 = v128.load(yo, 64), a5 = v128.load(yo, 80), a6 = v128.load(yo, 96), a7 = v128.load(yo, 112);
      for (let k = 0; k < r; k++) {
        const xk = v128.load32_splat(xr + (<usize>k << 2));
        const b = bt + <usize>k * rowB + o;
        a0 = f32x4.add(a0, f32x4.mul(xk, v128.load(b)));
        a1 = f32x4.add(a1, f32x4.mul(xk, v128.load(b, 16)));
        a2 = f32x4.add(a2, f32x4.mul(xk, v128.load(b, 32)));
        a3 = f32x4.add(a3, f32x4.mul(xk, v128.load(b, 48)));
        a4 = f32x4.add(a4, f32x4.mul(xk, v128.load(b, 64)));
        a5 = f32x4.add(a5, f32x4.mul(xk, v128.load(b, 80)));
        a6 = f32x4.add(a6, f32x4.mul(xk, v128.load(b, 96)));
        a7 = f32x4.add(a7, f32x4.mul(xk, v128.load(b, 112)));
      }
      v128.store(yo, a0); v128.store(yo, a1, 16); v128.store(yo, a2, 32); v128.store(yo, a3, 48);
      v128.store(yo, a4, 64); v128.store(yo, a5, 80); v128.store(yo, a6, 96); v128.store(yo, a7, 112);
    }
    for (; j + 8 <= out; j += 8) {
      const o = <usize>j << 2;
      let a0 = v128.load(yr + o), a1 = v128.load(yr + o, 16);
      for (let k = 0; k < r; k++) {
        const xk = f32x4.splat(load<f32>(xr + (<usize>k << 2)));
        const b = bt + <usize>k * rowB + o;
        a0 = f32x4.add(a0, f32x4.mul(xk, v128.load(b)));
        a1 = f32x4.add(a1, f32x4.mul(xk, v128.load(b, 16)));
      }
      v128.store(yr + o, a0);
      v128.store(yr + o, a1, 16);
    }
    for (; j < out; j++) {
      const o = <usize>j << 2;
      let s = load<f32>(yr + o);
      for (let k = 0; k < r; k++) s += load<f32>(xr + (<usize>k << 2)) * load<f32>(bt + <usize>k * rowB + o);
      store<f32>(yr + o, s);
    }
  }
}

/** Four mask bytes at m as 0.0/1.0 floats. */
@inline function mask4(m: usize): v128 {
  return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(m))));
}

/**
 * A dropout keep-mask of n bytes from the mulberry32 stream of `seed`: 0 where the draw (a u32)
 * is below `threshold` = ceil(drop * 2^32), else 1. The same stream as util/rng.ts keepMask.
 */
export function keep_mask(mask: usize, n: i32, threshold: u64, seed: u32): void {
  let a = seed;
  let i = 0;
  if (threshold < 0x100000000) {
    // sixteen draws at a time, four lanes each: lane j of step s draws a_(16s + 4v + j + 1)
    const c = i32x4.splat(0x6d2b79f5), thr = i32x4.splat(<i32>threshold), one = i8x16.splat(1);
    let av = i32x4.mul(i32x4(1, 2, 3, 4), c);
    av = i32x4.add(av, i32x4.splat(<i32>a));
    const step4 = i32x4.mul(i32x4.splat(4), c);
    for (; i + 16 <= n; i += 16) {
      const k0 = keep4(av, thr); av = i32x4.add(av, step4);
      const k1 = keep4(av, thr); av = i32x4.add(av, step4);
      const k2 = keep4(av, thr); av = i32x4.add(av, step4);
      const k3 = keep4(av, thr); av = i32x4.add(av, step4);
      // lanes are all-ones (kept) or zero: narrow to bytes and keep the low bit
      const b = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(k0, k1), i16x8.narrow_i32x4_s(k2, k3));
      v128.store(mask + <usize>i, v128.and(b, one));
    }
    a += <u32>i * 0x6d2b79f5;
  }
  for (; i < n; i++) {
    a += 0x6d2b79f5;
    let t = (a ^ (a >>> 15)) * (a | 1);
    t ^= t + (t ^ (t >>> 7)) * (t | 61);
    store<u8>(mask + <usize>i, <u64>(t ^ (t >>> 14)) >= threshold ? 1 : 0);
  }
}

/** mulberry32's output for four states, compared with the threshold: all-ones where kept. */
@inline function keep4(a: v128, thr: v128): v128 {
  let t = i32x4.mul(v128.xor(a, i32x4.shr_u(a, 15)), v128.or(a, i32x4.splat(1)));
  t = v128.xor(t, i32x4.add(t, i32x4.mul(v128.xor(t, i32x4.shr_u(t, 7)), v128.or(t, i32x4.splat(61)))));
  return i32x4.ge_u(v128.xor(t, i32x4.shr_u(t, 14)), thr);
}

/** out = x * mask * s (LoRA dropout with keep-scale s); out may alias x. */
export function dropout_apply(x: usize, mask: usize, s: f32, out: usize, n: i32): void {
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(x + o), f32x4.mul(mask4(mask + <usize>i), sv)));
  }
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), load<u8>(mask + <usize>i) ? load<f32>(x + (<usize>i << 2)) * s : 0);
}

/** dx += dh * mask * s (the backward of dropout_apply, accumulated into the input gradient). */
export function dropout_add(dx: usize, dh: usize, mask: usize, s: f32, n: i32): void {
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.add(v128.load(dx + o), f32x4.mul(v128.load(dh + o), f32x4.mul(mask4(mask + <usize>i), sv))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    if (load<u8>(mask + <usize>i)) store<f32>(dx + o, load<f32>(dx + o) + load<f32>(dh + o) * s);
  }
}

// ---------------------------------------------------------------------------------------------
// Layout changes for attention.

@inline function copyF32(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
}

/**
 * [B*T rows of stride ldx, nHeads*d] -> heads layout [B*nKV, group*T, d] (group = nHeads/nKV):
 * the query heads sharing kv head j are stacked so one batched GEMM scores them all.
 */
export function to_heads(x: usize, ldx: i32, out: usize, B: i32, T: i32, nHeads: i32, nKV: i32, d: i32): void {
  const group = nHeads / nKV;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const j = h / group, g = h % group;
      const dst0 = out + ((<usize>((b * nKV + j) * group + g) * <usize>T * <usize>d) << 2);
      for (let t = 0; t < T; t++) {
        copyF32(dst0 + (<usize>t * <usize>d << 2), x + ((<usize>(b * T + t) * <usize>ldx + <usize>h * <usize>d) << 2), d);
      }
    }
  }
}

/** Inverse of to_heads into rows of stride ldo; with `accumulate`, adds into out. */
export function from_heads(x: usize, out: usize, ldo: i32, B: i32, T: i32, nHeads: i32, nKV: i32, d: i32, accumulate: i32): void {
  const group = nHeads / nKV;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const j = h / group, g = h % group;
      const src0 = x + ((<usize>((b * nKV + j) * group + g) * <usize>T * <usize>d) << 2);
      for (let t = 0; t < T; t++) {
        const dst = out + ((<usize>(b * T + t) * <usize>ldo + <usize>h * <usize>d) << 2);
        const src = src0 + (<usize>t * <usize>d << 2);
        if (accumulate) add(dst, src, dst, d);
        else copyF32(dst, src, d);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Log-sum-exp statistics of logits rows (the LM head, in vocabulary chunks).

/**
 * For each of `rows` rows (stride ld) of `cols` logits: mOut[i] = max, sOut[i] = sum exp(x - max)
 * (f64). The caller merges chunks: lse = M + log(sum_c s_c * exp(m_c - M)).
 */
export function row_max_sumexp(x: usize, rows: i32, cols: i32, ld: i32, mOut: usize, sOut: usize): void {
  for (let i = 0; i < rows; i++) {
    const row = x + (<usize>i * <usize>ld << 2);
    let mv = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= cols; j += 4) mv = f32x4.pmax(mv, v128.load(row + (<usize>j << 2))); // pmax: one instruction (no NaN fix-ups)
    let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; j < cols; j++) m = max(m, load<f32>(row + (<usize>j << 2)));
    const mm = f32x4.splat(m);
    let acc = f64x2.splat(0), acc2 = f64x2.splat(0);
    j = 0;
    for (; j + 8 <= cols; j += 8) {
      const q = row + (<usize>j << 2);
      acc = accF64(acc, exp4(f32x4.sub(v128.load(q), mm)));
      acc2 = accF64(acc2, exp4(f32x4.sub(v128.load(q, 16), mm)));
    }
    acc = f64x2.add(acc, acc2);
    for (; j + 4 <= cols; j += 4) acc = accF64(acc, exp4(f32x4.sub(v128.load(row + (<usize>j << 2)), mm)));
    let s = hsum2(acc);
    for (; j < cols; j++) s += <f64>exp1(load<f32>(row + (<usize>j << 2)) - m);
    store<f32>(mOut + (<usize>i << 2), m);
    store<f64>(sOut + (<usize>i << 3), s);
  }
}

/**
 * Softmax rows from known log-sum-exps, scaled: x[i, j] = exp(x[i, j] - lse[i]) * scale[i]
 * (rows x cols, stride ld): the LM head's dlogits before the one-hot is subtracted.
 */
export function softmax_rows_lse(x: usize, rows: i32, cols: i32, ld: i32, lse: usize, scale: usize): void {
  for (let i = 0; i < rows; i++) {
    const row = x + (<usize>i * <usize>ld << 2);
    const l = load<f32>(lse + (<usize>i << 2)), sc = load<f32>(scale + (<usize>i << 2));
    const lv = f32x4.splat(l), sv = f32x4.splat(sc);
    let j = 0;
    for (; j + 8 <= cols; j += 8) {
      const q = row + (<usize>j << 2);
      const e0 = exp4(f32x4.sub(v128.load(q), lv)), e1 = exp4(f32x4.sub(v128.load(q, 16), lv));
      v128.store(q, f32x4.mul(e0, sv)); v128.store(q, f32x4.mul(e1, sv), 16);
    }
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      v128.store(row + o, f32x4.mul(exp4(f32x4.sub(v128.load(row + o), lv)), sv));
    }
    for (; j < cols; j++) store<f32>(row + (<usize>j << 2), exp1(load<f32>(row + (<usize>j << 2)) - l) * sc);
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM (the portable WASM backend): C[m, n0:n1] (+)= A[m,k] * op(B), op(B) = B^T for B [n,k]
// (transB, the nn.Linear layout) or B [k,n]; B is f32 (btype 0), bf16 (1) or f16 (2) and is
// widened while packing. One thread computes a column range, so threads never share outputs.
//
// Goto/BLIS structure: for each depth block of KC, pack A (all m rows) into slivers of MR rows;
// for each column block of NC, pack B into slivers of NR columns; then a 4x8 register-blocked
// micro-kernel (8 f32x4 accumulators) runs over each (A sliver, B sliver) pair, with the B sliver
// (KC*NR floats) in L1 and an MC-row block of packed A in L2.

const MR = 4, NR = 8;
export const KC: i32 = 256, NC: i32 = 512, MC: i32 = 128;

@inline function loadB(b: usize, btype: i32, idx: usize): f32 {
  if (btype == 0) return load<f32>(b + (idx << 2));
  const h = <u32>load<u16>(b + (idx << 1));
  if (btype == 1) return reinterpret<f32>(h << 16);
  return f32x4.extract_lane(half4(i32x4.splat(<i32>h)), 0);
}

/** Pack columns [j0, j0+nc) x depth [p0, p0+kc) of op(B): dst[(s*kc + p)*NR + c] = op(B)[p0+p, j0+s*NR+c]. */
function packB(b: usize, ldb: i32, btype: i32, transB: i32, j0: i32, nc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let s = 0; s * NR < nc; s++) {
    const sl = dst + (<usize>(s * kc * NR) << 2);
    const cols = min(NR, nc - s * NR);
    if (transB) {
      // op(B)[p, j] = B[j, p]: walk each of the NR rows of B along p (contiguous)
      for (let c = 0; c < NR; c++) {
        if (c >= cols) { for (let p = 0; p < kc; p++) store<f32>(sl + (<usize>(p * NR + c) << 2), 0); continue; }
        const row = <usize>(j0 + s * NR + c) * <usize>ldb + <usize>p0;
        if (btype == 1) {
          for (let p = 0; p < kc; p++) store<u32>(sl + (<usize>(p * NR + c) << 2), <u32>load<u16>(b + ((row + <usize>p) << 1)) << 16);
        } else {
          for (let p = 0; p < kc; p++) store<f32>(sl + (<usize>(p * NR + c) << 2), loadB(b, btype, row + <usize>p));
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const row = <usize>(p0 + p) * <usize>ldb + <usize>(j0 + s * NR);
        const d = sl + (<usize>(p * NR) << 2);
        if (cols == NR && btype == 0) {
          v128.store(d, v128.load(b + (row << 2)));
          v128.store(d, v128.load(b + (row << 2), 16), 16);
        } else if (cols == NR && btype == 1) {
          const h = v128.load(b + (row << 1));
          v128.store(d, i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
          v128.store(d, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
        } else {
          for (let c = 0; c < NR; c++) store<f32>(d + (<usize>c << 2), c < cols ? loadB(b, btype, row + <usize>c) : 0);
        }
      }
    }
  }
}

/** Pack rows [0, m) x depth [p0, p0+kc) of A [m, lda]: dst[(s*kc + p)*MR + r] = A[s*MR+r, p0+p]. */
function packA(a: usize, lda: i32, m: i32, p0: i32, kc: i32, dst: usize): void {
  for (let s = 0; s * MR < m; s++) {
    const sl = dst + (<usize>(s * kc * MR) << 2);
    const rows = min(MR, m - s * MR);
    if (rows == MR) {
      const r0 = a + ((<usize>(s * MR) * <usize>lda + <usize>p0) << 2);
      const rs = <usize>lda << 2;
      let p = 0;
      // 4x4 transposes: four rows x four depths -> four depths x four rows
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 2;
        const x0 = v128.load(r0 + o), x1 = v128.load(r0 + rs + o), x2 = v128.load(r0 + 2 * rs + o), x3 = v128.load(r0 + 3 * rs + o);
        const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const d = sl + (<usize>(p * MR) << 2);
        v128.store(d, i64x2.shuffle(t0, t1, 0, 2));
        v128.store(d, i64x2.shuffle(t0, t1, 1, 3), 16);
        v128.store(d, i64x2.shuffle(t2, t3, 0, 2), 32);
        v128.store(d, i64x2.shuffle(t2, t3, 1, 3), 48);
      }
      for (; p < kc; p++) {
        for (let r = 0; r < MR; r++) store<f32>(sl + (<usize>(p * MR + r) << 2), load<f32>(r0 + <usize>r * rs + (<usize>p << 2)));
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          store<f32>(sl + (<usize>(p * MR + r) << 2), r < rows ? load<f32>(a + ((<usize>(s * MR + r) * <usize>lda + <usize>(p0 + p)) << 2)) : 0);
        }
      }
    }
  }
}

/** c + a*b: one fused multiply-add where relaxed SIMD is compiled in (and the engine fuses it), else mul + add. */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** 4x8 micro-kernel: tile = Ap (kc x 4) * Bp (kc x 8); C tile overwritten (first) or added to. */
function kernel4x8(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, mr: i32, nr: i32, first: bool, tmp: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    ap += 16; bp += 32;
  }
  const rs = <usize>ldc << 2;
  if (mr == MR && nr == NR) {
    if (first) {
      v128.store(c, c00); v128.store(c, c01, 16); c += rs;
      v128.store(c, c10); v128.store(c, c11, 16); c += rs;
      v128.store(c, c20); v128.store(c, c21, 16); c += rs;
      v128.store(c, c30); v128.store(c, c31, 16);
    } else {
      v128.store(c, f32x4.add(v128.load(c), c00)); v128.store(c, f32x4.add(v128.load(c, 16), c01), 16); c += rs;
      v128.store(c, f32x4.add(v128.load(c), c10)); v128.store(c, f32x4.add(v128.load(c, 16), c11), 16); c += rs;
      v128.store(c, f32x4.add(v128.load(c), c20)); v128.store(c, f32x4.add(v128.load(c, 16), c21), 16); c += rs;
      v128.store(c, f32x4.add(v128.load(c), c30)); v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
    }
    return;
  }
  // edge tile: spill to tmp, copy the valid part
  v128.store(tmp, c00); v128.store(tmp, c01, 16); v128.store(tmp, c10, 32); v128.store(tmp, c11, 48);
  v128.store(tmp, c20, 64); v128.store(tmp, c21, 80); v128.store(tmp, c30, 96); v128.store(tmp, c31, 112);
  for (let r = 0; r < mr; r++) {
    for (let j = 0; j < nr; j++) {
      const dst = c + <usize>r * rs + (<usize>j << 2);
      const v = load<f32>(tmp + (<usize>(r * NR + j) << 2));
      store<f32>(dst, first ? v : load<f32>(dst) + v);
    }
  }
}

/**
 * C[0:m, n0:n1] (+)= A op(B). work: scratch of at least gemm_work_floats(m) floats
 * (packed A, packed B, an edge tile), private to the calling thread.
 */
export function gemm(a: usize, lda: i32, b: usize, ldb: i32, btype: i32, transB: i32, c: usize, ldc: i32,
  m: i32, n0: i32, n1: i32, k: i32, accumulate: i32, work: usize): void {
  if (m <= 0 || n1 <= n0) return;
  const mPad = (m + MR - 1) / MR * MR;
  const pa = work, pb = work + (<usize>(mPad * KC) << 2), tmp = pb + (<usize>(NC * KC) << 2);
  if (k <= 0) {
    if (!accumulate) for (let i = 0; i < m; i++) memory.fill(c + ((<usize>i * <usize>ldc + <usize>n0) << 2), 0, <usize>(n1 - n0) << 2);
    return;
  }
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    packA(a, lda, m, pc, kc, pa);
    const first = pc == 0 && !accumulate;
    for (let jc = n0; jc < n1; jc += NC) {
      const nc = min(NC, n1 - jc);
      packB(b, ldb, btype, transB, jc, nc, pc, kc, pb);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        for (let jr = 0; jr < nc; jr += NR) {
          const bsl = pb + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const i = ic + ir;
            kernel4x8(pa + (<usize>(i * kc) << 2), bsl, kc, c + ((<usize>i * <usize>ldc + <usize>(jc + jr)) << 2), ldc,
              min(MR, m - i), min(NR, nc - jr), first, tmp);
          }
        }
      }
    }
  }
}

/** Floats of per-thread scratch that gemm needs for m rows. */
export function gemm_work_floats(m: i32): i32 {
  return ((m + MR - 1) / MR * MR) * KC + NC * KC + MR * NR + 64;
}

/** Eight weights at element p of a row as two f32x4 (f32, bf16 or f16 storage). */
@inline function loadW8(wr: usize, p: i32, btype: i32, hi: bool): v128 {
  if (btype == 0) return v128.load(wr + (<usize>p << 2) + (hi ? 16 : 0));
  const h = v128.load(wr + (<usize>p << 1));
  const e = hi ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h);
  return btype == 1 ? i32x4.shl(e, 16) : half4(e);
}

@inline function hsum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * Small-M product straight from stored weights (decode: M = a few rows):
 * C[i, j] = sum_p A[i, p] * W[j, p] for i < m, j < rows, with W rows of k elements, f32 (btype 0),
 * bf16 (1) or f16 (2), widened in registers once per four rows of A. C rows have stride ldc.
 * Reads each weight once at its stored width, which is what bounds decoding.
 */
export function gemv_nt(a: usize, m: i32, k: i32, w: usize, btype: i32, rows: i32, c: usize, ldc: i32): void {
  // one specialized copy per storage type: the constant btype folds away the branches of loadW8
  if (btype == 1) gemvRows(a, m, k, w, 1, rows, c, ldc);
  else if (btype == 2) gemvRows(a, m, k, w, 2, rows, c, ldc);
  else gemvRows(a, m, k, w, 0, rows, c, ldc);
}

@inline function gemvRows(a: usize, m: i32, k: i32, w: usize, btype: i32, rows: i32, c: usize, ldc: i32): void {
  const wBytes: usize = btype == 0 ? 4 : 2;
  const k8 = k & ~7;
  const rs = <usize>k << 2;
  for (let j = 0; j < rows; j++) {
    const wr = w + <usize>j * <usize>k * wBytes;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      // four rows of A against one weight row: each widened weight vector is used four times
      const a0 = a + <usize>i * rs;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      for (let p = 0; p < k8; p += 8) {
        const w0 = loadW8(wr, p, btype, false), w1 = loadW8(wr, p, btype, true);
        const o = a0 + (<usize>p << 2);
        s00 = madd(v128.load(o), w0, s00); s01 = madd(v128.load(o, 16), w1, s01);
        s10 = madd(v128.load(o + rs), w0, s10); s11 = madd(v128.load(o + rs, 16), w1, s11);
        s20 = madd(v128.load(o + 2 * rs), w0, s20); s21 = madd(v128.load(o + 2 * rs, 16), w1, s21);
        s30 = madd(v128.load(o + 3 * rs), w0, s30); s31 = madd(v128.load(o + 3 * rs, 16), w1, s31);
      }
      let t0 = hsum4(f32x4.add(s00, s01)), t1 = hsum4(f32x4.add(s10, s11));
      let t2 = hsum4(f32x4.add(s20, s21)), t3 = hsum4(f32x4.add(s30, s31));
      for (let p = k8; p < k; p++) {
        const wv = loadB(wr, btype, <usize>p), o = a0 + (<usize>p << 2);
        t0 += load<f32>(o) * wv; t1 += load<f32>(o + rs) * wv; t2 += load<f32>(o + 2 * rs) * wv; t3 += load<f32>(o + 3 * rs) * wv;
      }
      const cj = c + ((<usize>i * <usize>ldc + <usize>j) << 2), cs = <usize>ldc << 2;
      store<f32>(cj, t0); store<f32>(cj + cs, t1); store<f32>(cj + 2 * cs, t2); store<f32>(cj + 3 * cs, t3);
    }
    for (; i < m; i++) {
      // one row of A: four accumulators, so the adds' latency is not the bound
      const ar = a + <usize>i * rs;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      const k16 = k & ~15;
      let p = 0;
      for (; p < k16; p += 16) {
        const q = ar + (<usize>p << 2);
        s0 = madd(v128.load(q), loadW8(wr, p, btype, false), s0);
        s1 = madd(v128.load(q, 16), loadW8(wr, p, btype, true), s1);
        s2 = madd(v128.load(q, 32), loadW8(wr, p + 8, btype, false), s2);
        s3 = madd(v128.load(q, 48), loadW8(wr, p + 8, btype, true), s3);
      }
      for (; p < k8; p += 8) {
        s0 = madd(v128.load(ar + (<usize>p << 2)), loadW8(wr, p, btype, false), s0);
        s1 = madd(v128.load(ar + (<usize>p << 2), 16), loadW8(wr, p, btype, true), s1);
      }
      let t = hsum4(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
      for (let p = k8; p < k; p++) t += load<f32>(ar + (<usize>p << 2)) * loadB(wr, btype, <usize>p);
      store<f32>(c + ((<usize>i * <usize>ldc + <usize>j) << 2), t);
    }
  }
}

/**
 * A copy of a [m, k] whose every block of 8 is de-interleaved, [a0 a2 a4 a6 a1 a3 a5 a7], for
 * gemv_bf16_eo (the tail past the last full 8 is left out).
 */
export function deinterleave8(a: usize, m: i32, k: i32, out: usize): void {
  const k8 = k & ~7;
  for (let i = 0; i < m; i++) {
    const src = a + ((<usize>i * <usize>k) << 2), dst = out + ((<usize>i * <usize>k8) << 2);
    for (let p = 0; p < k8; p += 8) {
      const x0 = v128.load(src + (<usize>p << 2)), x1 = v128.load(src + (<usize>p << 2), 16);
      v128.store(dst + (<usize>p << 2), i32x4.shuffle(x0, x1, 0, 2, 4, 6));
      v128.store(dst + (<usize>p << 2), i32x4.shuffle(x0, x1, 1, 3, 5, 7), 16);
    }
  }
}

/**
 * gemv_nt for bf16 weights, rows of A one at a time, with A de-interleaved by deinterleave8 (ae,
 * rows of k & ~7): 8 stored weights read as four u32 lanes widen with one shift (even elements)
 * and one mask (odd ones), two fewer operations per 8 weights than extending. a itself serves the
 * tail past the last full 8.
 */
export function gemv_bf16_eo(a: usize, ae: usize, m: i32, k: i32, w: usize, rows: i32, c: usize, ldc: i32): void {
  const k8 = k & ~7, k16 = k & ~15;
  const hiMask = i32x4.splat(0xffff0000);
  for (let j = 0; j < rows; j++) {
    const wr = w + ((<usize>j * <usize>k) << 1);
    for (let i = 0; i < m; i++) {
      const ar = ae + ((<usize>i * <usize>k8) << 2);
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let p = 0;
      for (; p < k16; p += 16) {
        const h0 = v128.load(wr + (<usize>p << 1)), h1 = v128.load(wr + (<usize>p << 1), 16);
        const q = ar + (<usize>p << 2);
        s0 = madd(v128.load(q), i32x4.shl(h0, 16), s0);
        s1 = madd(v128.load(q, 16), v128.and(h0, hiMask), s1);
        s2 = madd(v128.load(q, 32), i32x4.shl(h1, 16), s2);
        s3 = madd(v128.load(q, 48), v128.and(h1, hiMask), s3);
      }
      for (; p < k8; p += 8) {
        const h0 = v128.load(wr + (<usize>p << 1)), q = ar + (<usize>p << 2);
        s0 = madd(v128.load(q), i32x4.shl(h0, 16), s0);
        s1 = madd(v128.load(q, 16), v128.and(h0, hiMask), s1);
      }
      let t = hsum4(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
      const at = a + ((<usize>i * <usize>k) << 2);
      for (let q = k8; q < k; q++) t += load<f32>(at + (<usize>q << 2)) * loadB(w + ((<usize>j * <usize>k) << 1), 1, <usize>q);
      store<f32>(c + ((<usize>i * <usize>ldc + <usize>j) << 2), t);
    }
  }
}

/** out [cols, rows] = a [rows, cols]^T (transA operands), in 4x4 blocks where possible. */
export function transpose(a: usize, rows: i32, cols: i32, out: usize): void {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      store<f32>(out + ((<usize>j * <usize>rows + <usize>i) << 2), load<f32>(a + ((<usize>i * <usize>cols + <usize>j) << 2)));
    }
  }
}
