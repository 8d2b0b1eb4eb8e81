/*
 * gemm_kernels_generic.c -- portable microkernels (baseline flags only).
 *
 * Written so that gcc vectorises the j loops with whatever the baseline
 * offers (SSE2 on x86-64, NEON on aarch64): the 6 x 8 accumulator tile is
 * 12 xmm registers, each k step loads one row of packed B and broadcasts 6
 * values of packed A.  Each element's sum runs over k in order from zero and
 * C is added once at the end (the frame's determinism rule).
 *
 * small_m: for m <= 4 rows, B streamed unpacked, 4 rows of B per pass;
 * small_m_bt: the same with B transposed, as dot products.  Both are this
 * file's own scalar loops rather than frame/gemm_small_m.inc, whose masked
 * vector loads the baseline ISAs do not have; gcc vectorises these instead.
 *
 * The _bf16 variants (B stored as bfloat16) are the same templates with B's
 * loads widened (b16 a compile-time constant): the same operations on the
 * widened values.
 */
#include "frame/bf16.h"
#include "frame/dispatch.h"

#define MR 6
#define NR 8
#define KC 256
#define MC 96
#define NC 2048

/* Element i of B: a float, or (b16) a bf16 widened. */
static inline __attribute__((always_inline)) float
b_at(int b16, const void *restrict b, size_t i)
{
    return b16 ? de_f32_from_bf16(((const uint16_t *)b)[i])
               : ((const float *)b)[i];
}

static inline __attribute__((always_inline)) void
ukernel_any(int b16, size_t kc, const float *restrict a,
            const void *restrict b, float *restrict c, size_t ldc,
            int accumulate)
{
    float acc[MR][NR] __attribute__((aligned(64))) = {{0}};
    for (size_t p = 0; p < kc; p++, a += MR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[i] * b_at(b16, b, p * NR + j);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#include "frame/gemm_ukernel.inc"

static inline __attribute__((always_inline)) void
small_m_any(int b16, size_t m, size_t w, size_t k, const float *a, size_t rsa,
            size_t csa, const void *b, size_t ldb, float *c, size_t ldc)
{
    size_t p = 0;
    for (; p + 4 <= k; p += 4) {
        size_t r0 = p * ldb, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb;
        for (size_t i = 0; i < m; i++) {
            const float *ai = a + i * rsa + p * csa;
            float a0 = ai[0], a1 = ai[csa], a2 = ai[2 * csa], a3 = ai[3 * csa];
            float *restrict ci = c + i * ldc;
            for (size_t j = 0; j < w; j++)
                ci[j] = (((p ? ci[j] : 0.f) + a0 * b_at(b16, b, r0 + j)) +
                         a1 * b_at(b16, b, r1 + j) + a2 * b_at(b16, b, r2 + j)) +
                        a3 * b_at(b16, b, r3 + j);
        }
    }
    for (; p < k; p++)
        for (size_t i = 0; i < m; i++) {
            float ap = a[i * rsa + p * csa];
            float *restrict ci = c + i * ldc;
            for (size_t j = 0; j < w; j++)
                ci[j] = (p ? ci[j] : 0.f) + ap * b_at(b16, b, p * ldb + j);
        }
}

static void small_m(size_t m, size_t w, size_t k, const float *a, size_t rsa,
                    size_t csa, const float *b, size_t ldb, float *c,
                    size_t ldc)
{
    small_m_any(0, m, w, k, a, rsa, csa, b, ldb, c, ldc);
}

static void small_m_wbf16(size_t m, size_t w, size_t k, const float *a,
                         size_t rsa, size_t csa, const uint16_t *b, size_t ldb,
                         float *c, size_t ldc)
{
    small_m_any(1, m, w, k, a, rsa, csa, b, ldb, c, ldc);
}

/* Dot products for op(B) = B^T, in 8 k-lanes (a loop gcc vectorises
 * without reassociating) reduced pairwise at the end. */
static void small_m_bt(size_t m, size_t w, size_t k, const float *a,
                       size_t lda, const float *b, size_t ldb, float *c,
                       size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) {
            const float *ai = a + i * lda, *bj = b + j * ldb;
            float s[8] = {0};
            size_t p = 0;
            for (; p + 8 <= k; p += 8)
                for (int l = 0; l < 8; l++)
                    s[l] += ai[p + l] * bj[p + l];
            for (int l = 0; p + l < k; l++)
                s[l] += ai[p + l] * bj[p + l];
            c[i * ldc + j] = ((s[0] + s[4]) + (s[2] + s[6])) +
                             ((s[1] + s[5]) + (s[3] + s[7]));
        }
}

#include "frame/gemm_pack.inc"

const de_gemm_kernels_t de_gemm_kernels_generic = {MR, NR, KC, MC, NC, ukernel,
                                                   small_m, small_m_bt, pack_a, pack_b, NULL,
                                                   small_m_wbf16, ukernel_wbf16};

/* ------------------------------------------------------------ bfloat16
 * de_gemm_bf16's portable emulation (any CPU: no FMA, no MXCSR needed).
 * A product of two bfloat16 values is exact in double, and the double sum
 * of it and a float rounded to float again is the float sum rounded once
 * (double has more than 2 * 24 + 2 bits: Figueroa's condition), with the
 * exponent unbounded; a result below T = FLT_MIN - 2^-151 is exactly one
 * that rounds (unbounded) below FLT_MIN, the one VDPBF16PS flushes to a
 * zero of its sign.  (A double sum equal to T is T itself: acc is a
 * multiple of 2^-149 there, and a product fine enough to land within a
 * double ulp of T is exact in the double sum.)  So each step is exactly
 * one of VDPBF16PS's. */
#include <math.h>
#define BF16_WIDENED
#include "frame/gemm_bf16.inc"

static inline float bf16_step(float acc, float a, float b)
{
    double d = (double)acc + (double)a * (double)b;
    return fabs(d) < 0x1.ffffffp-127 ? (float)copysign(0.0, d) : (float)d;
}

static void ukernel_bf16(size_t kc, const float *restrict a,
                         const float *restrict b, float *restrict c,
                         size_t ldc, int accumulate)
{
    float acc[MR][NR] __attribute__((aligned(64))) = {{0}};
    for (size_t p = 0; p < kc; p++, a += MR, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] = bf16_step(acc[i][j], a[i], b[j]);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float v = kc & 1 ? acc[i][j] + 0.f : acc[i][j];   /* the pad */
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

const de_gemm_kernels_t de_gemm_bf16_generic = {MR, NR, DE_BF16_KC, MC, NC, ukernel_bf16,
                                                NULL, NULL, pack_a_bf16, pack_b_bf16, NULL,
                                                NULL, NULL, 0};
