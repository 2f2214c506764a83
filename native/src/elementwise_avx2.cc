// AVX2 build of elementwise.h: 8-float vectors (built with -ffp-contract=off, see there)
#define EWNS ew_avx2
#define EW 8
#include "elementwise.h"
