/*
 * safetensors.h -- internal: the model-file container, read in C with the
 * same validation as dropout_engine/safetensors.py.
 */
#ifndef DE_SAFETENSORS_H
#define DE_SAFETENSORS_H

#include <stdint.h>
#include <stdio.h>
#include "io/json.h"

#define DE_ST_MAX_HEADER 100000000u  /* as the reference implementation */
#define DE_ST_MAX_NDIM 32

typedef struct {
    size_t name;                      /* the key node in header */
    int dtype_size;                   /* bytes per element */
    int is_f32, is_i8, is_bf16;
    size_t ndim;
    uint64_t shape[DE_ST_MAX_NDIM];
    uint64_t begin, end;              /* in the data region */
} de_st_tensor;

typedef struct {
    FILE *f;
    uint64_t data_start, data_size;
    de_json header;
    size_t metadata;                  /* node of __metadata__, or DE_JSON_NONE */
    de_st_tensor *tensors;
    size_t n_tensors;
} de_st_file;

/* Open `path` and validate the container: header length, JSON, every
 * entry's dtype/shape/offsets, and that the tensors tile the data region
 * exactly.  0, or a DE_E* code with the message in err. */
int de_st_open(de_st_file *st, const char *path, char *err, size_t errlen);
void de_st_close(de_st_file *st);

/* The tensor named `name`, or NULL. */
const de_st_tensor *de_st_find(const de_st_file *st, const char *name);

/* Read tensor t's bytes (already validated to lie in the file) to dst,
 * converting little-endian floats to the host's order. */
int de_st_read_f32(const de_st_file *st, const de_st_tensor *t, float *dst,
                   char *err, size_t errlen);
/* The same for an I8 tensor (bytes need no reordering). */
int de_st_read_i8(const de_st_file *st, const de_st_tensor *t, int8_t *dst,
                  char *err, size_t errlen);
/* The same for a BF16 tensor (bfloat16 bits, to the host's order). */
int de_st_read_bf16(const de_st_file *st, const de_st_tensor *t, uint16_t *dst,
                    char *err, size_t errlen);

#endif
