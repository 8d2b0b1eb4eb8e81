/*
 * graph.c -- the inputs of a net's layers when the net is a DAG (the
 * functional API's Model(inputs, outputs) over merged branches).
 *
 * A layer of a chain reads the previous layer's output.  A layer of a DAG
 * names its sources (engine.h, de_layer_t.src: -1 is the net's input after
 * its dropout, i >= 0 the output of an earlier layer i) and how they merge
 * (de_layer_t.combine) into its n_in input columns.  A layer with one
 * source read as is (DE_COMBINE_NONE) reads that buffer in place; any
 * other merge is written into a buffer of the caller's (m x n_in, row
 * stride n_in), which the backward pass reads again (dW = x^T dz).  Every
 * layer of a DAG has one row per sample (steps live in chains only); a
 * merge, or an activation or dropout of its own, is an IDENTITY op; an
 * embedding (with its fused mean) reads the net's input.
 *
 * Forward arithmetic is Keras's, in its order: Add and Average sum the
 * sources left to right (Average then divides by their count), Multiply
 * multiplies left to right, Subtract is src0 - src1, Maximum/Minimum fold
 * left to right and propagate NaN (as jnp.maximum does), Concatenate lays
 * the sources' columns side by side.  Backward adds each source's share of
 * the gradient dx of the merged input into that source's gradient buffer
 * (the caller zeroes them once per step, so a tensor read by several layers
 * gets the sum): Add dx, Subtract +dx / -dx, Average dx / n, Multiply dx
 * times the product of the other sources, Maximum/Minimum dx to the source
 * the fold picked (the first of equal values), Concatenate its columns.
 * Everything here is element-wise over rows in a fixed order: the results
 * do not depend on the thread count.
 */
#include <math.h>
#include <string.h>
#include "frame/dispatch.h"

int64_t de_graph_source(const de_layer_t *L, size_t l, size_t i)
{
    return L->n_src ? L->src[i] : (int64_t)l - 1;
}
#define source de_graph_source

static size_t n_sources(const de_layer_t *L)
{
    return L->n_src ? L->n_src : 1;
}

int de_graph_needs_dx(const de_layer_t *L, size_t l)
{
    for (size_t i = 0; i < n_sources(L); i++)
        if (source(L, l, i) >= 0) return 1;
    return 0;
}

static size_t width(const de_layer_t *layers, size_t n_in, int64_t s)
{
    return s < 0 ? n_in : layers[s].n_out;
}

static const float *values(const float *x, float *const *outs, int64_t s)
{
    return s < 0 ? x : outs[s];
}

int de_graph_merges(const de_layer_t *L)
{
    return L->n_src > 1 || L->combine != DE_COMBINE_NONE;
}

int de_graph_is_dag(size_t n_layers, const de_layer_t *layers)
{
    for (size_t l = 0; l < n_layers; l++)
        if (layers[l].n_src) return 1;
    return 0;
}

int de_graph_check(size_t n_in, size_t n_layers, const de_layer_t *layers)
{
    for (size_t l = 0; l < n_layers; l++) {
        const de_layer_t *L = &layers[l];
        size_t ns = n_sources(L), total = 0;
        if (L->n_src && !L->src) return DE_EINVAL;
        if (L->combine < 0 || L->combine >= DE_N_COMBINE) return DE_EINVAL;
        if (L->combine == DE_COMBINE_NONE && ns != 1) return DE_EINVAL;
        if (L->combine == DE_COMBINE_SUBTRACT && ns != 2) return DE_EINVAL;
        for (size_t i = 0; i < ns; i++) {
            int64_t s = source(L, l, i);
            if (s < -1 || s >= (int64_t)l) return DE_EINVAL;
            size_t w = width(layers, n_in, s);
            if (L->combine != DE_COMBINE_CONCAT && w != L->n_in) return DE_EINVAL;
            total += w;
        }
        if (L->combine == DE_COMBINE_CONCAT && total != L->n_in) return DE_EINVAL;
        if (!L->n_in || !L->n_out || de_layer_rows(L) != 1) return DE_EINVAL;
        switch (L->op) {
        case DE_OP_DENSE:
            if (!L->w && !L->qw) return DE_EINVAL;
            break;
        case DE_OP_IDENTITY:
            if (L->n_out != L->n_in) return DE_EINVAL;
            break;
        case DE_OP_EMBED:    /* the token ids themselves, averaged */
            if (!L->pool || ns != 1 || source(L, l, 0) != -1 || !L->w || !L->vocab
                || L->vocab > (1u << 24))
                return DE_EINVAL;
            break;
        default:             /* POOL reads steps: not in a DAG */
            return DE_EINVAL;
        }
    }
    return DE_OK;
}

/* One step of Maximum/Minimum's fold: 1 if it takes b over a.  A NaN is
 * taken and then kept (NaN propagates); ties keep a. */
static int takes(int max, float a, float b)
{
    if (a != a) return 0;
    if (b != b) return 1;
    return max ? b > a : b < a;
}

const float *de_graph_input(const de_layer_t *layers, size_t l, size_t m,
                            size_t n_in, const float *x, float *const *outs,
                            float *buf)
{
    const de_layer_t *L = &layers[l];
    size_t n = L->n_in, ns = n_sources(L);
    if (!de_graph_merges(L)) return values(x, outs, source(L, l, 0));
    if (L->combine == DE_COMBINE_CONCAT) {
        size_t off = 0;
        for (size_t i = 0; i < ns; i++) {
            int64_t s = source(L, l, i);
            size_t w = width(layers, n_in, s);
            const float *v = values(x, outs, s);
            for (size_t r = 0; r < m; r++)
                memcpy(buf + r * n + off, v + r * w, w * sizeof *buf);
            off += w;
        }
        return buf;
    }
    size_t len = m * n;
    memcpy(buf, values(x, outs, source(L, l, 0)), len * sizeof *buf);
    for (size_t i = 1; i < ns; i++) {
        const float *v = values(x, outs, source(L, l, i));
        switch (L->combine) {
        case DE_COMBINE_ADD: case DE_COMBINE_AVERAGE:
            for (size_t e = 0; e < len; e++) buf[e] += v[e];
            break;
        case DE_COMBINE_SUBTRACT:
            for (size_t e = 0; e < len; e++) buf[e] -= v[e];
            break;
        case DE_COMBINE_MULTIPLY:
            for (size_t e = 0; e < len; e++) buf[e] *= v[e];
            break;
        case DE_COMBINE_MAXIMUM: case DE_COMBINE_MINIMUM: {
            int max = L->combine == DE_COMBINE_MAXIMUM;
            for (size_t e = 0; e < len; e++)
                if (takes(max, buf[e], v[e])) buf[e] = v[e];
            break;
        }
        default:
            break;
        }
    }
    if (L->combine == DE_COMBINE_AVERAGE)
        for (size_t e = 0; e < len; e++) buf[e] /= (float)ns;
    return buf;
}

/* Multiply: dys[s] += dx * (the product of the other sources), the product
 * formed left to right as the forward pass forms it. */
static void multiply_backward(const de_layer_t *layers, size_t l, size_t m,
                              const float *x, float *const *outs,
                              const float *dx, float *const *dys)
{
    const de_layer_t *L = &layers[l];
    size_t ns = n_sources(L), len = m * L->n_in;
    for (size_t i = 0; i < ns; i++) {
        int64_t s = source(L, l, i);
        if (s < 0) continue;
        float *g = dys[s];
        for (size_t e = 0; e < len; e++) {
            float p = 1.f;
            int first = 1;
            for (size_t j = 0; j < ns; j++) {
                if (j == i) continue;
                float v = values(x, outs, source(L, l, j))[e];
                p = first ? v : p * v;
                first = 0;
            }
            g[e] += dx[e] * p;
        }
    }
}

/* Maximum/Minimum: the gradient goes to the source the forward fold kept. */
static void pick_backward(const de_layer_t *layers, size_t l, size_t m,
                          const float *x, float *const *outs, const float *dx,
                          float *const *dys)
{
    const de_layer_t *L = &layers[l];
    size_t ns = n_sources(L), len = m * L->n_in;
    int max = L->combine == DE_COMBINE_MAXIMUM;
    for (size_t e = 0; e < len; e++) {
        size_t best = 0;
        float v = values(x, outs, source(L, l, 0))[e];
        for (size_t i = 1; i < ns; i++) {
            float w = values(x, outs, source(L, l, i))[e];
            if (takes(max, v, w)) {
                best = i;
                v = w;
            }
        }
        int64_t s = source(L, l, best);
        if (s >= 0) dys[s][e] += dx[e];
    }
}

void de_graph_input_backward(const de_layer_t *layers, size_t l, size_t m,
                             size_t n_in, const float *x, float *const *outs,
                             const float *dx, float *const *dys)
{
    const de_layer_t *L = &layers[l];
    size_t n = L->n_in, ns = n_sources(L), len = m * n;
    if (L->combine == DE_COMBINE_MULTIPLY) {
        multiply_backward(layers, l, m, x, outs, dx, dys);
        return;
    }
    if (L->combine == DE_COMBINE_MAXIMUM || L->combine == DE_COMBINE_MINIMUM) {
        pick_backward(layers, l, m, x, outs, dx, dys);
        return;
    }
    size_t off = 0;
    for (size_t i = 0; i < ns; i++) {
        int64_t s = source(L, l, i);
        size_t w = width(layers, n_in, s);
        if (s >= 0) {
            float *g = dys[s];
            if (L->combine == DE_COMBINE_CONCAT) {
                for (size_t r = 0; r < m; r++)
                    for (size_t j = 0; j < w; j++)
                        g[r * w + j] += dx[r * n + off + j];
            } else if (L->combine == DE_COMBINE_AVERAGE) {
                for (size_t e = 0; e < len; e++) g[e] += dx[e] / (float)ns;
            } else if (L->combine == DE_COMBINE_SUBTRACT && i == 1) {
                for (size_t e = 0; e < len; e++) g[e] -= dx[e];
            } else {
                for (size_t e = 0; e < len; e++) g[e] += dx[e];
            }
        }
        off += w;
    }
}
