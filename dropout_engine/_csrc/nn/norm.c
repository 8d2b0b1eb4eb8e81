/*
 * norm.c -- BatchNormalization and LayerNormalization inside the fused
 * layer step (engine.h has the formulas): the statistics, the
 * normalisation and its backward pass, BN's moving averages and inference
 * fold, and the layer step that puts them between the GEMM (+ bias) and
 * the activation, or between the activation and the dropout.
 *
 * Layout: x [m x n] row-major, a dense layer's output.  BN reduces each
 * column over the rows: a thread takes whole blocks of NB columns and walks
 * their rows in order 0..m-1 (NB contiguous floats per row, so the walk
 * streams).  LN reduces each row over its columns: a thread takes whole
 * rows.  Sums run in double in that fixed order, so the statistics, and
 * everything computed from them, do not depend on the thread count.  The
 * per-element work is a fixed sequence of IEEE operations (contraction
 * off), the same bits on every ISA: this file is portable C, compiled once
 * with the baseline flags.
 *
 * Buffers belong to the caller (train.c's arena, the predict scratch);
 * nothing here allocates.
 */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <string.h>
#include "frame/dispatch.h"

#define NB 256                     /* columns per BN block */
#define MIN_PER_THREAD (1u << 15)  /* elements a thread is worth */

static const de_dropout_t no_dropout = {0, 1.f, 0};

/* Threads for `elems` elements of work in `units` independent pieces. */
static int team(size_t units, size_t elems)
{
    size_t t = elems / MIN_PER_THREAD, max = (size_t)de_threads();
    if (t > max) t = max;
    if (t > units) t = units;
    return t < 1 ? 1 : (int)t;
}

/* Member id of a team of size's share of [0, count). */
static void share(size_t count, int id, int size, size_t *lo, size_t *hi)
{
    *lo = count * (size_t)id / (size_t)size;
    *hi = count * ((size_t)id + 1) / (size_t)size;
}

static size_t block_width(size_t n, size_t j0)
{
    return n - j0 < NB ? n - j0 : NB;
}

/* Run the statement for each block of NB columns of an m x n matrix (j0
 * its first column, w its width), whole blocks to a thread. */
#define COLUMN_BLOCKS(m, n, ...)                                             \
    do {                                                                     \
        const size_t nblk_ = ((n) + NB - 1) / NB;                            \
        int nt = team(nblk_, (m) * (n));                                     \
        DE_PARALLEL({                                                        \
            size_t b0_, b1_;                                                 \
            share(nblk_, DE_TEAM_ID(), DE_TEAM_SIZE(), &b0_, &b1_);           \
            for (size_t blk_ = b0_; blk_ < b1_; blk_++) {                    \
                const size_t j0 = blk_ * NB, w = block_width((n), j0);       \
                __VA_ARGS__;                                                 \
            }                                                                \
        });                                                                  \
    } while (0)

size_t de_norm_stat_floats(const de_norm_t *nm, size_t m, size_t n)
{
    return nm->kind == DE_NORM_BATCH ? 3 * n : 2 * m;
}

/* ------------------------------------------------------------ BatchNorm */

/* Columns [j0, j0 + w) in training mode: mean and biased variance over the
 * m rows (two passes in double, the second on deviations), then xhat and
 * y.  xhat and y may equal x (each element is read before it is written). */
static void bn_block(const de_norm_t *nm, size_t m, size_t n, size_t j0,
                     size_t w, const float *x, float *xhat, float *stat,
                     float *y)
{
    double s[NB], q[NB];
    float mu[NB], r[NB], g[NB], b[NB];
    float *mean = stat, *var = stat + n, *rstd = stat + 2 * n;
    for (size_t j = 0; j < w; j++)
        s[j] = q[j] = 0.0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++)
            s[j] += x[i * n + j0 + j];
    for (size_t j = 0; j < w; j++)
        s[j] /= (double)m;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) {
            double d = x[i * n + j0 + j] - s[j];
            q[j] += d * d;
        }
    for (size_t j = 0; j < w; j++) {
        double v = q[j] / (double)m;
        mean[j0 + j] = mu[j] = (float)s[j];
        var[j0 + j] = (float)v;
        rstd[j0 + j] = r[j] = (float)(1.0 / sqrt(v + (double)nm->epsilon));
        g[j] = nm->gamma ? nm->gamma[j0 + j] : 1.f;
        b[j] = nm->beta ? nm->beta[j0 + j] : 0.f;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) {
            size_t e = i * n + j0 + j;
            float h = (x[e] - mu[j]) * r[j];
            xhat[e] = h;
            y[e] = h * g[j] + b[j];
        }
}

/* Keras's ops.batch_normalization in its float32 order: inv = 1 /
 * sqrt(var + eps) (* gamma), res = -mean * inv (+ beta).  Loops without
 * branches, so they vectorise: predict folds at every call (the weights are
 * the user's arrays), so at batch 1 this is most of the layer's norm work. */
void de_norm_fold(const de_norm_t *nm, size_t j0, size_t j1, float *s,
                  float *t)
{
    const size_t w = j1 - j0;
    const float eps = nm->epsilon, *mean = nm->moving_mean + j0;
    const float *var = nm->moving_var + j0;
    for (size_t j = 0; j < w; j++)
        s[j] = 1.f / sqrtf(var[j] + eps);
    if (nm->gamma)
        for (size_t j = 0; j < w; j++)
            s[j] *= nm->gamma[j0 + j];
    for (size_t j = 0; j < w; j++)
        t[j] = -mean[j] * s[j];
    if (nm->beta)
        for (size_t j = 0; j < w; j++)
            t[j] += nm->beta[j0 + j];
}

/* y = x * s + t per column, s and t folded once per block of columns. */
static void bn_infer(const de_norm_t *nm, size_t m, size_t n, const float *x,
                     float *y)
{
    for (size_t j0 = 0; j0 < n; j0 += NB) {
        size_t w = block_width(n, j0);
        float sb[NB], tb[NB];
        const float *s = sb, *t = tb;
        if (nm->fold_scale) {
            s = nm->fold_scale + j0;
            t = nm->fold_shift + j0;
        } else {
            de_norm_fold(nm, j0, j0 + w, sb, tb);
        }
        int nt = team(m, m * w);
        DE_PARALLEL({
            size_t r0, r1;
            share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
            for (size_t i = r0; i < r1; i++)
                for (size_t j = 0; j < w; j++)
                    y[i * n + j0 + j] = x[i * n + j0 + j] * s[j] + t[j];
        });
    }
}

/* Columns [j0, j0 + w): sd = sum dy (dbeta), sx = sum dy * xhat (dgamma)
 * over rows 0..m-1, stored into dbeta / dgamma where given. */
static void grad_sums(size_t m, size_t n, size_t j0, size_t w,
                      const float *xhat, const float *dy, double *sd,
                      double *sx, float *dgamma, float *dbeta)
{
    for (size_t j = 0; j < w; j++)
        sd[j] = sx[j] = 0.0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) {
            size_t e = i * n + j0 + j;
            sd[j] += dy[e];
            sx[j] += (double)dy[e] * xhat[e];
        }
    for (size_t j = 0; j < w; j++) {
        if (dbeta) dbeta[j0 + j] = (float)sd[j];
        if (dgamma) dgamma[j0 + j] = (float)sx[j];
    }
}

/* Columns [j0, j0 + w): the sums, then
 *   dx = gamma * rstd * (dy - dbeta / m - xhat * dgamma / m)
 * (dx may equal dy: the block's dy is summed before it is overwritten). */
static void bn_backward_block(const de_norm_t *nm, size_t m, size_t n,
                              size_t j0, size_t w, const float *xhat,
                              const float *stat, const float *dy, float *dx,
                              float *dgamma, float *dbeta)
{
    double sd[NB], sx[NB], f[NB];
    const float *rstd = stat + 2 * n;
    grad_sums(m, n, j0, w, xhat, dy, sd, sx, dgamma, dbeta);
    for (size_t j = 0; j < w; j++) {
        f[j] = (double)(nm->gamma ? nm->gamma[j0 + j] : 1.f) * rstd[j0 + j];
        sd[j] /= (double)m;
        sx[j] /= (double)m;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) {
            size_t e = i * n + j0 + j;
            dx[e] = (float)(f[j] * ((double)dy[e] - sd[j] - xhat[e] * sx[j]));
        }
}

/* ------------------------------------------------------------ LayerNorm */

/* A row's sums in double: LANES interleaved partial sums (element j into
 * lane j % LANES), added up in lane order at the end.  A fixed order, so
 * the bits do not depend on anything but the row; and independent lanes,
 * so the loop is not bound by the latency of one long chain of adds. */
#define LANES 8

static double lanes_total(const double *acc)
{
    double s = 0.0;
    for (int l = 0; l < LANES; l++)
        s += acc[l];
    return s;
}

/* sum_j a[j] * (b ? b[j] : 1) (c NULL), or sum_j (a[j] - *c)^2 (b NULL). */
static double row_sum(size_t n, const float *a, const float *b, const double *c)
{
    double acc[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            double v = c ? a[j + l] - *c : a[j + l];
            acc[l] += c ? v * v : b ? v * b[j + l] : v;
        }
    for (int l = 0; j < n; j++, l++) {
        double v = c ? a[j] - *c : a[j];
        acc[l] += c ? v * v : b ? v * b[j] : v;
    }
    return lanes_total(acc);
}

/* One row: mean, rstd (into *mean, *rstd), xhat (NULL: not kept), y. */
static void ln_row(const de_norm_t *nm, size_t n, const float *x, float *xhat,
                   float *y, float *mean, float *rstd)
{
    double s = row_sum(n, x, NULL, NULL) / (double)n;
    double q = row_sum(n, x, NULL, &s);
    float mu = (float)s, r = (float)(1.0 / sqrt(q / (double)n + (double)nm->epsilon));
    *mean = mu;
    *rstd = r;
    for (size_t j = 0; j < n; j++) {
        float h = (x[j] - mu) * r;
        if (xhat) xhat[j] = h;
        y[j] = h * (nm->gamma ? nm->gamma[j] : 1.f) + (nm->beta ? nm->beta[j] : 0.f);
    }
}

static void ln_rows(const de_norm_t *nm, size_t m, size_t n, const float *x,
                    float *xhat, float *stat, float *y)
{
    int nt = team(m, m * n);
    DE_PARALLEL({
        size_t r0, r1;
        float mean, rstd;
        share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        for (size_t i = r0; i < r1; i++) {
            ln_row(nm, n, x + i * n, xhat ? xhat + i * n : NULL, y + i * n,
                   &mean, &rstd);
            if (stat) {
                stat[i] = mean;
                stat[m + i] = rstd;
            }
        }
    });
}

/* Column sums of dy * xhat (dgamma) and dy (dbeta), rows in order. */
static void column_grads(size_t m, size_t n, const float *xhat,
                         const float *dy, float *dgamma, float *dbeta)
{
    COLUMN_BLOCKS(m, n, {
        double sd[NB], sx[NB];
        grad_sums(m, n, j0, w, xhat, dy, sd, sx, dgamma, dbeta);
    });
}

/* Rows: with g = dy * gamma, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
static void ln_backward_rows(const de_norm_t *nm, size_t m, size_t n,
                             const float *xhat, const float *stat,
                             const float *dy, float *dx)
{
    int nt = team(m, m * n);
    DE_PARALLEL({
        size_t r0, r1;
        share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &r0, &r1);
        for (size_t i = r0; i < r1; i++) {
            const float *h = xhat + i * n, *d = dy + i * n;
            float *o = dx + i * n;
            double r = stat[m + i];
            double a = row_sum(n, d, nm->gamma, NULL) / (double)n;
            double b;
            if (nm->gamma) {      /* sum g * xhat, g = dy * gamma */
                double acc[LANES] = {0};
                for (size_t j = 0; j < n; j++)
                    acc[j % LANES] += (double)d[j] * nm->gamma[j] * h[j];
                b = lanes_total(acc);
            } else {
                b = row_sum(n, d, h, NULL);
            }
            b /= (double)n;
            for (size_t j = 0; j < n; j++) {
                double g = (double)d[j] * (nm->gamma ? nm->gamma[j] : 1.f);
                o[j] = (float)(r * (g - a - h[j] * b));
            }
        }
    });
}

/* ----------------------------------------------------------- the API */

void de_norm_forward_train(const de_norm_t *nm, size_t m, size_t n,
                           const float *x, float *xhat, float *stat, float *y)
{
    if (nm->kind == DE_NORM_LAYER) {
        ln_rows(nm, m, n, x, xhat, stat, y);
        return;
    }
    COLUMN_BLOCKS(m, n, bn_block(nm, m, n, j0, w, x, xhat, stat, y));
}

void de_norm_forward_infer(const de_norm_t *nm, size_t m, size_t n,
                           const float *x, float *y)
{
    if (nm->kind == DE_NORM_LAYER)
        ln_rows(nm, m, n, x, NULL, NULL, y);
    else
        bn_infer(nm, m, n, x, y);
}

void de_norm_backward(const de_norm_t *nm, size_t m, size_t n,
                      const float *xhat, const float *stat, const float *dy,
                      float *dx, float *dgamma, float *dbeta)
{
    if (nm->kind == DE_NORM_LAYER) {
        if (dgamma || dbeta)      /* before dx may overwrite dy */
            column_grads(m, n, xhat, dy, dgamma, dbeta);
        ln_backward_rows(nm, m, n, xhat, stat, dy, dx);
        return;
    }
    COLUMN_BLOCKS(m, n, bn_backward_block(nm, m, n, j0, w, xhat, stat, dy, dx,
                                          dgamma, dbeta));
}

void de_norm_update_moving(const de_norm_t *nm, size_t n, const float *stat)
{
    if (nm->kind != DE_NORM_BATCH)
        return;
    /* Keras: moving * momentum + batch * (1.0 - momentum), float32 tensors
     * times Python floats (rounded to float32 by the backend). */
    const float mo = (float)nm->momentum, om = (float)(1.0 - nm->momentum);
    for (size_t j = 0; j < n; j++) {
        nm->moving_mean[j] = nm->moving_mean[j] * mo + stat[j] * om;
        nm->moving_var[j] = nm->moving_var[j] * mo + stat[n + j] * om;
    }
}

/* ------------------------------------------------------ the layer step */

int de_norm_layer_forward(size_t m, const de_layer_t *L, const float *x,
                          const de_dropout_t *drop, float *pre,
                          const de_norm_buf_t *nb, float *y, uint64_t *mask)
{
    const size_t n = L->n_out, k = L->n_in;
    const de_norm_t *nm = &L->norm;
    de_epilogue_t lin = {L->b, {DE_LINEAR, 0.f, 0.f, 0.f, NULL}, no_dropout, NULL};
    int rc;
    if (!nm->post) {
        /* z into xhat, normalised there in place; u = gamma xhat + beta,
         * the activation's input, into y (and pre when the backward needs
         * it), then the activation and the dropout in place. */
        rc = de_gemm_of(L->bf16)(0, 0, m, n, k, x, k, L->w, n, nb->xhat, n, 0,
                                 &lin);
        if (rc) return rc;
        de_norm_forward_train(nm, m, n, nb->xhat, nb->xhat, nb->stat, y);
        if (pre) memcpy(pre, y, m * n * sizeof *y);
        de_bias_act(m, n, NULL, &L->act, y);
    } else {
        /* The activation's output is kept whole (the dropout comes after
         * the normalisation), so its backward reads it, not y. */
        if (pre) {
            rc = de_gemm_of(L->bf16)(0, 0, m, n, k, x, k, L->w, n, pre, n, 0,
                                     &lin);
            memcpy(nb->act, pre, m * n * sizeof *pre);
            de_bias_act(m, n, NULL, &L->act, nb->act);
        } else {
            rc = de_layer_dense_forward(m, L, x, NULL, &L->act, &no_dropout,
                                        nb->act, NULL);
        }
        if (rc) return rc;
        de_norm_forward_train(nm, m, n, nb->act, nb->xhat, nb->stat, y);
    }
    if (drop->drop_below) de_dropout(m, n, y, y, mask, drop);
    return DE_OK;
}

int de_norm_layer_infer(size_t m, const de_layer_t *L, const float *x,
                        const de_dropout_t *drop, float *y, uint64_t *mask)
{
    const size_t n = L->n_out;
    de_act_t lin;
    de_act_init(&lin, DE_LINEAR);
    const de_act_t *first = L->norm.post ? &L->act : &lin;
    int rc = de_layer_dense_forward(m, L, x, NULL, first, &no_dropout, y, NULL);
    if (rc) return rc;
    de_norm_forward_infer(&L->norm, m, n, y, y);
    if (!L->norm.post) de_bias_act(m, n, NULL, &L->act, y);
    if (drop->drop_below) de_dropout(m, n, y, y, mask, drop);
    return DE_OK;
}

void de_norm_layer_backward(size_t m, const de_layer_t *L,
                            const de_dropout_t *drop, const uint64_t *mask,
                            const float *y, const float *pre,
                            const de_norm_buf_t *nb, int fused, float *dz,
                            float *dgamma, float *dbeta, float *dslopes)
{
    const size_t n = L->n_out;
    const de_norm_t *nm = &L->norm;
    if (!nm->post) {
        /* dropout and activation as a plain layer's (pre holds u), then
         * the normalisation. */
        if (dslopes) de_prelu_slope_grad(m, n, drop, mask, pre, dz, dslopes);
        if (!fused) de_backward_act(m, n, &L->act, drop, mask, y, pre, dz, dz);
        de_norm_backward(nm, m, n, nb->xhat, nb->stat, dz, dz, dgamma, dbeta);
        return;
    }
    if (drop->drop_below) {
        de_act_t lin;
        de_act_init(&lin, DE_LINEAR);
        de_backward_act(m, n, &lin, drop, mask, y, NULL, dz, dz);
    }
    de_norm_backward(nm, m, n, nb->xhat, nb->stat, dz, dz, dgamma, dbeta);
    if (dslopes) de_prelu_slope_grad(m, n, &no_dropout, NULL, pre, dz, dslopes);
    de_backward_act(m, n, &L->act, &no_dropout, NULL, nb->act, pre, dz, dz);
}
