/*
 * qgemm_kernels_vnni.c -- the int8 panel kernel with AVX-512 VNNI
 * (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; cpu.c picks
 * it only where the CPU reports AVX512_VNNI).
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds each group of four
 * products into an int32 lane, wrapping: the inputs come offset to u8
 * (x + 128) and the frame's corr[j] = 128 * sum_k w[k][j] takes the offset
 * back out, exactly.  Per k-quad the panel's 64 columns x 4 bytes are four
 * contiguous 64-byte loads, each input row one 4-byte broadcast; up to
 * DE_Q_ROWS rows share every weight load.  A single row alternates two sets
 * of accumulators so that dpbusd's latency does not bind.  The
 * dequantisation is the same three float32 operations as the portable
 * kernel's, so the results are bit-identical.
 */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include <string.h>
#include "dispatch.h"
#include "qquantize.inc"

static inline __m512i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static inline void finish(__m512i acc, const int32_t *corr,
                          const float *scale, float sx, float *y,
                          __mmask16 keep)
{
    __m512 v = _mm512_cvtepi32_ps(
        _mm512_sub_epi32(acc, _mm512_loadu_si512(corr)));
    __m512 s = _mm512_mul_ps(_mm512_loadu_ps(scale), _mm512_set1_ps(sx));
    _mm512_mask_storeu_ps(y, keep, _mm512_div_ps(v, s));
}

/* Rows 0..R-1 of the tile; R a constant after inlining, so acc lives in
 * registers. */
static inline __attribute__((always_inline)) void
rows_dot(const int R, size_t kq, const uint8_t *xu, size_t ldx,
         const int8_t *w, __m512i acc[DE_Q_ROWS][4])
{
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm512_setzero_si512();
    for (size_t q = 0; q < kq; q++, w += 4 * DE_Q_PANEL) {
        __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
        __m512i w2 = _mm512_loadu_si512(w + 128), w3 = _mm512_loadu_si512(w + 192);
        for (int r = 0; r < R; r++) {
            __m512i xb = bcast4(xu + r * ldx + 4 * q);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], xb, w0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], xb, w1);
            acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], xb, w2);
            acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], xb, w3);
        }
    }
}

/* One row: even and odd k-quads into separate accumulators. */
static void row1_dot(size_t kq, const uint8_t *xu, const int8_t *w,
                     __m512i acc[DE_Q_ROWS][4])
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    size_t q = 0;
    for (; q + 2 <= kq; q += 2, w += 8 * DE_Q_PANEL) {
        __m512i xa = bcast4(xu + 4 * q), xb = bcast4(xu + 4 * q + 4);
        a0 = _mm512_dpbusd_epi32(a0, xa, _mm512_loadu_si512(w));
        a1 = _mm512_dpbusd_epi32(a1, xa, _mm512_loadu_si512(w + 64));
        a2 = _mm512_dpbusd_epi32(a2, xa, _mm512_loadu_si512(w + 128));
        a3 = _mm512_dpbusd_epi32(a3, xa, _mm512_loadu_si512(w + 192));
        b0 = _mm512_dpbusd_epi32(b0, xb, _mm512_loadu_si512(w + 256));
        b1 = _mm512_dpbusd_epi32(b1, xb, _mm512_loadu_si512(w + 320));
        b2 = _mm512_dpbusd_epi32(b2, xb, _mm512_loadu_si512(w + 384));
        b3 = _mm512_dpbusd_epi32(b3, xb, _mm512_loadu_si512(w + 448));
    }
    if (q < kq) {
        __m512i xa = bcast4(xu + 4 * q);
        a0 = _mm512_dpbusd_epi32(a0, xa, _mm512_loadu_si512(w));
        a1 = _mm512_dpbusd_epi32(a1, xa, _mm512_loadu_si512(w + 64));
        a2 = _mm512_dpbusd_epi32(a2, xa, _mm512_loadu_si512(w + 128));
        a3 = _mm512_dpbusd_epi32(a3, xa, _mm512_loadu_si512(w + 192));
    }
    acc[0][0] = _mm512_add_epi32(a0, b0);
    acc[0][1] = _mm512_add_epi32(a1, b1);
    acc[0][2] = _mm512_add_epi32(a2, b2);
    acc[0][3] = _mm512_add_epi32(a3, b3);
}

static void panel(size_t rows, size_t cols, size_t kq, const uint8_t *xu,
                  size_t ldx, const int8_t *w, const int32_t *corr,
                  const float *scale, const float *sx, float *y, size_t ldy)
{
    __m512i acc[DE_Q_ROWS][4];
    switch (rows) {
    case 1: row1_dot(kq, xu, w, acc); break;
    case 2: rows_dot(2, kq, xu, ldx, w, acc); break;
    case 3: rows_dot(3, kq, xu, ldx, w, acc); break;
    default: rows_dot(4, kq, xu, ldx, w, acc); break;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < 4 && 16 * c < cols; c++) {
            size_t left = cols - 16 * c;
            __mmask16 keep = left >= 16 ? (__mmask16)0xFFFF
                                        : (__mmask16)((1u << left) - 1);
            finish(acc[r][c], corr + 16 * c, scale + 16 * c, sx[r],
                   y + r * ldy + 16 * c, keep);
        }
}

const de_qgemm_kernels_t de_qgemm_vnni = {"avx512-vnni", quantize_rows, panel};
