/**
 * Memory-bound kernels, forward and backward, over row-major f32 arrays.
 * Each takes explicit sizes and writes into caller-owned buffers (no hidden allocation).
 */

/** out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * w ; rstd[i] keeps 1/rms for the backward. */
export function rmsnormForward(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array | null, n: number, h: number, eps: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * h;
    let ss = 0;
    for (let j = 0; j < h; j++) { const v = x[o + j]!; ss += v * v; }
    const r = 1 / Math.sqrt(ss / h + eps);
    if (rstd) rstd[i] = r;
    for (let j = 0; j < h; j++) out[o + j] = x[o + j]! * r * w[j]!;
  }
}

/**
 * Backward of rmsnorm. dx += r*w*dy - x * r^3/h * sum(dy*w*x); dw (if given) += sum_i dy*x*r.
 * dx is accumulated because the residual stream already holds a gradient.
 */
export function rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array | Float64Array | null, n: number, h: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * h;
    const r = rstd[i]!;
    let dot = 0;
    for (let j = 0; j < h; j++) dot += dy[o + j]! * w[j]! * x[o + j]!;
    const c = (dot * r * r * r) / h;
    for (let j = 0; j < h; j++) {
      dx[o + j]! += dy[o + j]! * w[j]! * r - x[o + j]! * c;
      if (dw) dw[j]! += dy[o + j]! * x[o + j]! * r;
    }
  }
}

/** y[i,:] += b */
export function addBias(y: Float32Array, b: Float32Array, n: number, d: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) y[o + j]! += b[j]!;
  }
}

/** db += column sums of dy (float64 accumulation: bias gradients sum over many rows). */
export function biasBackward(dy: Float32Array, db: Float32Array | Float64Array, n: number, d: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) db[j]! += dy[o + j]!;
  }
}

/**
 * Rotary embedding, Hugging Face layout (rotate_half): within each head, element j pairs with
 * j + d/2. `cos`/`sin` are [positions, d/2]. `pos[i]` is the position of row i.
 * With `inverse`, rotates by the negative angle (the backward of the forward rotation).
 */
export function rope(x: Float32Array, pos: Int32Array, cos: Float32Array, sin: Float32Array, n: number, nHeads: number, d: number, inverse = false): void {
  const half = d / 2;
  const width = nHeads * d;
  const sgn = inverse ? -1 : 1;
  for (let i = 0; i < n; i++) {
    const t = pos[i]! * half;
    for (let h = 0; h < nHeads; h++) {
      const o = i * width + h * d;
      for (let j = 0; j < half; j++) {
        const c = cos[t + j]!, s = sgn * sin[t + j]!;
        const a = x[o + j]!, b = x[o + j + half]!;
        x[o + j] = a * c - b * s;
        x[o + j + half] = b * c + a * s;
      }
    }
  }
}

/** out = silu(gate) * up */
export function siluMulForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/**
 * Backward of silu(gate)*up on the stacked layout: rows of gu and dgu are [gate | up] (width 2I),
 * dOut is [rows, I]; writes dgu.
 */
export function siluMulBackward(dOut: Float32Array, gu: Float32Array, dgu: Float32Array, rows: number, I: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * 2 * I;
    for (let j = 0; j < I; j++) {
      const g = gu[o + j]!;
      const sig = 1 / (1 + Math.exp(-g));
      const d = dOut[r * I + j]!;
      dgu[o + I + j] = d * g * sig;
      dgu[o + j] = d * gu[o + I + j]! * sig * (1 + g * (1 - sig));
    }
  }
}

/**
 * Causal softmax in place over nBatch blocks of `rows` rows of S scores, scaled by `scale` first;
 * row r of a block sees keys 0..pos0 + r % T (the grouped-query layout of attention.ts).
 */
export function softmaxCausal(p: Float32Array, nBatch: number, rows: number, S: number, T: number, pos0: number, scale: number): void {
  for (let bj = 0; bj < nBatch; bj++) {
    for (let r = 0; r < rows; r++) {
      const o = (bj * rows + r) * S;
      const last = Math.min(pos0 + (r % T), S - 1); // keys 0..last are visible
      let m = -Infinity;
      for (let s = 0; s <= last; s++) {
        const v = p[o + s]! * scale;
        p[o + s] = v;
        if (v > m) m = v;
      }
      let sum = 0;
      for (let s = 0; s <= last; s++) {
        const e = Math.exp(p[o + s]! - m);
        p[o + s] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let s = 0; s <= last; s++) p[o + s]! *= inv;
      for (let s = last + 1; s < S; s++) p[o + s] = 0;
    }
  }
}

/** Softmax backward in place over n rows of S: dp <- p * (dp - sum(dp * p)) * scale (f64 row sums). */
export function softmaxBackward(p: Float32Array, dp: Float32Array, n: number, S: number, scale: number): void {
  for (let r = 0; r < n; r++) {
    const o = r * S;
    let dot = 0;
    for (let j = 0; j < S; j++) dot += Math.fround(dp[o + j]! * p[o + j]!);
    const d = Math.fround(dot);
    for (let j = 0; j < S; j++) dp[o + j] = Math.fround(Math.fround(p[o + j]! * Math.fround(dp[o + j]! - d)) * scale);
  }
}

/** a += b */
export function addInPlace(a: Float32Array, b: Float32Array, n = a.length): void {
  for (let i = 0; i < n; i++) a[i]! += b[i]!;
}

/**
 * Log-softmax statistics of one row of logits: returns log-sum-exp; used for NLL and its gradient.
 */
export function logSumExp(x: Float32Array, off: number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) if (x[off + j]! > m) m = x[off + j]!;
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(x[off + j]! - m);
  return m + Math.log(s);
}

/**
 * LoRA delta into y [n, out] (row stride ldy): y += xa B^T, xa [n, r], B given transposed as
 * bt [r, out].
 */
export function loraAdd(y: Float32Array, ldy: number, xa: Float32Array, bt: Float32Array, n: number, out: number, r: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < out; j++) {
      let s = y[i * ldy + j]!;
      for (let k = 0; k < r; k++) s += xa[i * r + k]! * bt[k * out + j]!;
      y[i * ldy + j] = s;
    }
  }
}

/** LoRA dropout: out = x * mask * s (mask bytes: 1 = kept, s = 1 / (1 - p)). */
export function dropoutApply(x: Float32Array, mask: Uint8Array, s: number, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = mask[i] ? x[i]! * s : 0;
}

/** Its backward, accumulated: dx += dh * mask * s. */
export function dropoutAdd(dx: Float32Array, dh: Float32Array, mask: Uint8Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) if (mask[i]) dx[i]! += dh[i]! * s;
}

/**
 * out [cols, rows] += a [rows, cols]^T (a gradient computed transposed joins its sum), through
 * `scratch` (rows * cols floats, made when not given).
 */
export function addTransposed(a: Float32Array, rows: number, cols: number, out: Float32Array, scratch?: Float32Array): Float32Array {
  const t = transposeInto(a, rows, cols, scratch ?? new Float32Array(rows * cols));
  for (let i = 0; i < rows * cols; i++) out[i]! += t[i]!;
  return out;
}

/** Columns [off, off + width) of a row-major [rows, ld] matrix, as a new contiguous array. */
export function columns(m: Float32Array, rows: number, ld: number, off: number, width: number, out: Float32Array = new Float32Array(rows * width)): Float32Array {
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * ld + off, r * ld + off + width), r * width);
  return out;
}

/**
 * out [cols, rows] = a [rows, cols]^T: eight rows of a at a time, a short run of columns each, so
 * the eight source lines and the destination's runs of eight stay in cache (12 ms for 1280 x 4096).
 */
export function transposeInto(a: Float32Array, rows: number, cols: number, out: Float32Array): Float32Array {
  let i = 0;
  for (; i + 8 <= rows; i += 8) {
    const s0 = i * cols;
    for (let j0 = 0; j0 < cols; j0 += 64) {
      const j1 = Math.min(cols, j0 + 64);
      for (let j = j0; j < j1; j++) {
        const d = j * rows + i, s = s0 + j;
        out[d] = a[s]!; out[d + 1] = a[s + cols]!; out[d + 2] = a[s + 2 * cols]!; out[d + 3] = a[s + 3 * cols]!;
        out[d + 4] = a[s + 4 * cols]!; out[d + 5] = a[s + 5 * cols]!; out[d + 6] = a[s + 6 * cols]!; out[d + 7] = a[s + 7 * cols]!;
      }
    }
  }
  for (; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}
