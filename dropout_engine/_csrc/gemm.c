/* PLACEHOLDER (being replaced): naive GEMM frame, correct but slow. */
#include <stdlib.h>
#include "dispatch.h"

int de_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
            const float *a, size_t lda, const float *b, size_t ldb,
            float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float s = 0.f;
            for (size_t p = 0; p < k; p++) {
                float av = trans_a ? a[p * lda + i] : a[i * lda + p];
                float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
        }
    if (ep) {
        de_lanes_t rs;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j += DE_RNG_SEGMENT) {
                size_t nr = n - j < DE_RNG_SEGMENT ? n - j : DE_RNG_SEGMENT;
                de_kt->ew->epilogue(ep, n, c + i * ldc + j, ldc, i, j, 1, nr, &rs);
            }
    }
    return DE_OK;
}
