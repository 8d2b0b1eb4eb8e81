/*
 * gemm_kernels_avx2.c -- AVX2 + FMA microkernels (compiled with -mavx2 -mfma).
 *
 * ukernel: MR x NR = 6 x 16 register tile: 12 ymm accumulators, 2 ymm of
 * packed B per k step, A broadcast from the packed panel (the classic
 * Haswell tile: 8 loads for 12 FMAs).  Accumulators start at zero and C is
 * added once at the end (the frame's determinism rule).
 * Packed panels are 64-byte aligned (the frame guarantees it); C is not.
 *
 * The small-m and thin paths are the frame's (frame/gemm_small_m.inc,
 * frame/gemm_thin.inc), compiled here in ymm words: 8-lane vectors, masks
 * as lane vectors for maskload/maskstore.
 */
#include <immintrin.h>
#include "frame/dispatch.h"

#define MR 6
#define NR 16
#define KC 256
#define MC 120
#define NC 2048

/* 8 bf16 widened to floats (exact: the bits shifted into the top half). */
static inline __m256 widen8(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* The microkernel on a float (b16 = 0) or bf16 (b16 = 1) B panel: only
 * B's loads differ, so the two give the same sums on the same values. */
static inline __attribute__((always_inline)) void
ukernel_any(int b16, size_t kc, const float *a, const void *bv, float *c,
            size_t ldc, int accumulate)
{
    const float *b = bv;
    const uint16_t *h = bv;
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (size_t p = 0; p < kc; p++) {
        __m256 b0, b1;
        if (b16) {
            b0 = widen8(_mm_loadu_si128((const __m128i *)h));
            b1 = widen8(_mm_loadu_si128((const __m128i *)(h + 8)));
        } else {
            b0 = _mm256_load_ps(b);
            b1 = _mm256_load_ps(b + 8);
        }
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
        }
        a += MR;
        b += NR;
        h += NR;
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm256_add_ps(_mm256_loadu_ps(ci), c0[i]);
            c1[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), c1[i]);
        }
        _mm256_storeu_ps(ci, c0[i]);
        _mm256_storeu_ps(ci + 8, c1[i]);
    }
}

#include "frame/gemm_ukernel.inc"

/* The vector words the frame's small-m and thin paths are written in. */
typedef __m256 vfloat;
typedef __m256i vmask;      /* maskload/maskstore take lanes, not bits */
#define VL 8
#define PU 4                /* rows of B per small-m pass */
#define DOT_J 4             /* rows of B per dot block (B transposed) */
#define v_zero() _mm256_setzero_ps()
#define v_set1(x) _mm256_set1_ps(x)
#define v_fma(a, b, acc) _mm256_fmadd_ps(a, b, acc)
#define v_load_first(p, m) _mm256_maskload_ps(p, m)
#define v_store_first(p, m, v) _mm256_maskstore_ps(p, m, v)
#define v_store(p, v) _mm256_store_ps(p, v)

static inline vmask v_first(size_t left)
{
    int n = left >= 8 ? 8 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* No masked 16-bit loads in AVX2: a short tail goes through a copy. */
static inline vfloat v_load_bf16_first(const uint16_t *p, size_t left)
{
    if (left >= 8)
        return widen8(_mm_loadu_si128((const __m128i *)p));
    uint16_t t[8] = {0};
    for (size_t i = 0; i < left; i++)
        t[i] = p[i];
    return widen8(_mm_loadu_si128((const __m128i *)t));
}

static inline float v_sum(vfloat v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#include "frame/gemm_small_m.inc"
#include "frame/gemm_thin.inc"
#include "frame/gemm_pack.inc"

const de_gemm_kernels_t de_gemm_kernels_avx2 = {MR, NR, KC, MC, NC, ukernel,
                                                small_m, small_m_bt, pack_a, pack_b, thin,
                                                small_m_wbf16, ukernel_wbf16};

/* de_gemm_bf16's emulation on this ISA: the float kernel above on panels
 * rounded to bfloat16, under FTZ/DAZ (frame/gemm_bf16.inc). */
#define BF16_WIDENED
#define BF16_FTZ_UKERNEL
#include "frame/gemm_bf16.inc"

const de_gemm_kernels_t de_gemm_bf16_avx2 = {MR, NR, DE_BF16_KC, MC, NC, ukernel_bf16,
                                             NULL, NULL, pack_a_bf16, pack_b_bf16, NULL,
                                             NULL, NULL, 0};
