/*
 * dense.c -- the frame around the element-wise kernels: the C API for the
 * activation descriptors (de_act_t), the unfused passes and the dense layer
 * forward/backward.
 *
 * Rows are split into one contiguous block per thread (fewer threads for
 * small work); standalone dropout splits RNG segments instead, so that a
 * single long row (a 1-D array) uses every thread.  Every element and every mask bit is computed by the same
 * code whatever block it falls in, and the only reduction (de_sum_rows)
 * adds rows in the fixed order 0..m-1, so results do not depend on the
 * thread count.  Masks: callers zero them; blocks share at most the mask
 * word at their boundary, which the kernels OR atomically.
 */
#include <math.h>
#include "frame/dispatch.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many elements per thread a pass is not worth splitting. */
#define MIN_PER_THREAD (1u << 15)

static int threads_for(size_t rows, size_t elems)
{
    size_t t = elems / MIN_PER_THREAD;
    int max = de_threads();
    if (t > (size_t)max)
        t = (size_t)max;
    if (t > rows)
        t = rows;
    return t < 1 ? 1 : (int)t;
}

/* Member t of a team of nt's block of [0, count). */
static void my_block(size_t count, size_t t, size_t nt, size_t *lo, size_t *hi)
{
    *lo = count * t / nt;
    *hi = count * (t + 1) / nt;
}

/* ------------------------------------------------------------ activations */

void de_act_init(de_act_t *a, int kind)
{
    a->kind = kind;
    a->alpha = kind == DE_ELU ? 1.f : kind == DE_LEAKY_RELU ? 0.2f : 0.f;
    a->max_value = kind == DE_RELU6 ? 6.f : INFINITY;
    a->threshold = 0.f;
    a->slopes = NULL;
}

int de_act_needs_pre(const de_act_t *a, int dropout)
{
    switch (a->kind) {
    case DE_GELU: case DE_SILU: case DE_PRELU: return 1;
    case DE_ELU: return a->alpha < 0.f;
    case DE_SOFTMAX: return dropout;
    default: return 0;
    }
}

/* The activations that cost an exp or more per element (threads pay off
 * on less work). */
static int transcendental(int kind)
{
    return kind != DE_LINEAR && kind != DE_RELU && kind != DE_LEAKY_RELU
        && kind != DE_RELU6 && kind != DE_RELU_X && kind != DE_PRELU
        && kind != DE_HARD_SIGMOID;
}

void de_bias_act(size_t m, size_t n, const float *bias, const de_act_t *act,
                 float *y)
{
    const de_elementwise_t *ew = de_kt->ew;
    if (act->kind == DE_SOFTMAX) {
        if (bias) {
            de_act_t lin;
            de_act_init(&lin, DE_LINEAR);
            de_bias_act(m, n, bias, &lin, y);
        }
        de_softmax_rows(m, n, y);
        return;
    }
    int nt = threads_for(m, m * n * (transcendental(act->kind) ? 16 : 1));
    DE_PARALLEL({
        size_t r0, r1;
        my_block(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        ew->bias_act_rows(r0, r1, n, bias, act, y);
    });
}

void de_softmax_rows(size_t m, size_t n, float *y)
{
    const de_elementwise_t *ew = de_kt->ew;
    int nt = threads_for(m, m * n * 16);
    DE_PARALLEL({
        size_t r0, r1;
        my_block(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        ew->softmax_rows(r0, r1, n, y);
    });
}

void de_dropout(size_t m, size_t n, const float *x, float *y, uint64_t *mask,
                const de_dropout_t *d)
{
    const de_elementwise_t *ew = de_kt->ew;
    const size_t segs = m * ((n + DE_RNG_SEGMENT - 1) / DE_RNG_SEGMENT);
    int nt = threads_for(segs, m * n);
    DE_PARALLEL({
        size_t s0, s1;
        my_block(segs, DE_TEAM_ID(), DE_TEAM_SIZE(), &s0, &s1);
        ew->dropout_segments(s0, s1, n, x, y, mask, d);
    });
}

/* Softmax then dropout, row by row while the row is in cache. */
static void softmax_dropout(size_t m, size_t n, float *y, uint64_t *mask,
                            const de_dropout_t *d)
{
    const de_elementwise_t *ew = de_kt->ew;
    const size_t spr = (n + DE_RNG_SEGMENT - 1) / DE_RNG_SEGMENT;
    int nt = threads_for(m, m * n * 16);
    DE_PARALLEL({
        size_t r0, r1;
        my_block(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        if (!d->drop_below) {        /* inference: whole blocks of rows */
            ew->softmax_rows(r0, r1, n, y);
        } else {
            for (size_t i = r0; i < r1; i++) {
                ew->softmax_rows(i, i + 1, n, y);
                ew->dropout_segments(i * spr, (i + 1) * spr, n, y, y, mask, d);
            }
        }
    });
}

int de_dense_forward(size_t m, size_t n, size_t k, const float *x,
                     const float *w, const float *b, const de_act_t *act,
                     const de_dropout_t *drop, float *y, uint64_t *mask)
{
    return de_dense_forward_packed(m, n, k, x, w, NULL, b, act, drop, y, mask);
}

/* x @ w with the epilogue: w float32 (bf16: both rounded to bfloat16 as
 * mixed_bfloat16 computes) or, given w16, w's bfloat16 bits read by a
 * float32 GEMM (a kernel quantized to bfloat16). */
static int gemm_w(int bf16, size_t m, size_t n, size_t k, const float *x,
                  const float *w, const uint16_t *w16, const de_packed_b_t *wp,
                  float *y, const de_epilogue_t *ep)
{
    if (bf16)
        return de_gemm_bf16(0, 0, m, n, k, x, k, w, n, y, n, 0, ep);
    return w16 ? de_gemm_wbf16(m, n, k, x, k, w16, n, wp, y, n, 0, ep)
               : de_gemm_prepacked(m, n, k, x, k, w, n, wp, y, n, 0, ep);
}

static int forward(int bf16, size_t m, size_t n, size_t k, const float *x,
                   const float *w, const uint16_t *w16, const de_packed_b_t *wp,
                   const float *b, const de_act_t *act,
                   const de_dropout_t *drop, float *y, uint64_t *mask)
{
    if (act->kind != DE_SOFTMAX) {
        de_epilogue_t ep = {b, *act, *drop, mask};
        return gemm_w(bf16, m, n, k, x, w, w16, wp, y, &ep);
    }
    de_epilogue_t ep = {b, {DE_LINEAR, 0.f, 0.f, 0.f, NULL}, {0, 1.f, 0}, NULL};
    int rc = gemm_w(bf16, m, n, k, x, w, w16, wp, y, &ep);
    if (rc == DE_OK)
        softmax_dropout(m, n, y, mask, drop);
    return rc;
}

int de_dense_forward_packed(size_t m, size_t n, size_t k, const float *x,
                            const float *w, const de_packed_b_t *wp,
                            const float *b, const de_act_t *act,
                            const de_dropout_t *drop, float *y, uint64_t *mask)
{
    return forward(0, m, n, k, x, w, NULL, wp, b, act, drop, y, mask);
}

de_gemm_fn de_gemm_of(int bf16)
{
    return bf16 ? de_gemm_bf16 : de_gemm;
}

int de_layer_dense_forward(size_t m, const de_layer_t *L, const float *x,
                           const de_packed_b_t *wp, const de_act_t *act,
                           const de_dropout_t *drop, float *y, uint64_t *mask)
{
    if (L->qw)
        return de_qdense_forward(m, L->n_out, L->n_in, x, L->qw, L->qcorr,
                                 L->qscale, L->b, act, y);
    return forward(L->bf16, m, L->n_out, L->n_in, x, L->w, L->bw, wp, L->b, act,
                   drop, y, mask);
}

void de_backward_act(size_t m, size_t n, const de_act_t *act,
                     const de_dropout_t *drop, const uint64_t *mask,
                     const float *y, const float *z, const float *dy, float *dz)
{
    const de_elementwise_t *ew = de_kt->ew;
    int nt = threads_for(m, m * n * (transcendental(act->kind) ? 8 : 1));
    DE_PARALLEL({
        size_t r0, r1;
        my_block(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        ew->backward_act_rows(r0, r1, n, act, drop, mask, y, z, dy, dz);
    });
}

/* Columns in blocks of SUM_BLOCK, each summed into doubles over rows
 * 0..m-1 in order; threads take whole blocks. */
#define SUM_BLOCK 256

/* out[j] = sum over rows i of dz[i, j] (z NULL), or for PReLU's slopes of
 * g * min(z, 0) with g = dz * keep * scale (mask NULL: all kept). */
static void column_sums(size_t m, size_t n, const float *dz, const float *z,
                        const uint64_t *mask, double scale, float *out)
{
    size_t nblk = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    int nt = threads_for(nblk, m * n);
    DE_PARALLEL({
        size_t b0, b1;
        double acc[SUM_BLOCK];
        my_block(nblk, DE_TEAM_ID(), DE_TEAM_SIZE(), &b0, &b1);
        for (size_t blk = b0; blk < b1; blk++) {
            size_t j0 = blk * SUM_BLOCK;
            size_t w = n - j0 < SUM_BLOCK ? n - j0 : SUM_BLOCK;
            for (size_t j = 0; j < w; j++)
                acc[j] = 0.0;
            if (!z) {       /* the bias gradient: a loop that vectorises */
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < w; j++)
                        acc[j] += dz[i * n + j0 + j];
            } else {
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < w; j++) {
                        size_t e = i * n + j0 + j;
                        int keep = !mask || ((mask[e >> 6] >> (e & 63)) & 1);
                        acc[j] += z[e] < 0.f && keep ? dz[e] * scale * z[e] : 0.0;
                    }
            }
            for (size_t j = 0; j < w; j++)
                out[j0 + j] = (float)acc[j];
        }
    });
}

void de_sum_rows(size_t m, size_t n, const float *dz, float *db)
{
    column_sums(m, n, dz, NULL, NULL, 1.0, db);
}

void de_prelu_slope_grad(size_t m, size_t n, const de_dropout_t *drop,
                         const uint64_t *mask, const float *z, const float *dy,
                         float *ds)
{
    const int dropping = drop->drop_below != 0;
    column_sums(m, n, dy, z, dropping ? mask : NULL,
                dropping ? drop->scale : 1.0, ds);
}

int de_dense_backward(size_t m, size_t n, size_t k, const float *x,
                      const float *w, const float *y, const float *z,
                      const uint64_t *mask, const de_act_t *act,
                      const de_dropout_t *drop,
                      const float *dy, float *scratch, float *dx, float *dw,
                      float *db)
{
    de_backward_act(m, n, act, drop, mask, y, z, dy, scratch);
    int rc = de_gemm(1, 0, k, n, m, x, k, scratch, n, dw, n, 0, NULL);
    if (rc != DE_OK)
        return rc;
    de_sum_rows(m, n, scratch, db);
    if (dx)
        rc = de_gemm(0, 1, m, k, n, scratch, n, w, n, dx, k, 0, NULL);
    return rc;
}
