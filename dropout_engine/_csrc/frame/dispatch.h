/*
 * dispatch.h -- internal: the per-ISA kernel tables and the one pointer that
 * selects them (BLIS's "context").  cpu.c fills `de_kt` once; the frames in
 * gemm.c and nn/dense.c call through it, so no `if (avx512)` appears in a loop.
 *
 * Each ISA (a folder kernels/<isa>/) contributes two tables:
 *  - de_gemm_kernels_<isa>  (gemm_kernels_<isa>.c): register-blocked
 *    microkernel(s) and the blocking constants they were tuned for;
 *  - de_elementwise_<isa>   (elementwise_<isa>.c, kernels/elementwise.inc
 *    compiled with each ISA's flags): the tile epilogue and the unfused
 *    element-wise passes.
 */
#ifndef DE_DISPATCH_H
#define DE_DISPATCH_H

#include "engine.h"

/* Columns of one RNG segment: row i, columns [256 s, 256 s + 256) draw from
 * their own xoroshiro128++ lanes seeded from (key, i, s).  GEMM frames must
 * (1) cut thread regions and NC blocks at multiples of this in n, and
 * (2) finish the tiles of a row in increasing column order within a segment.
 * Every NR must divide it. */
#define DE_RNG_SEGMENT 256
#define DE_RNG_LANES 8

/* xoroshiro128++ state of the 8 lanes that serve one row's current segment. */
typedef struct {
    uint64_t s0[DE_RNG_LANES];
    uint64_t s1[DE_RNG_LANES];
} __attribute__((aligned(64))) de_lanes_t;

typedef struct {
    int mr, nr;          /* microtile */
    int kc, mc, nc;      /* cache blocking; nc multiple of DE_RNG_SEGMENT */
    /* c[mr x nr] (row stride ldc) = (accumulate ? c : 0) + a_pack @ b_pack,
     * a_pack: kc columns of mr floats (k-major), b_pack: kc rows of nr floats.
     * Both packed panels are 64-byte aligned. */
    void (*ukernel)(size_t kc, const float *a_pack, const float *b_pack,
                    float *c, size_t ldc, int accumulate);
    /* Small-m path (m <= DE_GEMM_SMALL_M, op(B) = B not transposed, nothing
     * packed): c[m x w] (row stride ldc) = A @ B[:, 0:w], overwriting c.
     * A's element (i, p) is a[i * rsa + p * csa]; B is read row by row.
     * Each element's sum runs over p = 0..k-1 in order, from zero. */
    void (*small_m)(size_t m, size_t w, size_t k, const float *a, size_t rsa,
                    size_t csa, const float *b, size_t ldb, float *c,
                    size_t ldc);
    /* The same with op(B) = B^T (B stored w x k, row stride ldb): dot
     * products of A's rows (a + i * lda, contiguous) with B's rows.  Each sum
     * is split over k in a fixed lane pattern, so it is deterministic. */
    void (*small_m_bt)(size_t m, size_t w, size_t k, const float *a,
                       size_t lda, const float *b, size_t ldb, float *c,
                       size_t ldc);
    /* Packing (gemm_pack.inc): `len` rows x kc columns of a matrix whose
     * element (r, p) is src[r * sr + p * sp] (sr == 1 or sp == 1) into
     * micro-panels of mr (pack_a) or nr (pack_b) rows, k-major, rows past
     * len zero. */
    void (*pack_a)(const float *src, size_t sr, size_t sp, size_t len,
                   size_t kc, float *dst);
    void (*pack_b)(const float *src, size_t sr, size_t sp, size_t len,
                   size_t kc, float *dst);
    /* Optional (NULL: the packed path serves thin outputs too): c[mr x n]
     * (row stride ldc) = (accumulate ? c : 0) + a_pack @ B for
     * n <= DE_GEMM_THIN_N, a_pack as ukernel's, B's rows b + p * ldb.  Each
     * element's arithmetic must equal ukernel's. */
    void (*thin)(size_t kc, size_t n, const float *a_pack, const float *b,
                 size_t ldb, float *c, size_t ldc, size_t mr, int accumulate);
    /* bfloat16 B (weight-only bf16, model.quantize("bfloat16")): small_m
     * with B's elements stored as bf16 (frame/bf16.h), and ukernel with a
     * bf16 b_pack (kc rows of nr bf16).  Each widens B exactly and then does
     * the float kernel's own operations in its order (one template), so
     * every element equals the float kernel's on the widened B. */
    void (*small_m_wbf16)(size_t m, size_t w, size_t k, const float *a,
                         size_t rsa, size_t csa, const uint16_t *b,
                         size_t ldb, float *c, size_t ldc);
    void (*ukernel_wbf16)(size_t kc, const float *a_pack,
                         const uint16_t *b_pack, float *c, size_t ldc,
                         int accumulate);
    /* bfloat16 kernels only (see below): panels hold k-pairs, one 32-bit
     * slot per pair, so a panel row of kc k steps is (kc + 1) / 2 slots. */
    int pairs;
} de_gemm_kernels_t;

/* ------------------------------------------------------------ bfloat16
 * de_gemm_bf16's kernels, a de_gemm_kernels_t with small_m, small_m_bt and
 * thin NULL (bf16 GEMMs always take the packed path, so every element has
 * one arithmetic on every ISA) and kc = DE_BF16_KC on every ISA.
 * pack_a / pack_b round each value to bfloat16 as they pack: x = 0 (sign
 * kept) where |x| < FLT_MIN, else de_bf16_from_f32(x) (frame/gemm_bf16.inc).
 * With pairs, slot (q, r) of a panel holds k = 2q in its high half and
 * 2q + 1 (0 past kc) in its low half; without, the rounded value widened
 * back to float32.  ukernel computes each element as VDPBF16PS does with
 * that layout: acc = 0; for p = 0..kc-1 in order: acc = acc + a_p * b_p,
 * one rounding (to nearest even) per step with tininess detected after
 * rounding and a tiny result flushed to zero of its sign; then one more
 * acc = acc + 0 when kc is odd (the pad); then c = acc or c + acc as a
 * plain IEEE add.  tests/reference.py's gemm_bf16 is this in numpy. */
#define DE_BF16_KC 256
extern const de_gemm_kernels_t de_gemm_bf16_generic;
#ifdef DE_HAVE_AVX2
extern const de_gemm_kernels_t de_gemm_bf16_avx2;
#endif
#ifdef DE_HAVE_AVX512
extern const de_gemm_kernels_t de_gemm_bf16_avx512;      /* emulation */
#endif
#ifdef DE_HAVE_AVX512BF16
extern const de_gemm_kernels_t de_gemm_bf16_avx512bf16;  /* VDPBF16PS */
#endif
/* The bf16 kernels for the selected ISA (set with it by de_isa_set): the
 * AVX-512 path uses VDPBF16PS where the CPU reports AVX512_BF16, unless
 * de_bf16_set_native(0) asked for its emulation. */
extern const de_gemm_kernels_t *de_bk;

#define DE_GEMM_SMALL_M 4
#define DE_GEMM_THIN_N 16
/* Largest microtile the frame's edge-tile scratch holds. */
#define DE_GEMM_MAX_MR 16
#define DE_GEMM_MAX_NR 64

typedef struct {
    /* Finish a tile of the output in place: y = dropout(act(c + bias)).
     * c points at element (i0, j0) of the full m x n output (row stride ldc,
     * n columns per row, used for the mask bit index).  rs holds one lane
     * state per tile row; when j0 % DE_RNG_SEGMENT == 0 the row's lanes are
     * (re)seeded for segment j0 / DE_RNG_SEGMENT before drawing. */
    void (*epilogue)(const de_epilogue_t *ep, size_t n, float *c, size_t ldc,
                     size_t i0, size_t j0, size_t mr, size_t nr,
                     de_lanes_t *rs);
    /* Unfused passes over rows [r0, r1) of an m x n matrix (the frame in
     * dense.c splits rows across threads). */
    void (*bias_act_rows)(size_t r0, size_t r1, size_t n, const float *bias,
                          const de_act_t *act, float *y);
    void (*softmax_rows)(size_t r0, size_t r1, size_t n, float *y);
    /* Dropout over RNG segments [s0, s1) (DE_RNG_SEGMENT columns of a row,
     * numbered row-major), so that one long row can be split too. */
    void (*dropout_segments)(size_t s0, size_t s1, size_t n, const float *x,
                             float *y, uint64_t *mask, const de_dropout_t *d);
    void (*backward_act_rows)(size_t r0, size_t r1, size_t n,
                              const de_act_t *act,
                              const de_dropout_t *drop, const uint64_t *mask,
                              const float *y, const float *z, const float *dy,
                              float *dz);
} de_elementwise_t;

typedef struct {
    int isa;
    const de_gemm_kernels_t *gemm;
    const de_elementwise_t *ew;
} de_kernel_table_t;

extern const de_kernel_table_t *de_kt;

extern const de_gemm_kernels_t de_gemm_kernels_generic;
extern const de_elementwise_t de_elementwise_generic;
#ifdef DE_HAVE_AVX2
extern const de_gemm_kernels_t de_gemm_kernels_avx2;
extern const de_elementwise_t de_elementwise_avx2;
#endif
#ifdef DE_HAVE_AVX512
extern const de_gemm_kernels_t de_gemm_kernels_avx512;
extern const de_elementwise_t de_elementwise_avx512;
#endif

/* ------------------------------------------------------------ int8 Dense
 * The int8 panel kernels (qgemm_kernels_<isa>.c) behind nn/qdense.c.  Weights
 * come packed in panels of DE_Q_PANEL output columns: panel p, k-quad q,
 * column j, byte t at ((p * kq + q) * DE_Q_PANEL + j) * 4 + t holds kernel
 * element (4q + t, 64p + j), zero-padded past k and n.  Inputs arrive
 * quantized and offset to unsigned (int8 + 128), rows of 4 * kq bytes.
 */
#define DE_Q_PANEL 64
#define DE_Q_ROWS 4      /* rows of a batch that share each weight load */

typedef struct {
    const char *name;
    /* Rows [r0, r1) of x [m x k] quantised as Keras's abs_max_quantize:
     * sx[i] = 127 / (max|x[i]| + 1e-7), xu[i * ldx + p] = 128 +
     * clip(round_half_even(x[i][p] * sx[i]), +-127), padding up to ldx set
     * to 128 (zero).  A row with Inf or NaN gets sx = NaN, values 128. */
    void (*quantize)(size_t r0, size_t r1, size_t k, size_t ldx,
                     const float *x, uint8_t *xu, float *sx);
    /* For rows r < rows (1..DE_Q_ROWS) and columns j < cols (1..64) of one
     * panel w:  acc = sum_p xu[r * ldx + p] * w[p / 4][j][p % 4] - corr[j]
     * in wrapping 32-bit arithmetic (exact while the true sum fits), then
     *   y[r * ldy + j] = (float)acc / (scale[j] * sx[r])
     * as three IEEE float32 operations in that order (Keras's).  corr and
     * scale hold 64 entries (the frame pads them); y's other columns are
     * not written. */
    void (*panel)(size_t rows, size_t cols, size_t kq, const uint8_t *xu,
                  size_t ldx, const int8_t *w, const int32_t *corr,
                  const float *scale, const float *sx, float *y, size_t ldy);
} de_qgemm_kernels_t;

extern const de_qgemm_kernels_t de_qgemm_generic;
#ifdef DE_HAVE_AVX2
extern const de_qgemm_kernels_t de_qgemm_avx2;
#endif
#ifdef DE_HAVE_VNNI
extern const de_qgemm_kernels_t de_qgemm_vnni;
#endif
/* The int8 kernels for the selected ISA (set with it by de_isa_set): the
 * AVX-512 path uses VNNI only where the CPU reports AVX512_VNNI. */
extern const de_qgemm_kernels_t *de_qk;

/* Threads the engine may use now (>= 1). */
int de_threads(void);

/* Run the statement on a team of `nt` threads (a variable of that name must be in
 * scope), or inline when nt <= 1.  Why not just `if (nt > 1)` on the pragma:
 * libgomp still builds (mallocs) a one-thread team for a parallel region
 * whose if-clause is false, which cost a third of a batch-1 W2 predict.
 * Inside, DE_TEAM_ID() / DE_TEAM_SIZE() are this member's index and the
 * team's size: 0 of 1 inline, whatever OpenMP says of the calling thread
 * (an embedding application may call us from its own parallel region, where
 * omp_get_thread_num() is its thread's number: taken for ours, that skipped
 * work).  A team may be smaller than asked for, so work is dealt with a
 * stride, never by assuming one item per requested thread. */
#ifdef _OPENMP
#include <omp.h>
#define DE_TEAM_ID_NOW_ omp_get_thread_num()
#define DE_TEAM_SIZE_NOW_ omp_get_num_threads()
#else
#define DE_TEAM_ID_NOW_ 0
#define DE_TEAM_SIZE_NOW_ 1
#endif
#define DE_TEAM_ID() de_team_id_
#define DE_TEAM_SIZE() de_team_size_

#define DE_PARALLEL(...)                                                     \
    do {                                                                     \
        if (nt <= 1) {                                                       \
            const int de_team_id_ __attribute__((unused)) = 0;              \
            const int de_team_size_ __attribute__((unused)) = 1;            \
            __VA_ARGS__;                                                     \
        } else {                                                             \
            _Pragma("omp parallel num_threads(nt)") {                       \
                const int de_team_id_ __attribute__((unused)) =             \
                    DE_TEAM_ID_NOW_;                                         \
                const int de_team_size_ __attribute__((unused)) =           \
                    DE_TEAM_SIZE_NOW_;                                       \
                __VA_ARGS__;                                                 \
            }                                                                \
        }                                                                    \
    } while (0)

#endif
