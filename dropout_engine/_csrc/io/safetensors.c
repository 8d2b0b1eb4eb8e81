/*
 * safetensors.c -- read the model-file container (see safetensors.h).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON, then the
 * data region.  Trust nothing: N is checked against the file size and a
 * 100 MB cap before anything is allocated; every entry must be exactly
 * {dtype, shape, data_offsets} with a known dtype, a shape whose byte size
 * is computed with overflow checks and equals end - begin, and offsets in
 * the data region; sorted by offset, the tensors must tile the region with
 * no gap, overlap or trailing byte (what Python's reader demands).  Only
 * after all that is a tensor byte read, with fseeko to a validated offset.
 */
#define _FILE_OFFSET_BITS 64
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dropout_engine.h"
#include "io/safetensors.h"

static const struct { const char *name; int size; } DTYPES[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"U16", 2}, {"I16", 2}, {"U32", 4},
    {"I32", 4}, {"U64", 8}, {"I64", 8}, {"F16", 2}, {"F32", 4}, {"F64", 8},
    {"BF16", 2},
};

#define FAIL(code, ...) (snprintf(err, errlen, __VA_ARGS__), (code))

static int entry(de_st_file *st, size_t key, de_st_tensor *t, char *err,
                 size_t errlen)
{
    const de_json *h = &st->header;
    size_t v = key + 1;
    const char *what = "the tensor entry must be {\"dtype\", \"shape\", \"data_offsets\"}";
    size_t dt = de_json_get(h, v, "dtype"), sh = de_json_get(h, v, "shape"),
           off = de_json_get(h, v, "data_offsets");
    if (h->nodes[v].type != DE_JSON_OBJECT || h->nodes[v].count != 3
        || dt == DE_JSON_NONE || sh == DE_JSON_NONE || off == DE_JSON_NONE)
        return FAIL(DE_EFORMAT, "%s", what);
    t->name = key;
    t->dtype_size = 0;
    for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
        if (de_json_streq(h, dt, DTYPES[i].name)) {
            t->dtype_size = DTYPES[i].size;
            t->is_f32 = !strcmp(DTYPES[i].name, "F32");
            t->is_i8 = !strcmp(DTYPES[i].name, "I8");
            t->is_bf16 = !strcmp(DTYPES[i].name, "BF16");
        }
    if (!t->dtype_size)
        return FAIL(DE_EFORMAT, "unknown dtype (expected BOOL, U8..U64, I8..I64, F16, F32, F64)");
    if (h->nodes[sh].type != DE_JSON_ARRAY || h->nodes[sh].count > DE_ST_MAX_NDIM)
        return FAIL(DE_EFORMAT, "the shape must be a list of at most %d integers",
                    DE_ST_MAX_NDIM);
    t->ndim = h->nodes[sh].count;
    /* bytes = prod(shape) * size, refusing what would overflow even when a
     * zero extent makes the tensor empty (as Python's reader does). */
    uint64_t bytes = (uint64_t)t->dtype_size, nonzero = bytes;
    size_t d = sh + 1;
    for (size_t i = 0; i < t->ndim; i++, d = h->nodes[d].next) {
        uint64_t n;
        if (de_json_u64(h, d, &n))
            return FAIL(DE_EFORMAT, "the shape must hold non-negative integers");
        t->shape[i] = n;
        if (n > 1 && nonzero > (uint64_t)INT64_MAX / n)
            return FAIL(DE_EFORMAT, "the shape is too large");
        nonzero *= n ? n : 1;
        bytes *= n;
    }
    uint64_t b, e;
    if (h->nodes[off].type != DE_JSON_ARRAY || h->nodes[off].count != 2
        || de_json_u64(h, off + 1, &b) || de_json_u64(h, off + 2, &e)
        || b > e || e > st->data_size)
        return FAIL(DE_EFORMAT, "data_offsets must be [begin, end] with "
                    "0 <= begin <= end <= %llu (the data region)",
                    (unsigned long long)st->data_size);
    if (e - b != bytes)
        return FAIL(DE_EFORMAT, "the shape needs %llu bytes but the offsets span %llu",
                    (unsigned long long)bytes, (unsigned long long)(e - b));
    t->begin = b;
    t->end = e;
    return DE_OK;
}

static int by_offset(const void *a, const void *b)
{
    const de_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int tensors(de_st_file *st, char *err, size_t errlen)
{
    const de_json *h = &st->header;
    if (h->nodes[0].type != DE_JSON_OBJECT)
        return FAIL(DE_EFORMAT, "the header must be a JSON object");
    st->tensors = calloc(h->nodes[0].count + 1, sizeof *st->tensors);
    if (!st->tensors) return FAIL(DE_ENOMEM, "out of memory");
    for (size_t k = 1; k < h->nodes[0].next; k = h->nodes[k + 1].next) {
        if (de_json_streq(h, k, "__metadata__")) {
            st->metadata = k + 1;
            if (h->nodes[k + 1].type != DE_JSON_OBJECT)
                return FAIL(DE_EFORMAT, "__metadata__ must map str to str");
            for (size_t m = k + 2; m < h->nodes[k + 1].next; m = h->nodes[m + 1].next)
                if (h->nodes[m + 1].type != DE_JSON_STRING)
                    return FAIL(DE_EFORMAT, "__metadata__ must map str to str");
            continue;
        }
        de_st_tensor *t = &st->tensors[st->n_tensors];
        int rc = entry(st, k, t, err, errlen);
        if (rc) {
            /* Name the tensor (its decoded bytes may hold anything). */
            char msg[200];
            snprintf(msg, sizeof msg, "%s", err);
            snprintf(err, errlen, "tensor '%.*s': %s",
                     (int)(h->nodes[k].len < 60 ? h->nodes[k].len : 60),
                     h->text + h->nodes[k].start, msg);
            return rc;
        }
        st->n_tensors++;
    }
    de_st_tensor *sorted = malloc((st->n_tensors + 1) * sizeof *sorted);
    if (!sorted) return FAIL(DE_ENOMEM, "out of memory");
    memcpy(sorted, st->tensors, st->n_tensors * sizeof *sorted);
    qsort(sorted, st->n_tensors, sizeof *sorted, by_offset);
    uint64_t pos = 0;
    int rc = DE_OK;
    for (size_t i = 0; i < st->n_tensors && !rc; i++) {
        if (sorted[i].begin != pos)
            rc = FAIL(DE_EFORMAT, "the tensors overlap or leave a gap at byte %llu "
                      "of the data region", (unsigned long long)pos);
        pos = sorted[i].end;
    }
    if (!rc && pos != st->data_size)
        rc = FAIL(DE_EFORMAT, "the tensors cover %llu bytes but the data region "
                  "holds %llu", (unsigned long long)pos,
                  (unsigned long long)st->data_size);
    free(sorted);
    return rc;
}

int de_st_open(de_st_file *st, const char *path, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    st->metadata = DE_JSON_NONE;
    struct stat sb;
    /* O_NONBLOCK: a FIFO must not hang the caller before fstat refuses
     * it; O_CLOEXEC: a service that forks children does not leak the fd. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return FAIL(DE_EIO, "cannot open the file");
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        close(fd);
        return FAIL(DE_EIO, "not a regular file");
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    st->f = fdopen(fd, "rb");
    if (!st->f) {
        close(fd);
        return FAIL(DE_ENOMEM, "out of memory");
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char len[8];
    if (size < 8 || fread(len, 1, 8, st->f) != 8) {
        de_st_close(st);
        return FAIL(DE_EFORMAT, "the file holds %llu bytes, fewer than the 8-byte "
                    "header length", (unsigned long long)size);
    }
    /* Keras's files under any name: say what they are, not "bad length". */
    if (!memcmp(len, "PK\3\4", 4) || !memcmp(len, "\211HDF\r\n\032\n", 8)) {
        de_st_close(st);
        return FAIL(DE_EFORMAT, "this is a Keras %s file; the C library reads the "
                    "files of model.save(\"model.safetensors\")",
                    len[0] == 'P' ? ".keras (zip)" : "HDF5 (.h5)");
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len[i];
    if (n > size - 8 || n > DE_ST_MAX_HEADER) {
        de_st_close(st);
        return FAIL(DE_EFORMAT, "the header length field says %llu bytes, but the "
                    "file holds %llu (limit %u)", (unsigned long long)n,
                    (unsigned long long)size, DE_ST_MAX_HEADER);
    }
    char *text = malloc(n ? n : 1);
    if (!text) {
        de_st_close(st);
        return FAIL(DE_ENOMEM, "out of memory");
    }
    int rc = DE_OK;
    if (fread(text, 1, n, st->f) != n) rc = FAIL(DE_EIO, "the file ended while reading the header");
    else if (de_json_parse(&st->header, text, n, err, errlen)) rc = DE_EFORMAT;
    free(text);
    if (!rc) {
        st->data_start = 8 + n;
        st->data_size = size - 8 - n;
        rc = tensors(st, err, errlen);
    }
    if (rc) de_st_close(st);
    return rc;
}

void de_st_close(de_st_file *st)
{
    if (st->f) fclose(st->f);
    de_json_free(&st->header);
    free(st->tensors);
    memset(st, 0, sizeof *st);
    st->metadata = DE_JSON_NONE;
}

const de_st_tensor *de_st_find(const de_st_file *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (de_json_streq(&st->header, st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

/* Tensor t's bytes, at an offset entry() checked lies in the data region. */
static int read_bytes(const de_st_file *st, const de_st_tensor *t, void *dst,
                      char *err, size_t errlen)
{
    size_t n = (size_t)(t->end - t->begin);
    if (n && (fseeko(st->f, (off_t)(st->data_start + t->begin), SEEK_SET)
              || fread(dst, 1, n, st->f) != n))
        return FAIL(DE_EIO, "the file ended inside a tensor (did it change while being read?)");
    return DE_OK;
}

int de_st_read_f32(const de_st_file *st, const de_st_tensor *t, float *dst,
                   char *err, size_t errlen)
{
    if (!t->is_f32) return FAIL(DE_EFORMAT, "the tensor is not F32");
    int rc = read_bytes(st, t, dst, err, errlen);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; !rc && i < (size_t)(t->end - t->begin) / 4; i++) {
        uint32_t u;
        memcpy(&u, &dst[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&dst[i], &u, 4);
    }
#endif
    return rc;
}

int de_st_read_i8(const de_st_file *st, const de_st_tensor *t, int8_t *dst,
                  char *err, size_t errlen)
{
    if (!t->is_i8) return FAIL(DE_EFORMAT, "the tensor is not I8");
    return read_bytes(st, t, dst, err, errlen);
}

int de_st_read_bf16(const de_st_file *st, const de_st_tensor *t, uint16_t *dst,
                    char *err, size_t errlen)
{
    if (!t->is_bf16) return FAIL(DE_EFORMAT, "the tensor is not BF16");
    int rc = read_bytes(st, t, dst, err, errlen);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; !rc && i < (size_t)(t->end - t->begin) / 2; i++)
        dst[i] = __builtin_bswap16(dst[i]);
#endif
    return rc;
}
