/*
 * rng.h -- internal: the scalar definition of the mask generator, shared by
 * rng.c (baseline flags) and every ISA's elementwise kernels, so that there is
 * exactly one statement of the formulas.  The SIMD paths in elementwise.inc
 * run the same xoroshiro128++ lanes in vector registers and must agree with
 * these functions bit for bit (tests/test_dropout.py checks every ISA).
 *
 *   mix64(z)   = SplitMix64 finaliser (Stafford variant 13):
 *                z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
 *                z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
 *   G          = 0x9E3779B97F4A7C15 (the SplitMix64 increment)
 *   key(seed, stream, step)
 *              = mix64(mix64(mix64(seed + G) + (stream + 1) G) + (step + 1) G)
 *     Each level is the SplitMix64 output of a stream keyed by the level
 *     above, so every argument passes through at least one full avalanche
 *     and, for fixed (stream, step), seed -> key is a bijection.
 *   row/segment key  b(key, i, s) = mix64(mix64(key + (i + 1) G) + (s + 1) G)
 *   lane l = 0..7 of (key, i, s):  s0 = mix64(b + (2l + 1) G),
 *                                  s1 = mix64(b + (2l + 2) G)
 *     (the 16 SplitMix64 outputs after b; an all-zero state, which
 *     xoroshiro cannot leave, has probability 2^-128 and is not special-cased)
 *   xoroshiro128++ step of a lane: out = rotl(s0 + s1, 17) + s0;
 *                                  s1 ^= s0; s0 = rotl(s0, 49) ^ s1 ^ (s1 << 21);
 *                                  s1 = rotl(s1, 28)
 *   One generator step runs all 8 lanes and yields 16 uint32 words: word 2l is
 *   the low half of lane l's output, word 2l + 1 the high half.  Column j of
 *   row i uses word j % 16 of step (j % 256) / 16 of the lanes of (key, i,
 *   j / 256).  Unit (i, j) is dropped iff that word < drop_below.
 */
#ifndef DE_RNG_H
#define DE_RNG_H

#include "frame/dispatch.h"

#define DE_GOLDEN 0x9E3779B97F4A7C15ull

static inline uint64_t de_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t de_rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Seed the 8 lanes serving row `row`, segment `seg` of the mask for `key`. */
static inline void de_lanes_seed(de_lanes_t *ls, uint64_t key, uint64_t row,
                                 uint64_t seg)
{
    uint64_t b = de_mix64(de_mix64(key + (row + 1) * DE_GOLDEN)
                          + (seg + 1) * DE_GOLDEN);
    for (int l = 0; l < DE_RNG_LANES; l++) {
        ls->s0[l] = de_mix64(b + (uint64_t)(2 * l + 1) * DE_GOLDEN);
        ls->s1[l] = de_mix64(b + (uint64_t)(2 * l + 2) * DE_GOLDEN);
    }
}

/* The 16 words of the lanes' current step; then advance them. */
static inline void de_lanes_next(de_lanes_t *ls, uint32_t words[16])
{
    for (int l = 0; l < DE_RNG_LANES; l++) {
        uint64_t s0 = ls->s0[l], s1 = ls->s1[l];
        uint64_t out = de_rotl64(s0 + s1, 17) + s0;
        words[2 * l] = (uint32_t)out;
        words[2 * l + 1] = (uint32_t)(out >> 32);
        s1 ^= s0;
        ls->s0[l] = de_rotl64(s0, 49) ^ s1 ^ (s1 << 21);
        ls->s1[l] = de_rotl64(s1, 28);
    }
}

#endif
