// The GEMM itself, written once with GCC vector extensions and compiled once per ISA
// (gemm_avx512.cc, gemm_avx2.cc, gemm_generic.cc define KNS, KW, KMR first).
//
// BLIS's loop nest: for each NC-wide column block and KC-deep slice of K, B's slice is packed into
// NR-wide strips (widened from bf16/f16 here, so 16-bit weights are never widened whole); for
// each MC-tall row block A is packed into MR-tall strips; an MR x NR micro-kernel keeps its tile of
// C in registers for the whole slice. Every element of C is the sum over K in the same order
// (slice by slice, k ascending) whatever the thread split, so results do not depend on threads.
#include <cstring>
#include <cstdlib>
#include <algorithm>
#include <type_traits>
#include "gemm.h"

namespace KNS {

typedef float vf __attribute__((vector_size(KW * 4)));
typedef uint16_t vh __attribute__((vector_size(KW * 2)));
typedef uint32_t vu __attribute__((vector_size(KW * 4)));

constexpr int W = KW, MR = KMR, NR = 2 * KW;
// KC: the depth of one packed slice (KKC per build, default 256). C's tiles are read and written
// once per slice, so a shallow slice costs C traffic: on Zen 3 (AVX2), two builds loaded in one
// process and called alternately ran 384 at 6% above 256 (medians 110.0 / 103.5 GFLOP/s), 512 level
// with 384. On the AMX Xeon (AVX-512, 8 x 32 tiles, 2 threads, alternating with OpenBLAS in one
// process) 512 ran 376-377 GFLOP/s against 356-360 for 256 and 363 for 384 (768 and 1024 level
// with 512): with C's rows 8 KB apart and C 4 MB a thread, each slice's pass over C comes from L3
// (the same product into a 200 KB C ran 10% faster at 256)
#ifndef KKC
#define KKC 256
#endif
constexpr long KC = KKC, MC = MR * 24, NC = NR * 256;

static inline vf loadu(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
static inline void storeu(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
static inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < W; ++i) s += v[i];
  return s;
}

static thread_local PackBuffers<float> packs;

template <typename T> static inline float widen(T x);
template <> inline float widen<float>(float x) { return x; }
template <> inline float widen<uint16_t>(uint16_t x) { return bf16_to_float(x); }
struct half_t { uint16_t v; };
template <> inline float widen<half_t>(half_t x) { return half_to_float(x.v); }

#if defined(__AVX2__)
// Packing with AVX2 (the AVX-512 build too): 8 x 8 blocks transposed in registers (scalar packing,
// one element a load and a store, was 2-3% of a 1024 x 2048 x 2048 product on Zen 3; OpenBLAS
// packs with vector copies). 16-bit weights are widened as they are loaded. Packed contents are
// the same bits either way.
template <typename T> static inline __m256 load8(const T* p);
template <> inline __m256 load8<float>(const float* p) { return _mm256_loadu_ps(p); }
template <> inline __m256 load8<uint16_t>(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
// r[i] = row i of an 8 x 8 block -> r[i] = column i
static inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

// A block [mc x kc] at a (strides rs, cs) -> MR-row strips, each [kc][MR], zero-padded rows
static void pack_a(const float* a, long rs, long cs, long mc, long kc, float* dst) {
  for (long i0 = 0; i0 < mc; i0 += MR) {
    const long mr = std::min<long>(MR, mc - i0);
    if (cs == 1 && mr == MR) {
      // rows contiguous: read MR row streams side by side, write the strip in order
      const float* src[MR];
      for (int i = 0; i < MR; ++i) src[i] = a + (i0 + i) * rs;
      long p0 = 0;
#if defined(__AVX2__)
      static_assert(MR <= 8, "the A packing transposes up to 8 rows");
      // blocks of 8 k steps: the MR rows (and 8 - MR zero rows) transposed; each k step's MR values
      // are stored as 8, the extra overwritten by the next step (the buffer has 8 floats of slack)
      for (; p0 + 8 <= kc; p0 += 8) {
        __m256 r[8];
        for (int i = 0; i < MR; ++i) r[i] = _mm256_loadu_ps(src[i] + p0);
        for (int i = MR; i < 8; ++i) r[i] = _mm256_setzero_ps();
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (p0 + i) * MR, r[i]);
      }
#endif
      for (long p = p0; p < kc; ++p)
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[i][p];
    } else if (cs == 1) {
      for (long i = 0; i < mr; ++i) {
        const float* src = a + (i0 + i) * rs;
        for (long p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
      }
    } else {
      for (long p = 0; p < kc; ++p) {
        const float* src = a + p * cs + i0 * rs;
        for (long i = 0; i < mr; ++i) dst[p * MR + i] = src[i * rs];
      }
    }
    for (long i = mr; i < MR; ++i)
      for (long p = 0; p < kc; ++p) dst[p * MR + i] = 0.f;
    dst += MR * kc;
  }
}

// B block [kc x nc] at b (strides rs, cs) -> NR-column strips, each [kc][NR], zero-padded columns
template <typename T>
static void pack_b(const T* b, long rs, long cs, long kc, long nc, float* dst) {
  for (long j0 = 0; j0 < nc; j0 += NR) {
    const long nr = std::min<long>(NR, nc - j0);
    if (rs == 1 && nr == NR) {  // B stored [n, k] (weights): NR column streams side by side
      const T* src[NR];
      for (int j = 0; j < NR; ++j) src[j] = b + (j0 + j) * cs;
      long p0 = 0;
#if defined(__AVX2__)
      if constexpr (!std::is_same<T, half_t>::value) {
        // 8 x 8 blocks: eight columns' next 8 k steps (widened) transposed, one store a k step
        for (; p0 + 8 <= kc; p0 += 8)
          for (int h = 0; h < NR; h += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = load8<T>(src[h + i] + p0);
            transpose8(r);
            for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (p0 + i) * NR + h, r[i]);
          }
      }
#endif
      for (long p = p0; p < kc; ++p)
#pragma GCC unroll 32
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = widen<T>(src[j][p]);
    } else if (rs == 1) {
      for (long j = 0; j < nr; ++j) {
        const T* src = b + (j0 + j) * cs;
        for (long p = 0; p < kc; ++p) dst[p * NR + j] = widen<T>(src[p]);
      }
    } else {
      for (long p = 0; p < kc; ++p) {
        const T* src = b + p * rs + j0 * cs;
        for (long j = 0; j < nr; ++j) dst[p * NR + j] = widen<T>(src[j * cs]);
      }
    }
    if (nr < NR)
      for (long p = 0; p < kc; ++p)
        for (long j = nr; j < NR; ++j) dst[p * NR + j] = 0.f;
    dst += NR * kc;
  }
}

// C tile [mr x nr] (+)= A strip [kc][MR] . B strip [kc][NR]
static inline void micro(long kc, const float* __restrict ap, const float* __restrict bp, float* c, long ldc,
                         bool add, long mr, long nr) {
  vf acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = vf{};
    // C's tile is read and written after the loop: start fetching it now (it is usually not in cache)
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }
#pragma GCC unroll 4
  for (long p = 0; p < kc; ++p) {
    const vf b0 = loadu(bp), b1 = loadu(bp + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const float x = ap[i];
      acc[i][0] += x * b0;
      acc[i][1] += x * b1;
    }
    ap += MR; bp += NR;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* r = c + i * ldc;
      if (add) { storeu(r, loadu(r) + acc[i][0]); storeu(r + W, loadu(r + W) + acc[i][1]); }
      else { storeu(r, acc[i][0]); storeu(r + W, acc[i][1]); }
    }
  } else {
    alignas(64) float t[MR * NR];
    for (int i = 0; i < MR; ++i) { storeu(t + i * NR, acc[i][0]); storeu(t + i * NR + W, acc[i][1]); }
    for (long i = 0; i < mr; ++i)
      for (long j = 0; j < nr; ++j) c[i * ldc + j] = add ? c[i * ldc + j] + t[i * NR + j] : t[i * NR + j];
  }
}

// C rows [m0,m1) x columns [jc,jc+nc) (+)= A's slice pc..pc+kc times B's packed slice pb:
// A packed MC rows at a time into pa, then every MR x NR tile
static void multiply_slice(const GemmCall& g, long m0, long m1, long jc, long nc, long pc, long kc, float* pa, const float* pb) {
  const bool add = pc > 0 || g.accumulate;
  for (long ic = m0; ic < m1; ic += MC) {
    const long mc = std::min(MC, m1 - ic);
    pack_a(g.a + ic * g.rsa + pc * g.csa, g.rsa, g.csa, mc, kc, pa);
    for (long jr = 0; jr < nc; jr += NR)
      for (long ir = 0; ir < mc; ir += MR)
        micro(kc, pa + ir * kc, pb + jr * kc, g.c + (ic + ir) * g.ldc + jc + jr, g.ldc, add,
              std::min<long>(MR, mc - ir), std::min<long>(NR, nc - jr));
  }
}

template <typename T>
static void gemm_typed(const GemmCall& g, long m0, long m1, long n0, long n1) {
  const T* B = static_cast<const T*>(g.b);
  if (g.k == 0) {
    if (!g.accumulate)
      for (long i = m0; i < m1; ++i) std::fill(g.c + i * g.ldc + n0, g.c + i * g.ldc + n1, 0.f);
    return;
  }
  float* pa = packs.grow_a((size_t)MC * KC + 8);  // + 8: slack for pack_a's 8-float stores
  float* pb = packs.grow_b((size_t)KC * NC);
  if (!pa || !pb) std::abort();
  for (long jc = n0; jc < n1; jc += NC) {
    const long nc = std::min(NC, n1 - jc);
    for (long pc = 0; pc < g.k; pc += KC) {
      const long kc = std::min(KC, g.k - pc);
      pack_b<T>(B + pc * g.rsb + jc * g.csb, g.rsb, g.csb, kc, nc, pb);
      multiply_slice(g, m0, m1, jc, nc, pc, kc, pa, pb);
    }
  }
}

// Threads split the rows and share each packed slice of B: every thread packs its share of the
// strips into one buffer, waits for the others, then multiplies its rows by all of it. Nothing is
// packed twice, and each element's sum is in the same order as gemm_part's.
template <typename T>
static void gemm_shared_typed(const GemmCall& g, const SharedPack& sp) {
  const T* B = static_cast<const T*>(g.b);
  const long tiles = (g.m + MR - 1) / MR, per = (tiles + sp.threads - 1) / sp.threads;
  const long m0 = std::min(g.m, sp.t * per * MR), m1 = std::min(g.m, (sp.t + 1) * per * MR);
  float* pa = packs.grow_a((size_t)MC * KC + 8);  // + 8: slack for pack_a's 8-float stores
  if (!pa) std::abort();
  for (long jc = 0; jc < g.n; jc += NC) {
    const long nc = std::min(NC, g.n - jc), strips = (nc + NR - 1) / NR, sper = (strips + sp.threads - 1) / sp.threads;
    const long s0 = std::min(strips, sp.t * sper), s1 = std::min(strips, (sp.t + 1) * sper);
    for (long pc = 0; pc < g.k; pc += KC) {
      const long kc = std::min(KC, g.k - pc);
      if (s1 > s0)
        pack_b<T>(B + pc * g.rsb + (jc + s0 * NR) * g.csb, g.rsb, g.csb, kc, std::min(nc - s0 * NR, (s1 - s0) * NR), sp.b + s0 * NR * kc);
      sp.bar->wait();  // the whole slice is packed
      multiply_slice(g, m0, m1, jc, nc, pc, kc, pa, sp.b);
      sp.bar->wait();  // everyone is done with this slice before it is repacked
    }
  }
}

void gemm_shared(const GemmCall& g, const SharedPack& sp) {
  if (g.btype == B_F32) gemm_shared_typed<float>(g, sp);
  else if (g.btype == B_BF16) gemm_shared_typed<uint16_t>(g, sp);
  else gemm_shared_typed<half_t>(g, sp);
}

long shared_pack_floats() { return KC * NC; }

void gemm_part(const GemmCall& g, long m0, long m1, long n0, long n1) {
  if (m0 >= m1 || n0 >= n1) return;
  if (g.btype == B_F32) gemm_typed<float>(g, m0, m1, n0, n1);
  else if (g.btype == B_BF16) gemm_typed<uint16_t>(g, m0, m1, n0, n1);
  else gemm_typed<half_t>(g, m0, m1, n0, n1);
}

// W values of row `r` from element p, widened
template <typename T> static inline vf wload(const T* r);
template <> inline vf wload<float>(const float* r) { return loadu(r); }
template <> inline vf wload<uint16_t>(const uint16_t* r) {
  // bf16 -> f32 is the bits shifted up by 16. With AVX2/AVX-512, one full-width zero-extension and
  // one shift: GCC splits the generic convert below into two half-width extensions and an insert,
  // which made the decode GEMV shuffle-bound (16 shuffles per 64 bytes of weights on two ports)
  vf f;
#if KW == 16 && defined(__AVX512F__)
  const __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r))), 16);
#elif KW == 8 && defined(__AVX2__)
  const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r))), 16);
#else
  vh h; std::memcpy(&h, r, sizeof h);
  const vu u = __builtin_convertvector(h, vu) << 16;
#endif
  std::memcpy(&f, &u, sizeof f); return f;
}
template <> inline vf wload<half_t>(const half_t* r) {
  alignas(64) float t[W];
  for (int i = 0; i < W; ++i) t[i] = half_to_float(r[i].v);
  return loadu(t);
}

// C[i, j] (+)= sum_p A[i, p] B[j, p] for M (<= 4) rows of A, four weight rows at a time: each
// weight element is read once and used M times; the weights stream from memory at its speed.
// The four rows are a quarter of the range apart (rows j, j + Q, j + 2Q, j + 3Q), so each thread
// reads four streams megabytes apart: on Zen 3 that read the decode's 2.07 GB of bf16 weights 7-11%
// faster than four adjacent rows (one 16 KB stretch at a time), in a C++ harness alternating both
// (medians 81.9 / 91.6 and 75.4 / 80.7 ms). Each row's sum is the same either way.
template <typename T, int M>
static void gemv_typed(const GemmCall& g, long n0, long n1) {
  const T* B = static_cast<const T*>(g.b);
  const long k = g.k, kv = k / W * W;
  const float* A = g.a;
  auto finish = [&](long jj, int i, float s) {
    float* c = g.c + i * g.ldc + jj;
    *c = g.accumulate ? *c + s : s;
  };
  const long Q = (n1 - n0) / 4;
  long j = n0;
  for (; j < n0 + Q; ++j) {
    const T* r[4] = {B + j * g.csb, B + (j + Q) * g.csb, B + (j + 2 * Q) * g.csb, B + (j + 3 * Q) * g.csb};
    vf acc[4][M];
    for (int q = 0; q < 4; ++q) for (int i = 0; i < M; ++i) acc[q][i] = vf{};
    for (long p = 0; p < kv; p += W) {
      vf x[M];
      for (int i = 0; i < M; ++i) x[i] = loadu(A + i * g.rsa + p);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const vf w = wload<T>(r[q] + p);
        for (int i = 0; i < M; ++i) acc[q][i] += w * x[i];
      }
    }
    for (int q = 0; q < 4; ++q)
      for (int i = 0; i < M; ++i) {
        float s = hsum(acc[q][i]);
        for (long p = kv; p < k; ++p) s += A[i * g.rsa + p] * widen<T>(r[q][p]);
        finish(j + q * Q, i, s);
      }
  }
  for (j = n0 + 4 * Q; j < n1; ++j) {  // the last (n1 - n0) % 4 rows one at a time
    const T* r = B + j * g.csb;
    vf acc[M];
    for (int i = 0; i < M; ++i) acc[i] = vf{};
    for (long p = 0; p < kv; p += W) {
      const vf w = wload<T>(r + p);
      for (int i = 0; i < M; ++i) acc[i] += w * loadu(A + i * g.rsa + p);
    }
    for (int i = 0; i < M; ++i) {
      float s = hsum(acc[i]);
      for (long p = kv; p < k; ++p) s += A[i * g.rsa + p] * widen<T>(r[p]);
      finish(j, i, s);
    }
  }
}

template <typename T> static void gemv_m(const GemmCall& g, long n0, long n1) {
  switch (g.m) {
    case 1: gemv_typed<T, 1>(g, n0, n1); break;
    case 2: gemv_typed<T, 2>(g, n0, n1); break;
    case 3: gemv_typed<T, 3>(g, n0, n1); break;
    default: gemv_typed<T, 4>(g, n0, n1); break;
  }
}

void gemv_part(const GemmCall& g, long n0, long n1) {
  if (n0 >= n1) return;
  if (g.btype == B_F32) gemv_m<float>(g, n0, n1);
  else if (g.btype == B_BF16) gemv_m<uint16_t>(g, n0, n1);
  else gemv_m<half_t>(g, n0, n1);
}

// sum |w_i g_i|: W products a vector at a time, widened to f64 and summed in f64 lanes
template <typename T>
static double sum_abs_typed(const T* w, const float* g, long n) {
  typedef double vd __attribute__((vector_size(KW * 8)));
  vd acc0 = vd{}, acc1 = vd{};
  long i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const vf p0 = wload<T>(w + i) * loadu(g + i), p1 = wload<T>(w + i + W) * loadu(g + i + W);
    vf a0, a1;
    for (int l = 0; l < W; ++l) { a0[l] = p0[l] < 0 ? -p0[l] : p0[l]; a1[l] = p1[l] < 0 ? -p1[l] : p1[l]; }
    acc0 += __builtin_convertvector(a0, vd);
    acc1 += __builtin_convertvector(a1, vd);
  }
  double s = 0;
  for (int l = 0; l < W; ++l) s += acc0[l] + acc1[l];
  for (; i < n; ++i) { const float p = widen<T>(w[i]) * g[i]; s += p < 0 ? -p : p; }
  return s;
}

double sum_abs_product(const void* w, BType wt, const float* g, long n) {
  if (wt == B_BF16) return sum_abs_typed<uint16_t>(static_cast<const uint16_t*>(w), g, n);
  if (wt == B_F16) return sum_abs_typed<half_t>(static_cast<const half_t*>(w), g, n);
  return sum_abs_typed<float>(static_cast<const float*>(w), g, n);
}

}  // namespace KNS
