// Elementwise kernels of the block (SiLU-gated MLP forward and backward), written once with GCC
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
static inline vf splat(float x) { return vf{} + x; }

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

}  // namespace EWNS
