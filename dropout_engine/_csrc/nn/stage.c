/*
 * stage.c -- the layers of a net that are not a Dense: the embedding gather
 * (with its fused mean, Keras's Embedding + GlobalAveragePooling1D), the
 * mean over steps (GlobalAveragePooling1D) and the identity that carries a
 * noise site of its own.  train.c calls these where a layer's op is not
 * DE_OP_DENSE; the activation and the dropout site around them are the
 * same code a Dense uses.
 *
 * Layout: a layer's output is m samples of de_layer_rows(L) rows of n_out
 * floats, row-major, so [batch, steps, features] is [batch * steps,
 * features] and a Flatten costs nothing.  Token ids arrive as floats (the
 * net's input is float32; Python converts integer ids once, exactly, as
 * vocab <= 2^24) and are checked here before anything is written: a bad id
 * is an error, never a read outside the table.
 *
 * Determinism: forward passes split samples (each output row is one
 * thread's, its sum over steps in order t = 0..T-1); the table gradient
 * splits columns, each element summed over (sample, step) in order, so no
 * result depends on the thread count.  Means divide the sum by the count,
 * as Keras's mean and masked mean do.
 */
#include <string.h>
#include "frame/dispatch.h"

#define MIN_PER_THREAD (1u << 14)   /* floats of work before a thread helps */

size_t de_layer_rows(const de_layer_t *L)
{
    return L->steps ? L->steps : 1;
}

size_t de_layer_in_rows(const de_layer_t *L)
{
    switch (L->op) {
    case DE_OP_EMBED: return 1;              /* n_in ids in one row */
    case DE_OP_POOL: return L->pool_steps;
    default: return de_layer_rows(L);
    }
}

int de_layers_check(size_t n_in, size_t n_layers, const de_layer_t *layers)
{
    size_t prev = n_in;   /* floats per sample reaching the layer */
    if (!n_layers) return DE_EINVAL;
    for (size_t l = 0; l < n_layers; l++) {
        const de_layer_t *L = &layers[l];
        size_t rows = de_layer_rows(L);
        if (L->op < 0 || L->op >= DE_N_OP || !L->n_in || !L->n_out
            || de_layer_in_rows(L) * L->n_in != prev)
            return DE_EINVAL;
        switch (L->op) {
        case DE_OP_DENSE:
            if (!L->w && !L->qw && !L->bw) return DE_EINVAL;
            break;
        case DE_OP_EMBED:
            if (l || !L->w || !L->vocab || L->vocab > (1u << 24)
                || rows != (L->pool ? 1 : L->n_in) || (L->mask_zero && !L->pool))
                return DE_EINVAL;
            break;
        case DE_OP_POOL:
            if (!L->pool_steps || rows != 1 || L->n_in != L->n_out
                || (L->mask_zero && L->pool_steps != n_in))
                return DE_EINVAL;
            break;
        default:   /* IDENTITY */
            if (L->n_in != L->n_out) return DE_EINVAL;
        }
        prev = rows * L->n_out;
    }
    return de_layer_rows(&layers[n_layers - 1]) == 1 ? DE_OK : DE_EINVAL;
}

/* Member t of a team of nt's share [lo, hi) of count items. */
static void share(size_t count, int t, int nt, size_t *lo, size_t *hi)
{
    *lo = count * (size_t)t / (size_t)nt;
    *hi = count * ((size_t)t + 1) / (size_t)nt;
}

static int team_for(size_t items, size_t work)
{
    size_t t = work / MIN_PER_THREAD;
    size_t max = (size_t)de_threads();
    if (t > max) t = max;
    if (t > items) t = items;
    return t < 1 ? 1 : (int)t;
}

/* 1 if every id is an integer in [0, vocab). */
static int ids_valid(size_t count, const float *ids, size_t vocab)
{
    const float hi = (float)vocab;   /* exact: vocab <= 2^24 */
    for (size_t i = 0; i < count; i++) {
        float v = ids[i];
        if (!(v >= 0.f && v < hi) || v != (float)(size_t)v) return 0;
    }
    return 1;
}

/* Steps of sample b that count in its mean: all T, or those whose id is
 * not 0 (ids_b: its T ids, read only when mask_zero). */
static float count_of(const float *ids_b, size_t T, int mask_zero)
{
    if (!mask_zero) return (float)T;
    size_t c = 0;
    for (size_t t = 0; t < T; t++) c += ids_b[t] != 0.f;
    return (float)c;
}

/* y[b] = the table rows of sample b's ids (pool: their mean). */
static void embed_forward(const de_layer_t *L, size_t m, const float *x, float *y)
{
    size_t T = L->n_in, D = L->n_out;
    const float *w = L->w;
    int nt = team_for(m, m * T * D);
    DE_PARALLEL({
        size_t b0, b1;
        share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &b0, &b1);
        for (size_t b = b0; b < b1; b++) {
            const float *ids = x + b * T;
            if (!L->pool) {
                for (size_t t = 0; t < T; t++)
                    memcpy(y + (b * T + t) * D, w + (size_t)ids[t] * D,
                           D * sizeof *y);
                continue;
            }
            float *yb = y + b * D, cnt = count_of(ids, T, L->mask_zero);
            memset(yb, 0, D * sizeof *yb);
            for (size_t t = 0; t < T; t++) {
                if (L->mask_zero && ids[t] == 0.f) continue;
                const float *row = w + (size_t)ids[t] * D;
                for (size_t j = 0; j < D; j++) yb[j] += row[j];
            }
            for (size_t j = 0; j < D; j++) yb[j] /= cnt;   /* 0/0: NaN, as Keras */
        }
    });
}

/* y[b] = the mean of sample b's T rows of x (ids: the net's input, for the
 * mask). */
static void pool_forward(const de_layer_t *L, size_t m, const float *x,
                         const float *ids, float *y)
{
    size_t T = L->pool_steps, F = L->n_out;
    int nt = team_for(m, m * T * F);
    DE_PARALLEL({
        size_t b0, b1;
        share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &b0, &b1);
        for (size_t b = b0; b < b1; b++) {
            const float *ib = L->mask_zero ? ids + b * T : NULL;
            float *yb = y + b * F, cnt = count_of(ib, T, L->mask_zero);
            memset(yb, 0, F * sizeof *yb);
            for (size_t t = 0; t < T; t++) {
                if (ib && ib[t] == 0.f) continue;
                const float *row = x + (b * T + t) * F;
                for (size_t j = 0; j < F; j++) yb[j] += row[j];
            }
            for (size_t j = 0; j < F; j++) yb[j] /= cnt;
        }
    });
}

int de_stage_forward(const de_layer_t *L, size_t m, const float *x,
                     const float *ids, const de_dropout_t *drop, float *y,
                     float *z, uint64_t *mask)
{
    size_t n = L->n_out, M = m * de_layer_rows(L);
    int plain = L->act.kind == DE_LINEAR && !z;
    float *o = z ? z : y;     /* where op(x) goes */
    switch (L->op) {
    case DE_OP_EMBED:
        if (!ids_valid(m * L->n_in, x, L->vocab)) return DE_EINVAL;
        embed_forward(L, m, x, o);
        break;
    case DE_OP_POOL:
        pool_forward(L, m, x, ids, o);
        break;
    case DE_OP_IDENTITY:
        if (plain && drop->drop_below) {   /* one pass: y = dropout(x) */
            de_dropout(M, n, x, y, mask, drop);
            return DE_OK;
        }
        if (o != x) memcpy(o, x, M * n * sizeof *o);
        break;
    default:
        return DE_EINVAL;
    }
    if (z) memcpy(y, z, M * n * sizeof *y);
    if (L->act.kind != DE_LINEAR) de_bias_act(M, n, NULL, &L->act, y);
    if (drop->drop_below) de_dropout(M, n, y, y, mask, drop);
    return DE_OK;
}

/* grad[id] += dz of each (sample, step) holding id (pool: dz[b] / count),
 * columns split over threads. */
static void embed_backward(const de_layer_t *L, size_t m, const float *x,
                           const float *dz, float *grad)
{
    size_t T = L->n_in, D = L->n_out, V = L->vocab;
    int nt = team_for(D, m * T * D);
    memset(grad, 0, V * D * sizeof *grad);
    DE_PARALLEL({
        size_t j0, j1;
        share(D, DE_TEAM_ID(), DE_TEAM_SIZE(), &j0, &j1);
        for (size_t b = 0; b < m; b++) {
            const float *ids = x + b * T;
            float cnt = L->pool ? count_of(ids, T, L->mask_zero) : 1.f;
            for (size_t t = 0; t < T; t++) {
                if (L->mask_zero && ids[t] == 0.f) continue;
                const float *g = L->pool ? dz + b * D : dz + (b * T + t) * D;
                float *row = grad + (size_t)ids[t] * D;
                if (L->pool)
                    for (size_t j = j0; j < j1; j++) row[j] += g[j] / cnt;
                else
                    for (size_t j = j0; j < j1; j++) row[j] += g[j];
            }
        }
    });
}

/* dx[b, t] = dz[b] / count (0 for a masked step). */
static void pool_backward(const de_layer_t *L, size_t m, const float *ids,
                          const float *dz, float *dx)
{
    size_t T = L->pool_steps, F = L->n_out;
    int nt = team_for(m, m * T * F);
    DE_PARALLEL({
        size_t b0, b1;
        share(m, DE_TEAM_ID(), DE_TEAM_SIZE(), &b0, &b1);
        for (size_t b = b0; b < b1; b++) {
            const float *ib = L->mask_zero ? ids + b * T : NULL;
            float cnt = count_of(ib, T, L->mask_zero);
            for (size_t t = 0; t < T; t++) {
                float *row = dx + (b * T + t) * F;
                if (ib && ib[t] == 0.f)
                    memset(row, 0, F * sizeof *row);
                else
                    for (size_t j = 0; j < F; j++) row[j] = dz[b * F + j] / cnt;
            }
        }
    });
}

void de_stage_backward(const de_layer_t *L, size_t m, const float *ids,
                       const float *dz, float *dx, float *grad)
{
    switch (L->op) {
    case DE_OP_EMBED:
        embed_backward(L, m, ids, dz, grad);
        break;
    case DE_OP_POOL:
        if (dx) pool_backward(L, m, ids, dz, dx);
        break;
    case DE_OP_IDENTITY:
        if (dx && dx != dz)
            memcpy(dx, dz, m * de_layer_rows(L) * L->n_out * sizeof *dx);
        break;
    default:
        break;
    }
}
