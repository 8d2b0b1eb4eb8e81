/*
 * c_predict.c -- batch-1 predict latency through the C embedding API.
 *
 *     c_predict MODEL THREADS REPEATS WEIGHT_BYTES
 *
 * Warms up, then times REPEATS rounds of back-to-back de_model_predict
 * calls on one row (each round long enough for the clock: ~20 ms) and
 * prints "best_us median_us floor_us" per call.  floor_us is the best time
 * one thread takes to read WEIGHT_BYTES once (a batch-1 forward must read
 * every weight; when they do not fit in cache this is its memory floor).
 * bench/embed.py compiles and runs it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "dropout_engine.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best seconds to read n bytes once (XOR of 64-bit words: vectorisable). */
static double read_floor(size_t n, int repeats)
{
    size_t words = n / 8 + 1;
    uint64_t *buf = malloc(words * 8), acc = 0;
    if (!buf) return 0;
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9E3779B97F4A7C15u;
    double best = 1e9;
    for (int r = 0; r < repeats + 2; r++) {
        double t0 = now();
        for (size_t i = 0; i < words; i++) acc ^= buf[i];
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(buf);
    return acc == 42 ? best * 1.0000001 : best;  /* keep acc alive */
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: c_predict MODEL THREADS REPEATS WEIGHT_BYTES\n");
        return 2;
    }
    de_model *m;
    if (de_model_load(argv[1], &m)) {
        fprintf(stderr, "%s\n", de_last_error());
        return 1;
    }
    de_set_num_threads(atoi(argv[2]));
    int repeats = atoi(argv[3]) > 0 ? atoi(argv[3]) : 1;
    size_t in = de_model_input_dim(m), out = de_model_output_dim(m);
    float *x = malloc(in * sizeof *x), *y = malloc(out * sizeof *y);
    double *per = malloc(repeats * sizeof *per);
    for (size_t i = 0; i < in; i++) x[i] = (float)sin((double)i);
    long inner = 1;
    for (;;) {   /* warm-up that also sizes a round */
        double t0 = now();
        for (long k = 0; k < inner; k++) de_model_predict(m, x, 1, in, y);
        if (now() - t0 > 0.02) break;
        inner *= 2;
    }
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        for (long k = 0; k < inner; k++)
            if (de_model_predict(m, x, 1, in, y)) return 1;
        per[r] = (now() - t0) / inner;
    }
    qsort(per, repeats, sizeof *per, cmp);
    double floor = read_floor((size_t)atoll(argv[4]), repeats);
    printf("%.3f %.3f %.3f\n", per[0] * 1e6, per[repeats / 2] * 1e6, floor * 1e6);
    free(x);
    free(y);
    free(per);
    de_model_free(m);
    return 0;
}
