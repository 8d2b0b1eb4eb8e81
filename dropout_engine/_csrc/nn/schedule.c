/*
 * schedule.c -- Keras 3's learning-rate schedules, evaluated per step
 * inside the training loop, so that a schedule costs fit no Python per
 * batch.
 *
 * The formulas (engine.h) are Keras's, in float64, and
 * dropout_engine/schedules.py evaluates the same ones operation for
 * operation with Python floats and the math module, which call the same
 * libm (pow, cos, log) as this file: Python's schedule(step) is bit for bit
 * the rate this loop applies.  That holds only if every operation is
 * rounded on its own, as Python's are: no fused multiply-add here (FMA is
 * baseline on aarch64, and GCC contracts by default in GNU C mode).
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include "engine.h"

/* math.pi in Python: the double nearest pi. */
static const double PI = 3.141592653589793;

static double min2(double a, double b) { return b < a ? b : a; }

/* The number of bounds[0..n) below s (bounds ascending): the index of the
 * piece that holds s, Keras's (b[i-1] < s <= b[i]) -> values[i]. */
static size_t piece(const double *bounds, size_t n, double s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < s) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* from_lr * ((1 - alpha) * c + alpha), c = (1 + cos(pi s / d)) / 2. */
static double cosine(double s, double d, double from_lr, double alpha)
{
    double c = 0.5 * (1.0 + cos(PI * (s / d)));
    return from_lr * ((1.0 - alpha) * c + alpha);
}

static double cosine_warmup(const de_schedule_t *k, double s)
{
    if (!k->warmup) return cosine(min2(s, k->steps), k->steps, k->lr, k->alpha);
    s = min2(s, k->steps + k->warmup_steps);
    if (s < k->warmup_steps)
        return (k->target - k->lr) * (s / k->warmup_steps) + k->lr;
    return cosine(s - k->warmup_steps, k->steps, k->target, k->alpha);
}

/* SGDR: period i lasts steps * t_mul^i; its peak is lr * m_mul^i. */
static double cosine_restarts(const de_schedule_t *k, double s)
{
    double f = s / k->steps, i;
    if (k->t_mul == 1.0) {
        i = floor(f);
        f = f - i;
    } else {
        i = floor(log(1.0 - f * (1.0 - k->t_mul)) / log(k->t_mul));
        double sum_r = (1.0 - pow(k->t_mul, i)) / (1.0 - k->t_mul);
        f = (f - sum_r) / pow(k->t_mul, i);
    }
    double c = 0.5 * pow(k->m_mul, i) * (1.0 + cos(PI * f));
    return k->lr * ((1.0 - k->alpha) * c + k->alpha);
}

static double polynomial(const de_schedule_t *k, double s)
{
    double d = k->steps;
    if (k->cycle) d = d * (s == 0.0 ? 1.0 : ceil(s / k->steps));
    else s = min2(s, d);
    double p = s / d;
    return (k->lr - k->end) * pow(1.0 - p, k->power) + k->end;
}

double de_schedule_lr(const de_schedule_t *k, int64_t step)
{
    double s = (double)step, p;
    switch (k->kind) {
    case DE_LR_EXPONENTIAL:
    case DE_LR_INVERSE_TIME:
        p = s / k->steps;
        if (k->staircase) p = floor(p);
        return k->kind == DE_LR_EXPONENTIAL ? k->lr * pow(k->rate, p)
                                            : k->lr / (1.0 + k->rate * p);
    case DE_LR_POLYNOMIAL:
        return polynomial(k, s);
    case DE_LR_PIECEWISE:
        return k->values[piece(k->bounds, k->n_bounds, s)];
    case DE_LR_COSINE:
        return cosine_warmup(k, s);
    case DE_LR_COSINE_RESTARTS:
        return cosine_restarts(k, s);
    default:
        return k->lr;
    }
}
