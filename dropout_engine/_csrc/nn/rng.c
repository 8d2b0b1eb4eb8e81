/*
 * rng.c -- stream keys, the flat test stream and the dropout threshold.
 *
 * The generator itself (SplitMix64 seeding of 8 xoroshiro128++ lanes per
 * row and 256-column segment) is defined in rng.h, which also writes down
 * every formula; the SIMD kernels in elementwise.inc reproduce it.
 *
 * Threshold: drop_below = round(rate * 2^32) clamped to [1, 2^32 - 1] for
 * rate > 0 (so drop_below == 0 exactly when rate <= 0: only then is dropout
 * skipped and no mask written).  The keep probability as thresholded is
 * p = (2^32 - drop_below) / 2^32, and the inverted scale is 1 / p computed
 * in double and rounded to float once, so E[dropout(x)] = x to float
 * rounding.
 */
#include <math.h>
#include "nn/rng.h"

uint64_t de_rng_key(uint64_t seed, uint64_t stream, uint64_t step)
{
    uint64_t k = de_mix64(seed + DE_GOLDEN);
    k = de_mix64(k + (stream + 1) * DE_GOLDEN);
    return de_mix64(k + (step + 1) * DE_GOLDEN);
}

/* Row i of a key seeds from key + (i + 1) G (rng.h), so moving the key by
 * row0 G moves every row by row0. */
uint64_t de_rng_rows_key(uint64_t key, uint64_t row0)
{
    return key + row0 * DE_GOLDEN;
}

void de_random_bits(uint64_t key, uint32_t *out, size_t n)
{
    de_lanes_t ls;
    uint32_t w[16];
    de_lanes_seed(&ls, key, 0, 0);
    for (size_t i = 0; i < n; i += 16) {
        de_lanes_next(&ls, w);
        for (size_t t = 0; t < 16 && i + t < n; t++)
            out[i + t] = w[t];
    }
}

void de_dropout_params(double rate, int inverted, uint64_t key, de_dropout_t *d)
{
    const double two32 = 4294967296.0;
    uint32_t t = 0;
    if (rate > 0) {
        double r = nearbyint(rate * two32);
        t = r >= two32 - 1 ? 0xFFFFFFFFu : r < 1 ? 1u : (uint32_t)r;
    }
    d->drop_below = t;
    d->scale = inverted && t ? (float)(two32 / (two32 - (double)t)) : 1.f;
    d->key = key;
}
