// One GEMM (or GEMV) call as the addon receives it, and the kernels each ISA build provides.
// Row-major storage with explicit strides, so transposes are only different strides:
// A(i,p) = a[i*rsa + p*csa], B(p,j) = b[p*rsb + j*csb], C(i,j) = c[i*ldc + j].
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
// Denormal operands and results flushed to zero (MXCSR FTZ | DAZ) while our kernels run: Intel
// cores take a microcode assist on each one, and gradients deep in a backward are full of them
// (5% of one block's dQKV on random TinyLlama weights ran that GEMM at 96 GFLOP/s instead of
// 340). A denormal is below 2^-126, under f32's resolution next to any normal term of the sum.
struct FlushDenormals {
  unsigned saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
};
#else
static inline void cpu_relax() {}
struct FlushDenormals {};
#endif

// A spinning barrier for the threads of one product (they are all running; waits are short).
struct Barrier {
  std::atomic<int> count{0}, gen{0};
  int n = 1;
  void wait() {
    const int g = gen.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      count.store(0, std::memory_order_relaxed);
      gen.fetch_add(1, std::memory_order_release);
    } else {
      while (gen.load(std::memory_order_acquire) == g) cpu_relax();
    }
  }
};

// What the threads of one product share: B's packed slice (each thread packs its part of the strips).
struct SharedPack { float* b; Barrier* bar; int t, threads; };

enum BType : int { B_F32 = 0, B_BF16 = 1, B_F16 = 2 };

// a thread's packing buffers (packed A and B of elements T), 64-byte aligned, grown on demand
template <typename T> struct PackBuffers {
  T* a = nullptr; T* b = nullptr; size_t na = 0, nb = 0;
  ~PackBuffers() { std::free(a); std::free(b); }
  static T* grow(T*& p, size_t& have, size_t need) {
    if (have < need) {
      std::free(p);
      p = static_cast<T*>(std::aligned_alloc(64, ((need * sizeof(T) + 63) / 64) * 64));
      have = p ? need : 0;
    }
    return p;
  }
  T* grow_a(size_t need) { return grow(a, na, need); }
  T* grow_b(size_t need) { return grow(b, nb, need); }
};

struct GemmCall {
  const float* a; long rsa, csa;
  const void* b; long rsb, csb; BType btype;
  float* c; long ldc;
  long m, n, k;
  bool accumulate;  // C += A B, else C = A B
};

// Each ISA build (gemm_kernel.h compiled with its flags) defines these in its namespace.
#define DECLARE_ISA(NS)                                                                  \
  namespace NS {                                                                         \
  /* C rows [m0,m1) x columns [n0,n1), on the calling thread */                          \
  void gemm_part(const GemmCall& g, long m0, long m1, long n0, long n1);                 \
  /* thread sp.t of sp.threads: all columns, its share of the rows, B packed together */ \
  void gemm_shared(const GemmCall& g, const SharedPack& sp);                             \
  long shared_pack_floats();                                                             \
  /* small m, B stored [n, k] (csb == k stride contiguous): columns [n0,n1) */           \
  void gemv_part(const GemmCall& g, long n0, long n1);                                   \
  /* sum |w_i g_i| over n elements, w f32 or bf16, products in f32, sum in f64 */        \
  double sum_abs_product(const void* w, BType wt, const float* g, long n);               \
  }
DECLARE_ISA(isa_avx512)
// bf16 compute on AMX (gemm_amx.cc): the activations rounded to bf16, bf16 weights as stored
namespace isa_amx {
bool available();                   /* the CPU has AMX-BF16 and the OS granted its state */
bool supports(const GemmCall& g);   /* bf16 weights stored [n, k], A rows contiguous */
void gemm_part(const GemmCall& g, long m0, long m1, long n0, long n1);
}
DECLARE_ISA(isa_avx2)
DECLARE_ISA(isa_generic)

// half -> float without F16C (packing is scalar; exact for every value, NaN payloads kept)
static inline float half_to_float(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0) {
    if (m == 0) bits = s;
    else { float f = (float)m * (1.0f / 16777216.0f); return s ? -f : f; }  // subnormal: m * 2^-24
  } else if (e == 31) bits = s | 0x7f800000u | (m << 13);
  else bits = s | ((e + 112) << 23) | (m << 13);
  float f; __builtin_memcpy(&f, &bits, 4); return f;
}
static inline float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16; float f; __builtin_memcpy(&f, &bits, 4); return f;
}
