/*
 * bf16.h -- internal: bfloat16 <-> float32, the one definition every path
 * uses (weight storage, packing, files), so all of them round alike.
 *
 * bfloat16 is float32's top 16 bits.  Widening is exact (a shift).  Narrowing
 * rounds to nearest, ties to even, as VCVTNEPS2BF16 and torch's
 * tensor.to(torch.bfloat16) do; a NaN stays a (quiet) NaN, with its sign,
 * instead of rounding into Inf.  tests/reference.py's bf16_round is the
 * numpy reference.
 */
#ifndef DE_BF16_H
#define DE_BF16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t de_bf16_t;

static inline float de_f32_from_bf16(de_bf16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline de_bf16_t de_bf16_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep it one */
        return (de_bf16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);               /* round half to even */
    return (de_bf16_t)(u >> 16);
}

#endif
