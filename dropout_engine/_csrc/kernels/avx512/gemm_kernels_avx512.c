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
#include "kernels/avx512/tile_store.h"

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
    store_tile(MR, c0, c1, c, ldc, accumulate);
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

/* de_gemm_bf16's emulation on this ISA: the float kernel above on panels
 * rounded to bfloat16, under FTZ/DAZ (frame/gemm_bf16.inc). */
#define BF16_WIDENED
#define BF16_FTZ_UKERNEL
#define BF16_PAIRS        /* for the VDPBF16PS kernel's panels, below */
#include "frame/gemm_bf16.inc"

const de_gemm_kernels_t de_gemm_bf16_avx512 = {MR, NR, DE_BF16_KC, MC, NC, ukernel_bf16,
                                             NULL, NULL, pack_a_bf16, pack_b_bf16, NULL,
                                             NULL, NULL, 0};

/* The k-pair panels of the VDPBF16PS kernel (kernels/avx512bf16/, the same
 * 12 x 32 tile): packing needs only AVX-512F, and lives here beside
 * pack_t16, which it reuses.  Bits as frame/gemm_bf16.inc's bf16_bits, 16
 * lanes at a time; ragged panels go through its portable pack_pairs. */

static inline __m512i v_bf16_bits(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x);
    const __m512i mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __mmask16 tiny = _mm512_cmplt_epu32_mask(mag, _mm512_set1_epi32(0x00800000));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(mag, _mm512_set1_epi32(0x7f800000));
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
    r = _mm512_mask_and_epi32(r, tiny, u, _mm512_set1_epi32((int)0x80000000u));
    return _mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u));
}

/* Rows 2q and 2q + 1 (lo NULL: zeros) of `lanes` columns -> one slot row. */
static inline void pair_rows(const float *hi, const float *lo, __mmask16 m,
                             uint32_t *dst)
{
    __m512i h = v_bf16_bits(_mm512_maskz_loadu_ps(m, hi));
    __m512i l = lo ? _mm512_srli_epi32(v_bf16_bits(_mm512_maskz_loadu_ps(m, lo)), 16)
                   : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(dst, m, _mm512_or_si512(h, l));
}

/* Full panels of a copy (sr == 1), 4 pairs (8 source rows) at a time
 * across all panels, as pack_panels walks them; returns the panels done. */
static inline __attribute__((always_inline)) size_t
pairs_copy(size_t R, const float *src, size_t sp, size_t len, size_t kc,
           uint32_t *dst)
{
    const size_t kq = (kc + 1) / 2, full = len / R;
    for (size_t q0 = 0; q0 < kq; q0 += 4) {
        size_t qe = q0 + 4 < kq ? q0 + 4 : kq;
        for (size_t f = 0; f < full; f++)
            for (size_t q = q0; q < qe; q++)
                for (size_t v = 0; v < R; v += 16) {
                    const float *s = src + f * R + v + 2 * q * sp;
                    __mmask16 m = R - v >= 16 ? 0xffff : (__mmask16)((1u << (R - v)) - 1);
                    pair_rows(s, 2 * q + 1 < kc ? s + sp : NULL, m,
                              dst + f * R * kq + q * R + v);
                }
    }
    return full;
}

/* Panels of a transpose (sp == 1): each row's pairs into a slot row of t
 * (the high half of each 64-bit lane's even float, the low its odd one),
 * then pack_t16's register transpose. */
static inline __attribute__((always_inline)) void
pairs_transposed(size_t R, const float *src, size_t sr, size_t len, size_t kc,
                 uint32_t *dst)
{
    const size_t kq = (kc + 1) / 2, ke = kc / 2;
    uint32_t t[NR * (DE_BF16_KC / 2)] __attribute__((aligned(64)));
    const __m512i keep_hi = _mm512_set1_epi64(0xffff0000);
    for (size_t r0 = 0; r0 < len; r0 += R, dst += R * kq) {
        size_t rr = len - r0 < R ? len - r0 : R;
        for (size_t r = 0; r < rr; r++) {
            const float *row = src + (r0 + r) * sr;
            uint32_t *tr = t + r * kq;
            size_t q = 0;
            for (; q + 16 <= ke; q += 16) {
                __m512i b0 = v_bf16_bits(_mm512_loadu_ps(row + 2 * q));
                __m512i b1 = v_bf16_bits(_mm512_loadu_ps(row + 2 * q + 16));
                b0 = _mm512_or_si512(_mm512_and_si512(b0, keep_hi), _mm512_srli_epi64(b0, 48));
                b1 = _mm512_or_si512(_mm512_and_si512(b1, keep_hi), _mm512_srli_epi64(b1, 48));
                _mm256_storeu_si256((__m256i *)(tr + q), _mm512_cvtepi64_epi32(b0));
                _mm256_storeu_si256((__m256i *)(tr + q + 8), _mm512_cvtepi64_epi32(b1));
            }
            for (; q < kq; q++)
                tr[q] = bf16_pair(row[2 * q], 2 * q + 1 < kc ? row[2 * q + 1] : 0.f);
        }
        pack_transposed((const float *)t, kq, rr, kq, R, (float *)dst);
        for (size_t q = 0; rr < R && q < kq; q++)
            memset(dst + q * R + rr, 0, (R - rr) * sizeof *dst);
    }
}

static inline __attribute__((always_inline)) void
pack_pairs_avx512(size_t R, const float *src, size_t sr, size_t sp, size_t len,
                  size_t kc, float *dst)
{
    uint32_t *d = (uint32_t *)dst;
    if (sr != 1) {
        pairs_transposed(R, src, sr, len, kc, d);
        return;
    }
    size_t full = pairs_copy(R, src, sp, len, kc, d);
    pack_pairs(R, src + full * R, sr, sp, len - full * R, kc,
               d + full * R * ((kc + 1) / 2));
}

void de_bf16_pack_a_pairs(const float *src, size_t sr, size_t sp, size_t len,
                          size_t kc, float *dst)
{
    pack_pairs_avx512(MR, src, sr, sp, len, kc, dst);
}

void de_bf16_pack_b_pairs(const float *src, size_t sr, size_t sp, size_t len,
                          size_t kc, float *dst)
{
    pack_pairs_avx512(NR, src, sr, sp, len, kc, dst);
}
