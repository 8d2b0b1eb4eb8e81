# cython: language_level=3
"""THE binding: typed memoryviews in, C calls out, GIL released.

No logic lives here beyond argument plumbing: callers (ops.py, model code)
validate shapes, dtypes and contiguity first, and never pass empty arrays.
"""
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "engine.h" nogil:
    ctypedef struct de_dropout_t:
        uint32_t drop_below
        float scale
        uint64_t key
    ctypedef struct de_epilogue_t:
        const float *bias
        int act
        de_dropout_t drop
        uint64_t *mask

    int de_isa_available(int isa)
    int de_isa_best()
    int de_isa_set(int isa)
    int de_isa_get()
    const char *de_isa_name(int isa)
    void de_set_num_threads(int n)
    int de_get_num_threads()
    int de_openmp_enabled()

    uint64_t de_rng_key(uint64_t seed, uint64_t stream, uint64_t step)
    void de_random_bits(uint64_t key, uint32_t *out, size_t n)
    void de_dropout_params(double rate, int inverted, uint64_t key, de_dropout_t *d)

    int de_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
    void de_bias_act(size_t m, size_t n, const float *bias, int act, float *y)
    void de_softmax_rows(size_t m, size_t n, float *y)
    void de_dropout(size_t m, size_t n, const float *x, float *y, uint64_t *mask,
                    const de_dropout_t *d)
    int de_dense_forward(size_t m, size_t n, size_t k, const float *x,
                         const float *w, const float *b, int act,
                         const de_dropout_t *drop, float *y, uint64_t *mask)
    void de_backward_act(size_t m, size_t n, int act, const de_dropout_t *drop,
                         const uint64_t *mask, const float *y, const float *z,
                         const float *dy, float *dz)
    void de_sum_rows(size_t m, size_t n, const float *dz, float *db)
    int de_dense_backward(size_t m, size_t n, size_t k, const float *x,
                          const float *w, const float *y, const float *z,
                          const uint64_t *mask, int act, const de_dropout_t *drop,
                          const float *dy, float *scratch, float *dx, float *dw,
                          float *db)


cdef int _check(int rc) except -1:
    if rc == -1:
        raise MemoryError("dropout_engine: out of memory in the C engine")
    if rc != 0:
        raise RuntimeError(f"dropout_engine: C engine error {rc}")
    return 0


# ------------------------------------------------------------ cpu / threads
def isa_available(int isa):
    return bool(de_isa_available(isa))

def isa_best():
    return de_isa_best()

def isa_set(int isa):
    return de_isa_set(isa) == 0

def isa_get():
    return de_isa_get()

def isa_name(int isa):
    return de_isa_name(isa).decode()

def set_num_threads(int n):
    de_set_num_threads(n)

def get_num_threads():
    return de_get_num_threads()

def openmp_enabled():
    return bool(de_openmp_enabled())


# ------------------------------------------------------------------- rng
def rng_key(uint64_t seed, uint64_t stream, uint64_t step):
    return de_rng_key(seed, stream, step)

def random_bits(uint64_t key, uint32_t[::1] out):
    with nogil:
        de_random_bits(key, &out[0], out.shape[0])

def dropout_params(double rate, bint inverted, uint64_t key):
    """(drop_below, scale) as the kernels threshold them."""
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, key, &d)
    return d.drop_below, d.scale


# ------------------------------------------------------------------ gemm
def gemm(bint trans_a, bint trans_b, float[:, :] a, float[:, :] b,
         float[:, ::1] c, bint accumulate=False):
    """c = op(a) @ op(b) (+ c). a and b: unit column stride, any row stride."""
    cdef size_t m = c.shape[0], n = c.shape[1]
    cdef size_t k = a.shape[0] if trans_a else a.shape[1]
    cdef size_t lda = a.strides[0] // sizeof(float)
    cdef size_t ldb = b.strides[0] // sizeof(float)
    cdef int rc
    with nogil:
        rc = de_gemm(trans_a, trans_b, m, n, k, &a[0, 0], lda, &b[0, 0], ldb,
                     &c[0, 0], n, accumulate, NULL)
    _check(rc)


# ------------------------------------------------------------ elementwise
def bias_act(float[:, ::1] y, const float[::1] bias, int act):
    cdef const float *pb = &bias[0] if bias is not None else NULL
    with nogil:
        de_bias_act(y.shape[0], y.shape[1], pb, act, &y[0, 0])

def softmax_rows(float[:, ::1] y):
    with nogil:
        de_softmax_rows(y.shape[0], y.shape[1], &y[0, 0])

def dropout(const float[:, ::1] x, float[:, ::1] y, uint64_t[::1] mask,
            double rate, bint inverted, uint64_t key):
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, key, &d)
    with nogil:
        de_dropout(x.shape[0], x.shape[1], &x[0, 0], &y[0, 0], &mask[0], &d)


# ------------------------------------------------------------------ dense
def dense_forward(const float[:, ::1] x, const float[:, ::1] w,
                  const float[::1] b, int act, double rate, bint inverted,
                  uint64_t key, float[:, ::1] y, uint64_t[::1] mask):
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, key, &d)
    cdef const float *pb = &b[0] if b is not None else NULL
    cdef uint64_t *pm = &mask[0] if mask is not None else NULL
    cdef int rc
    with nogil:
        rc = de_dense_forward(x.shape[0], w.shape[1], x.shape[1], &x[0, 0],
                              &w[0, 0], pb, act, &d, &y[0, 0], pm)
    _check(rc)

def dense_backward(const float[:, ::1] dy, const float[:, ::1] x,
                   const float[:, ::1] w, const float[:, ::1] y,
                   const float[:, ::1] z, const uint64_t[::1] mask, int act,
                   double rate, bint inverted, float[:, ::1] scratch,
                   float[:, ::1] dx, float[:, ::1] dw, float[::1] db):
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, 0, &d)
    cdef const float *pz = &z[0, 0] if z is not None else NULL
    cdef const uint64_t *pm = &mask[0] if mask is not None else NULL
    cdef float *pdx = &dx[0, 0] if dx is not None else NULL
    cdef int rc
    with nogil:
        rc = de_dense_backward(x.shape[0], w.shape[1], x.shape[1], &x[0, 0],
                               &w[0, 0], &y[0, 0], pz, pm, act, &d, &dy[0, 0],
                               &scratch[0, 0], pdx, &dw[0, 0], &db[0])
    _check(rc)
