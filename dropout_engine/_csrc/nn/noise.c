/*
 * noise.c -- the training-time noise of GaussianDropout, AlphaDropout and
 * GaussianNoise (Keras's semantics), as a pass over a finished layer
 * output, and dropout with a broadcast mask (Keras's noise_shape,
 * SpatialDropout1D).
 *
 * The noise layers are written y <- y * mul + add element-wise, and mul is
 * kept for the backward pass (dy/dx = mul):
 *   Gaussian: mul ~ N(1, rate / (1 - rate)), add = 0;
 *   Alpha:    kept with probability 1 - rate; mul = a if kept else 0,
 *             add = b if kept else a * alpha' + b, where alpha' = -scale *
 *             alpha of SELU and a, b keep SELU's zero mean and unit variance;
 *   Additive: mul = 1, add ~ N(0, stddev^2) (GaussianNoise; `rate` holds
 *             the stddev).
 * The draws are one flat stream of de_random_bits for the step's key, so
 * they depend on (seed, site, step) only, never on threads.  Unlike Dropout
 * this pass is not fused into the GEMM epilogue: it needs the whole
 * [m x n] multiplier stored as floats anyway, and its cost (one RNG word
 * and a few flops per element) is small next to the GEMM.  At inference
 * every one of them is the identity.
 *
 * A broadcast mask is the mask of a smaller array (the noise_shape) read
 * at the broadcast index: each output row re-draws the words of its row of
 * the small mask with the generator of rng.h, exactly as de_dropout would
 * draw that small array, so a mask is a function of (key, index) alone
 * and rows can be split over threads freely.  Drawing a small row again
 * for each output row that shares it costs what a per-element mask costs,
 * and needs no scratch.
 */
#include <math.h>
#include <stdint.h>
#include "nn/rng.h"

#define MIN_PER_THREAD (1u << 15)   /* elements before a thread helps */

#define ALPHA_P (-1.7580993408473766)   /* -scale * alpha of SELU */

/* uint32 -> uniform in (0, 1]: never 0, so log() below is finite. */
static double unit(uint32_t u) { return ((double)u + 1.0) * (1.0 / 4294967296.0); }

/* out[i] = mean + sd * z_i, i < len, z_i standard normals by Box-Muller on
 * the key's flat stream (one pair of words gives two); out has len + 1
 * floats: the words are drawn into it first. */
static void normals(double mean, double sd, uint64_t key, size_t len, float *out)
{
    const double two_pi = 6.283185307179586;
    uint32_t *bits = (uint32_t *)out;   /* drawn in place, then converted */
    de_random_bits(key, bits, len + (len & 1));
    for (size_t i = 0; i < len; i += 2) {
        double r = sd * sqrt(-2.0 * log(unit(bits[i])));
        double t = two_pi * unit(bits[i + 1]);
        out[i] = (float)(mean + r * cos(t));
        if (i + 1 < len) out[i + 1] = (float)(mean + r * sin(t));
    }
}

void de_noise(int kind, double rate, uint64_t key, size_t len, float *y,
              float *mul)
{
    if (kind == DE_NOISE_GAUSSIAN) {
        normals(1.0, sqrt(rate / (1.0 - rate)), key, len, mul);
        for (size_t i = 0; i < len; i++) y[i] *= mul[i];
        return;
    }
    if (kind == DE_NOISE_ADDITIVE) {
        normals(0.0, rate, key, len, mul);
        for (size_t i = 0; i < len; i++) y[i] += mul[i];
        return;
    }
    uint32_t *bits = (uint32_t *)mul;
    double keep = 1.0 - rate;
    double a = 1.0 / sqrt(keep * (1.0 + rate * ALPHA_P * ALPHA_P));
    float fa = (float)a, fb = (float)(-a * ALPHA_P * rate);
    float fdrop = (float)(a * ALPHA_P) + fb;
    de_dropout_t d;
    de_dropout_params(rate, 0, key, &d);
    de_random_bits(key, bits, len);
    for (size_t i = 0; i < len; i++) {
        int kept = bits[i] >= d.drop_below;
        mul[i] = kept ? fa : 0.f;
        y[i] = kept ? fa * y[i] + fb : fdrop;
    }
}

void de_noise_backward(int kind, size_t len, const float *mul, float *dz)
{
    if (kind == DE_NOISE_ADDITIVE) return;    /* dy/dx = 1 */
    for (size_t i = 0; i < len; i++) dz[i] *= mul[i];
}

/* ------------------------------------------------------ broadcast masks */

/* Mask bits of one thread: kept elements are collected per 64-bit word and
 * OR-ed in atomically (two threads' rows may share a boundary word). */
typedef struct {
    uint64_t *mask;
    size_t word;
    uint64_t bits;
} bit_sink;

static void sink_flush(bit_sink *s)
{
    if (s->bits) __atomic_fetch_or(&s->mask[s->word], s->bits, __ATOMIC_RELAXED);
    s->bits = 0;
}

static void sink_put(bit_sink *s, size_t e)
{
    if (e >> 6 != s->word) {
        sink_flush(s);
        s->word = e >> 6;
    }
    s->bits |= (uint64_t)1 << (e & 63);
}

/* Output row r's row of the small mask. */
static size_t small_row(size_t r, size_t steps, int axes, size_t group)
{
    size_t b = r / steps, t = r % steps;
    size_t sb = axes & DE_AXIS_SAMPLE ? b : group ? b / group : 0;
    return axes & DE_AXIS_STEP ? sb * steps + t : sb;
}

void de_dropout_bcast(size_t m, size_t steps, size_t n, int axes, size_t group,
                      const de_dropout_t *d, float *y, uint64_t *mask)
{
    size_t M = m * steps;
    if (!d->drop_below || !M) return;
    size_t t = M * n / MIN_PER_THREAD, max = (size_t)de_threads();
    int nt = (int)(t < 1 ? 1 : t > max ? max : t > M ? M : t);
    DE_PARALLEL({
        size_t r0 = M * (size_t)DE_TEAM_ID() / (size_t)DE_TEAM_SIZE();
        size_t r1 = M * ((size_t)DE_TEAM_ID() + 1) / (size_t)DE_TEAM_SIZE();
        de_lanes_t ls;
        uint32_t w[16];
        bit_sink sink = {mask, r0 * n >> 6, 0};
        for (size_t r = r0; r < r1; r++) {
            size_t ri = small_row(r, steps, axes, group);
            float *yr = y + r * n;
            if (axes & DE_AXIS_FEATURE) {
                for (size_t j0 = 0; j0 < n; j0 += DE_RNG_SEGMENT) {
                    size_t j1 = n - j0 < DE_RNG_SEGMENT ? n : j0 + DE_RNG_SEGMENT;
                    de_lanes_seed(&ls, d->key, ri, j0 / DE_RNG_SEGMENT);
                    for (size_t j = j0; j < j1; j++) {
                        if ((j - j0) % 16 == 0) de_lanes_next(&ls, w);
                        int keep = w[(j - j0) % 16] >= d->drop_below;
                        yr[j] = keep ? yr[j] * d->scale : 0.f;
                        if (keep) sink_put(&sink, r * n + j);
                    }
                }
            } else {   /* one draw, element (ri, 0), for the whole row */
                de_lanes_seed(&ls, d->key, ri, 0);
                de_lanes_next(&ls, w);
                int keep = w[0] >= d->drop_below;
                for (size_t j = 0; j < n; j++) {
                    yr[j] = keep ? yr[j] * d->scale : 0.f;
                    if (keep) sink_put(&sink, r * n + j);
                }
            }
        }
        sink_flush(&sink);
    });
}
