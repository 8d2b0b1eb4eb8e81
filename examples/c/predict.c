/*
 * predict.c -- load a model saved by model.save("model.safetensors") and
 * print its predictions.
 *
 *     predict [-t THREADS] MODEL INPUT
 *
 * INPUT is a CSV file (name ending in .csv: one row per line, values
 * separated by commas or spaces, '#' lines skipped) or raw little-endian
 * float32 (anything else: rows * input_dim values, no header).  Prints one
 * line per row, the outputs separated by commas, with 9 significant digits
 * (enough to give back the exact float32).
 *
 * Build:  make    (or: cc predict.c $(python -m dropout_engine.config --cflags --libs))
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dropout_engine.h>

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "predict: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

/* The whole file; *n its size. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        char *more = realloc(buf, 2 * cap + 1);
        if (!more) { free(buf); buf = NULL; break; }
        buf = more;
        cap *= 2;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[len] = 0;
    *n = len;
    return buf;
}

/* Parse CSV text into *x (rows x cols); returns rows or -1 (message printed). */
static long parse_csv(char *text, size_t cols, float **x)
{
    size_t rows = 0, cap = 0;
    float *v = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *p = line + strspn(line, " \t\r");
        if (!*p || *p == '#') continue;
        if ((rows + 1) * cols > cap) {
            cap = 2 * (rows + 1) * cols;
            float *more = realloc(v, cap * sizeof *v);
            if (!more) { free(v); return die("out of memory", NULL), -1; }
            v = more;
        }
        for (size_t j = 0; j < cols; j++) {
            char *end;
            v[rows * cols + j] = strtof(p, &end);
            if (end == p) {
                fprintf(stderr, "predict: line %zu: expected %zu numbers\n", rows + 1, cols);
                free(v);
                return -1;
            }
            p = end + strspn(end, " \t\r,");
        }
        if (*p) {
            fprintf(stderr, "predict: line %zu: more than %zu numbers\n", rows + 1, cols);
            free(v);
            return -1;
        }
        rows++;
    }
    *x = v;
    return (long)rows;
}

int main(int argc, char **argv)
{
    int arg = 1;
    if (argc > 2 && !strcmp(argv[1], "-t")) {
        de_set_num_threads(atoi(argv[2]));
        arg = 3;
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: predict [-t THREADS] MODEL INPUT(.csv | raw float32)\n");
        return 2;
    }
    de_model *m;
    if (de_model_load(argv[arg], &m) != DE_OK) return die(de_last_error(), NULL);
    size_t cols = de_model_input_dim(m), outs = de_model_output_dim(m), n;
    char *data = slurp(argv[arg + 1], &n);
    if (!data) return de_model_free(m), die("cannot read", argv[arg + 1]);
    float *x = NULL;
    long rows;
    const char *dot = strrchr(argv[arg + 1], '.');
    if (dot && !strcmp(dot, ".csv")) {
        rows = parse_csv(data, cols, &x);
        free(data);
    } else if (n % (cols * sizeof(float))) {
        fprintf(stderr, "predict: %s holds %zu bytes, not a multiple of a row "
                "(%zu float32)\n", argv[arg + 1], n, cols);
        rows = -1;
        free(data);
    } else {
        rows = (long)(n / (cols * sizeof(float)));
        x = (float *)data;   /* malloc'd, so aligned for float */
    }
    float *y = rows > 0 ? malloc((size_t)rows * outs * sizeof *y) : NULL;
    int rc = rows < 0 || (rows > 0 && !y);
    if (!rc && rows > 0 && de_model_predict(m, x, (size_t)rows, cols, y) != DE_OK)
        rc = die(de_last_error(), NULL);
    for (long i = 0; !rc && i < rows; i++)
        for (size_t j = 0; j < outs; j++)
            printf("%.9g%c", y[i * outs + j], j + 1 < outs ? ',' : '\n');
    free(x);
    free(y);
    de_model_free(m);
    return rc;
}
