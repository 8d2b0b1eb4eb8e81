/*
 * vmath.h -- internal: exp, expm1, tanh, log1p (on [0, 1]) and erfc in
 * double, written as straight-line basic IEEE operations (no calls, no
 * branches, only selects) so that gcc vectorises the loops that use them
 * with each ISA's flags.  Because every operation is a correctly rounded
 * +, -, *, / (the includer turns FMA contraction off), the SIMD and scalar
 * code give identical bits on every ISA.  Accuracy: relative error below
 * 1e-13 over the float32 range, so a float result rounded from these is
 * within ~0.5 ulp of the true value.
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

/* Horner: c[0] x^(n-1) + ... + c[n-1].  The loops here must unroll fully
 * (n is a constant) or the loops calling them do not vectorise. */
static inline double vm_poly(const double *c, int n, double x)
{
    double p = c[0];
#pragma GCC unroll 32
    for (int k = 1; k < n; k++)
        p = p * x + c[k];
    return p;
}

static inline double vm_exp(double x)
{
    const double shift = 0x1.8p52, log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
    x = vm_clamp(x, -709.0, 708.0);
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
    return t < shift - 1021.5 ? 0.0 : p * scale; /* x <= -708: e^x is 0 */
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

/* log(1 + u) for u in [0, 1] (softplus's log1p(e^-|x|)): 2 atanh(s) with
 * s = u / (2 + u) in [0, 1/3], by its odd series to s^33 (the first term
 * left out is below 2e-18 relative, since s^2 <= 1/9). */
static inline double vm_log1p01(double u)
{
    /* 1/(2k+1), k = 16..0 */
    static const double c[17] = {
        1.0 / 33, 1.0 / 31, 1.0 / 29, 1.0 / 27, 1.0 / 25, 1.0 / 23, 1.0 / 21,
        1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7,
        1.0 / 5, 1.0 / 3, 1.0};
    double s = u / (2.0 + u);
    return 2.0 * s * vm_poly(c, 17, s * s);
}

/* erfc(u) = e^(-u^2) R(|u|) for u >= 0 (2 - that for u < 0), where
 * R(a) = erfc(a) e^(a^2) is smooth in t = 2 / (2 + a) in (0, 1].  R is a
 * degree-18 Chebyshev series in s = (26 t - 15) / 11, which maps a in
 * [0, 11] (t in [2/13, 1]) to [-1, 1]; fitted to math.erfc(a) exp(a^2) by
 * least squares, max relative error 7e-14.  Past a = 11, erfc < 1e-53 and
 * the series stays bounded (s > -1.19), so no branch is needed. */
static inline double vm_erfc(double u)
{
    static const double c[19] = {
        0.4264438579578381, 0.46347822665896293, 0.09920710934581209,
        0.01114824565698461, -0.00011085846543676606, -0.0001702805178537513,
        3.46221279921482e-07, 3.5920021227366933e-06, -1.6908479680327174e-07,
        -8.245395028240863e-08, 1.1922383850371439e-08, 1.2481925779960246e-09,
        -5.324447975700568e-10, 2.97844456838337e-11, 1.4394151966660989e-11,
        -3.414772252873469e-12, 3.889673140487927e-14, 1.2836789226525425e-13,
        -2.6451831013279112e-14};
    double a = __builtin_fabs(u);
    double s = (26.0 * (2.0 / (2.0 + a)) - 15.0) / 11.0;
    double b1 = 0.0, b2 = 0.0; /* Clenshaw */
#pragma GCC unroll 32
    for (int k = 18; k >= 1; k--) {
        double b0 = 2.0 * s * b1 - b2 + c[k];
        b2 = b1;
        b1 = b0;
    }
    double r = vm_exp(-(a * a)) * (s * b1 - b2 + c[0]);
    return u < 0 ? 2.0 - r : r;
}

#endif
