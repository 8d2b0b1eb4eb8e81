/*
 * rows.c -- rows of a file gathered into memory: the read behind a memmap
 * larger than RELEASE_BYTES (training/memmap_adapter.py).
 *
 * Such a memmap is read with pread, not through its mapping (the adapter's
 * docstring says why).  Done from Python that is one os.preadv call per
 * shuffled row, about 1.7 us each with the interpreter around it: for W2's
 * 400-byte rows that is as long as training on them, so the prefetch
 * thread fell behind.  Here a row costs the syscall alone, and the GIL is
 * released for the whole chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine.h"

/* One pread of len bytes at pos into dst, resumed after a short read or a
 * signal.  0, or -1 with errno set (0 when the file ends first). */
static int read_full(int fd, uint8_t *dst, size_t len, int64_t pos)
{
    while (len) {
        ssize_t got = pread(fd, dst, len, (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = 0;
            return -1;
        }
        dst += got;
        len -= (size_t)got;
        pos += got;
    }
    return 0;
}

/* Rows closer than this are read as one span, gap included, into a scratch
 * buffer: a pread costs about what copying 4 KB from the page cache costs,
 * so a smaller gap is cheaper read than skipped.  (Rows of a file far larger
 * than a chunk lie far apart and are read one by one.) */
#define GAP_BYTES 4096
#define SPAN_BYTES (1u << 20)

int64_t de_read_rows(int fd, int64_t pos0, int64_t stride, size_t row_bytes,
                     const int64_t *rows, size_t n, uint8_t *out, int *err)
{
    uint8_t *span = NULL;
    size_t i = 0;
    while (i < n) {
        /* Rows i..j-1 lie in one span of the file that is short of gaps. */
        int64_t lo = pos0 + rows[i] * stride, hi = lo + (int64_t)row_bytes;
        size_t j = i + 1;
        while (j < n) {
            int64_t at = pos0 + rows[j] * stride;
            if (at - hi > GAP_BYTES || at + (int64_t)row_bytes - lo > SPAN_BYTES) break;
            hi = at + (int64_t)row_bytes;
            j++;
        }
        int contiguous = hi - lo == (int64_t)((j - i) * row_bytes);
        if (!contiguous && !span && !(span = malloc(SPAN_BYTES))) {
            *err = ENOMEM;
            return (int64_t)i;
        }
        /* Back-to-back rows go straight to out; others through the span. */
        uint8_t *dst = contiguous ? out + i * row_bytes : span;
        if (read_full(fd, dst, (size_t)(hi - lo), lo) != 0) {
            /* Name the row the file ended in (or the read failed at). */
            size_t r = i;
            *err = errno;
            if (*err == 0)
                while (r < j && read_full(fd, out + r * row_bytes, row_bytes,
                                          pos0 + rows[r] * stride) == 0)
                    r++;
            free(span);
            return (int64_t)r;
        }
        if (!contiguous)
            for (size_t r = i; r < j; r++)
                memcpy(out + r * row_bytes, span + (pos0 + rows[r] * stride - lo),
                       row_bytes);
        i = j;
    }
    free(span);
    *err = 0;
    return (int64_t)n;
}
