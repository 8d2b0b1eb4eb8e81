/*
 * qdense.c -- the frame of the int8 Dense (model.quantize("int8")), with
 * Keras 3's arithmetic (layers/core/dense.py, _int8_call):
 *   1. each input row is quantised on the fly, abs-max symmetric:
 *        s = 127 / (max|x| + 1e-7),  q = clip(round_half_even(x * s), +-127)
 *      (float32 throughout, as keras.quantizers.abs_max_quantize);
 *   2. acc = q @ W_int8, exact in int32;
 *   3. y = act((float)acc / (kernel_scale * s) + bias).
 * The per-ISA kernels (dispatch.h, de_qk) do 1 for a block of rows, and 2
 * with the division for one 64-column panel and up to DE_Q_ROWS rows; the
 * tile then gets the float path's own epilogue (bias + activation),
 * softmax a row pass at the end.
 *
 * Invariants: the weights are packed (layout in dispatch.h) by Python at
 * quantize time, again in place by set_weights, and by the C loader
 * (embed/de_model.c) from a saved file; corr and scale are padded to whole
 * panels.  Threads take whole panels (or, when there are fewer panels
 * than threads, whole row groups), each output element is computed by the
 * same operations whichever thread owns it, so the result is bit-identical
 * for any thread count and any ISA.  A row holding NaN or Inf gives NaN
 * out (its scale is set to NaN; its quantised values to 0).
 * Scratch (the quantised rows) is per call: on the stack when small; for
 * a few rows every team member quantises them all into its own copy, which
 * costs less than the barrier it saves.
 */
#include <stdlib.h>
#include <string.h>
#include "frame/dispatch.h"

#define STACK_BYTES 8192
/* A work unit is one k-quad of one panel for one row (256 MACs); below this
 * many per thread a team costs more than it saves. */
#define MIN_UNITS_PER_THREAD 1024

static int team_size(size_t m, size_t kq, size_t panels)
{
    size_t groups = (m + DE_Q_ROWS - 1) / DE_Q_ROWS;
    size_t t = m * kq * panels / MIN_UNITS_PER_THREAD;
    size_t split = panels > groups ? panels : groups;
    size_t max = (size_t)de_threads();
    if (t > max) t = max;
    if (t > split) t = split;
    return t < 1 ? 1 : (int)t;
}

/* One call's work, shared by the team. */
typedef struct {
    size_t m, n, k, kq, panels, groups;
    const float *x;
    char *scratch;               /* per copy: [m x 4kq] quantised rows
                                    (+128), then at sx_off [m] scales */
    size_t sx_off, copy_bytes;
    int own_copy;                /* each member quantises all the rows */
    const int8_t *qw;
    const int32_t *corr;
    const float *scale;
    de_epilogue_t ep;
    float *y;
    int by_panels;               /* split panels (else row groups) */
} job_t;

/* Panels [p0, p1) x row groups [g0, g1) of the output. */
static void tiles(const job_t *j, const uint8_t *xu, const float *sx,
                  size_t p0, size_t p1, size_t g0, size_t g1)
{
    const de_qgemm_kernels_t *qk = de_qk;
    size_t ldx = 4 * j->kq, n = j->n;
    for (size_t p = p0; p < p1; p++) {
        size_t j0 = p * DE_Q_PANEL;
        size_t cols = n - j0 < DE_Q_PANEL ? n - j0 : DE_Q_PANEL;
        const int8_t *w = j->qw + p * j->kq * 4 * DE_Q_PANEL;
        for (size_t g = g0; g < g1; g++) {
            size_t i0 = g * DE_Q_ROWS;
            size_t rows = j->m - i0 < DE_Q_ROWS ? j->m - i0 : DE_Q_ROWS;
            float *c = j->y + i0 * n + j0;
            qk->panel(rows, cols, j->kq, xu + i0 * ldx, ldx, w,
                      j->corr + j0, j->scale + j0, sx + i0, c, n);
            de_kt->ew->epilogue(&j->ep, n, c, n, i0, j0, rows, cols, NULL);
        }
    }
}

/* Member t of a team of T: quantise its share of the rows and wait for
 * the others' (or, for a few rows, quantise them all into its own copy:
 * cheaper than the barrier), then compute its share of the tiles. */
static void work(const job_t *j, size_t t, size_t T)
{
    char *mine = j->scratch + (j->own_copy ? t * j->copy_bytes : 0);
    uint8_t *xu = (uint8_t *)mine;
    float *sx = (float *)(mine + j->sx_off);
    size_t ldx = 4 * j->kq;
    if (j->own_copy) {
        de_qk->quantize(0, j->m, j->k, ldx, j->x, xu, sx);
    } else {
        de_qk->quantize(j->m * t / T, j->m * (t + 1) / T, j->k, ldx, j->x,
                        xu, sx);
        if (T > 1) {
            _Pragma("omp barrier")
        }
    }
    if (j->by_panels)
        tiles(j, xu, sx, j->panels * t / T, j->panels * (t + 1) / T, 0,
              j->groups);
    else
        tiles(j, xu, sx, 0, j->panels, j->groups * t / T,
              j->groups * (t + 1) / T);
}

int de_qdense_forward(size_t m, size_t n, size_t k, const float *x,
                      const int8_t *qw, const int32_t *corr,
                      const float *scale, const float *b, const de_act_t *act,
                      float *y)
{
    de_act_t tile_act = *act;    /* softmax: a row pass after the tiles */
    if (act->kind == DE_SOFTMAX)
        de_act_init(&tile_act, DE_LINEAR);
    size_t kq = (k + 3) / 4, panels = (n + DE_Q_PANEL - 1) / DE_Q_PANEL;
    size_t sx_off = (m * 4 * kq + 63) / 64 * 64;
    size_t copy_bytes = (sx_off + m * sizeof(float) + 63) / 64 * 64;
    int nt = team_size(m, kq, panels);
    int own_copy = nt > 1 && m <= DE_Q_ROWS;
    size_t need = copy_bytes * (own_copy ? (size_t)nt : 1);
    char small[STACK_BYTES] __attribute__((aligned(64)));
    char *buf = need <= sizeof small ? small : aligned_alloc(64, need);
    if (!buf)
        return DE_ENOMEM;
    job_t j = {m, n, k, kq, panels, (m + DE_Q_ROWS - 1) / DE_Q_ROWS, x,
               buf, sx_off, copy_bytes, own_copy, qw, corr, scale,
               {b, tile_act, {0, 1.f, 0}, NULL},
               y, panels >= (size_t)nt};
    /* Not DE_PARALLEL: its inline branch asks OpenMP for the member index,
     * which inside an embedding application's own parallel region is that
     * team's, and the barrier would bind to that team too.  Inline here is
     * member 0 of 1, no barrier. */
    if (nt <= 1) {
        work(&j, 0, 1);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        work(&j, (size_t)omp_get_thread_num(), (size_t)omp_get_num_threads());
#endif
    }
    if (buf != (char *)small)
        free(buf);
    if (act->kind == DE_SOFTMAX)
        de_softmax_rows(m, n, y);
    return DE_OK;
}
