/*
 * noise.c -- the training-time noise of GaussianDropout and AlphaDropout
 * (Keras's semantics), as a pass over a finished layer output.
 *
 * Both are written y <- y * mul + add element-wise, and mul is kept for the
 * backward pass (dy/dx = mul):
 *   Gaussian: mul ~ N(1, rate / (1 - rate)), add = 0;
 *   Alpha:    kept with probability 1 - rate; mul = a if kept else 0,
 *             add = b if kept else a * alpha' + b, where alpha' = -scale *
 *             alpha of SELU and a, b keep SELU's zero mean and unit variance.
 * The draws are one flat stream of de_random_bits for the step's key, so
 * they depend on (seed, site, step) only, never on threads.  Unlike Dropout
 * this pass is not fused into the GEMM epilogue: it needs the whole
 * [m x n] multiplier stored as floats anyway, and its cost (one RNG word
 * and a few flops per element) is small next to the GEMM.  At inference
 * both layers are the identity.
 */
#include <math.h>
#include <stdint.h>
#include "engine.h"

#define ALPHA_P (-1.7580993408473766)   /* -scale * alpha of SELU */

/* uint32 -> uniform in (0, 1]: never 0, so log() below is finite. */
static double unit(uint32_t u) { return ((double)u + 1.0) * (1.0 / 4294967296.0); }

void de_noise(int kind, double rate, uint64_t key, size_t len, float *y,
              float *mul)
{
    uint32_t *bits = (uint32_t *)mul;   /* drawn in place, then converted */
    if (kind == DE_NOISE_GAUSSIAN) {
        const double two_pi = 6.283185307179586, sd = sqrt(rate / (1.0 - rate));
        de_random_bits(key, bits, len + (len & 1));   /* mul has len + 1 */
        for (size_t i = 0; i < len; i += 2) {
            /* Box-Muller: one pair of words gives two normals. */
            double r = sd * sqrt(-2.0 * log(unit(bits[i])));
            double t = two_pi * unit(bits[i + 1]);
            mul[i] = (float)(1.0 + r * cos(t));
            if (i + 1 < len) mul[i + 1] = (float)(1.0 + r * sin(t));
        }
        for (size_t i = 0; i < len; i++) y[i] *= mul[i];
        return;
    }
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
