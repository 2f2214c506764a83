// AVX2 + FMA build of gemm_kernel.h: 8-float vectors, 6 x 16 tiles (12 accumulators of 16 registers)
#define KNS isa_avx2
#define KW 8
#define KMR 6
#define KKC 384
#include "gemm_kernel.h"
