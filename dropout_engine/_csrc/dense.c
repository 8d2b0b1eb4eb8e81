/* PLACEHOLDER (being replaced). */
#include "dispatch.h"
void de_bias_act(size_t m, size_t n, const float *bias, int act, float *y) { de_kt->ew->bias_act_rows(0, m, n, bias, act, y); }
void de_softmax_rows(size_t m, size_t n, float *y) { de_kt->ew->softmax_rows(0, m, n, y); }
void de_dropout(size_t m, size_t n, const float *x, float *y, uint64_t *mask, const de_dropout_t *d) { de_kt->ew->dropout_rows(0, m, n, x, y, mask, d); }
int de_dense_forward(size_t m, size_t n, size_t k, const float *x, const float *w, const float *b, int act,
                     const de_dropout_t *drop, float *y, uint64_t *mask)
{
    de_epilogue_t ep = {b, act, *drop, mask};
    return de_gemm(0, 0, m, n, k, x, k, w, n, y, n, 0, &ep);
}
void de_backward_act(size_t m, size_t n, int act, const de_dropout_t *drop, const uint64_t *mask,
                     const float *y, const float *z, const float *dy, float *dz)
{ de_kt->ew->backward_act_rows(0, m, n, act, drop, mask, y, z, dy, dz); }
void de_sum_rows(size_t m, size_t n, const float *dz, float *db)
{ for (size_t j = 0; j < n; j++) { float s = 0.f; for (size_t i = 0; i < m; i++) s += dz[i * n + j]; db[j] = s; } }
int de_dense_backward(size_t m, size_t n, size_t k, const float *x, const float *w, const float *y, const float *z,
                      const uint64_t *mask, int act, const de_dropout_t *drop, const float *dy, float *scratch,
                      float *dx, float *dw, float *db)
{
    de_backward_act(m, n, act, drop, mask, y, z, dy, scratch);
    de_gemm(1, 0, k, n, m, x, k, scratch, n, dw, n, 0, NULL);
    de_sum_rows(m, n, scratch, db);
    if (dx) de_gemm(0, 1, m, k, n, scratch, n, w, n, dx, k, 0, NULL);
    return DE_OK;
}
