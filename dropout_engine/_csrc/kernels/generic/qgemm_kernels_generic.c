/*
 * qgemm_kernels_generic.c -- the portable int8 panel kernel (see dispatch.h
 * for the packed layout and the contract), baseline flags only; gcc
 * vectorises the 64-column loops with what the baseline offers.
 *
 * Exactness: the dot products are integer sums in wrapping uint32 (so no
 * overflow is undefined, and any summation order gives the same bits), and
 * the dequantisation is the same three float32 operations as every other
 * ISA's kernel, so all paths agree bit for bit.
 */
#pragma GCC optimize("fp-contract=off")
#include <string.h>
#include "frame/dispatch.h"
#include "kernels/qquantize.inc"

static void panel(size_t rows, size_t cols, size_t kq,
                  const uint8_t *restrict xu, size_t ldx,
                  const int8_t *restrict w, const int32_t *restrict corr,
                  const float *restrict scale, const float *restrict sx,
                  float *restrict y, size_t ldy)
{
    uint32_t acc[DE_Q_ROWS][DE_Q_PANEL] __attribute__((aligned(64)));
    memset(acc, 0, sizeof acc);
    for (size_t q = 0; q < kq; q++, w += 4 * DE_Q_PANEL)
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *xr = xu + r * ldx + 4 * q;
            uint32_t x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
            for (size_t j = 0; j < cols; j++)
                acc[r][j] += x0 * (uint32_t)(int32_t)w[4 * j]
                           + x1 * (uint32_t)(int32_t)w[4 * j + 1]
                           + x2 * (uint32_t)(int32_t)w[4 * j + 2]
                           + x3 * (uint32_t)(int32_t)w[4 * j + 3];
        }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            int32_t a = (int32_t)(acc[r][j] - (uint32_t)corr[j]);
            y[r * ldy + j] = (float)a / (scale[j] * sx[r]);
        }
}

const de_qgemm_kernels_t de_qgemm_generic = {"generic", quantize_rows, panel};
