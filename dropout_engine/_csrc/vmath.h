/*
 * vmath.h -- internal: exp, expm1 and tanh in double, written as straight-line
 * basic IEEE operations (no calls, no branches, only selects) so that gcc
 * vectorises the loops that use them with each ISA's flags.  Because every
 * operation is a correctly rounded +, -, *, / (the includer turns FMA
 * contraction off), the SIMD and scalar code give identical bits on every
 * ISA.  Accuracy: relative error below 1e-13 over the float32 range, so a
 * float result rounded from these is within ~0.5 ulp of the true value.
 *
 * exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, with n*ln2_hi exact
 * (ln2_hi has 32 trailing zero bits); e^r by its Taylor polynomial to r^11
 * (truncation < 7e-15); 2^n built in the exponent field.  Inputs are clamped
 * to [-708, 708] so 2^n stays a normal double; e^-708 and e^708 are already
 * 0 and inf once rounded to float.
 */
#ifndef DE_VMATH_H
#define DE_VMATH_H

#include <stdint.h>
#include <string.h>

static inline double vm_clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Horner: c[0] x^(n-1) + ... + c[n-1]; n is a constant, loops unroll. */
static inline double vm_poly(const double *c, int n, double x)
{
    double p = c[0];
    for (int k = 1; k < n; k++)
        p = p * x + c[k];
    return p;
}

static inline double vm_exp(double x)
{
    const double shift = 0x1.8p52, log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
    x = vm_clamp(x, -708.0, 708.0);
    double t = x * log2e + shift; /* the integer round(x / ln2) in its low bits */
    double n = t - shift;
    double r = (x - n * ln2_hi) - n * ln2_lo;
    /* Taylor coefficients 1/k!, k = 11..0 */
    static const double c[12] = {
        1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
        1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5,
        1.0, 1.0};
    double p = vm_poly(c, 12, r);
    uint64_t tb, sb;
    memcpy(&tb, &t, 8);
    sb = (tb - 0x4338000000000000ull + 1023) << 52; /* 2^n */
    double scale;
    memcpy(&scale, &sb, 8);
    return p * scale;
}

/* e^x - 1 without cancellation near 0: Taylor to x^14 for |x| < 0.5
 * (truncation < 3e-17 relative), e^x - 1 elsewhere (|result| > 0.39). */
static inline double vm_expm1(double x)
{
    /* 1/k!, k = 14..2: s = x + x^2 (1/2 + x/6 + ...) */
    static const double c[13] = {
        1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0,
        1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
        1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5};
    double s = vm_poly(c, 13, x) * x * x + x;
    double e = vm_exp(x) - 1.0;
    return (x > -0.5 && x < 0.5) ? s : e;
}

/* tanh x = sign(x) e / (e + 2) with e = expm1(2|x|). */
static inline double vm_tanh(double x)
{
    double e = vm_expm1(2.0 * __builtin_fabs(x)); /* vm_exp clamps: no inf */
    return __builtin_copysign(e / (e + 2.0), x);
}

#endif
