// N-API entry points of the native kernels: gemm, bmm and the ISA they run on.
// The calling (JS) thread does its share of every call; a small pool of worker threads does the
// rest. Workers stay awake up to SPIN_MS between calls (GEMMs come in bursts with milliseconds of
// JS work between them) and then sleep, so an idle process does not hold a core.
#include <node_api.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include "gemm.h"


// ---- ISA dispatch -------------------------------------------------------------------------------

typedef void (*GemmPart)(const GemmCall&, long, long, long, long);
typedef void (*GemvPart)(const GemmCall&, long, long);
typedef void (*GemmShared)(const GemmCall&, const SharedPack&);
typedef double (*SumAbs)(const void*, BType, const float*, long);
struct Isa { const char* name; GemmPart gemm; GemvPart gemv; GemmShared shared; long (*shared_floats)(); SumAbs sum_abs; int mr, nr; };

static Isa pick_isa() {
  const char* want = std::getenv("SHORTENED_NATIVE_ISA");  // lower it for tests: avx2, generic
  const Isa generic{"generic", isa_generic::gemm_part, isa_generic::gemv_part, isa_generic::gemm_shared, isa_generic::shared_pack_floats, isa_generic::sum_abs_product, 6, 8};
#if defined(HAVE_X86_KERNELS)
  __builtin_cpu_init();
  const Isa avx512{"avx512", isa_avx512::gemm_part, isa_avx512::gemv_part, isa_avx512::gemm_shared, isa_avx512::shared_pack_floats, isa_avx512::sum_abs_product, 8, 32};
  const Isa avx2{"avx2", isa_avx2::gemm_part, isa_avx2::gemv_part, isa_avx2::gemm_shared, isa_avx2::shared_pack_floats, isa_avx2::sum_abs_product, 6, 16};
  const bool has512 = __builtin_cpu_supports("avx512f"), has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want && !std::strcmp(want, "generic")) return generic;
  if (want && !std::strcmp(want, "avx2")) return has2 ? avx2 : generic;
  if (has512) return avx512;
  if (has2) return avx2;
#endif
  (void)want;
  return generic;
}
static const Isa isa = pick_isa();

// the elementwise kernels (elementwise.h): the same bits as the WebAssembly kernels on every build
#define DECLARE_EW(NS)                                                                                  \
  namespace NS {                                                                                        \
  void silu_mul(const float* gate, const float* up, long ld, float* out, long r0, long r1, long I);     \
  void silu_mul_bwd(const float* dOut, const float* gu, float* dgu, long r0, long r1, long I);          \
  void softmax_bwd(const float* p, float* dp, long r0, long r1, long S, float scale);                   \
  void rmsnorm_bwd_dx(const float* dy, const float* x, const float* w, const float* rstd, float* dx,     \
                      long r0, long r1, long h);                                                          \
  void rmsnorm_bwd_dw(const float* dy, const float* x, const float* rstd, float* dw, long n, long h,     \
                      long j0, long j1);                                                                  \
  }
DECLARE_EW(ew_generic)
struct Ew {
  void (*silu_mul)(const float*, const float*, long, float*, long, long, long);
  void (*silu_mul_bwd)(const float*, const float*, float*, long, long, long);
  void (*softmax_bwd)(const float*, float*, long, long, long, float);
  void (*rmsnorm_bwd_dx)(const float*, const float*, const float*, const float*, float*, long, long, long);
  void (*rmsnorm_bwd_dw)(const float*, const float*, const float*, float*, long, long, long, long);
};
#if defined(HAVE_X86_KERNELS)
DECLARE_EW(ew_avx2)
static const Ew ew = std::strcmp(isa.name, "generic") ? Ew{ew_avx2::silu_mul, ew_avx2::silu_mul_bwd, ew_avx2::softmax_bwd, ew_avx2::rmsnorm_bwd_dx, ew_avx2::rmsnorm_bwd_dw} : Ew{ew_generic::silu_mul, ew_generic::silu_mul_bwd, ew_generic::softmax_bwd, ew_generic::rmsnorm_bwd_dx, ew_generic::rmsnorm_bwd_dw};
#else
static const Ew ew{ew_generic::silu_mul, ew_generic::silu_mul_bwd, ew_generic::softmax_bwd, ew_generic::rmsnorm_bwd_dx, ew_generic::rmsnorm_bwd_dw};
#endif

// how long an idle worker waits awake for the next job before it sleeps
constexpr int SPIN_MS = 20;

// ---- thread pool --------------------------------------------------------------------------------

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  const std::function<void(int)>* job = nullptr;
  int active = 0;  // workers taking part in the current job (1..active)
  std::mutex busy; // one job at a time; a second JS thread runs its call alone instead

  void ensure(int n) {
    while ((int)workers.size() < n) {
      const int id = (int)workers.size() + 1;
      workers.emplace_back([this, id] { loop(id); });
      workers.back().detach();
    }
  }

  void loop(int id) {
    const FlushDenormals ftz;  // workers run nothing but our kernels
    uint64_t seen = 0;
    for (;;) {
      // spin up to SPIN_MS for the next job, then sleep. The gaps between one layer's GEMMs (norms,
      // attention on the JS thread) last milliseconds; a worker that slept through them comes back
      // slowly (a woken virtual CPU runs its next GEMM at half speed), so it waits them out awake.
      const auto spin_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(SPIN_MS);
      for (int i = 0; generation.load(std::memory_order_acquire) == seen; ++i) {
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > spin_end) break;
      }
      if (generation.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> l(mu);
        wake.wait(l, [&] { return generation.load(std::memory_order_acquire) != seen; });
      }
      seen = generation.load(std::memory_order_acquire);
      if (id <= active) {
        (*job)(id);
        pending.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  // f(0) on the calling thread, f(1..n-1) on workers; returns when all are done
  void run(int n, const std::function<void(int)>& f) {
    if (n <= 1 || !try_run(n, f)) for (int t = 0; t < n; ++t) f(t);
  }

  // f(0..n-1) truly side by side (parts that wait for each other need that); false when the pool is busy
  bool try_run(int n, const std::function<void(int)>& f) {
    if (!busy.try_lock()) return false;
    ensure(n - 1);
    {
      std::lock_guard<std::mutex> l(mu);
      job = &f; active = n - 1;
      pending.store(n - 1, std::memory_order_release);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    wake.notify_all();
    f(0);
    while (pending.load(std::memory_order_acquire) != 0) cpu_relax();
    busy.unlock();
    return true;
  }
};
static Pool* pool = new Pool();
static std::mutex shared_mu;  // the shared B buffer: one product at a time  // never destroyed: detached workers outlive static destruction

// ---- splitting one product over threads ----------------------------------------------------------

// t threads, each packing its own operands: split N (each thread packs all of A) unless A is the
// larger operand or N has too few mr x nr tiles
static void split_rows_or_columns(const GemmCall& g, int t, long mr, long nr, GemmPart part) {
  const long tilesM = (g.m + mr - 1) / mr, tilesN = (g.n + nr - 1) / nr;
  const bool splitN = tilesN >= t && (g.m <= g.n || tilesM < t);
  if (!splitN && tilesM < t) t = (int)std::max<long>(1, tilesM);
  if (splitN) {
    const long per = (tilesN + t - 1) / t * nr;
    pool->run(t, [&](int i) { part(g, 0, g.m, std::min(g.n, i * per), std::min(g.n, (i + 1) * per)); });
  } else {
    const long per = (tilesM + t - 1) / t * mr;
    pool->run(t, [&](int i) { part(g, std::min(g.m, i * per), std::min(g.m, (i + 1) * per), 0, g.n); });
  }
}

static void gemm_threads(const GemmCall& g, int threads) {
  const double macs = (double)g.m * g.n * g.k;
  int t = std::max(1, std::min<int>(threads, (int)(macs / (1 << 20))));  // >= ~1M multiply-adds a thread
  if (g.m <= 4 && g.csa == 1 && g.rsb == 1 && g.n > 1) {
    // GEMV: split the weight rows
    const long step = (g.n + t - 1) / t;
    pool->run(t, [&](int i) { isa.gemv(g, std::min(g.n, i * step), std::min(g.n, (i + 1) * step)); });
    return;
  }
  const long tilesM = (g.m + isa.mr - 1) / isa.mr;
  if (t > 1 && tilesM >= 8L * t && g.k >= 64) {
    // enough rows for every thread: split them and pack each slice of B once, together
    static float* shared = nullptr; static long have = 0;
    std::unique_lock<std::mutex> own(shared_mu, std::try_to_lock);
    if (own.owns_lock()) {
      const long need = isa.shared_floats();
      if (have < need) { std::free(shared); shared = static_cast<float*>(std::aligned_alloc(64, need * 4)); have = shared ? need : 0; }
      if (shared) {
        Barrier bar; bar.n = t;
        if (pool->try_run(t, [&](int i) { isa.shared(g, SharedPack{shared, &bar, i, t}); })) return;
      }
    }
  }
  split_rows_or_columns(g, t, isa.mr, isa.nr, isa.gemm);
}

#if defined(HAVE_X86_KERNELS)
// bf16 compute (AMX): 32 x 32 tiles, threads split as for f32 (>= ~4M multiply-adds a thread);
// GEMVs (decoding: memory-bound) stay on the f32 kernel
static void gemm_threads_bf16(const GemmCall& g, int threads) {
  if (g.m <= 4) { gemm_threads(g, threads); return; }
  const double macs = (double)g.m * g.n * g.k;
  split_rows_or_columns(g, std::max(1, std::min<int>(threads, (int)(macs / (1 << 22)))), 32, 32, isa_amx::gemm_part);
}
#else
namespace isa_amx {
bool available() { return false; }
bool supports(const GemmCall&) { return false; }
void gemm_part(const GemmCall&, long, long, long, long) {}
}
static void gemm_threads_bf16(const GemmCall& g, int threads) { gemm_threads(g, threads); }
#endif

// ---- N-API glue ---------------------------------------------------------------------------------

static napi_value throw_error(napi_env env, const char* msg) {
  napi_throw_error(env, nullptr, msg);
  return nullptr;
}

struct View { void* data = nullptr; size_t length = 0; napi_typedarray_type type = napi_int8_array; };
static bool view(napi_env env, napi_value v, View& out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_value ab; size_t off;
  return napi_get_typedarray_info(env, v, &out.type, &out.length, &out.data, &ab, &off) == napi_ok;
}
static double num(napi_env env, napi_value v) { double d = 0; napi_get_value_double(env, v, &d); return d; }
static bool flag(napi_env env, napi_value v) { bool b = false; napi_get_value_bool(env, v, &b); return b; }

// largest element index (plus one) a [rows x cols] operand with strides rs, cs touches
static double extent(double rows, double cols, double rs, double cs) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * rs + (cols - 1) * cs + 1;
}

// gemm(a, aOff, lda, transA, b, bOff, ldb, transB, bType, c, cOff, ldc, m, n, k, accumulate, threads[, bf16])
// bf16: round A to bf16 where the AMX kernel takes the product (bf16 weights stored [n, k])
static napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 18; napi_value v[18];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  if (argc != 17 && argc != 18) return throw_error(env, "gemm: expected 17 or 18 arguments");
  View A, B, C;
  if (!view(env, v[0], A) || !view(env, v[4], B) || !view(env, v[9], C)) return throw_error(env, "gemm: a, b and c must be typed arrays");
  const double aOff = num(env, v[1]), lda = num(env, v[2]), bOff = num(env, v[5]), ldb = num(env, v[6]);
  const double cOff = num(env, v[10]), ldc = num(env, v[11]), m = num(env, v[12]), n = num(env, v[13]), k = num(env, v[14]);
  const bool tA = flag(env, v[3]), tB = flag(env, v[7]), acc = flag(env, v[15]);
  const int bType = (int)num(env, v[8]), threads = (int)num(env, v[16]);
  if (A.type != napi_float32_array || C.type != napi_float32_array) return throw_error(env, "gemm: a and c must be Float32Arrays");
  if ((bType == B_F32) != (B.type == napi_float32_array) || (bType != B_F32 && B.type != napi_uint16_array) || bType < 0 || bType > 2)
    return throw_error(env, "gemm: b's array type does not match its dtype");
  GemmCall g;
  g.m = (long)m; g.n = (long)n; g.k = (long)k; g.accumulate = acc; g.btype = (BType)bType;
  g.rsa = tA ? 1 : (long)lda; g.csa = tA ? (long)lda : 1;
  g.rsb = tB ? 1 : (long)ldb; g.csb = tB ? (long)ldb : 1;
  g.ldc = (long)ldc;
  if (m < 0 || n < 0 || k < 0 || aOff < 0 || bOff < 0 || cOff < 0 ||
      aOff + extent(m, k, g.rsa, g.csa) > A.length || bOff + extent(k, n, g.rsb, g.csb) > B.length ||
      cOff + extent(m, n, g.ldc, 1) > C.length)
    return throw_error(env, "gemm: operand out of bounds for its shape");
  g.a = static_cast<const float*>(A.data) + (long)aOff;
  g.b = bType == B_F32 ? (const void*)(static_cast<const float*>(B.data) + (long)bOff) : (const void*)(static_cast<const uint16_t*>(B.data) + (long)bOff);
  g.c = static_cast<float*>(C.data) + (long)cOff;
  const bool bf16 = argc == 18 && flag(env, v[17]);
  if (g.m > 0 && g.n > 0) {
    const FlushDenormals ftz;
    if (bf16 && isa_amx::supports(g)) gemm_threads_bf16(g, std::max(1, threads));
    else gemm_threads(g, std::max(1, threads));
  }
  return nullptr;
}

// bmm(a, b, c, batch, m, n, k, transA, transB, threads): batch of f32 products, contiguous
static napi_value Bmm(napi_env env, napi_callback_info info) {
  size_t argc = 10; napi_value v[10];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  if (argc != 10) return throw_error(env, "bmm: expected 10 arguments");
  View A, B, C;
  if (!view(env, v[0], A) || !view(env, v[1], B) || !view(env, v[2], C) || A.type != napi_float32_array ||
      B.type != napi_float32_array || C.type != napi_float32_array)
    return throw_error(env, "bmm: a, b and c must be Float32Arrays");
  const long batch = (long)num(env, v[3]), m = (long)num(env, v[4]), n = (long)num(env, v[5]), k = (long)num(env, v[6]);
  const bool tA = flag(env, v[7]), tB = flag(env, v[8]);
  const int threads = std::max(1, (int)num(env, v[9]));
  if (batch < 0 || m < 0 || n < 0 || k < 0 || (double)batch * m * k > A.length || (double)batch * k * n > B.length || (double)batch * m * n > C.length)
    return throw_error(env, "bmm: operand out of bounds for its shape");
  GemmCall g;
  g.m = m; g.n = n; g.k = k; g.accumulate = false; g.btype = B_F32; g.b = nullptr;
  g.rsa = tA ? 1 : k; g.csa = tA ? m : 1;
  g.rsb = tB ? 1 : n; g.csb = tB ? k : 1;
  g.ldc = n;
  const float* a = static_cast<const float*>(A.data); const float* b = static_cast<const float*>(B.data);
  float* c = static_cast<float*>(C.data);
  if (batch == 0 || m == 0 || n == 0) return nullptr;
  const FlushDenormals ftz;  // the JS thread's own setting comes back on return
  auto one = [&](long i, int t) {
    GemmCall gi = g;
    gi.a = a + i * m * k; gi.b = b + i * k * n; gi.c = c + i * m * n;
    if (t > 1) gemm_threads(gi, t); else isa.gemm(gi, 0, m, 0, n);
  };
  if (batch >= threads && threads > 1) {
    const long per = (batch + threads - 1) / threads;
    pool->run(threads, [&](int t) { for (long i = t * per; i < std::min(batch, (t + 1) * per); ++i) one(i, 1); });
  } else {
    for (long i = 0; i < batch; ++i) one(i, threads);
  }
  return nullptr;
}

// ---- bulk copies ------------------------------------------------------------------------------

// copy(dst, src, threads): dst[0, n) = src[0, n) for Float32Arrays, split over the pool. The
// kept activations of a forward are gigabytes of first writes: on a virtual machine each 4 KB page
// faults for microseconds, and faults taken on two cores at once finish in half the time.
static napi_value Copy(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value v[3];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View D, S;
  if (argc != 3 || !view(env, v[0], D) || !view(env, v[1], S) || D.type != napi_float32_array || S.type != napi_float32_array)
    return throw_error(env, "copy: expected (dst, src, threads) with Float32Arrays");
  if (S.length > D.length) return throw_error(env, "copy: src is longer than dst");
  const long n = (long)S.length;
  const int threads = std::max(1, std::min<int>((int)num(env, v[2]), (int)(n >> 18)));  // >= 1 MB a thread
  float* d = static_cast<float*>(D.data); const float* s = static_cast<const float*>(S.data);
  const long per = ((n + threads - 1) / threads + 1023) / 1024 * 1024;  // whole pages a thread
  pool->run(threads, [&](int t) {
    const long a = std::min(n, t * per), b = std::min(n, (t + 1) * per);
    if (b > a) std::memcpy(d + a, s + a, (b - a) * sizeof(float));
  });
  return nullptr;
}

// sumAbsProduct(w, wType, g, threads): sum |w_i g_i| over g's elements (w f32, or bf16/f16 bits),
// Taylor+'s reduction of a weight and its gradient, read in place on all threads. The elements go
// in fixed chunks, each summed alone and the chunks' sums added in order: the same bits on any
// thread count.
static napi_value SumAbsProduct(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value v[4];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View W, G;
  if (argc != 4 || !view(env, v[0], W) || !view(env, v[2], G) || G.type != napi_float32_array)
    return throw_error(env, "sumAbsProduct: expected (w, wType, g: Float32Array, threads)");
  const int wt = (int)num(env, v[1]);
  if (wt < 0 || wt > 2 || (wt == B_F32) != (W.type == napi_float32_array) || (wt != B_F32 && W.type != napi_uint16_array))
    return throw_error(env, "sumAbsProduct: w's array type does not match its dtype");
  const long n = (long)G.length;
  if ((long)W.length < n) return throw_error(env, "sumAbsProduct: w is shorter than g");
  constexpr long CHUNK = 1 << 16;
  const long chunks = (n + CHUNK - 1) / CHUNK;
  std::vector<double> part(chunks > 0 ? chunks : 1, 0.0);
  const int threads = std::max(1, std::min<int>((int)num(env, v[3]), (int)std::min<long>(chunks, 64)));
  const char* w = static_cast<const char*>(W.data); const float* g = static_cast<const float*>(G.data);
  const size_t es = wt == B_F32 ? 4 : 2;
  pool->run(threads, [&](int t) {
    for (long c = t; c < chunks; c += threads) {
      const long a = c * CHUNK, len = std::min(CHUNK, n - a);
      part[c] = isa.sum_abs(w + a * es, (BType)wt, g + a, len);
    }
  });
  double s = 0;
  for (long c = 0; c < chunks; ++c) s += part[c];
  napi_value out; napi_create_double(env, s, &out); return out;
}

// ---- elementwise kernels ----------------------------------------------------------------------

// Denormals kept while the elementwise kernels run (workers otherwise flush them): WebAssembly does
// not flush, and these kernels give its bits.
struct KeepDenormals {
#if defined(__x86_64__) || defined(__i386__)
  unsigned saved;
  KeepDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved & ~0x8040u); }
  ~KeepDenormals() { _mm_setcsr(saved); }
#endif
};

// rows [0, rows) split over up to `threads` threads, >= ~64K elements a thread
static void rows_on_threads(long rows, long perRow, int threads, const std::function<void(long, long)>& f) {
  const int t = (int)std::max<long>(1, std::min<long>({(long)threads, rows, rows * perRow / (1 << 16)}));
  const long per = (rows + t - 1) / t;
  pool->run(t, [&](int i) {
    const KeepDenormals keep;
    const long r0 = std::min(rows, i * per), r1 = std::min(rows, (i + 1) * per);
    if (r1 > r0) f(r0, r1);
  });
}

static bool f32_view(napi_env env, napi_value v, View& out) { return view(env, v, out) && out.type == napi_float32_array; }

// siluMul(gate, up, ld, out, n, I, threads): out[i, j] = silu(gate[i*ld + j]) * up[i*ld + j]
static napi_value SiluMul(napi_env env, napi_callback_info info) {
  size_t argc = 7; napi_value v[7];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View G, U, O;
  if (argc != 7 || !f32_view(env, v[0], G) || !f32_view(env, v[1], U) || !f32_view(env, v[3], O))
    return throw_error(env, "siluMul: expected (gate, up, ld, out, n, I, threads) with Float32Arrays");
  const long ld = (long)num(env, v[2]), n = (long)num(env, v[4]), I = (long)num(env, v[5]);
  const double need = extent(n, I, ld, 1);
  if (ld < I || n < 0 || I < 0 || need > G.length || need > U.length || (double)n * I > O.length)
    return throw_error(env, "siluMul: operand out of bounds for its shape");
  const float* g = static_cast<const float*>(G.data); const float* u = static_cast<const float*>(U.data);
  float* o = static_cast<float*>(O.data);
  rows_on_threads(n, I, (int)num(env, v[6]), [&](long r0, long r1) { ew.silu_mul(g, u, ld, o, r0, r1, I); });
  return nullptr;
}

// siluMulBackward(dOut, gu, dgu, rows, I, threads): rows of gu and dgu are [gate | up]
static napi_value SiluMulBackward(napi_env env, napi_callback_info info) {
  size_t argc = 6; napi_value v[6];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View D, GU, DGU;
  if (argc != 6 || !f32_view(env, v[0], D) || !f32_view(env, v[1], GU) || !f32_view(env, v[2], DGU))
    return throw_error(env, "siluMulBackward: expected (dOut, gu, dgu, rows, I, threads) with Float32Arrays");
  const long rows = (long)num(env, v[3]), I = (long)num(env, v[4]);
  if (rows < 0 || I < 0 || (double)rows * I > D.length || 2.0 * rows * I > GU.length || 2.0 * rows * I > DGU.length)
    return throw_error(env, "siluMulBackward: operand out of bounds for its shape");
  const float* d = static_cast<const float*>(D.data); const float* gu = static_cast<const float*>(GU.data);
  float* dgu = static_cast<float*>(DGU.data);
  rows_on_threads(rows, 2 * I, (int)num(env, v[5]), [&](long r0, long r1) { ew.silu_mul_bwd(d, gu, dgu, r0, r1, I); });
  return nullptr;
}

// softmaxBackward(p, dp, rows, S, scale, threads): dp = p (dp - sum(dp p)) scale, row by row, in place
static napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  size_t argc = 6; napi_value v[6];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View P, D;
  if (argc != 6 || !f32_view(env, v[0], P) || !f32_view(env, v[1], D))
    return throw_error(env, "softmaxBackward: expected (p, dp, rows, S, scale, threads) with Float32Arrays");
  const long rows = (long)num(env, v[2]), S = (long)num(env, v[3]);
  const float scale = (float)num(env, v[4]);
  if (rows < 0 || S < 0 || (double)rows * S > P.length || (double)rows * S > D.length)
    return throw_error(env, "softmaxBackward: operand out of bounds for its shape");
  const float* p = static_cast<const float*>(P.data); float* d = static_cast<float*>(D.data);
  rows_on_threads(rows, S, (int)num(env, v[5]), [&](long r0, long r1) { ew.softmax_bwd(p, d, r0, r1, S, scale); });
  return nullptr;
}

// rmsnormBackward(dy, x, w, rstd, dx, dw | null, n, h, threads): dx += ..., dw += ... (see elementwise.h);
// dx split by rows, dw by columns
static napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  size_t argc = 9; napi_value v[9];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  View DY, X, Wt, R, DX, DW;
  napi_valuetype dwType = napi_undefined;
  if (argc == 9) napi_typeof(env, v[5], &dwType);
  const bool hasDw = dwType != napi_null && dwType != napi_undefined;
  if (argc != 9 || !f32_view(env, v[0], DY) || !f32_view(env, v[1], X) || !f32_view(env, v[2], Wt) || !f32_view(env, v[3], R) ||
      !f32_view(env, v[4], DX) || (hasDw && !f32_view(env, v[5], DW)))
    return throw_error(env, "rmsnormBackward: expected (dy, x, w, rstd, dx, dw | null, n, h, threads) with Float32Arrays");
  const long n = (long)num(env, v[6]), h = (long)num(env, v[7]);
  const double nh = (double)n * h;
  if (n < 0 || h < 0 || nh > DY.length || nh > X.length || nh > DX.length || (double)h > Wt.length || (double)n > R.length || (hasDw && (double)h > DW.length))
    return throw_error(env, "rmsnormBackward: operand out of bounds for its shape");
  const float* dy = static_cast<const float*>(DY.data); const float* x = static_cast<const float*>(X.data);
  const float* w = static_cast<const float*>(Wt.data); const float* r = static_cast<const float*>(R.data);
  float* dx = static_cast<float*>(DX.data);
  const int threads = (int)num(env, v[8]);
  rows_on_threads(n, h, threads, [&](long r0, long r1) { ew.rmsnorm_bwd_dx(dy, x, w, r, dx, r0, r1, h); });
  if (hasDw) {
    float* dw = static_cast<float*>(DW.data);
    // columns in whole 16-float groups (64 bytes) a thread: no cache line of dw written by two
    const long groups = (h + 15) / 16;
    rows_on_threads(groups, 16 * n, threads, [&](long g0, long g1) { ew.rmsnorm_bwd_dw(dy, x, r, dw, n, h, g0 * 16, std::min(h, g1 * 16)); });
  }
  return nullptr;
}

static napi_value IsaName(napi_env env, napi_callback_info) {
  napi_value s; napi_create_string_utf8(env, isa.name, NAPI_AUTO_LENGTH, &s); return s;
}
// whether products can run in bf16 here (AMX-BF16 and the OS's permission)
static napi_value Bf16Compute(napi_env env, napi_callback_info) {
  napi_value b; napi_get_boolean(env, isa_amx::available(), &b); return b;
}

// ---- memory on 2 MB pages ------------------------------------------------------------------------

// hugePagesForNew(buffer): backs a new, still zero ArrayBuffer with 2 MB pages (Linux transparent
// huge pages) from here on: its 2 MB-aligned interior is advised MADV_HUGEPAGE and its pages are
// given back (MADV_DONTNEED: private anonymous memory reads as zeros again), so they fault in as
// huge pages when the buffer is filled. Returns the bytes advised (0 where nothing was: not Linux,
// no THP, too small). A decode step streams every weight once, and on 4 KB pages each page of it
// costs a TLB miss and a page walk: on Zen 3 the decode's GEMVs read 11-13% faster from 2 MB pages
// (a C++ harness alternating both over 2.07 GB of TinyLlama weights: medians 121.4 / 108.2 and
// 127.3 / 112.4 ms a token). The buffer stays V8's own memory, freed as any other.
static napi_value HugePagesForNew(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value v[1];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  double advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  void* data = nullptr; size_t len = 0;
  if (argc >= 1 && napi_get_arraybuffer_info(env, v[0], &data, &len) == napi_ok && data) {
    const uintptr_t huge = uintptr_t(2) << 20, b = reinterpret_cast<uintptr_t>(data);
    const uintptr_t lo = (b + huge - 1) & ~(huge - 1), hi = (b + len) & ~(huge - 1);
    if (hi > lo && madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) == 0 &&
        madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) == 0)
      advised = (double)(hi - lo);
  }
#else
  (void)argc;
#endif
  napi_value r; napi_create_double(env, advised, &r); return r;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"bmm", nullptr, Bmm, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"isa", nullptr, IsaName, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"copy", nullptr, Copy, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"bf16Compute", nullptr, Bf16Compute, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"sumAbsProduct", nullptr, SumAbsProduct, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"siluMul", nullptr, SiluMul, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"siluMulBackward", nullptr, SiluMulBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"softmaxBackward", nullptr, SoftmaxBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"rmsnormBackward", nullptr, RmsnormBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"hugePagesForNew", nullptr, HugePagesForNew, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
