// Elementwise kernels of the block (SiLU-gated MLP forward and backward, attention's softmax
// backward, RMSNorm's backward), written once with GCC
// vector extensions and compiled per ISA (elementwise_avx2.cc, elementwise_generic.cc define EWNS
// and EW first) with -ffp-contract=off: each lane does exactly the operations, in the order, of the
// WebAssembly kernels (assembly/kernels.ts: Cephes expf, IEEE division, no fused multiply-adds), so
// both give the same bits for every input, at any vector width and on any number of threads.
#include <cstdint>
#include <cstring>

namespace EWNS {

typedef float vf __attribute__((vector_size(EW * 4)));
typedef int32_t vi __attribute__((vector_size(EW * 4)));

static inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
static inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// x in every lane (x - 0 is x for every x; 0 + x would turn -0 into +0)
static inline vf splat(float x) { return x - vf{}; }

// WebAssembly's f32x4.pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a, lane by lane
static inline vf pmin(vf a, vf b) { return b < a ? b : a; }
static inline vf pmax(vf a, vf b) { return a < b ? b : a; }

// assembly/kernels.ts exp4, lane for lane: clamp to [-87, 88], n = round(x log2 e) by the 1.5 * 2^23
// trick, r = x - n ln2 (in two parts), a degree-6 polynomial, times 2^n built in the exponent bits
static inline vf expv(vf x) {
  x = pmin(pmax(x, splat(-87.0f)), splat(88.0f));
  const vf t = x * splat(1.44269504088896341f) + splat(12582912.0f);
  const vf fx = t - splat(12582912.0f);
  vf r = x - fx * splat(0.693359375f);
  r = r - fx * splat(-2.12194440e-4f);
  vf y = splat(1.9875691500e-4f) * r + splat(1.3981999507e-3f);
  y = y * r + splat(8.3334519073e-3f);
  y = y * r + splat(4.1665795894e-2f);
  y = y * r + splat(1.6666665459e-1f);
  y = y * r + splat(5.0000001201e-1f);
  y = (y * r) * r + r + splat(1.0f);
  vi ti; std::memcpy(&ti, &t, sizeof ti);
  const vi e = (ti + 127) << 23;
  vf ef; std::memcpy(&ef, &e, sizeof ef);
  return y * ef;
}

// one value through the same lanes (the loops' tails, as exp1 in the WebAssembly kernels)
static inline float exp1(float x) { return expv(splat(x))[0]; }

// out[i, j] = silu(gate[i, j]) * up[i, j] = gate / (1 + exp(-gate)) * up, rows [r0, r1); gate and
// up rows at stride ld, out rows at stride I
void silu_mul(const float* gate, const float* up, long ld, float* out, long r0, long r1, long I) {
  const vf one = splat(1.0f);
  for (long i = r0; i < r1; ++i) {
    const float* g0 = gate + i * ld; const float* u0 = up + i * ld; float* o0 = out + i * I;
    long j = 0;
    for (; j + EW <= I; j += EW) {
      const vf g = load(g0 + j);
      store(o0 + j, g / (one + expv(-g)) * load(u0 + j));
    }
    for (; j < I; ++j) o0[j] = g0[j] / (1.0f + exp1(-g0[j])) * u0[j];
  }
}

// backward of silu(gate) * up on the stacked layout (rows of gu and dgu are [gate | up], dOut is
// [rows, I]), rows [r0, r1): dUp = dOut * g * sig, dGate = dOut * up * sig * (1 + g (1 - sig))
void silu_mul_bwd(const float* dOut, const float* gu, float* dgu, long r0, long r1, long I) {
  const vf one = splat(1.0f);
  for (long r = r0; r < r1; ++r) {
    const float* d0 = dOut + r * I; const float* g0 = gu + r * 2 * I; const float* u0 = g0 + I;
    float* dg0 = dgu + r * 2 * I; float* du0 = dg0 + I;
    long j = 0;
    for (; j + EW <= I; j += EW) {
      const vf g = load(g0 + j), d = load(d0 + j);
      const vf sig = one / (one + expv(-g));
      store(du0 + j, d * (g * sig));
      const vf t = one + g * (one - sig);
      store(dg0 + j, ((d * load(u0 + j)) * sig) * t);
    }
    // the WebAssembly kernel runs 4 lanes to the last group of 4 and only then scalars, whose
    // dUp associates differently ((d g) sig against d (g sig)): the same split here
    for (; j < I; ++j) {
      const float g = g0[j], d = d0[j];
      const float sig = 1.0f / (1.0f + exp1(-g));
      du0[j] = j < I / 4 * 4 ? d * (g * sig) : d * g * sig;
      dg0[j] = d * u0[j] * sig * (1.0f + g * (1.0f - sig));
    }
  }
}

// sum of prod(0..n) as the WebAssembly kernels form their row sums (accF64 and hsum2): the f32
// products in groups of four, lanes 0 and 2 into one f64 sum and lanes 1 and 3 into another (in
// order), the two added, then the tail's products one by one
template <typename Prod> static inline double wasm_row_sum(long n, Prod prod) {
  double a0 = 0, a1 = 0;
  long j = 0;
  for (; j + 4 <= n; j += 4) {
    a0 = (a0 + (double)prod(j)) + (double)prod(j + 2);
    a1 = (a1 + (double)prod(j + 1)) + (double)prod(j + 3);
  }
  double s = a0 + a1;
  for (; j < n; ++j) s += (double)prod(j);
  return s;
}

// softmax backward in place, with the score scale folded in, rows [r0, r1) of S:
// dp = p (dp - sum(dp p)) scale
void softmax_bwd(const float* p, float* dp, long r0, long r1, long S, float scale) {
  const vf sc = splat(scale);
  for (long r = r0; r < r1; ++r) {
    const float* pr = p + r * S; float* dr = dp + r * S;
    const float dot = (float)wasm_row_sum(S, [&](long s) { return dr[s] * pr[s]; });
    const vf v = splat(dot);
    long s = 0;
    // the WebAssembly kernel's 4-lane groups, then scalars: the same operations either way
    for (; s + EW <= S; s += EW) store(dr + s, (load(pr + s) * (load(dr + s) - v)) * sc);
    for (; s < S; ++s) dr[s] = (pr[s] * (dr[s] - dot)) * scale;
  }
}

// rmsnorm backward, accumulating, as the WebAssembly kernel: rows [r0, r1) get dx += (dy w) r - x c
// with c = sum((dy w) x) r^3 / h (wasm_row_sum); dw columns [j0, j1)
// get dw += (dy x) r over all n rows in row order, so splitting columns among threads keeps each
// element's sum (the kernel adds row by row) bit for bit
void rmsnorm_bwd_dx(const float* dy, const float* x, const float* w, const float* rstd, float* dx, long r0, long r1, long h) {
  for (long i = r0; i < r1; ++i) {
    const float* dyr = dy + i * h; const float* xr = x + i * h; float* dxr = dx + i * h;
    const float r = rstd[i];
    const double dot = wasm_row_sum(h, [&](long j) { return (dyr[j] * w[j]) * xr[j]; });
    const float c = (float)(dot * (double)r * (double)r * (double)r / (double)h);
    const vf rv = splat(r), cv = splat(c);
    long j = 0;
    for (; j + EW <= h; j += EW) store(dxr + j, load(dxr + j) + ((load(dyr + j) * load(w + j)) * rv - load(xr + j) * cv));
    for (; j < h; ++j) dxr[j] = dxr[j] + ((dyr[j] * w[j]) * r - xr[j] * c);
  }
}

void rmsnorm_bwd_dw(const float* dy, const float* x, const float* rstd, float* dw, long n, long h, long j0, long j1) {
  for (long i = 0; i < n; ++i) {
    const float* dyr = dy + i * h; const float* xr = x + i * h;
    const float r = rstd[i];
    const vf rv = splat(r);
    long j = j0;
    for (; j + EW <= j1; j += EW) store(dw + j, load(dw + j) + (load(dyr + j) * load(xr + j)) * rv);
    for (; j < j1; ++j) dw[j] = dw[j] + (dyr[j] * xr[j]) * r;
  }
}

}  // namespace EWNS
