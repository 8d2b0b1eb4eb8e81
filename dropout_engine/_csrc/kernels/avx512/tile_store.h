/*
 * tile_store.h -- the last step of the 12 x 32 zmm microkernels (the float
 * one in gemm_kernels_avx512.c, the VDPBF16PS one in kernels/avx512bf16/):
 * C = acc, or C + acc with one plain add (the frame's determinism rule).
 */
#ifndef DE_AVX512_TILE_STORE_H
#define DE_AVX512_TILE_STORE_H
#include <immintrin.h>

static inline __attribute__((always_inline)) void
store_tile(int mr, __m512 *c0, __m512 *c1, float *c, size_t ldc, int accumulate)
{
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), c0[i]);
            c1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c1[i]);
        }
        _mm512_storeu_ps(ci, c0[i]);
        _mm512_storeu_ps(ci + 16, c1[i]);
    }
}
#endif
