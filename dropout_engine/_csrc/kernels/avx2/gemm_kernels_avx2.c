/*
 * gemm_kernels_avx2.c -- AVX2 + FMA microkernels (compiled with -mavx2 -mfma).
 *
 * ukernel: MR x NR = 6 x 16 register tile: 12 ymm accumulators, 2 ymm of
 * packed B per k step, A broadcast from the packed panel (the classic
 * Haswell tile: 8 loads for 12 FMAs).  Accumulators start at zero and C is
 * added once at the end (the frame's determinism rule).
 * Packed panels are 64-byte aligned (the frame guarantees it); C is not.
 *
 * small_m: for m <= 4 rows, B streamed unpacked, 4 rows of B per pass with
 * the accumulator row kept in a register across them; small_m_bt: B
 * transposed, dot products of 4 rows of B at a time against A's rows.
 */
#include <immintrin.h>
#include "frame/dispatch.h"

#define MR 6
#define NR 16
#define KC 256
#define MC 120
#define NC 2048
_Static_assert(MR <= DE_GEMM_MAX_MR && NR <= DE_GEMM_MAX_NR &&
               DE_RNG_SEGMENT % NR == 0 && NC % DE_RNG_SEGMENT == 0,
               "microtile outside the frame's contract");

static void ukernel(size_t kc, const float *a, const float *b, float *c,
                    size_t ldc, int accumulate)
{
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
        }
        a += MR;
        b += NR;
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

/* Lane mask for maskload/maskstore: the first min(left, 8) lanes. */
static inline __m256i first_lanes(size_t left)
{
    int n = left >= 8 ? 8 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* PU rows of B (p0 .. p0+PU-1) into the M rows of c, columns [0, w). */
#define PU 4
static inline __attribute__((always_inline)) void
small_pass(int M, int pu, size_t p0, size_t w, const float *a, size_t rsa,
           size_t csa, const float *b, size_t ldb, float *c, size_t ldc)
{
    __m256 av[DE_GEMM_SMALL_M][PU];
    for (int i = 0; i < M; i++)
        for (int q = 0; q < pu; q++)
            av[i][q] = _mm256_set1_ps(a[i * rsa + (p0 + q) * csa]);
    for (size_t j = 0; j < w; j += 8) {
        __m256i mk = first_lanes(w - j);
        __m256 bv[PU];
        for (int q = 0; q < pu; q++)
            bv[q] = _mm256_maskload_ps(b + (p0 + q) * ldb + j, mk);
        for (int i = 0; i < M; i++) {
            __m256 s = p0 ? _mm256_maskload_ps(c + i * ldc + j, mk)
                          : _mm256_setzero_ps();
            for (int q = 0; q < pu; q++)
                s = _mm256_fmadd_ps(av[i][q], bv[q], s);
            _mm256_maskstore_ps(c + i * ldc + j, mk, s);
        }
    }
}


/* Dot products for op(B) = B^T: J rows of B against the M rows of A, 8
 * k-lanes per accumulator, reduced in a fixed order at the end. */
#define DOT_J 4
static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline __attribute__((always_inline)) void
dot_block(int M, int J, size_t k, const float *a, size_t lda, const float *b,
          size_t ldb, float *c, size_t ldc)
{
    __m256 acc[DE_GEMM_SMALL_M][DOT_J];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < J; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (size_t p = 0; p < k; p += 8) {
        __m256i mk = first_lanes(k - p);
        __m256 bv[DOT_J];
        for (int j = 0; j < J; j++)
            bv[j] = _mm256_maskload_ps(b + j * ldb + p, mk);
        for (int i = 0; i < M; i++) {
            __m256 av = _mm256_maskload_ps(a + i * lda + p, mk);
            for (int j = 0; j < J; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < J; j++)
            c[i * ldc + j] = hsum(acc[i][j]);
}

#include "frame/gemm_small_m.inc"
#include "frame/gemm_thin.inc"

/* Thin outputs (n <= 16): the 6 rows of a packed A tile are the lanes of a
 * ymm (masked to 6), one accumulator per output column; the microkernel's
 * fma(a, b, acc) in k order, so bit-identical to the packed path.  At n = 1
 * (a regression or binary head) 6 of 8 lanes work instead of 1 of 16. */
static inline __attribute__((always_inline)) void
thin_n(int N, size_t kc, const float *a, const float *b, size_t ldb, float *c,
       size_t ldc, size_t mr, int accumulate)
{
    const __m256i lanes = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    __m256 acc[DE_GEMM_THIN_N];
    float t[DE_GEMM_THIN_N * 8] __attribute__((aligned(32)));
    for (int j = 0; j < N; j++)
        acc[j] = _mm256_setzero_ps();
    for (size_t p = 0; p < kc; p++) {
        __m256 av = _mm256_maskload_ps(a + p * MR, lanes);
        for (int j = 0; j < N; j++)
            acc[j] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + p * ldb + j), acc[j]);
    }
    for (int j = 0; j < N; j++)
        _mm256_store_ps(t + j * 8, acc[j]);
    thin_store(N, 8, t, c, ldc, mr, accumulate);
}


#include "frame/gemm_pack.inc"

const de_gemm_kernels_t de_gemm_kernels_avx2 = {MR, NR, KC, MC, NC, ukernel,
                                                small_m, small_m_bt, pack_a, pack_b, thin};
