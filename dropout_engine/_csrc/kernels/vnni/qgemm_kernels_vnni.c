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
 * DE_Q_ROWS rows share every weight load.  The dequantisation is the same
 * three float32 operations as the portable kernel's, so the results are
 * bit-identical.
 */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include <string.h>
#include "frame/dispatch.h"
#include "kernels/qquantize.inc"

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

/* Rows 0..R-1 and the first NV 16-column vectors of the tile (NV = 1 when
 * the panel has at most 16 columns: a 10-class output layer then reads one
 * cache line per k-quad, not four); R and NV are constants after inlining,
 * so acc lives in registers. */
static inline __attribute__((always_inline)) void
rows_dot(const int R, const int NV, size_t kq, const uint8_t *xu, size_t ldx,
         const int8_t *w, __m512i acc[DE_Q_ROWS][4])
{
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NV; c++)
            acc[r][c] = _mm512_setzero_si512();
    for (size_t q = 0; q < kq; q++, w += 4 * DE_Q_PANEL) {
        __m512i wv[4];
        for (int c = 0; c < NV; c++)
            wv[c] = _mm512_loadu_si512(w + 64 * c);
        for (int r = 0; r < R; r++) {
            __m512i xb = bcast4(xu + r * ldx + 4 * q);
            for (int c = 0; c < NV; c++)
                acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], xb, wv[c]);
        }
    }
}

/* One row: even and odd k-quads into separate accumulators, so that
 * dpbusd's latency does not bind. */
static inline __attribute__((always_inline)) void
row1_dot(const int NV, size_t kq, const uint8_t *xu, const int8_t *w,
         __m512i acc[DE_Q_ROWS][4])
{
    __m512i a[4], b[4];
    for (int c = 0; c < NV; c++)
        a[c] = b[c] = _mm512_setzero_si512();
    size_t q = 0;
    for (; q + 2 <= kq; q += 2, w += 8 * DE_Q_PANEL) {
        __m512i xa = bcast4(xu + 4 * q), xb = bcast4(xu + 4 * q + 4);
        for (int c = 0; c < NV; c++) {
            a[c] = _mm512_dpbusd_epi32(a[c], xa, _mm512_loadu_si512(w + 64 * c));
            b[c] = _mm512_dpbusd_epi32(b[c], xb,
                                       _mm512_loadu_si512(w + 256 + 64 * c));
        }
    }
    if (q < kq) {
        __m512i xa = bcast4(xu + 4 * q);
        for (int c = 0; c < NV; c++)
            a[c] = _mm512_dpbusd_epi32(a[c], xa, _mm512_loadu_si512(w + 64 * c));
    }
    for (int c = 0; c < NV; c++)
        acc[0][c] = _mm512_add_epi32(a[c], b[c]);
}

static void panel(size_t rows, size_t cols, size_t kq, const uint8_t *xu,
                  size_t ldx, const int8_t *w, const int32_t *corr,
                  const float *scale, const float *sx, float *y, size_t ldy)
{
    __m512i acc[DE_Q_ROWS][4];
    if (cols <= 16) {
        switch (rows) {
        case 1: row1_dot(1, kq, xu, w, acc); break;
        case 2: rows_dot(2, 1, kq, xu, ldx, w, acc); break;
        case 3: rows_dot(3, 1, kq, xu, ldx, w, acc); break;
        default: rows_dot(4, 1, kq, xu, ldx, w, acc); break;
        }
    } else {
        switch (rows) {
        case 1: row1_dot(4, kq, xu, w, acc); break;
        case 2: rows_dot(2, 4, kq, xu, ldx, w, acc); break;
        case 3: rows_dot(3, 4, kq, xu, ldx, w, acc); break;
        default: rows_dot(4, 4, kq, xu, ldx, w, acc); break;
        }
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
