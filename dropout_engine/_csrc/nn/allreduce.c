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
