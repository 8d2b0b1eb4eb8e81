/*
 * gemm_kernels_avx512bf16.c -- de_gemm_bf16 with VDPBF16PS (compiled with
 * -mavx512f ... -mavx512bf16; cpu.c picks it only where the CPU reports
 * AVX512_BF16, CPUID leaf 7 subleaf 1 EAX bit 5).
 *
 * ukernel: MR x NR = 12 x 32 like the float kernel, 24 zmm accumulators,
 * but each instruction takes a k-pair: per pair, 2 loads of packed B (32
 * columns x 2 bf16), 12 dword broadcasts of packed A, 24 VDPBF16PS, i.e.
 * twice the multiply-adds of an FMA per instruction.  Per lane the
 * instruction adds the high product, then the low one, each as one fused
 * multiply-add rounded to nearest with denormal inputs read as zero and a
 * tiny result flushed to zero (Intel SDM; measured so on AMD Zen 4 too),
 * whatever MXCSR says; the panels put k 2q high (frame/gemm_bf16.inc), so
 * the sum runs in k order, as the emulations' do.  C is added once at the
 * end with a plain add, under the caller's MXCSR, as everywhere else.
 */
#include <immintrin.h>
#include <stdint.h>
#include "frame/dispatch.h"
#include "kernels/avx512/tile_store.h"

#define MR 12
#define NR 32
#define MC 132
#define NC 2048

/* The panels are packed by kernels/avx512/ (AVX-512F is enough there),
 * for this same tile. */
void de_bf16_pack_a_pairs(const float *src, size_t sr, size_t sp, size_t len,
                          size_t kc, float *dst);
void de_bf16_pack_b_pairs(const float *src, size_t sr, size_t sp, size_t len,
                          size_t kc, float *dst);

static void ukernel(size_t kc, const float *a_pack, const float *b_pack,
                    float *c, size_t ldc, int accumulate)
{
    const uint32_t *a = (const uint32_t *)a_pack;
    const __m512i *b = (const __m512i *)b_pack;
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (size_t q = 0; q < (kc + 1) / 2; q++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b);
        __m512bh b1 = (__m512bh)_mm512_load_si512(b + 1);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i]);
            c0[i] = _mm512_dpbf16_ps(c0[i], b0, av);
            c1[i] = _mm512_dpbf16_ps(c1[i], b1, av);
        }
        a += MR;
        b += NR / 16;
    }
    store_tile(MR, c0, c1, c, ldc, accumulate);
}

_Static_assert(MR <= DE_GEMM_MAX_MR && NR <= DE_GEMM_MAX_NR &&
               DE_RNG_SEGMENT % NR == 0 && NC % DE_RNG_SEGMENT == 0,
               "microtile outside the frame's contract");

const de_gemm_kernels_t de_gemm_bf16_avx512bf16 = {MR, NR, DE_BF16_KC, MC, NC, ukernel,
                                                   NULL, NULL, de_bf16_pack_a_pairs,
                                                   de_bf16_pack_b_pairs, NULL, NULL, NULL, 1};
