/* The element-wise kernels compiled with this ISA's flags (see elementwise.inc). */
#define DE_EW_NAME de_elementwise_avx2
#include "kernels/elementwise.inc"
