// bf16 compute on Intel AMX (Sapphire Rapids and later): C (+)= bf16(A) · B for 16-bit bf16
// weights B, the products summed in fp32 by the tile unit. Only the activations A are rounded (to
// nearest even); the weights are used exactly as stored. This is what PyTorch's bf16 runs on the
// same CPU (oneDNN), and it is an opt-in compute mode: the default f32 path does not round.
//
// The loop nest is gemm_kernel.h's (B's slice packed once per KC x NC, A per MC x KC, a micro-
// kernel per MR x NR tile), with AMX tiles as the registers: C is 2 x 2 tiles of 16 x 16 fp32,
// A two tiles of 16 rows x 32 bf16, B two tiles of 16 pairs of rows x 16 columns (VNNI layout:
// the two bf16 of one column for k = 2i, 2i+1 side by side).
#include <cstring>
#include <cstdlib>
#include <algorithm>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gemm.h"

namespace isa_amx {

constexpr int MR = 32, NR = 32, TK = 32;           // C tile block, K per tile product
constexpr long KC = 512, MC = MR * 4, NC = NR * 32; // B slice: 512 x 1024 bf16 = 1 MB (half of L2)

// Linux hands out AMX state only to a process that asks for it (arch_prctl), once
bool available() {
  static const bool ok = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("amx-tile")) return false;
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return ok;
}

// palette 1, all eight tiles 16 rows x 64 bytes
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static void configure_tiles() {
  static thread_local bool done = false;
  if (done) return;
  TileConfig c;
  for (int t = 0; t < 8; ++t) { c.colsb[t] = 64; c.rows[t] = 16; }
  _tile_loadconfig(&c);
  done = true;
}

static thread_local PackBuffers<uint16_t> packs;

static inline uint16_t round_bf16(float x) {  // to nearest even; NaN stays NaN
  uint32_t u; std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

// A block [mc x kc] (rows contiguous, row stride rs) -> MR-row strips, each [kc/TK][MR][TK] bf16:
// for every K block the strip's rows side by side, so each 16-row tile is 16 x 64 bytes at stride 64
static void pack_a(const float* a, long rs, long mc, long kc, uint16_t* dst) {
  const long kb = (kc + TK - 1) / TK;
  for (long i0 = 0; i0 < mc; i0 += MR) {
    const long mr = std::min<long>(MR, mc - i0);
    for (long b = 0; b < kb; ++b) {
      const long p0 = b * TK, n = std::min<long>(TK, kc - p0);
      uint16_t* d = dst + b * MR * TK;
      for (long i = 0; i < MR; ++i, d += TK) {
        if (i >= mr) { std::memset(d, 0, TK * 2); continue; }
        const float* s = a + (i0 + i) * rs + p0;
        if (n == TK) {
          const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
          _mm512_storeu_si512(d, (__m512i)v);
        } else {
          for (long p = 0; p < TK; ++p) d[p] = p < n ? round_bf16(s[p]) : 0;
        }
      }
    }
    dst += kb * MR * TK;
  }
}

// B block [kc x nc] of bf16 weights stored [n, k] (column j of B is row j of W, stride cs)
// -> NR-column strips, each [kc/2][NR][2]: pair row i holds (B(2i, j), B(2i+1, j)) for each j
static void pack_b(const uint16_t* b, long cs, long kc, long nc, uint16_t* dst) {
  const long kp = (kc + TK - 1) / TK * TK / 2;  // pair rows, K padded to whole tiles
  for (long j0 = 0; j0 < nc; j0 += NR) {
    const long nr = std::min<long>(NR, nc - j0);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst);
    for (long j = 0; j < NR; ++j) {
      if (j >= nr) { for (long i = 0; i < kp; ++i) d[i * NR + j] = 0; continue; }
      const uint16_t* s = b + (j0 + j) * cs;
      long i = 0;
      for (; 2 * i + 1 < kc; ++i) { uint32_t w; std::memcpy(&w, s + 2 * i, 4); d[i * NR + j] = w; }
      if (2 * i < kc) { d[i * NR + j] = s[2 * i]; ++i; }
      for (; i < kp; ++i) d[i * NR + j] = 0;
    }
    dst += kp * NR * 2;
  }
}

// C tile [mr x nr] (+)= A strip . B strip over kc (padded to TK)
static void micro(long kc, const uint16_t* ap, const uint16_t* bp, float* c, long ldc, bool add, long mr, long nr) {
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  const long kb = (kc + TK - 1) / TK;
  for (long b = 0; b < kb; ++b) {
    const uint16_t* a = ap + b * MR * TK;
    const uint16_t* w = bp + b * (TK / 2) * NR * 2;
    _tile_loadd(4, a, TK * 2);
    _tile_loadd(5, a + 16 * TK, TK * 2);
    _tile_loadd(6, w, NR * 4);
    _tile_loadd(7, w + 32, NR * 4);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float t[MR * NR];
  _tile_stored(0, t, NR * 4);
  _tile_stored(1, t + 16, NR * 4);
  _tile_stored(2, t + 16 * NR, NR * 4);
  _tile_stored(3, t + 16 * NR + 16, NR * 4);
  for (long i = 0; i < mr; ++i) {
    float* r = c + i * ldc; const float* s = t + i * NR;
    if (nr == NR) {
      for (int h = 0; h < NR; h += 16) {
        const __m512 v = _mm512_load_ps(s + h);
        _mm512_storeu_ps(r + h, add ? _mm512_add_ps(_mm512_loadu_ps(r + h), v) : v);
      }
    } else {
      for (long j = 0; j < nr; ++j) r[j] = add ? r[j] + s[j] : s[j];
    }
  }
}

// C rows [m0,m1) x columns [n0,n1); the caller checked supports(g)
void gemm_part(const GemmCall& g, long m0, long m1, long n0, long n1) {
  if (m0 >= m1 || n0 >= n1) return;
  configure_tiles();
  const uint16_t* B = static_cast<const uint16_t*>(g.b);
  uint16_t* pa = packs.grow_a((size_t)MC * KC);
  uint16_t* pb = packs.grow_b((size_t)KC * NC);
  if (!pa || !pb) std::abort();
  for (long jc = n0; jc < n1; jc += NC) {
    const long nc = std::min(NC, n1 - jc);
    for (long pc = 0; pc < g.k; pc += KC) {
      const long kc = std::min(KC, g.k - pc), kpad = (kc + TK - 1) / TK * TK;
      const bool add = pc > 0 || g.accumulate;
      pack_b(B + pc * g.rsb + jc * g.csb, g.csb, kc, nc, pb);
      for (long ic = m0; ic < m1; ic += MC) {
        const long mc = std::min(MC, m1 - ic);
        pack_a(g.a + ic * g.rsa + pc, g.rsa, mc, kc, pa);
        for (long jr = 0; jr < nc; jr += NR)
          for (long ir = 0; ir < mc; ir += MR)
            micro(kc, pa + ir * kpad, pb + jr * kpad, g.c + (ic + ir) * g.ldc + jc + jr, g.ldc, add,
                  std::min<long>(MR, mc - ir), std::min<long>(NR, nc - jr));
      }
    }
  }
}

// what this build computes: bf16 weights stored [n, k] (transB), A rows contiguous, K > 0
bool supports(const GemmCall& g) {
  return g.btype == B_BF16 && g.rsb == 1 && g.csa == 1 && g.k > 0 && available();
}

}  // namespace isa_amx
