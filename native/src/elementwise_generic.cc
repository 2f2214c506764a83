// Baseline build of elementwise.h: 4-float vectors (built with -ffp-contract=off, see there)
#define EWNS ew_generic
#define EW 4
#include "elementwise.h"
