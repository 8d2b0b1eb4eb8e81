/*
 * embed_fuzz.c -- feed de_model_load damaged copies of a good model file.
 *
 *     embed_fuzz MODEL SCRATCH_FILE
 *
 * Damage: every truncation of the file; every single-bit flip of the
 * length field and the header; a sample of bit flips in the data region.
 * A damaged file must either load (a flip can leave a valid file: a digit
 * of a rate, a letter of a name, a weight's bits) or fail with a non-zero
 * code, *out == NULL and a message; truncations must always fail.  A model
 * that loads is run once, to touch its weights.  Prints counts; exits 1 on
 * a broken rule.  tests/test_embed.py runs it; for AddressSanitizer build
 * it with the library's sources (see the test's docstring).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dropout_engine.h"

static const char *scratch;
static long failures, loaded, bad;

static void try_bytes(const unsigned char *buf, size_t n, int must_fail, const char *what,
                      size_t where)
{
    FILE *f = fopen(scratch, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f)) {
        perror(scratch);
        exit(2);
    }
    de_model *m = (de_model *)&m;  /* must be reset to NULL on failure */
    int rc = de_model_load(scratch, &m);
    if (rc != DE_OK) {
        failures++;
        if (m != NULL || !de_last_error()[0]) {
            fprintf(stderr, "%s at %zu: code %d without a message or with a model\n",
                    what, where, rc);
            bad++;
        }
        return;
    }
    loaded++;
    if (must_fail) {
        fprintf(stderr, "%s at %zu: loaded\n", what, where);
        bad++;
    }
    size_t in = de_model_input_dim(m), out = de_model_output_dim(m);
    float *x = calloc(in, sizeof *x), *y = malloc(out * sizeof *y);
    if (x && y && de_model_predict(m, x, 1, in, y) != DE_OK) {
        fprintf(stderr, "%s at %zu: predict failed: %s\n", what, where, de_last_error());
        bad++;
    }
    free(x);
    free(y);
    de_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_fuzz MODEL SCRATCH_FILE\n");
        return 2;
    }
    scratch = argv[2];
    de_set_num_threads(1);  /* predict only touches the weights here */
    FILE *f = fopen(argv[1], "rb");
    static unsigned char buf[1 << 22];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || n < 8 || n == sizeof buf) {
        fprintf(stderr, "cannot read a small model from %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    size_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | buf[i];
    header += 8;

    try_bytes(buf, n, 0, "intact", 0);
    if (loaded != 1 || bad) return 1;
    loaded = 0;
    for (size_t len = 0; len < n; len++) try_bytes(buf, len, 1, "truncation", len);
    long trunc_fail = failures;
    for (size_t bit = 0; bit < 8 * header && bit / 8 < n; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
        try_bytes(buf, n, 0, "header bit flip", bit);
        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
    }
    for (size_t bit = 8 * header; bit < 8 * n; bit += 61) {
        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
        try_bytes(buf, n, 0, "data bit flip", bit);
        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
    }
    printf("size %zu header %zu truncations %zu failed %ld flips failed %ld loaded %ld bad %ld\n",
           n, header, n, trunc_fail, failures - trunc_fail, loaded, bad);
    return bad ? 1 : 0;
}
