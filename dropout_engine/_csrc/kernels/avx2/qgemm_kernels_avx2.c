/*
 * qgemm_kernels_avx2.c -- the int8 panel kernel with AVX2 (for CPUs without
 * AVX512_VNNI; compiled with -mavx2 -mfma, contraction off).
 *
 * AVX2 has no u8 x s8 dot product that cannot saturate, so this computes
 * sum x_i8 * w directly, which equals the contract's
 * sum (x_i8 + 128) * w - corr exactly (corr is 128 * the column sums):
 * vpmaddubsw(|w|, sign(x, w)) gives |w| * (+-x) pairs, at most
 * 2 * 128 * 127 = 32512 in magnitude (|w| <= 128, |x| <= 127), so never
 * saturating; vpmaddwd by ones adds the two pairs of a column's k-quad into
 * an int32 lane, summed with wrapping adds.  The dequantisation is the same
 * three float32 operations as the other kernels': results are bit-identical.
 *
 * One row at a time: eight ymm accumulators hold its 64 columns (each ymm
 * is 8 columns x 4 bytes of a k-quad, the packed layout as stored); two
 * when the panel has at most 16 columns.
 */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include <string.h>
#include "frame/dispatch.h"
#include "kernels/qquantize.inc"

/* The first NC 8-column chunks of one row (NC = 2 for panels of at most
 * 16 columns, else 8); NC is a constant after inlining. */
static inline __attribute__((always_inline)) void
row_dot(const int NC, size_t kq, const uint8_t *xu, const int8_t *w,
        __m256i acc[8])
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_setzero_si256();
    for (size_t q = 0; q < kq; q++, w += 4 * DE_Q_PANEL) {
        int32_t v;
        memcpy(&v, xu + 4 * q, 4);
        __m256i x = _mm256_xor_si256(_mm256_set1_epi32(v), flip); /* int8 */
        for (int c = 0; c < NC; c++) {
            __m256i wc = _mm256_loadu_si256((const __m256i *)(w + 32 * c));
            __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wc),
                                             _mm256_sign_epi8(x, wc));
            acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p, ones));
        }
    }
}

static void panel(size_t rows, size_t cols, size_t kq, const uint8_t *xu,
                  size_t ldx, const int8_t *w, const int32_t *corr,
                  const float *scale, const float *sx, float *y, size_t ldy)
{
    (void)corr;   /* the signed products need no offset correction */
    int nc = cols <= 16 ? 2 : 8;
    for (size_t r = 0; r < rows; r++) {
        __m256i acc[8];
        float out[DE_Q_PANEL] __attribute__((aligned(32)));
        if (nc == 2)
            row_dot(2, kq, xu + r * ldx, w, acc);
        else
            row_dot(8, kq, xu + r * ldx, w, acc);
        __m256 s = _mm256_set1_ps(sx[r]);
        for (int c = 0; c < nc; c++) {
            __m256 d = _mm256_mul_ps(_mm256_loadu_ps(scale + 8 * c), s);
            _mm256_store_ps(out + 8 * c,
                            _mm256_div_ps(_mm256_cvtepi32_ps(acc[c]), d));
        }
        memcpy(y + r * ldy, out, cols * sizeof(float));
    }
}

const de_qgemm_kernels_t de_qgemm_avx2 = {"avx2", quantize_rows, panel};
