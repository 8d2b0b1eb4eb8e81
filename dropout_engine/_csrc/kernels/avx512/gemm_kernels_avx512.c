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
 * small_m: for m <= 4 rows, B streamed unpacked, 8 rows of B per pass with
 * the accumulator row kept in a register across them; small_m_bt: B
 * transposed, dot products of 8 rows of B (4 when m > 2) at a time against
 * A's rows.
 */
#include <immintrin.h>
#include "frame/dispatch.h"

#define MR 12
#define NR 32
#define KC 256
#define MC 132
#define NC 2048
_Static_assert(MR <= DE_GEMM_MAX_MR && NR <= DE_GEMM_MAX_NR &&
               DE_RNG_SEGMENT % NR == 0 && NC % DE_RNG_SEGMENT == 0,
               "microtile outside the frame's contract");

static void ukernel(size_t kc, const float *a, const float *b, float *c,
                    size_t ldc, int accumulate)
{
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
        a += MR;
        b += NR;
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

/* PU rows of B (p0 .. p0+PU-1) into the M rows of c, columns [0, w); 8 rows
 * per pass measured ~10% faster than 4 at 1 x 784 x 1024 on 2 threads. */
#define PU 8
static inline __attribute__((always_inline)) void
small_pass(int M, int pu, size_t p0, size_t w, const float *a, size_t rsa,
           size_t csa, const float *b, size_t ldb, float *c, size_t ldc)
{
    __m512 av[DE_GEMM_SMALL_M][PU];
    for (int i = 0; i < M; i++)
        for (int q = 0; q < pu; q++)
            av[i][q] = _mm512_set1_ps(a[i * rsa + (p0 + q) * csa]);
    for (size_t j = 0; j < w; j += 16) {
        __mmask16 mk = w - j >= 16 ? 0xffff : (__mmask16)((1u << (w - j)) - 1);
        __m512 bv[PU];
        for (int q = 0; q < pu; q++)
            bv[q] = _mm512_maskz_loadu_ps(mk, b + (p0 + q) * ldb + j);
        for (int i = 0; i < M; i++) {
            __m512 s = p0 ? _mm512_maskz_loadu_ps(mk, c + i * ldc + j)
                          : _mm512_setzero_ps();
            for (int q = 0; q < pu; q++)
                s = _mm512_fmadd_ps(av[i][q], bv[q], s);
            _mm512_mask_storeu_ps(c + i * ldc + j, mk, s);
        }
    }
}


/* Dot products for op(B) = B^T: J rows of B against the M rows of A, 16
 * k-lanes per accumulator, reduced in a fixed order at the end. */
#define DOT_J 8
static inline __attribute__((always_inline)) void
dot_block(int M, int J, size_t k, const float *a, size_t lda, const float *b,
          size_t ldb, float *c, size_t ldc)
{
    __m512 acc[DE_GEMM_SMALL_M][DOT_J];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < J; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (size_t p = 0; p < k; p += 16) {
        __mmask16 mk = k - p >= 16 ? 0xffff : (__mmask16)((1u << (k - p)) - 1);
        __m512 bv[DOT_J];
        for (int j = 0; j < J; j++)
            bv[j] = _mm512_maskz_loadu_ps(mk, b + j * ldb + p);
        for (int i = 0; i < M; i++) {
            __m512 av = _mm512_maskz_loadu_ps(mk, a + i * lda + p);
            for (int j = 0; j < J; j++)
                acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < J; j++)
            c[i * ldc + j] = _mm512_reduce_add_ps(acc[i][j]);
}

#include "frame/gemm_small_m.inc"
#include "frame/gemm_thin.inc"

/* Thin outputs (n <= 16): the 12 rows of a packed A tile are the lanes of
 * one zmm (masked), one accumulator per output column, B's k-th row
 * broadcast column by column.  fma(a, b, acc) in k order from zero, as
 * ukernel's, so each element is bit-identical to the packed path's.  At
 * n = 10 that is 10 of 16 FMA lanes busy instead of 10 of 32. */
static inline __attribute__((always_inline)) void
thin_n(int N, size_t kc, const float *a, const float *b, size_t ldb, float *c,
       size_t ldc, size_t mr, int accumulate)
{
    const __mmask16 lanes = (1u << MR) - 1;
    __m512 acc[DE_GEMM_THIN_N];
    float t[DE_GEMM_THIN_N * 16] __attribute__((aligned(64)));
    for (int j = 0; j < N; j++)
        acc[j] = _mm512_setzero_ps();
    for (size_t p = 0; p < kc; p++) {
        __m512 av = _mm512_maskz_loadu_ps(lanes, a + p * MR);
        for (int j = 0; j < N; j++)
            acc[j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[p * ldb + j]), acc[j]);
    }
    for (int j = 0; j < N; j++)
        _mm512_store_ps(t + j * 16, acc[j]);
    thin_store(N, 16, t, c, ldc, mr, accumulate);
}


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
                                                  small_m, small_m_bt, pack_a, pack_b, thin};
