/*
 * gemm.c -- the GEMM frame (BLIS-style): packing, blocking, threads, epilogue.
 * Portable C shared by every ISA; the per-ISA microkernels and their blocking
 * constants come only through de_kt->gemm (kernels/<isa>/gemm_kernels_<isa>.c,
 * which also compile the frame's packing, small-m and thin loops, the
 * gemm_*.inc beside this file, with their ISA's flags and tile).
 *
 * Packed path.  The output is cut into one rectangular region per thread
 * (rows at MR multiples, columns at multiples of col_unit, grid chosen by
 * a cost model); each thread then runs the classic loop nest on its region
 * with its own buffers, so no barrier is ever needed:
 *   jc (NC columns) -> pc (KC of k) -> pack B -> ic (MC rows) -> pack A
 *   -> jr (NR) -> ir (MR) -> microkernel.
 * op(A) is packed into MR-row micro-panels (k-major), op(B) into NR-column
 * micro-panels (k-major); transposes are taken by the packing loops.  Edge
 * tiles run the same microkernel into an aligned scratch tile whose valid part
 * is then stored, so every element sees exactly the same arithmetic.
 *
 * Determinism: every element's sum is "for each KC block in order: acc = sum
 * of its products in order from zero; c = c + acc" (c = acc for the first
 * block without accumulate).  KC depends on nothing but the ISA, so results
 * are bit-identical for any thread count and any tile position.
 *
 * Epilogue contract (dispatch.h): called after the last KC block of a tile,
 * while the tile is in L1.  When it draws dropout bits, regions and NC
 * blocks start at DE_RNG_SEGMENT multiples (col_unit; otherwise a cache
 * line of columns is enough and balances threads better), and jr runs
 * outside ir, so the tiles of a row are finished in increasing column order
 * within a segment; rs holds one lane state per row of the current MC block.
 *
 * Small-m path (m <= DE_GEMM_SMALL_M, batch-1 inference): nothing packed; B
 * is streamed row by row (or, transposed, as dot products along its rows);
 * threads split the columns at col_unit multiples.
 *
 * Thin path (n <= DE_GEMM_THIN_N, m > DE_GEMM_SMALL_M: a classifier's
 * output layer and its weight gradient), for ISAs whose NR is wide: at
 * n = 10 a 32-wide micro-panel is two-thirds padding.  A is packed as
 * above; the kernel makes the MR rows of a tile its vector lanes and keeps
 * one accumulator per output column, with the same fused multiply-adds in
 * the same order as the microkernel, so results are bit-identical to the
 * packed path's (and batch-size invariant wherever that one is).
 *
 * Prepacked B (inference weights, de_gemm_pack_b): all of B packed once,
 * KC block by KC block, each block's NR-column panels in order across the
 * whole n.  Thread regions and NC blocks start at NR multiples (col_unit
 * and NC are multiples of every NR), so the panels packed_region would
 * build for block (pc, jc) are exactly the run at bp + pc * round_up(n, NR)
 * + jc * kc: the same floats, the same microkernel calls, the same sums.
 *
 * bfloat16 B (weight-only bf16, de_gemm_wbf16): the same paths with B's
 * elements stored as bf16 (frame/bf16.h), packed into bf16 panels of the
 * same layout (half the bytes), widened exactly in the kernels' registers
 * (small_m_wbf16, ukernel_wbf16: the float kernels' own templates) or, for
 * the thin path, into the workspace per KC block.  Every element thus sees
 * the float path's arithmetic on the widened values, bit for bit.
 *
 * Hook (de_gemm_hooked): the frame hands each finished part of C to the
 * caller's function (the weight-gradient GEMM's optimizer update,
 * nn/optim.c) on the thread that finished it, while it is in cache: in the
 * packed path a band of MR rows of an (MC x NC) block after its last KC
 * block (the block is then run band by band, jr inside ir; with one KC
 * block the sums go to a band of scratch, never to C), in the thin path a
 * tile, in the small-m path a thread's columns.
 *
 * Memory: one 64-byte-aligned workspace per thread (static __thread), grown
 * on demand and reused, so steady-state calls allocate nothing; freed when
 * its thread exits.
 */
#include <stdlib.h>
#include <string.h>
#include "frame/bf16.h"
#include "frame/dispatch.h"

/* Multiply-adds below which a second thread costs more than it saves. */
#define MIN_MACS_PER_THREAD (1u << 17)
/* Cost of packing one element, in multiply-adds of the microkernel (a
 * vector FMA does 16 of those; packing moves one element at a time). */
#define PACK_WEIGHT 8
/* Column granularity of thread regions when no dropout bits are drawn: a
 * cache line, and a multiple of every NR. */
#define COL_UNIT 64

typedef struct {
    int ta, tb;
    size_t m, n, k;
    const float *a, *b;
    size_t lda, ldb, ldc;
    float *c;
    int accumulate;
    const de_epilogue_t *ep;
    const de_kernel_table_t *kt;   /* read once per call */
    size_t col_unit;               /* thread regions start at multiples */
    const float *bp;               /* op(B) prepacked for kt, or NULL */
    const uint16_t *b16;           /* bf16 B (b unused, tb == 0), or NULL */
    const uint16_t *bp16;          /* b16 prepacked for kt, or NULL */
    const de_gemm_hook_t *done;    /* called on each finished block, or NULL */
} gemm_t;

static size_t min_sz(size_t x, size_t y) { return x < y ? x : y; }
static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* ------------------------------------------------------------ workspace */
static __thread void *ws_ptr = NULL;
static __thread size_t ws_bytes = 0;

#ifdef _WIN32
static void ws_register(void *p) { (void)p; }
#else
/* A pthread key whose destructor frees a thread's workspace when the thread
 * exits (Python threads that call predict come and go). */
#include <pthread.h>
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static void ws_make_key(void) { pthread_key_create(&ws_key, free); }
static void ws_register(void *p)
{
    pthread_once(&ws_once, ws_make_key);
    pthread_setspecific(ws_key, p);
}
#endif

/* This thread's workspace of at least `bytes` (64-byte aligned), or NULL. */
static void *workspace(size_t bytes)
{
    if (bytes <= ws_bytes)
        return ws_ptr;
    free(ws_ptr);
    ws_bytes = 0;
    bytes = round_up(bytes, 4096);
    ws_ptr = aligned_alloc(64, bytes);
    if (ws_ptr)
        ws_bytes = bytes;
    ws_register(ws_ptr);
    return ws_ptr;
}

/* ------------------------------------------------------------ packing */
/* Rows [i0, i0+mc) x columns [p0, p0+kc) of op(A). */
static void pack_a(const gemm_t *g, size_t i0, size_t mc, size_t p0, size_t kc,
                   float *dst)
{
    size_t sr = g->ta ? 1 : g->lda, sp = g->ta ? g->lda : 1;
    g->kt->gemm->pack_a(g->a + i0 * sr + p0 * sp, sr, sp, mc, kc, dst);
}

/* bf16 B's rows [0, kc) x columns [0, len) (row stride ldb) into
 * micro-panels of NR columns, k-major, columns past len zero: pack_b's
 * layout in bf16. */
static void pack_b16(const uint16_t *src, size_t ldb, size_t len, size_t kc,
                     size_t NR, uint16_t *dst)
{
    for (size_t j0 = 0; j0 < len; j0 += NR, dst += kc * NR) {
        size_t w = min_sz(NR, len - j0);
        for (size_t p = 0; p < kc; p++) {
            memcpy(dst + p * NR, src + p * ldb + j0, w * sizeof *dst);
            memset(dst + p * NR + w, 0, (NR - w) * sizeof *dst);
        }
    }
}

/* Rows [p0, p0+kc) x columns [j0, j0+nc) of op(B) (bf16 panels for b16). */
static void pack_b(const gemm_t *g, size_t p0, size_t kc, size_t j0, size_t nc,
                   void *dst)
{
    if (g->b16) {
        pack_b16(g->b16 + p0 * g->ldb + j0, g->ldb, nc, kc,
                 (size_t)g->kt->gemm->nr, dst);
        return;
    }
    size_t sr = g->tb ? g->ldb : 1, sp = g->tb ? 1 : g->ldb;
    g->kt->gemm->pack_b(g->b + j0 * sr + p0 * sp, sr, sp, nc, kc, dst);
}

/* ------------------------------------------------------------ packed path */
/* The microkernel on B's packed panel at element offset `at` of bp (bf16
 * panels when the call's B is bf16). */
static inline void ukernel(const gemm_t *g, size_t kc, const float *a,
                           const void *bp, size_t at, float *c, size_t ldc,
                           int acc)
{
    if (g->b16)
        g->kt->gemm->ukernel_wbf16(kc, a, (const uint16_t *)bp + at, c, ldc, acc);
    else
        g->kt->gemm->ukernel(kc, a, (const float *)bp + at, c, ldc, acc);
}

/* One micro-tile: c[mr x nr] (row stride ldc) = (acc ? c : 0) + a @ B's
 * panel at `at`.  An edge tile runs the full microkernel into an aligned
 * scratch tile whose valid part is then stored, so its arithmetic is a
 * full tile's. */
static void micro_tile(const gemm_t *g, size_t kc, const float *a,
                       const void *bp, size_t at, float *c, size_t ldc,
                       size_t mr, size_t nr, int acc)
{
    const de_gemm_kernels_t *gk = g->kt->gemm;
    const size_t NR = (size_t)gk->nr;
    float tile[DE_GEMM_MAX_MR * DE_GEMM_MAX_NR] __attribute__((aligned(64)));
    if (mr == (size_t)gk->mr && nr == NR) {
        ukernel(g, kc, a, bp, at, c, ldc, acc);
        return;
    }
    ukernel(g, kc, a, bp, at, tile, NR, 0);
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++)
            c[i * ldc + j] = acc ? c[i * ldc + j] + tile[i * NR + j]
                                 : tile[i * NR + j];
}

/* All micro-tiles of one (MC x NC) block for KC block pc. */
static void macro_kernel(const gemm_t *g, size_t ic, size_t mc, size_t jc,
                         size_t nc, size_t pc, size_t kc, const float *ap,
                         const void *bp, de_lanes_t *rows_state)
{
    const de_gemm_kernels_t *gk = g->kt->gemm;
    const size_t MR = (size_t)gk->mr, NR = (size_t)gk->nr, ldc = g->ldc;
    const int acc = g->accumulate || pc > 0;
    const int last = pc + kc >= g->k;
    const size_t ks = gk->pairs ? (kc + 1) / 2 : kc;   /* slots per k row */

    for (size_t jr = 0; jr < nc; jr += NR) {
        size_t nr = min_sz(NR, nc - jr);
        for (size_t ir = 0; ir < mc; ir += MR) {
            size_t mr = min_sz(MR, mc - ir);
            float *c = g->c + (ic + ir) * ldc + jc + jr;
            micro_tile(g, kc, ap + ir * ks, bp, jr * ks, c, ldc, mr, nr, acc);
            if (last && g->ep)
                g->kt->ew->epilogue(g->ep, g->n, c, ldc, ic + ir, jc + jr, mr,
                                    nr, rows_state + ir);
        }
    }
}

/* The same block for de_gemm_hooked: bands of MR rows across the block's
 * nc columns (jr inside ir), each handed to the hook as soon as it is
 * final, while it is in L1.  band (non-NULL when all of k is one KC block,
 * MR x ldb floats of this thread's workspace) takes the band's sums
 * instead of C, which is then never written: the sums exist only for the
 * hook, and a gradient that only feeds an update never goes to memory. */
static void macro_kernel_hooked(const gemm_t *g, size_t ic, size_t mc,
                                size_t jc, size_t nc, size_t pc, size_t kc,
                                const float *ap, const void *bp, float *band,
                                size_t ldb)
{
    const de_gemm_kernels_t *gk = g->kt->gemm;
    const size_t MR = (size_t)gk->mr, NR = (size_t)gk->nr;
    const size_t ks = gk->pairs ? (kc + 1) / 2 : kc;   /* slots per k row */
    const int acc = pc > 0, last = pc + kc >= g->k;

    for (size_t ir = 0; ir < mc; ir += MR) {
        size_t mr = min_sz(MR, mc - ir);
        float *c = band ? band : g->c + (ic + ir) * g->ldc + jc;
        size_t ld = band ? ldb : g->ldc;
        for (size_t jr = 0; jr < nc; jr += NR)
            micro_tile(g, kc, ap + ir * ks, bp, jr * ks, c + jr, ld, mr,
                       min_sz(NR, nc - jr), acc);
        if (last)
            g->done->fn(g->done->ctx, c, ld, ic + ir, ic + ir + mr, jc, jc + nc);
    }
}

/* The whole loop nest on rows [i0, i1) x columns [j0, j1) of C. */
static int packed_region(const gemm_t *g, size_t i0, size_t i1, size_t j0,
                         size_t j1)
{
    const de_gemm_kernels_t *gk = g->kt->gemm;
    const size_t MR = (size_t)gk->mr, NR = (size_t)gk->nr;
    const size_t KC = (size_t)gk->kc, MC = (size_t)gk->mc, NC = (size_t)gk->nc;
    if (i0 >= i1 || j0 >= j1)
        return DE_OK;
    size_t kc_max = min_sz(KC, g->k);
    size_t mc_max = round_up(min_sz(MC, i1 - i0), MR);
    size_t nc_max = round_up(min_sz(NC, j1 - j0), NR);
    size_t a_bytes = round_up(mc_max * kc_max * sizeof(float), 64);
    size_t b_bytes = g->bp || g->bp16 ? 0
        : round_up(nc_max * kc_max * (g->b16 ? 2 : sizeof(float)), 64);
    size_t r_bytes = g->ep ? mc_max * sizeof(de_lanes_t) : 0;
    /* a hooked GEMM whose k is one KC block: its bands' scratch */
    size_t band_bytes = g->done && g->k <= KC
        ? round_up(MR * nc_max * sizeof(float), 64) : 0;
    size_t npad = round_up(g->n, NR);
    char *ws = workspace(a_bytes + b_bytes + r_bytes + band_bytes);
    if (!ws)
        return DE_ENOMEM;
    float *ap = (float *)ws;
    void *bp = ws + a_bytes;
    de_lanes_t *rows_state = (de_lanes_t *)(ws + a_bytes + b_bytes);
    float *band = band_bytes ? (float *)(ws + a_bytes + b_bytes + r_bytes) : NULL;

    for (size_t jc = j0; jc < j1; jc += NC) {
        size_t nc = min_sz(NC, j1 - jc);
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = min_sz(KC, g->k - pc);
            const void *bpc = bp;
            if (g->bp)
                bpc = g->bp + pc * npad + jc * kc;
            else if (g->bp16)
                bpc = g->bp16 + pc * npad + jc * kc;
            else
                pack_b(g, pc, kc, jc, nc, bp);
            for (size_t ic = i0; ic < i1; ic += MC) {
                size_t mc = min_sz(MC, i1 - ic);
                pack_a(g, ic, mc, pc, kc, ap);
                if (g->done)
                    macro_kernel_hooked(g, ic, mc, jc, nc, pc, kc, ap, bpc,
                                        band, nc_max);
                else
                    macro_kernel(g, ic, mc, jc, nc, pc, kc, ap, bpc, rows_state);
            }
        }
    }
    return DE_OK;
}

/* Part `r` of `parts` of [0, units) split as evenly as possible. */
static size_t split_at(size_t units, size_t parts, size_t r)
{
    return units * r / parts;
}

/* Estimated time of the slowest region (in multiply-adds / k) when the
 * threads form a tm x tn grid; 0 if some thread would get nothing. */
static size_t grid_cost(const gemm_t *g, size_t tm, size_t tn)
{
    const size_t MR = (size_t)g->kt->gemm->mr, NR = (size_t)g->kt->gemm->nr;
    size_t mtiles = (g->m + MR - 1) / MR;
    size_t segs = (g->n + g->col_unit - 1) / g->col_unit;
    if (mtiles < tm || segs < tn)
        return 0;
    size_t rows = ((mtiles + tm - 1) / tm) * MR;
    size_t cols = min_sz(round_up(g->n, NR), ((segs + tn - 1) / tn) * g->col_unit);
    rows = min_sz(rows, round_up(g->m, MR));
    size_t nblocks = (cols + g->kt->gemm->nc - 1) / g->kt->gemm->nc;
    return rows * cols + PACK_WEIGHT * (rows * nblocks
                                        + (g->bp || g->bp16 ? 0 : cols));
}

static int packed(const gemm_t *g, int nthreads)
{
    size_t best_tm = 1, best_tn = 1, best = grid_cost(g, 1, 1);
    for (size_t tn = 1; tn <= (size_t)nthreads; tn++) {
        size_t tm = (size_t)nthreads / tn, cost = grid_cost(g, tm, tn);
        if (tm * tn == (size_t)nthreads && cost && cost < best) {
            best = cost;
            best_tm = tm;
            best_tn = tn;
        }
    }
    const size_t MR = (size_t)g->kt->gemm->mr;
    size_t mtiles = (g->m + MR - 1) / MR;
    size_t segs = (g->n + g->col_unit - 1) / g->col_unit;
    int nt = (int)(best_tm * best_tn), rc = DE_OK;

    DE_PARALLEL({
        for (int t = DE_TEAM_ID(); t < nt; t += DE_TEAM_SIZE()) {
            size_t r = (size_t)t / best_tn, s = (size_t)t % best_tn;
            size_t i0 = min_sz(g->m, split_at(mtiles, best_tm, r) * MR);
            size_t i1 = min_sz(g->m, split_at(mtiles, best_tm, r + 1) * MR);
            size_t j0 = min_sz(g->n, split_at(segs, best_tn, s) * g->col_unit);
            size_t j1 = min_sz(g->n, split_at(segs, best_tn, s + 1) * g->col_unit);
            if (packed_region(g, i0, i1, j0, j1) != DE_OK) {
                _Pragma("omp atomic write") rc = DE_ENOMEM;
            }
        }
    });
    return rc;
}

/* ------------------------------------------------------------ small-m path */
/* Columns [j0, j1) of C for m <= DE_GEMM_SMALL_M rows, B unpacked.  With
 * B transposed the kernel takes dot products of contiguous rows, so a
 * transposed A's m rows are first gathered (m * k floats).  The kernel
 * rewrites its output rows on every pass over B, so it works in this
 * thread's aligned workspace and C is stored once: writing C directly made
 * two threads whose columns meet inside a cache line (C not 64-byte
 * aligned) fight over that line, 2x slower at 4 x 1024 x 256. */
static int small_region(const gemm_t *g, size_t j0, size_t j1)
{
    const size_t m = g->m, k = g->k, w = j1 - j0;
    if (j0 >= j1)
        return DE_OK;
    size_t t_bytes = round_up(m * w * sizeof(float), 64);
    size_t r_bytes = g->ep ? m * sizeof(de_lanes_t) : 0;
    size_t a_bytes = g->tb && g->ta ? m * k * sizeof(float) : 0;
    char *ws = workspace(t_bytes + r_bytes + a_bytes + 64);
    if (!ws)
        return DE_ENOMEM;
    float *c = g->c + j0, *t = (float *)ws;
    if (g->tb) {
        const float *a = g->a;
        size_t lda = g->lda;
        if (g->ta) {
            float *ac = (float *)(ws + t_bytes + r_bytes);
            for (size_t p = 0; p < k; p++)
                for (size_t i = 0; i < m; i++)
                    ac[i * k + p] = g->a[p * g->lda + i];
            a = ac;
            lda = k;
        }
        g->kt->gemm->small_m_bt(m, w, k, a, lda, g->b + j0 * g->ldb, g->ldb,
                                t, w);
    } else {
        size_t rsa = g->ta ? 1 : g->lda, csa = g->ta ? g->lda : 1;
        if (g->b16)
            g->kt->gemm->small_m_wbf16(m, w, k, g->a, rsa, csa, g->b16 + j0,
                                      g->ldb, t, w);
        else
            g->kt->gemm->small_m(m, w, k, g->a, rsa, csa, g->b + j0, g->ldb,
                                 t, w);
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++)
            c[i * g->ldc + j] = g->accumulate ? c[i * g->ldc + j] + t[i * w + j]
                                              : t[i * w + j];
    if (g->ep) {
        de_lanes_t *rs = (de_lanes_t *)(ws + t_bytes);
        for (size_t j = j0; j < j1; j += DE_RNG_SEGMENT)
            g->kt->ew->epilogue(g->ep, g->n, g->c + j, g->ldc, 0, j, m,
                                min_sz(DE_RNG_SEGMENT, j1 - j), rs);
    }
    if (g->done)
        g->done->fn(g->done->ctx, c, g->ldc, 0, m, j0, j1);
    return DE_OK;
}

static int small(const gemm_t *g, int nthreads)
{
    size_t segs = (g->n + g->col_unit - 1) / g->col_unit;
    int nt = nthreads, rc = DE_OK;
    if ((size_t)nt > segs)
        nt = (int)segs;
    DE_PARALLEL({
        for (int t = DE_TEAM_ID(); t < nt; t += DE_TEAM_SIZE()) {
            size_t j0 = min_sz(g->n, split_at(segs, (size_t)nt, (size_t)t) * g->col_unit);
            size_t j1 = min_sz(g->n, split_at(segs, (size_t)nt, (size_t)t + 1) * g->col_unit);
            if (small_region(g, j0, j1) != DE_OK) {
                _Pragma("omp atomic write") rc = DE_ENOMEM;
            }
        }
    });
    return rc;
}

/* ------------------------------------------------------------ thin path */
/* Rows [i0, i1) of C for n <= DE_GEMM_THIN_N: op(A) packed as for the
 * packed path, B read in place (transposed once per KC block into the
 * workspace when stored n x k), tiles of MR rows x n. */
static int thin_rows(const gemm_t *g, size_t i0, size_t i1)
{
    const de_gemm_kernels_t *gk = g->kt->gemm;
    const size_t MR = (size_t)gk->mr, KC = (size_t)gk->kc, MC = (size_t)gk->mc;
    const size_t n = g->n;
    if (i0 >= i1)
        return DE_OK;
    size_t kc_max = min_sz(KC, g->k), mc_max = round_up(min_sz(MC, i1 - i0), MR);
    size_t a_bytes = round_up(mc_max * kc_max * sizeof(float), 64);
    size_t b_bytes = g->tb || g->b16 ? round_up(kc_max * n * sizeof(float), 64) : 0;
    char *ws = workspace(a_bytes + b_bytes + mc_max * sizeof(de_lanes_t));
    if (!ws)
        return DE_ENOMEM;
    float *ap = (float *)ws, *bt = (float *)(ws + a_bytes);
    de_lanes_t *rs = (de_lanes_t *)(ws + a_bytes + b_bytes);
    for (size_t pc = 0; pc < g->k; pc += KC) {
        size_t kc = min_sz(KC, g->k - pc), ldb = g->ldb;
        const float *b = g->b16 ? NULL : g->b + pc * ldb;
        if (g->tb) {        /* B stored n x k: this block's k rows of n */
            for (size_t p = 0; p < kc; p++)
                for (size_t j = 0; j < n; j++)
                    bt[p * n + j] = g->b[j * g->ldb + pc + p];
            b = bt;
            ldb = n;
        } else if (g->b16) {   /* bf16: this block's k rows widened */
            for (size_t p = 0; p < kc; p++)
                for (size_t j = 0; j < n; j++)
                    bt[p * n + j] = de_f32_from_bf16(g->b16[(pc + p) * ldb + j]);
            b = bt;
            ldb = n;
        }
        int acc = g->accumulate || pc > 0, last = pc + kc >= g->k;
        for (size_t ic = i0; ic < i1; ic += MC) {
            size_t mc = min_sz(MC, i1 - ic);
            pack_a(g, ic, mc, pc, kc, ap);
            for (size_t ir = 0; ir < mc; ir += MR) {
                size_t mr = min_sz(MR, mc - ir);
                float *c = g->c + (ic + ir) * g->ldc;
                gk->thin(kc, n, ap + ir * kc, b, ldb, c, g->ldc, mr, acc);
                if (last && g->ep)
                    g->kt->ew->epilogue(g->ep, n, c, g->ldc, ic + ir, 0, mr, n,
                                        rs + ir);
                if (last && g->done)
                    g->done->fn(g->done->ctx, c, g->ldc, ic + ir, ic + ir + mr,
                                0, n);
            }
        }
    }
    return DE_OK;
}

static int thin(const gemm_t *g, int nthreads)
{
    const size_t MR = (size_t)g->kt->gemm->mr;
    size_t tiles = (g->m + MR - 1) / MR;
    int nt = nthreads, rc = DE_OK;
    if ((size_t)nt > tiles)
        nt = (int)tiles;
    DE_PARALLEL({
        for (int t = DE_TEAM_ID(); t < nt; t += DE_TEAM_SIZE()) {
            size_t i0 = min_sz(g->m, split_at(tiles, (size_t)nt, (size_t)t) * MR);
            size_t i1 = min_sz(g->m, split_at(tiles, (size_t)nt, (size_t)t + 1) * MR);
            if (thin_rows(g, i0, i1) != DE_OK) {
                _Pragma("omp atomic write") rc = DE_ENOMEM;
            }
        }
    });
    return rc;
}

/* The thin path serves this shape (for m > DE_GEMM_SMALL_M). */
static int thin_shape(const de_kernel_table_t *kt, size_t n)
{
    return n <= DE_GEMM_THIN_N && kt->gemm->thin;
}

static int run(gemm_t *g)
{
    const size_t m = g->m, n = g->n, k = g->k;
    float *c = g->c;
    const size_t ldc = g->ldc;
    const de_epilogue_t *ep = g->ep;
    if (m == 0 || n == 0)
        return DE_OK;
    if (k == 0) {   /* empty sum: C = 0 (or unchanged), then the epilogue */
        de_lanes_t rs;
        for (size_t i = 0; i < m; i++) {
            if (!g->accumulate)
                memset(c + i * ldc, 0, n * sizeof(float));
            for (size_t j = 0; ep && j < n; j += DE_RNG_SEGMENT)
                g->kt->ew->epilogue(ep, n, c + i * ldc + j, ldc, i, j, 1,
                                    min_sz(DE_RNG_SEGMENT, n - j), &rs);
        }
        if (g->done)
            g->done->fn(g->done->ctx, c, ldc, 0, m, 0, n);
        return DE_OK;
    }
    /* Thread count from the work alone (never from k's blocking), so the
     * choice of path and of KC is the same for any number of threads. */
    double macs = (double)m * (double)n * (double)k;
    int nthreads = de_threads();
    if (macs < (double)MIN_MACS_PER_THREAD * nthreads)
        nthreads = (int)(macs / MIN_MACS_PER_THREAD);
    if (nthreads < 1)
        nthreads = 1;
    if (m <= DE_GEMM_SMALL_M && g->kt->gemm->small_m)
        return small(g, nthreads);
    if (thin_shape(g->kt, n))
        return thin(g, nthreads);
    return packed(g, nthreads);
}

int de_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
            const float *a, size_t lda, const float *b, size_t ldb,
            float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
{
    gemm_t g = {trans_a, trans_b, m, n, k, a, b, lda, ldb, ldc, c,
                accumulate, ep, de_kt,
                (ep && ep->drop.drop_below) ? DE_RNG_SEGMENT : COL_UNIT, NULL};
    return run(&g);
}

/* The same in bfloat16 (dispatch.h): de_bk's kernels in the frame above,
 * through a copy of the dispatch table whose float kernels they replace;
 * they have no small-m or thin loop, so every shape takes the packed path. */
int de_gemm_bf16(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                 const float *a, size_t lda, const float *b, size_t ldb,
                 float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
{
    de_kernel_table_t kt = *de_kt;
    kt.gemm = de_bk;
    gemm_t g = {trans_a, trans_b, m, n, k, a, b, lda, ldb, ldc, c,
                accumulate, ep, &kt,
                (ep && ep->drop.drop_below) ? DE_RNG_SEGMENT : COL_UNIT, NULL};
    return run(&g);
}

int de_gemm_hooked(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   const float *a, size_t lda, const float *b, size_t ldb,
                   float *c, size_t ldc, const de_gemm_hook_t *done)
{
    gemm_t g = {trans_a, trans_b, m, n, k, a, b, lda, ldb, ldc, c, 0, NULL,
                de_kt, COL_UNIT, NULL, NULL, NULL, done};
    return run(&g);
}

/* ------------------------------------------------------------ prepacked B */
struct de_packed_b {
    const de_gemm_kernels_t *gk;   /* the kernels whose panels these are */
    size_t k, n, bytes;
    void *panels;                  /* 64-byte aligned: floats, or bf16 */
    int bf16;
};

/* Starts at 1 so that a holder's 0 means "never packed". */
static uint64_t pack_epoch = 1;

uint64_t de_gemm_pack_epoch(void)
{
    return __atomic_load_n(&pack_epoch, __ATOMIC_ACQUIRE);
}

void de_gemm_packs_stale(void)
{
    __atomic_add_fetch(&pack_epoch, 1, __ATOMIC_ACQ_REL);
}

int de_gemm_uses_packed_b(size_t m, size_t n)
{
    return m > DE_GEMM_SMALL_M && !thin_shape(de_kt, n);
}

/* B (float, or bf16 when b16) packed KC block by KC block. */
static de_packed_b_t *pack_whole(size_t k, size_t n, const float *b,
                                 const uint16_t *b16, size_t ldb)
{
    const de_gemm_kernels_t *gk = de_kt->gemm;
    const size_t KC = (size_t)gk->kc, npad = round_up(n, (size_t)gk->nr);
    de_packed_b_t *pb = malloc(sizeof *pb);
    if (!pb)
        return NULL;
    pb->gk = gk;
    pb->k = k;
    pb->n = n;
    pb->bf16 = b16 != NULL;
    pb->bytes = round_up((k ? k : 1) * npad * (b16 ? 2 : sizeof(float)), 64);
    pb->panels = aligned_alloc(64, pb->bytes);
    if (!pb->panels) {
        free(pb);
        return NULL;
    }
    for (size_t pc = 0; pc < k; pc += KC) {  /* B's element (p, j): b[p*ldb + j] */
        if (b16)
            pack_b16(b16 + pc * ldb, ldb, n, min_sz(KC, k - pc), (size_t)gk->nr,
                     (uint16_t *)pb->panels + pc * npad);
        else
            gk->pack_b(b + pc * ldb, 1, ldb, n, min_sz(KC, k - pc),
                       (float *)pb->panels + pc * npad);
    }
    return pb;
}

de_packed_b_t *de_gemm_pack_b(size_t k, size_t n, const float *b, size_t ldb)
{
    return pack_whole(k, n, b, NULL, ldb);
}

de_packed_b_t *de_gemm_pack_b_wbf16(size_t k, size_t n, const uint16_t *b,
                                   size_t ldb)
{
    return pack_whole(k, n, NULL, b, ldb);
}

void de_packed_b_free(de_packed_b_t *pb)
{
    if (pb)
        free(pb->panels);
    free(pb);
}

size_t de_packed_b_bytes(const de_packed_b_t *pb)
{
    return pb ? pb->bytes : 0;
}

int de_gemm_prepacked(size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, const de_packed_b_t *pb,
                      float *c, size_t ldc, int accumulate,
                      const de_epilogue_t *ep)
{
    gemm_t g = {0, 0, m, n, k, a, b, lda, ldb, ldc, c, accumulate, ep, de_kt,
                (ep && ep->drop.drop_below) ? DE_RNG_SEGMENT : COL_UNIT, NULL};
    /* Panels packed for other kernels or another shape are never read. */
    if (pb && !pb->bf16 && pb->gk == g.kt->gemm && pb->k == k && pb->n == n)
        g.bp = pb->panels;
    return run(&g);
}

int de_gemm_wbf16(size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const uint16_t *b, size_t ldb, const de_packed_b_t *pb,
                 float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
{
    gemm_t g = {0, 0, m, n, k, a, NULL, lda, ldb, ldc, c, accumulate, ep, de_kt,
                (ep && ep->drop.drop_below) ? DE_RNG_SEGMENT : COL_UNIT, NULL,
                b, NULL};
    if (pb && pb->bf16 && pb->gk == g.kt->gemm && pb->k == k && pb->n == n)
        g.bp16 = pb->panels;
    return run(&g);
}
