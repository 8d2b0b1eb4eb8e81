/*
 * loss.c -- Keras's five losses (from probabilities) and the metrics.
 *
 * Values follow Keras 3: predictions clipped to [EPS, 1 - EPS] with
 * EPS = 1e-7, BCE as -(t log(p + EPS) + (1 - t) log(1 - p + EPS)) averaged
 * over the last axis, CCE on p renormalised to sum 1.  Per-element work is
 * done in double so that a batch's sum does not depend on summation luck.
 *
 * Gradients: plain dloss/dp (zero where the clip is active, as the clip's
 * own derivative is) or, when the output layer is softmax (CCE, SCCE) or
 * sigmoid (BCE) and the caller asks for the fused form, dloss/dz = p - t
 * (divided by k for BCE): the gradient of the unclipped loss through the
 * activation, stable where p saturates.  Rows are independent; callers
 * pass gscale = 1/m for a batch mean.
 */
#include <math.h>
#include "engine.h"

#define EPS 1e-7

static double clip(double p)
{
    return p < EPS ? EPS : (p > 1.0 - EPS ? 1.0 - EPS : p);
}

/* Index of the first maximum of v[k] (np.argmax's rule). */
static size_t argmax(size_t k, const float *v)
{
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

static double bce_row(size_t k, const float *p, const float *t, float *g,
                      int fused, float gscale)
{
    double s = 0.0;
    for (size_t j = 0; j < k; j++) {
        double pc = clip(p[j]), tj = t[j];
        s -= tj * log(pc + EPS) + (1.0 - tj) * log(1.0 - pc + EPS);
        if (!g) continue;
        if (fused) {
            g[j] = (float)((p[j] - tj) * gscale / (double)k);
        } else {
            int inside = p[j] > EPS && p[j] < 1.0 - EPS;
            double d = -tj / (pc + EPS) + (1.0 - tj) / (1.0 - pc + EPS);
            g[j] = inside ? (float)(d * gscale / (double)k) : 0.f;
        }
    }
    return s / (double)k;
}

/* CCE on q = p / sum(p); sparse rows pass label >= 0 and t = NULL. */
static double cce_row(size_t k, const float *p, const float *t, long label,
                      float *g, int fused, float gscale)
{
    double sum = 0.0, loss = 0.0;
    for (size_t j = 0; j < k; j++) sum += p[j];
    for (size_t j = 0; j < k; j++) {
        double tj = t ? t[j] : (double)((long)j == label);
        if (tj != 0.0) loss -= tj * log(clip(p[j] / sum));
    }
    if (!g) return loss;
    if (fused) {
        for (size_t j = 0; j < k; j++) {
            double tj = t ? t[j] : (double)((long)j == label);
            g[j] = (float)((p[j] - tj) * gscale);
        }
        return loss;
    }
    /* dL/dp_j = (d_j - sum_i d_i q_i) / sum, d_i = dL/dq_i = -t_i / q_i
     * where the clip is inactive. */
    double dq = 0.0;
    for (size_t j = 0; j < k; j++) {
        double tj = t ? t[j] : (double)((long)j == label);
        double q = p[j] / sum;
        if (tj != 0.0 && q > EPS && q < 1.0 - EPS) dq += -tj;  /* d_j q_j */
    }
    for (size_t j = 0; j < k; j++) {
        double tj = t ? t[j] : (double)((long)j == label);
        double q = p[j] / sum;
        double d = (tj != 0.0 && q > EPS && q < 1.0 - EPS) ? -tj / q : 0.0;
        g[j] = (float)((d - dq) / sum * gscale);
    }
    return loss;
}

static double reg_row(int absolute, size_t k, const float *p, const float *t,
                      float *g, float gscale)
{
    double s = 0.0;
    for (size_t j = 0; j < k; j++) {
        double d = (double)p[j] - (double)t[j];
        s += absolute ? fabs(d) : d * d;
        if (g) {
            double gd = absolute ? (double)((d > 0) - (d < 0)) : 2.0 * d;
            g[j] = (float)(gd * gscale / (double)k);
        }
    }
    return s / (double)k;
}

double de_loss_rows(int loss, size_t m, size_t k, const float *p,
                    const float *t, const float *sw, float *g, int fused,
                    float gscale)
{
    double total = 0.0;
    size_t tk = loss == DE_LOSS_SCCE ? 1 : k;
    for (size_t i = 0; i < m; i++) {
        const float *pi = p + i * k, *ti = t + i * tk;
        float *gi = g ? g + i * k : NULL;
        /* A weight of 1 leaves gs == gscale exactly: unweighted results
         * are unchanged bit for bit. */
        float gs = sw ? gscale * sw[i] : gscale;
        double r;
        switch (loss) {
        case DE_LOSS_MSE: r = reg_row(0, k, pi, ti, gi, gs); break;
        case DE_LOSS_MAE: r = reg_row(1, k, pi, ti, gi, gs); break;
        case DE_LOSS_BCE: r = bce_row(k, pi, ti, gi, fused, gs); break;
        case DE_LOSS_CCE: r = cce_row(k, pi, ti, -1, gi, fused, gs); break;
        default: r = cce_row(k, pi, NULL, (long)ti[0], gi, fused, gs);
        }
        total += sw ? r * (double)sw[i] : r;
    }
    return total;
}

double de_metric_rows(int metric, size_t m, size_t k, const float *p,
                      const float *t, const float *sw)
{
    double total = 0.0;
    size_t tk = metric == DE_METRIC_SPARSE_CAT_ACC ? 1 : k;
    for (size_t i = 0; i < m; i++) {
        const float *pi = p + i * k, *ti = t + i * tk;
        double v;
        switch (metric) {
        case DE_METRIC_BINARY_ACC: {
            size_t hit = 0;
            for (size_t j = 0; j < k; j++)
                hit += (float)(pi[j] > 0.5f) == ti[j];
            v = (double)hit / (double)k;
            break;
        }
        case DE_METRIC_CAT_ACC: v = argmax(k, pi) == argmax(k, ti); break;
        case DE_METRIC_SPARSE_CAT_ACC: v = (float)argmax(k, pi) == ti[0]; break;
        case DE_METRIC_MSE: v = reg_row(0, k, pi, ti, NULL, 1.f); break;
        default: v = reg_row(1, k, pi, ti, NULL, 1.f);
        }
        total += sw ? v * (double)sw[i] : v;
    }
    return total;
}
