// AVX-512 build of gemm_kernel.h: 16-float vectors, 8 x 32 tiles (16 accumulators of 32 registers),
// K slices of 512
#define KNS isa_avx512
#define KW 16
#define KMR 8
#define KKC 512
#include "gemm_kernel.h"
