/*
 * allreduce.c -- the collective of data-parallel training: sums over the
 * processes of an MPI communicator, for train.c's hook.
 *
 * No MPI header or library is needed to build this.  Python
 * (dropout_engine.distribute) finds MPI_Allreduce, MPI_Iallreduce and
 * MPI_Wait at run time in the MPI library that mpi4py loaded, and the
 * communicator, datatype and operation handles from mpi4py, and hands them
 * over in a de_allreduce_t.  Handles are pointers in Open MPI's ABI and C
 * ints in MPICH's (MPICH, Intel MPI, MVAPICH): `int_handles` says which, so
 * each call goes through a function type of the right ABI, never through a
 * guess.
 *
 * MPI counts are C ints: a buffer of more elements is reduced in slices of
 * at most DE_AR_SLICE, the same slices on every process (collectives must
 * match).  Sums run in place (MPI_IN_PLACE).
 */
#include <limits.h>
#include <string.h>
#include "engine.h"

#define DE_AR_SLICE ((size_t)1 << 30)

/* Open MPI: handles are pointers (MPI_Comm is struct ompi_communicator_t *) */
typedef int (*allreduce_p)(const void *, void *, int, void *, void *, void *);
typedef int (*iallreduce_p)(const void *, void *, int, void *, void *, void *,
                            void **);
typedef int (*wait_p)(void **, void *);
/* MPICH's ABI: handles are ints (MPI_Request too) */
typedef int (*allreduce_i)(const void *, void *, int, int, int, int);
typedef int (*iallreduce_i)(const void *, void *, int, int, int, int, int *);
typedef int (*wait_i)(int *, void *);

/* An MPI_Status is 20 (MPICH) or 24 (Open MPI) bytes: room for any. */
typedef struct { int64_t words[8]; } status_t;

int de_allreduce_sum(const de_allreduce_t *a, void *buf, size_t n, int f64)
{
    char *p = buf;
    size_t esize = f64 ? sizeof(double) : sizeof(float);
    intptr_t type = f64 ? a->float64 : a->float32;
    const void *in_place = (const void *)a->in_place;
    for (size_t at = 0; at < n; at += DE_AR_SLICE) {
        int cnt = (int)(n - at < DE_AR_SLICE ? n - at : DE_AR_SLICE);
        int rc = a->int_handles
            ? ((allreduce_i)a->allreduce)(in_place, p + at * esize, cnt,
                                          (int)type, (int)a->sum, (int)a->comm)
            : ((allreduce_p)a->allreduce)(in_place, p + at * esize, cnt,
                                          (void *)type, (void *)a->sum,
                                          (void *)a->comm);
        if (rc) return DE_ECOMM;
    }
    return DE_OK;
}

int de_allreduce_start(const de_allreduce_t *a, float *buf, size_t n,
                       de_ar_request_t *req)
{
    const void *in_place = (const void *)a->in_place;
    req->pending = 0;
    if (!a->iallreduce || n > DE_AR_SLICE)   /* blocking instead */
        return de_allreduce_sum(a, buf, n, 0);
    int rc = a->int_handles
        ? ((iallreduce_i)a->iallreduce)(in_place, buf, (int)n, (int)a->float32,
                                        (int)a->sum, (int)a->comm, &req->i)
        : ((iallreduce_p)a->iallreduce)(in_place, buf, (int)n,
                                        (void *)a->float32, (void *)a->sum,
                                        (void *)a->comm, &req->p);
    if (rc) return DE_ECOMM;
    req->pending = 1;
    return DE_OK;
}

int de_allreduce_wait(const de_allreduce_t *a, de_ar_request_t *req)
{
    status_t st;
    if (!req->pending) return DE_OK;
    req->pending = 0;
    int rc = a->int_handles ? ((wait_i)a->wait)(&req->i, &st)
                            : ((wait_p)a->wait)(&req->p, &st);
    return rc ? DE_ECOMM : DE_OK;
}

/* ------------------------------------------------------ sharded update */

/* Open MPI's and MPICH's signatures (handles as above). */
typedef int (*reduce_scatter_p)(const void *, void *, const int *, void *,
                                void *, void *);
typedef int (*allgatherv_p)(const void *, int, void *, void *, const int *,
                            const int *, void *, void *);
typedef int (*reduce_scatter_i)(const void *, void *, const int *, int, int,
                                int);
typedef int (*allgatherv_i)(const void *, int, int, void *, const int *,
                            const int *, int, int);

/* Rank r's slice of the n floats: [lo(r), lo(r + 1)), starts on 16-float
 * (64-byte) boundaries. */
static size_t slice_lo(size_t n, int r, int size)
{
    return r == size ? n : n * (size_t)r / (size_t)size / 16 * 16;
}

/* buf[0 .. counts[i]) on rank i receives the sum of every process's
 * buf[displ(i) ..) (in place: the slices are consecutive). */
static int reduce_scatter(const de_allreduce_t *a, float *buf, const int *counts)
{
    const void *in_place = (const void *)a->in_place;
    int rc = a->int_handles
        ? ((reduce_scatter_i)a->reduce_scatter)(in_place, buf, counts,
                                                (int)a->float32, (int)a->sum,
                                                (int)a->comm)
        : ((reduce_scatter_p)a->reduce_scatter)(in_place, buf, counts,
                                                (void *)a->float32,
                                                (void *)a->sum, (void *)a->comm);
    return rc ? DE_ECOMM : DE_OK;
}

/* Each rank's counts[r] floats at buf + displs[r] onto every process. */
static int allgatherv(const de_allreduce_t *a, float *buf, const int *counts,
                      const int *displs)
{
    const void *in_place = (const void *)a->in_place;
    int rc = a->int_handles
        ? ((allgatherv_i)a->allgatherv)(in_place, 0, (int)a->float32, buf,
                                        counts, displs, (int)a->float32,
                                        (int)a->comm)
        : ((allgatherv_p)a->allgatherv)(in_place, 0, (void *)a->float32, buf,
                                        counts, displs, (void *)a->float32,
                                        (void *)a->comm);
    return rc ? DE_ECOMM : DE_OK;
}

/* Every rank's part of `len` floats at offset `at` of the flat layout:
 * counts and displacements (from `at`) for allgatherv. */
static void parts(const de_allreduce_t *a, size_t n, size_t at, size_t len,
                  int *counts, int *displs)
{
    for (int r = 0; r < a->size; r++) {
        size_t lo = slice_lo(n, r, a->size), hi = slice_lo(n, r + 1, a->size);
        lo = lo > at ? lo : at;
        hi = hi < at + len ? hi : at + len;
        counts[r] = hi > lo ? (int)(hi - lo) : 0;
        displs[r] = hi > lo ? (int)(lo - at) : 0;
    }
}

/* Param i's offset in the flat layout that starts at grad[0]. */
#define OFF(i) ((size_t)(grad[i] - grad[0]))

int de_sharded_step(const de_allreduce_t *a, const de_optim_t *o, double lr,
                    int64_t step, const de_param_t *params, size_t n_params,
                    float *const *grad, size_t n, int *scratch)
{
    int *counts = scratch, *displs = scratch + a->size;
    size_t lo = slice_lo(n, a->rank, a->size), hi = slice_lo(n, a->rank + 1, a->size);
    if (n > (size_t)INT_MAX) return DE_EINVAL;
    for (int r = 0; r < a->size; r++)
        counts[r] = (int)(slice_lo(n, r + 1, a->size) - slice_lo(n, r, a->size));
    int rc = reduce_scatter(a, grad[0], counts);  /* my sums: grad[0][0 .. hi - lo) */
    if (rc) return rc;
    for (size_t i = 0; i < n_params; i++) {
        const de_param_t *p = &params[i];
        size_t len = p->rows * p->cols;
        size_t at = OFF(i);
        size_t i0 = at > lo ? at : lo, i1 = at + len < hi ? at + len : hi;
        if (i1 <= i0) continue;
        /* This rank's elements [i0, i1) of param i, as a param of its own
         * (the update is element-wise; the constraint waits for the whole). */
        de_param_t q = *p;
        q.w = p->w + (i0 - at);
        for (int k = 0; k < 3; k++)
            q.slot[k] = p->slot[k] ? p->slot[k] + (i0 - at) : NULL;
        q.rows = i1 - i0;
        q.cols = 1;
        q.constraint = DE_CONSTRAINT_NONE;
        de_param_update(o, lr, step, &q, grad[0] + (i0 - lo));
    }
    for (size_t i = 0; i < n_params && !rc; i++) {
        const de_param_t *p = &params[i];
        parts(a, n, OFF(i), p->rows * p->cols, counts, displs);
        rc = allgatherv(a, p->w, counts, displs);
        if (!rc && p->constraint != DE_CONSTRAINT_NONE) de_param_constrain(p);
    }
    de_gemm_packs_stale();     /* the gathered weights are new too */
    return rc;
}

int de_sharded_slots(const de_allreduce_t *a, const de_param_t *params,
                     size_t n_params, float *const *grad, size_t n, int *scratch)
{
    int *counts = scratch, *displs = scratch + a->size;
    int rc = DE_OK;
    for (size_t i = 0; i < n_params && !rc; i++) {
        const de_param_t *p = &params[i];
        parts(a, n, OFF(i), p->rows * p->cols, counts, displs);
        for (int k = 0; k < 3 && !rc; k++)
            if (p->slot[k]) rc = allgatherv(a, p->slot[k], counts, displs);
    }
    return rc;
}
