/* PLACEHOLDER (being replaced): naive microkernel for the portable path. */
#include "dispatch.h"
#define MR 4
#define NR 16
static void ukernel(size_t kc, const float *a, const float *b, float *c,
                    size_t ldc, int accumulate)
{
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = 0.f;
            for (size_t p = 0; p < kc; p++)
                s += a[p * MR + i] * b[p * NR + j];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
        }
}
const de_gemm_kernels_t de_gemm_kernels_generic = {MR, NR, 256, 64, 1024, ukernel};
