/*
 * shm_reduce.c -- the gradient sum of data-parallel training among the
 * processes of one node, through an MPI-3 shared-memory window, instead of
 * MPI_Allreduce.
 *
 * Why: on one node MPI_Allreduce of W1's 7.45 MB copies every byte through
 * the MPI library's shared buffers several times (measured 0.7-3 ms on 2
 * ranks, 5-25% of a step).  With each process's gradients in a window that
 * every process of the node maps (MPI_Win_allocate_shared, made by
 * dropout_engine.distribute), the backward pass writes them there, process
 * r of the node's N sums slice r of everyone's into one shared area of
 * sums, and every process's update reads its gradients from that area
 * (de_param_update_shared): each byte is read N + 1 times and written
 * twice, and nothing is copied back.  Across nodes each slice is then
 * summed by MPI_Allreduce among the processes of the same node rank (the
 * hierarchical all-reduce of Horovod and NCCL), so the network carries 1/N
 * of the bytes per process.  Measured inside W1's training on one 2-core
 * node it is no clear win over MPI_Allreduce (1.23-1.38x against
 * 1.27-1.30x one process): the sum is bound by memory traffic over two
 * freshly written 7.45 MB gradient sets either way (README "Scaling out").
 *
 * Two barriers a step (MPI_Barrier of the node, with MPI_Win_sync before
 * and after each as MPI's memory model asks of a shared window):
 *   1. every process has written its gradients and sums;
 *   2. every slice is summed (and reduced over the nodes).
 * No third is needed: a process's gradients are read by the others only
 * between 1 and 2, and its next ones are written after 2; the sums are
 * read by every update after 2 and written again only after the next 1,
 * which nobody passes before every update of this step is done.
 *
 * Determinism: every element is summed by one process, in node-rank order
 * (then by MPI_Allreduce over the nodes, the same calls every step), and
 * copied to the others, so every process holds the same bits and two runs
 * with the same processes are bit-identical.  The sums of the loss and
 * metrics are added by every process in node-rank order (16 doubles).
 */
#include <string.h>
#include "frame/dispatch.h"

#define BLOCK 2048                    /* floats summed through the stack */
#define SLICE_ALIGN 16                /* floats: slices own whole lines */
#define HEAD (DE_SHM_SUMS * sizeof(double))

typedef int (*barrier_p)(void *);
typedef int (*barrier_i)(int);

size_t de_shm_bytes(size_t g)
{
    return HEAD + 2 * g * sizeof(float);
}

static double *sums_of(const de_allreduce_t *a, int k)
{
    return (double *)a->shm.seg[k];
}

static float *grads_of(const de_allreduce_t *a, int k)
{
    return (float *)(a->shm.seg[k] + HEAD);
}

/* The summed gradients: one area, after node rank 0's gradients; node
 * rank k writes slice k of it. */
const float *de_shm_summed(const de_allreduce_t *a, size_t g)
{
    return grads_of(a, 0) + g;
}

float *de_shm_grads(const de_allreduce_t *a)
{
    return grads_of(a, a->shm.rank);
}

/* MPI_Win_sync, MPI_Barrier of the node, MPI_Win_sync. */
static int node_barrier(const de_allreduce_t *a)
{
    int rc;
    if (a->int_handles) {
        ((barrier_i)a->shm.win_sync)((int)a->shm.win);
        rc = ((barrier_i)a->shm.barrier)((int)a->shm.node);
        ((barrier_i)a->shm.win_sync)((int)a->shm.win);
    } else {
        ((barrier_p)a->shm.win_sync)((void *)a->shm.win);
        rc = ((barrier_p)a->shm.barrier)((void *)a->shm.node);
        ((barrier_p)a->shm.win_sync)((void *)a->shm.win);
    }
    return rc ? DE_ECOMM : DE_OK;
}

/* Node rank k's slice of g floats: [lo, hi), 16-float aligned. */
static void slice(size_t g, int k, int n, size_t *lo, size_t *hi)
{
    size_t lines = (g + SLICE_ALIGN - 1) / SLICE_ALIGN;
    *lo = lines * (size_t)k / (size_t)n * SLICE_ALIGN;
    *hi = lines * ((size_t)k + 1) / (size_t)n * SLICE_ALIGN;
    if (*lo > g) *lo = g;
    if (*hi > g) *hi = g;
}

/* summed[lo, hi) = the sum over k of grads_k[lo, hi), in k order. */
static void sum_slice(const de_allreduce_t *a, size_t g, size_t lo, size_t hi)
{
    const int N = a->shm.size;
    float *out = (float *)de_shm_summed(a, g);
    size_t blocks = (hi - lo + BLOCK - 1) / BLOCK;
    int nt = de_threads();
    if ((size_t)nt > blocks) nt = (int)(blocks ? blocks : 1);
    DE_PARALLEL(
        float acc[BLOCK];
        for (size_t b = (size_t)DE_TEAM_ID(); b < blocks;
             b += (size_t)DE_TEAM_SIZE()) {
            size_t i0 = lo + b * BLOCK, len = hi - i0 < BLOCK ? hi - i0 : BLOCK;
            memcpy(acc, grads_of(a, 0) + i0, len * sizeof(float));
            for (int k = 1; k < N; k++) {
                const float *src = grads_of(a, k) + i0;
                for (size_t i = 0; i < len; i++) acc[i] += src[i];
            }
            memcpy(out + i0, acc, len * sizeof(float));
        });
}

int de_shm_reduce(const de_allreduce_t *a, size_t g, double *sums, size_t ns)
{
    const int N = a->shm.size, r = a->shm.rank;
    size_t lo, hi;
    if (ns > DE_SHM_SUMS) return DE_EINVAL;
    memcpy(sums_of(a, r), sums, ns * sizeof *sums);
    int rc = node_barrier(a);
    if (rc) return rc;
    for (size_t j = 0; j < ns; j++) {
        sums[j] = sums_of(a, 0)[j];
        for (int k = 1; k < N; k++) sums[j] += sums_of(a, k)[j];
    }
    slice(g, r, N, &lo, &hi);
    sum_slice(a, g, lo, hi);
    if (a->shm.cross) {          /* the other nodes' sums of this slice */
        de_allreduce_t over = *a;
        over.comm = a->shm.cross;
        rc = de_allreduce_sum(&over, (float *)de_shm_summed(a, g) + lo, hi - lo, 0);
        if (!rc) rc = de_allreduce_sum(&over, sums, ns, 1);
        if (rc) return rc;
    }
    return node_barrier(a);
}
