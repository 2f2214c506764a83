// Baseline x86-64 / any-CPU build of gemm_kernel.h: 4-float vectors, 6 x 8 tiles
#define KNS isa_generic
#define KW 4
#define KMR 6
#include "gemm_kernel.h"
