/*
 * dropout_engine.h -- embed a model trained in Python in a C or C++ program.
 *
 *     de_model *m;
 *     if (de_model_load("model.safetensors", &m) != DE_OK) {
 *         fprintf(stderr, "%s\n", de_last_error());
 *         return 1;
 *     }
 *     float y[10];                       // de_model_output_dim(m) per row
 *     de_model_predict(m, x, 1, de_model_input_dim(m), y);
 *     de_model_free(m);
 *
 * Build:  cc prog.c $(python -m dropout_engine.config --cflags --libs)
 *
 * The model file is the one `model.save("model.safetensors")` writes
 * (safetensors layout, the model's config in its metadata; a ".keras" file
 * is Keras's zip, which this library refuses with a message).  Predictions equal Python's
 * `model.predict` (same kernels; dropout is the identity at inference and
 * "weight"-scaled dropout multiplies by 1 - rate).  A file saved after
 * `model.quantize("int8")` loads too and runs the same int8 kernels, bit
 * for bit, as does one after `model.quantize("bfloat16")` (BF16 kernels).  All data (x, y) is float32, row-major.  The kernels (AVX-512,
 * AVX2+FMA or portable C) are chosen by CPUID at the first load, or by the
 * environment variable DROPOUT_ENGINE_ISA=generic|avx2|avx512 as in
 * Python.
 *
 * Functions returning int return DE_OK (0) on success and a negative code
 * on failure; de_last_error() then describes it.  Nothing here aborts the
 * process or reads outside the file and the buffers it is given.
 */
#ifndef DROPOUT_ENGINE_H
#define DROPOUT_ENGINE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DE_VERSION_STRING "0.1.0"

#define DE_OK 0
#define DE_ENOMEM (-1)   /* out of memory */
#define DE_EINVAL (-2)   /* a bad argument (NULL, wrong width, ...) */
#define DE_EIO (-3)      /* the file cannot be opened or read */
#define DE_EFORMAT (-4)  /* the file is truncated, altered or not a model */

typedef struct de_model de_model;   /* opaque */

/* Read and fully validate a file written by model.save; on success *out
 * owns the weights (the file is closed again).  On failure *out is NULL. */
int de_model_load(const char *path, de_model **out);

/* y[rows x output_dim] = the model's outputs for x[rows x cols], both
 * row-major; cols must equal de_model_input_dim(m).  Safe to call from
 * several threads at once on one model (each call has its own scratch). */
int de_model_predict(const de_model *m, const float *x, size_t rows,
                     size_t cols, float *y);

size_t de_model_input_dim(const de_model *m);
size_t de_model_output_dim(const de_model *m);
void de_model_free(de_model *m);   /* NULL is fine */

/* What the last failing call on this thread did wrong ("" if none). */
const char *de_last_error(void);

/* Use at most n threads (n >= 1) in every kernel; default: OpenMP's
 * (OMP_NUM_THREADS, else the core count).  Call it when no predict runs. */
void de_set_num_threads(int n);

/* The library's version, "major.minor.patch" (DE_VERSION_STRING). */
const char *de_version(void);

#ifdef __cplusplus
}
#endif

#endif
