/*
 * optim.c -- optimizer updates, regularizers and constraints, Keras 3 rules.
 *
 * Per array: grad += l1 sign(w) + 2 l2 w (the gradient of the penalty Keras
 * adds to the loss); w -= lr * weight_decay * w when decoupled decay is on
 * (Keras's base-optimizer rule, AdamW's default); the update:
 *   SGD      m = momentum m - lr g;  w += m  (nesterov: w += momentum m - lr g)
 *            (momentum 0: w -= lr g)
 *   Adam     m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);
 *            w -= lr sqrt(1 - b2^t)/(1 - b1^t) m / (sqrt(v) + eps), t = step+1
 *   RMSprop  v = rho v + (1 - rho) g^2;  (centered: a = rho a + (1 - rho) g,
 *            den = v - a^2 + eps, else den = v + eps);  inc = lr g / sqrt(den);
 *            momentum: mo = momentum mo + inc, w -= mo;  else w -= inc
 * then the constraint (MaxNorm: w *= clip(norm, 0, max) / (1e-7 + norm);
 * NonNeg: w *= (w >= 0)).  Elements are split over threads, but each
 * element's arithmetic is the same whatever the split, so results do not
 * depend on the thread count; norms are summed in a fixed order.
 *
 * Two ways to run it, one arithmetic: de_param_update makes a pass over the
 * whole array; de_param_update_gemm computes a kernel's gradient with the
 * GEMM and updates each finished block of it while it is still in cache
 * (the frame calls back per block, gemm.c).  Both call step_range on the
 * same elements, compiled here with the base flags (no FMA contraction,
 * whatever the GEMM's ISA), so the two give the same bits.  MaxNorm needs
 * whole columns or rows: it stays a pass after either.
 */
#include <math.h>
#include <string.h>
#include "frame/dispatch.h"

/* Below this many elements a second thread costs more than it saves. */
#define PAR_MIN 32768

double de_optim_lr(const de_optim_t *o, int64_t step)
{
    return de_schedule_lr(&o->schedule, step);
}

double de_param_penalty(const de_param_t *p)
{
    if (p->l1 == 0.f && p->l2 == 0.f) return 0.0;
    size_t n = p->rows * p->cols;
    double a = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        a += fabs((double)p->w[i]);
        s += (double)p->w[i] * p->w[i];
    }
    return (double)p->l1 * a + (double)p->l2 * s;
}

/* MaxNorm (the element-wise constraint, NonNeg, is step_range's). */
static void constrain(const de_param_t *p)
{
    float *w = p->w;
    size_t r = p->rows, c = p->cols;
    if (p->constraint != DE_CONSTRAINT_MAXNORM) return;
    if (p->axis == 0) {
        /* Norms of columns, 256 columns at a time on the stack:
         * accumulated row by row (cache-friendly, fixed order). */
        for (size_t j0 = 0; j0 < c; j0 += 256) {
            size_t nc = c - j0 < 256 ? c - j0 : 256;
            float f[256];
            double s[256] = {0};
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < nc; j++) {
                    double v = w[i * c + j0 + j];
                    s[j] += v * v;
                }
            for (size_t j = 0; j < nc; j++) {
                float norm = (float)sqrt(s[j]);
                float want = norm > p->max_value ? p->max_value : norm;
                f[j] = want / (1e-7f + norm);
            }
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < nc; j++) w[i * c + j0 + j] *= f[j];
        }
    } else {
        for (size_t i = 0; i < r; i++) {
            double s = 0.0;
            for (size_t j = 0; j < c; j++) s += (double)w[i * c + j] * w[i * c + j];
            float norm = (float)sqrt(s);
            float want = norm > p->max_value ? p->max_value : norm;
            float f = want / (1e-7f + norm);
            for (size_t j = 0; j < c; j++) w[i * c + j] *= f;
        }
    }
}

/* One param's update at one step: what every range of it reads. */
typedef struct {
    const de_optim_t *o;
    const de_param_t *p;
    float lr, alpha;       /* alpha: Adam's bias-corrected rate */
} step_t;

static step_t step_of(const de_optim_t *o, double lr, int64_t step,
                      const de_param_t *p)
{
    step_t s = {o, p, (float)lr, 0.f};
    if (o->kind == DE_OPT_ADAM) {
        double t = (double)step + 1.0;
        s.alpha = (float)(lr * sqrt(1.0 - pow(o->beta_2, t))
                          / (1.0 - pow(o->beta_1, t)));
    }
    return s;
}

/* A slot's elements from `off` on (NULL where the optimizer has none). */
static float *at(float *slot, size_t off)
{
    return slot ? slot + off : NULL;
}

/* The update rules over the n elements from `off` on, whose gradient is
 * g[0..n) (read, and written by the regularizers); one loop per rule, free
 * of branches so that the compiler vectorises it. */
static void update_range(const step_t *st, size_t off, float *g, long n)
{
    const de_optim_t *o = st->o;
    const de_param_t *p = st->p;
    const float lr = st->lr, alpha = st->alpha;
    float *w = p->w + off, *s0 = at(p->slot[0], off);
    float *s1 = at(p->slot[1], off), *s2 = at(p->slot[2], off);
    const float l1 = p->l1, l2x2 = 2.f * p->l2, wd = o->weight_decay * lr;
    const float mom = o->momentum, b1 = o->beta_1, b2 = o->beta_2;
    const float eps = o->epsilon, rho = o->rho;
    if (l1 != 0.f || l2x2 != 0.f)
        for (long i = 0; i < n; i++)
            g[i] += l1 * (float)((w[i] > 0.f) - (w[i] < 0.f)) + l2x2 * w[i];
    if (wd != 0.f)
        for (long i = 0; i < n; i++) w[i] -= w[i] * wd;
    if (o->kind == DE_OPT_SGD && mom == 0.f) {
        for (long i = 0; i < n; i++) w[i] -= g[i] * lr;
    } else if (o->kind == DE_OPT_SGD && o->nesterov) {
        for (long i = 0; i < n; i++) {
            float m = s0[i] * mom - g[i] * lr;
            s0[i] = m;
            w[i] += m * mom - g[i] * lr;
        }
    } else if (o->kind == DE_OPT_SGD) {
        for (long i = 0; i < n; i++) {
            float m = s0[i] * mom - g[i] * lr;
            s0[i] = m;
            w[i] += m;
        }
    } else if (o->kind == DE_OPT_ADAM) {
        for (long i = 0; i < n; i++) {
            float m = s0[i] + (g[i] - s0[i]) * (1.f - b1);
            float v = s1[i] + (g[i] * g[i] - s1[i]) * (1.f - b2);
            s0[i] = m;
            s1[i] = v;
            w[i] -= (m * alpha) / (sqrtf(v) + eps);
        }
    } else {
        /* RMSprop: velocity in s0, momentum in s1, mean gradient in s2. */
        for (long i = 0; i < n; i++) {
            float v = rho * s0[i] + (1.f - rho) * g[i] * g[i];
            float a = o->centered ? rho * s2[i] + (1.f - rho) * g[i] : 0.f;
            s0[i] = v;
            if (o->centered) s2[i] = a;
            float inc = lr * g[i] / sqrtf(v - a * a + eps);
            if (mom > 0.f) {
                s1[i] = mom * s1[i] + inc;
                inc = s1[i];
            }
            w[i] -= inc;
        }
    }
}

/* The n elements from `off` on (gradient g[0..n)): the regularizers, the
 * update, then NonNeg (MaxNorm is constrain's, after the whole array). */
static void step_range(const step_t *st, size_t off, float *g, long n)
{
    update_range(st, off, g, n);
    if (st->p->constraint == DE_CONSTRAINT_NONNEG) {
        float *w = st->p->w + off;
        for (long i = 0; i < n; i++) w[i] = w[i] >= 0.f ? w[i] : 0.f;
    }
}

/* After the write: a packed copy made from the old values (its epoch read
 * before this) is now stale.  Every training step comes here. */
static void finish(const de_param_t *p)
{
    constrain(p);
    de_gemm_packs_stale();
}

#define SHARED_CHUNK 1024   /* floats of a shared gradient copied at once */

/* The update of every element, g written by the regularizers, or (shared)
 * read only: others read it too, so they add to copies of its chunks. */
static void update_all(const de_optim_t *o, double lr, int64_t step,
                       const de_param_t *p, float *g, const float *shared)
{
    const long n = (long)(p->rows * p->cols);
    const step_t st = step_of(o, lr, step, p);
    int nt = n >= PAR_MIN ? de_threads() : 1;
    /* Contiguous slices, 16-float aligned: the same per-element arithmetic
     * as one thread, so the result is the same. */
    DE_PARALLEL({
        long t = DE_TEAM_ID(), T = DE_TEAM_SIZE();
        long per = ((n + T - 1) / T + 15) / 16 * 16;
        long i0 = t * per, i1 = i0 + per < n ? i0 + per : n;
        if (!shared && i0 < i1) step_range(&st, (size_t)i0, g + i0, i1 - i0);
        float copy[SHARED_CHUNK];
        for (long i = i0; shared && i < i1; i += SHARED_CHUNK) {
            long len = i1 - i < SHARED_CHUNK ? i1 - i : SHARED_CHUNK;
            memcpy(copy, shared + i, (size_t)len * sizeof *copy);
            step_range(&st, (size_t)i, copy, len);
        }
    });
    finish(p);
}

void de_param_update(const de_optim_t *o, double lr, int64_t step,
                     const de_param_t *p, float *g)
{
    update_all(o, lr, step, p, g, NULL);
}

void de_param_update_shared(const de_optim_t *o, double lr, int64_t step,
                            const de_param_t *p, const float *g)
{
    update_all(o, lr, step, p, NULL, g);
}

/* The GEMM's callback: v (row stride ldv) holds the final gradient of
 * rows [i0, i1) x columns [j0, j1); update those elements, one row
 * segment at a time. */
static void step_block(const void *ctx, float *v, size_t ldv, size_t i0,
                       size_t i1, size_t j0, size_t j1)
{
    const step_t *st = ctx;
    const size_t cols = st->p->cols;
    for (size_t i = i0; i < i1; i++)
        step_range(st, i * cols + j0, v + (i - i0) * ldv, (long)(j1 - j0));
}

int de_param_update_gemm(const de_optim_t *o, double lr, int64_t step,
                         const de_param_t *p, size_t m, const float *x,
                         const float *dz, float *g)
{
    const step_t st = step_of(o, lr, step, p);
    const de_gemm_hook_t hook = {step_block, &st};
    size_t k = p->rows, n = p->cols;
    int rc = de_gemm_hooked(1, 0, k, n, m, x, k, dz, n, g, n, &hook);
    if (rc == DE_OK) finish(p);
    return rc;
}
