/* PLACEHOLDER (being replaced). */
#include "dispatch.h"
uint64_t de_rng_key(uint64_t seed, uint64_t stream, uint64_t step) { return seed ^ stream ^ step; }
void de_random_bits(uint64_t key, uint32_t *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = (uint32_t)(key + i); }
void de_dropout_params(double rate, int inverted, uint64_t key, de_dropout_t *d)
{ d->drop_below = 0; d->scale = 1.f; d->key = key; (void)rate; (void)inverted; }
