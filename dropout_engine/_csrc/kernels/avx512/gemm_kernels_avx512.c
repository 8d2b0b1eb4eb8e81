/*
 * gemm_kernels_avx512.c -- AVX-512 microkernels (compiled with -mavx512f ...).
 *
 * ukernel: MR x NR = 12 x 32 register tile: 24 zmm accumulators, 2 zmm of
 * packed B per k step, A broadcast from the packed panel.  Per k step it
 * issues 14 loads for 24 FMAs, so the two FMA ports stay fed from L1.
 * Accumulators start at zero and C is added once at the end (the frame's
 * determinism rule: c = c + sum over the KC block).
 * Packed panels are 64-byte aligned (the frame guarantees it); C is not.
 *
 * The small-m and thin paths are the frame's (frame/gemm_small_m.inc,
 * frame/gemm_thin.inc), compiled here in zmm words: 16-lane vectors, masks
 * in k registers.  pack_t16 is this ISA's own: a transpose for packing.
 */
#include <immintrin.h>
#include "frame/dispatch.h"

#define MR 12
#define NR 32
#define KC 256
#define MC 132
#define NC 2048

/* bf16 [16 * half, 16 * half + 16) of the 32 in h widened to floats
 * (exact: each into the top half of a zeroed dword), in one word permute. */
static inline __m512 widen_half(__m512i h, int half)
{
    const __m512i idx = _mm512_set_epi16(
        15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,
        7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
    const __m512i up = _mm512_set1_epi16(16);
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(
        0xAAAAAAAAu, half ? _mm512_add_epi16(idx, up) : idx, h));
}

static inline __m512 widen16(__m256i h)
{
    return widen_half(_mm512_castsi256_si512(h), 0);
}

/* The microkernel on a float (b16 = 0) or bf16 (b16 = 1) B panel: only
 * B's loads differ, so the two give the same sums on the same values. */
static inline __attribute__((always_inline)) void
ukernel_any(int b16, size_t kc, const float *a, const void *bv, float *c,
            size_t ldc, int accumulate)
{
    const float *b = bv;
    const uint16_t *h = bv;
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (size_t p = 0; p < kc; p++) {
        __m512 b0, b1;
        if (b16) {
            __m512i hv = _mm512_loadu_si512(h);
            b0 = widen_half(hv, 0);
            b1 = widen_half(hv, 1);
        } else {
            b0 = _mm512_load_ps(b);
            b1 = _mm512_load_ps(b + 16);
        }
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
        a += MR;
        b += NR;
        h += NR;
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), c0[i]);
            c1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c1[i]);
        }
        _mm512_storeu_ps(ci, c0[i]);
        _mm512_storeu_ps(ci + 16, c1[i]);
    }
}

#include "frame/gemm_ukernel.inc"

/* The vector words the frame's small-m and thin paths are written in. */
typedef __m512 vfloat;
typedef __mmask16 vmask;
#define VL 16
/* Rows of B per small-m pass: 8 measured ~10% faster than 4 at
 * 1 x 784 x 1024 on 2 threads. */
#define PU 8
#define DOT_J 8             /* rows of B per dot block (B transposed) */
#define v_zero() _mm512_setzero_ps()
#define v_set1(x) _mm512_set1_ps(x)
#define v_fma(a, b, acc) _mm512_fmadd_ps(a, b, acc)
#define v_load_first(p, m) _mm512_maskz_loadu_ps(m, p)
#define v_store_first(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define v_store(p, v) _mm512_store_ps(p, v)
#define v_sum(v) _mm512_reduce_add_ps(v)

static inline vmask v_first(size_t left)
{
    return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
}

static inline vfloat v_load_bf16_first(const uint16_t *p, size_t left)
{
    return widen16(_mm256_maskz_loadu_epi16(v_first(left), p));
}

#include "frame/gemm_small_m.inc"
#include "frame/gemm_thin.inc"

/* rows (<= 16) source rows (each contiguous, sr apart) x kc into columns
 * [0, rows) of the R-wide panel rows at dst: 16 x 16 blocks transposed in
 * registers (unpack pairs of rows, then 4-float groups, then 128-bit lanes
 * twice), 3 shuffles per element-vector instead of the SSE2 path's 4 x 4
 * blocks; missing rows are zeros that masked stores leave out (the A
 * panels' 12 rows); a kc tail below 16 is copied element by element. */
static inline __attribute__((always_inline)) void
pack_t16(const float *s, size_t sr, size_t kc, size_t R, float *dst,
         size_t rows)
{
    const __mmask16 keep = (__mmask16)((1u << rows) - 1);
    size_t p = 0;
    for (; p + 16 <= kc; p += 16) {
        __m512 t[16], u[16];
        for (size_t i = 0; i < 16; i += 2) {
            __m512 r0 = i < rows ? _mm512_loadu_ps(s + i * sr + p)
                                 : _mm512_setzero_ps();
            __m512 r1 = i + 1 < rows ? _mm512_loadu_ps(s + (i + 1) * sr + p)
                                     : _mm512_setzero_ps();
            t[i] = _mm512_unpacklo_ps(r0, r1);       /* a0 b0 a1 b1 per lane */
            t[i + 1] = _mm512_unpackhi_ps(r0, r1);   /* a2 b2 a3 b3 */
        }
        for (int i = 0; i < 16; i += 4) {           /* rows i .. i+3 */
            u[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
            u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
            u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
            u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        /* lane L of u[4g + j] = column 4L + j of rows 4g .. 4g+3 */
        for (int j = 0; j < 4; j++) {
            __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
            __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
            __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
            __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
            _mm512_mask_storeu_ps(dst + (p + j) * R, keep,
                                  _mm512_shuffle_f32x4(v0, v2, 0x88));
            _mm512_mask_storeu_ps(dst + (p + 4 + j) * R, keep,
                                  _mm512_shuffle_f32x4(v1, v3, 0x88));
            _mm512_mask_storeu_ps(dst + (p + 8 + j) * R, keep,
                                  _mm512_shuffle_f32x4(v0, v2, 0xDD));
            _mm512_mask_storeu_ps(dst + (p + 12 + j) * R, keep,
                                  _mm512_shuffle_f32x4(v1, v3, 0xDD));
        }
    }
    for (; p < kc; p++)
        for (size_t r = 0; r < rows; r++)
            dst[p * R + r] = s[r * sr + p];
}
#define PACK_T16 pack_t16

#include "frame/gemm_pack.inc"

const de_gemm_kernels_t de_gemm_kernels_avx512 = {MR, NR, KC, MC, NC, ukernel,
                                                  small_m, small_m_bt, pack_a, pack_b, thin,
                                                  small_m_wbf16, ukernel_wbf16};
