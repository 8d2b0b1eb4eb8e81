/*
 * omp_caller.c -- an embedding application that calls de_model_predict from
 * inside its own OpenMP parallel region (each of its threads predicting its
 * own rows): every thread must get exactly what one serial call gives.
 *
 *     omp_caller MODEL ROWS    (prints "ok", or the first mismatch)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <dropout_engine.h>

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    de_model *m;
    if (de_model_load(argv[1], &m) != 0) {
        fprintf(stderr, "load: %s\n", de_last_error());
        return 1;
    }
    size_t rows = (size_t)atol(argv[2]);
    size_t in = de_model_input_dim(m), out = de_model_output_dim(m);
    float *x = malloc(rows * in * sizeof *x), *ref = malloc(rows * out * sizeof *ref);
    for (size_t i = 0; i < rows * in; i++) x[i] = (float)((i * 7919 % 1000) / 250.0 - 2.0);
    if (de_model_predict(m, x, rows, in, ref) != 0) return 1;
    int bad = 0;
#pragma omp parallel num_threads(4) reduction(+ : bad)
    {
        float *y = malloc(rows * out * sizeof *y);
        for (int rep = 0; rep < 20; rep++) {
            memset(y, 0xff, rows * out * sizeof *y);       /* NaN */
            if (de_model_predict(m, x, rows, in, y) != 0
                || memcmp(y, ref, rows * out * sizeof *y) != 0)
                bad++;
        }
        free(y);
    }
    if (bad)
        printf("%d of 80 calls from the application's threads differ\n", bad);
    else
        printf("ok\n");
    de_model_free(m);
    free(x);
    free(ref);
    return 0;
}
