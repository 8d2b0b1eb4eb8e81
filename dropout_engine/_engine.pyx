# cython: language_level=3
"""THE binding: typed memoryviews in, C calls out, GIL released.

No logic lives here beyond argument plumbing: callers (ops.py, model code)
validate shapes, dtypes and contiguity first, and never pass empty arrays.
"""
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t

cdef extern from "engine.h" nogil:
    ctypedef struct de_dropout_t:
        uint32_t drop_below
        float scale
        uint64_t key
    enum: DE_PRELU, DE_N_ACT
    ctypedef struct de_act_t:
        int kind
        float alpha, max_value, threshold
        const float *slopes
    ctypedef struct de_epilogue_t:
        const float *bias
        de_act_t act
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
    const char *de_compiler()
    long de_openmp_version()

    uint64_t de_rng_key(uint64_t seed, uint64_t stream, uint64_t step)
    void de_random_bits(uint64_t key, uint32_t *out, size_t n)
    void de_dropout_params(double rate, int inverted, uint64_t key, de_dropout_t *d)

    ctypedef struct de_packed_b_t:
        pass
    de_packed_b_t *de_gemm_pack_b(size_t k, size_t n, const float *b, size_t ldb)
    void de_packed_b_free(de_packed_b_t *pb)
    size_t de_packed_b_bytes(const de_packed_b_t *pb)
    int de_gemm_uses_packed_b(size_t m, size_t n)
    int de_gemm_prepacked(size_t m, size_t n, size_t k, const float *a, size_t lda,
                          const float *b, size_t ldb, const de_packed_b_t *pb,
                          float *c, size_t ldc, int accumulate,
                          const de_epilogue_t *ep)
    uint64_t de_gemm_pack_epoch()
    void de_gemm_packs_stale()
    de_packed_b_t *de_gemm_pack_b_wbf16(size_t k, size_t n, const uint16_t *b,
                                       size_t ldb)
    int de_gemm_wbf16(size_t m, size_t n, size_t k, const float *a, size_t lda,
                     const uint16_t *b, size_t ldb, const de_packed_b_t *pb,
                     float *c, size_t ldc, int accumulate,
                     const de_epilogue_t *ep)

    int de_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
    int de_gemm_bf16(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     const float *a, size_t lda, const float *b, size_t ldb,
                     float *c, size_t ldc, int accumulate, const de_epilogue_t *ep)
    int de_bf16_native_available()
    void de_bf16_set_native(int on)
    const char *de_bf16_kernel()
    void de_act_init(de_act_t *a, int kind)
    int de_act_needs_pre(const de_act_t *a, int dropout)
    void de_bias_act(size_t m, size_t n, const float *bias, const de_act_t *act,
                     float *y)
    void de_softmax_rows(size_t m, size_t n, float *y)
    void de_dropout(size_t m, size_t n, const float *x, float *y, uint64_t *mask,
                    const de_dropout_t *d)
    int de_dense_forward(size_t m, size_t n, size_t k, const float *x,
                         const float *w, const float *b, const de_act_t *act,
                         const de_dropout_t *drop, float *y, uint64_t *mask)
    void de_backward_act(size_t m, size_t n, const de_act_t *act,
                         const de_dropout_t *drop, const uint64_t *mask,
                         const float *y, const float *z, const float *dy,
                         float *dz)
    void de_prelu_slope_grad(size_t m, size_t n, const de_dropout_t *drop,
                             const uint64_t *mask, const float *z,
                             const float *dy, float *ds)
    void de_sum_rows(size_t m, size_t n, const float *dz, float *db)
    int de_dense_backward(size_t m, size_t n, size_t k, const float *x,
                          const float *w, const float *y, const float *z,
                          const uint64_t *mask, const de_act_t *act,
                          const de_dropout_t *drop, const float *dy,
                          float *scratch, float *dx, float *dw, float *db)


cdef int _check(int rc) except -1:
    if rc == -1:
        raise MemoryError("dropout_engine: out of memory in the C engine")
    if rc == -3:
        raise RuntimeError("dropout_engine: an MPI call of the gradient "
                           "all-reduce failed (data-parallel training)")
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

def build_info():
    """(compiler, OpenMP version yyyymm or 0) of the C library."""
    return de_compiler().decode(), de_openmp_version()


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
def gemm(bint trans_a, bint trans_b, const float[:, :] a, const float[:, :] b,
         float[:, ::1] c, bint accumulate=False, bint bf16=False):
    """c = op(a) @ op(b) (+ c). a and b: unit column stride, any row stride.
    bf16: de_gemm_bf16 (inputs rounded to bfloat16, float32 sums)."""
    cdef size_t m = c.shape[0], n = c.shape[1]
    cdef size_t k = a.shape[0] if trans_a else a.shape[1]
    cdef size_t lda = a.strides[0] // sizeof(float)
    cdef size_t ldb = b.strides[0] // sizeof(float)
    cdef int rc
    with nogil:
        if bf16:
            rc = de_gemm_bf16(trans_a, trans_b, m, n, k, &a[0, 0], lda,
                              &b[0, 0], ldb, &c[0, 0], n, accumulate, NULL)
        else:
            rc = de_gemm(trans_a, trans_b, m, n, k, &a[0, 0], lda, &b[0, 0],
                         ldb, &c[0, 0], n, accumulate, NULL)
    _check(rc)


def bf16_native_available():
    return bool(de_bf16_native_available())


def bf16_set_native(bint on):
    de_bf16_set_native(on)


def bf16_kernel():
    """The kernel de_gemm_bf16 runs now."""
    return de_bf16_kernel().decode()


cdef class PackedB:
    """B (k x n float32, or bfloat16 bits as uint16, C-contiguous) packed once
    into the GEMM's panels for the ISA selected when it was made
    (de_gemm_pack_b, de_gemm_pack_b_wbf16); freed with it."""
    cdef de_packed_b_t *p

    def __cinit__(self, b):
        cdef const float[:, ::1] f
        cdef const uint16_t[:, ::1] h
        if b.dtype == "uint16":
            h = b
            with nogil:
                self.p = de_gemm_pack_b_wbf16(h.shape[0], h.shape[1], &h[0, 0],
                                             h.shape[1])
        else:
            f = b
            with nogil:
                self.p = de_gemm_pack_b(f.shape[0], f.shape[1], &f[0, 0],
                                        f.shape[1])
        if self.p == NULL:
            raise MemoryError()

    def __dealloc__(self):
        de_packed_b_free(self.p)

    @property
    def nbytes(self):
        return de_packed_b_bytes(self.p)


def gemm_prepacked(const float[:, ::1] a, const float[:, ::1] b, PackedB bp,
                   float[:, ::1] c, bint accumulate=False):
    """c = a @ b (+ c) with b's panels from bp (or packed here when bp was
    packed for other kernels or another b shape)."""
    cdef int rc
    with nogil:
        rc = de_gemm_prepacked(c.shape[0], c.shape[1], a.shape[1], &a[0, 0],
                               a.shape[1], &b[0, 0], b.shape[1], bp.p,
                               &c[0, 0], c.shape[1], accumulate, NULL)
    _check(rc)


def gemm_wbf16(const float[:, ::1] a, const uint16_t[:, ::1] b, PackedB bp,
              float[:, ::1] c, bint accumulate=False):
    """c = a @ widen(b) (+ c), b the bfloat16 bits [k, n] (weight-only bf16),
    with b's panels from bp when it holds bf16 panels for this shape and
    ISA (else packed per call), or None."""
    cdef int rc
    cdef const de_packed_b_t *pp = bp.p if bp is not None else NULL
    with nogil:
        rc = de_gemm_wbf16(c.shape[0], c.shape[1], a.shape[1], &a[0, 0],
                          a.shape[1], &b[0, 0], b.shape[1], pp, &c[0, 0],
                          c.shape[1], accumulate, NULL)
    _check(rc)


cdef extern from "frame/bf16.h" nogil:
    uint16_t de_bf16_from_f32(float f)


def bf16_round(const float[::1] w, uint16_t[::1] bits):
    """bits[i] = w[i] rounded to bfloat16 by frame/bf16.h, the engine's one
    float32 -> bfloat16 conversion (ties to even, NaN kept)."""
    cdef size_t i, n = w.shape[0]
    if <size_t>bits.shape[0] != n:
        raise ValueError(f"bf16_round: {n} values, {bits.shape[0]} outputs")
    with nogil:
        for i in range(n):
            bits[i] = de_bf16_from_f32(w[i])


def gemm_uses_packed_b(size_t m, size_t n):
    """Whether de_gemm packs B for an m x n output (else prepacking is moot)."""
    return bool(de_gemm_uses_packed_b(m, n))


def weights_written():
    """Tell every holder of packed weight panels that weights may have
    changed (they repack at their next use)."""
    de_gemm_packs_stale()


# ------------------------------------------------------------ activations
cdef void _fill_act(de_act_t *a, act) except *:
    """act: a kind (DE_* code, with de_act_init's defaults) or the tuple
    (kind, alpha, max_value, threshold) that activations.py builds.  A
    PReLU needs its slopes: only Net (which sets them) takes one."""
    kind = act[0] if isinstance(act, tuple) else act
    if not 0 <= kind < DE_N_ACT:
        raise ValueError(f"no activation kind {kind}")
    de_act_init(a, kind)
    if isinstance(act, tuple):
        a.alpha, a.max_value, a.threshold = act[1], act[2], act[3]


cdef void _fill_plain_act(de_act_t *a, act) except *:
    """_fill_act for the entries without slopes (all but Net)."""
    _fill_act(a, act)
    if a.kind == DE_PRELU:
        raise ValueError("a PReLU activation needs its slopes: use a Net")


def act_defaults(int kind):
    """(kind, alpha, max_value, threshold) as de_act_init sets them."""
    cdef de_act_t a
    de_act_init(&a, kind)
    return a.kind, a.alpha, a.max_value, a.threshold


def act_needs_pre(act, bint dropout):
    """Whether the backward pass of `act` needs the pre-activation."""
    cdef de_act_t a
    _fill_act(&a, act)
    return bool(de_act_needs_pre(&a, dropout))


# ------------------------------------------------------------ elementwise
def bias_act(float[:, ::1] y, const float[::1] bias, act):
    cdef const float *pb = &bias[0] if bias is not None else NULL
    cdef de_act_t a
    _fill_plain_act(&a, act)
    with nogil:
        de_bias_act(y.shape[0], y.shape[1], pb, &a, &y[0, 0])

def softmax_rows(float[:, ::1] y):
    with nogil:
        de_softmax_rows(y.shape[0], y.shape[1], &y[0, 0])

def dropout(const float[:, ::1] x, float[:, ::1] y, uint64_t[::1] mask,
            double rate, bint inverted, uint64_t key):
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, key, &d)
    with nogil:
        de_dropout(x.shape[0], x.shape[1], &x[0, 0], &y[0, 0], &mask[0], &d)


cdef extern from "engine.h" nogil:
    void de_noise(int kind, double rate, uint64_t key, size_t len, float *y,
                  float *mul)

def noise(int kind, double rate, uint64_t key, float[::1] y, float[::1] mul):
    """GaussianDropout (kind 1) / AlphaDropout (2) training noise on y in
    place (noise.c); mul: len(y) + 1 floats of scratch."""
    if kind not in (1, 2) or not 0.0 < rate < 1.0 or y.shape[0] == 0 \
            or mul.shape[0] < y.shape[0] + 1:
        raise ValueError("noise: kind 1 or 2, rate in (0, 1), a non-empty y and "
                         "len(y) + 1 floats of mul")
    with nogil:
        de_noise(kind, rate, key, y.shape[0], &y[0], &mul[0])


# ------------------------------------------------------------------ dense
def dense_forward(const float[:, ::1] x, const float[:, ::1] w,
                  const float[::1] b, act, double rate, bint inverted,
                  uint64_t key, float[:, ::1] y, uint64_t[::1] mask):
    cdef de_dropout_t d
    cdef de_act_t a
    _fill_plain_act(&a, act)
    de_dropout_params(rate, inverted, key, &d)
    cdef const float *pb = &b[0] if b is not None else NULL
    cdef uint64_t *pm = &mask[0] if mask is not None else NULL
    cdef int rc
    with nogil:
        rc = de_dense_forward(x.shape[0], w.shape[1], x.shape[1], &x[0, 0],
                              &w[0, 0], pb, &a, &d, &y[0, 0], pm)
    _check(rc)

def dense_backward(const float[:, ::1] dy, const float[:, ::1] x,
                   const float[:, ::1] w, const float[:, ::1] y,
                   const float[:, ::1] z, const uint64_t[::1] mask, act,
                   double rate, bint inverted, float[:, ::1] scratch,
                   float[:, ::1] dx, float[:, ::1] dw, float[::1] db):
    cdef de_dropout_t d
    cdef de_act_t a
    _fill_plain_act(&a, act)
    de_dropout_params(rate, inverted, 0, &d)
    cdef const float *pz = &z[0, 0] if z is not None else NULL
    cdef const uint64_t *pm = &mask[0] if mask is not None else NULL
    cdef float *pdx = &dx[0, 0] if dx is not None else NULL
    cdef int rc
    with nogil:
        rc = de_dense_backward(x.shape[0], w.shape[1], x.shape[1], &x[0, 0],
                               &w[0, 0], &y[0, 0], pz, pm, &a, &d, &dy[0, 0],
                               &scratch[0, 0], pdx, &dw[0, 0], &db[0])
    _check(rc)


def prelu_slope_grad(const float[:, ::1] z, const float[:, ::1] dy,
                     const uint64_t[::1] mask, double rate, bint inverted,
                     float[::1] ds):
    """ds = PReLU's slope gradient for upstream dy (the C train loop's)."""
    cdef de_dropout_t d
    de_dropout_params(rate, inverted, 0, &d)
    cdef const uint64_t *pm = &mask[0] if mask is not None else NULL
    with nogil:
        de_prelu_slope_grad(z.shape[0], z.shape[1], &d, pm, &z[0, 0], &dy[0, 0],
                            &ds[0])


def noise(int kind, double rate, uint64_t key, float[::1] y, float[::1] mul):
    """de_noise on y in place (mul: len(y) + 1 floats)."""
    if mul.shape[0] < y.shape[0] + 1:
        raise ValueError("mul needs len(y) + 1 floats")
    with nogil:
        de_noise(kind, rate, key, y.shape[0], &y[0], &mul[0])

def dropout_bcast(float[:, ::1] y, uint64_t[::1] mask, size_t steps, int axes,
                  size_t group, double rate, bint inverted, uint64_t key):
    """de_dropout_bcast on y [m * steps, n] in place."""
    cdef de_dropout_t d
    cdef size_t rows = y.shape[0], n = y.shape[1]
    if steps == 0 or rows % steps or <size_t>mask.shape[0] * 64 < rows * n:
        raise ValueError("dropout_bcast: y must have m * steps rows, mask its bits")
    de_dropout_params(rate, inverted, key, &d)
    with nogil:
        de_dropout_bcast(rows // steps, steps, n, axes, group, &d, &y[0, 0],
                         &mask[0])


# ============================================================== training
# The model's C side (loss.c, optim.c, schedule.c, train.c).  model.py
# validates and plans; these only move pointers.
from libc.stdint cimport int8_t, int32_t, int64_t, intptr_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset

cdef extern from "engine.h" nogil:
    enum: DE_LR_PIECEWISE, DE_N_LR
    ctypedef struct de_schedule_t:
        int kind
        double lr, steps, rate, end, power, alpha, target, warmup_steps
        double t_mul, m_mul
        int staircase, cycle, warmup
        size_t n_bounds
        const double *bounds
        const double *values
    ctypedef struct de_optim_t:
        int kind
        de_schedule_t schedule
        float momentum
        int nesterov
        float beta_1, beta_2, epsilon
        float rho
        int centered
        float weight_decay
        int unfused
    ctypedef struct de_param_t:
        float *w
        size_t rows, cols
        float *slot[3]
        float l1, l2
        int constraint
        float max_value
        int axis
    ctypedef struct de_norm_t:
        int kind
        int post
        float epsilon
        double momentum
        float *gamma
        float *beta
        float *moving_mean
        float *moving_var
        const float *fold_scale
        const float *fold_shift
    ctypedef struct de_layer_t:
        size_t n_in, n_out
        de_act_t act
        const float *w
        const float *b
        double rate
        int inverted
        uint64_t seed
        int noise
        const int8_t *qw
        const int32_t *qcorr
        const float *qscale
        const uint16_t *bw
        int op
        size_t steps, pool_steps, vocab
        int pool, mask_zero, noise_axes
        de_norm_t norm
        size_t n_src
        const int64_t *src
        int combine
        int bf16
    ctypedef struct de_net_t:
        pass
    enum: DE_OP_EMBED
    enum: DE_OP_DENSE
    ctypedef struct de_shm_t:
        void *barrier
        void *win_sync
        intptr_t node, cross, win
        int rank, size
        char **seg
        size_t seg_bytes
    ctypedef struct de_allreduce_t:
        void *allreduce
        void *iallreduce
        void *wait
        intptr_t comm, float32, float64, sum, in_place
        int int_handles, rank, size, buckets
        de_shm_t shm
    int de_net_set_allreduce(de_net_t *net, const de_allreduce_t *a,
                             size_t global_batch)
    size_t de_net_shm_bytes(const de_net_t *net)
    double de_net_comm_seconds(const de_net_t *net)

    int de_layers_check(size_t n_in, size_t n_layers, const de_layer_t *layers)
    void de_noise(int kind, double rate, uint64_t key, size_t len, float *y,
                  float *mul)
    void de_dropout_bcast(size_t m, size_t steps, size_t n, int axes,
                          size_t group, const de_dropout_t *d, float *y,
                          uint64_t *mask)
    int de_graph_check(size_t n_in, size_t n_layers, const de_layer_t *layers)
    int de_graph_is_dag(size_t n_layers, const de_layer_t *layers)

    double de_loss_rows(int loss, size_t m, size_t k, const float *p,
                        const float *t, const float *sw, float *g, int fused,
                        float gscale)
    double de_metric_rows(int metric, size_t m, size_t k, const float *p,
                          const float *t, const float *sw)
    double de_schedule_lr(const de_schedule_t *s, int64_t step)
    double de_optim_lr(const de_optim_t *o, int64_t step)
    double de_param_penalty(const de_param_t *p)
    void de_param_update(const de_optim_t *o, double lr, int64_t step,
                         const de_param_t *p, float *grad)
    int de_param_update_gemm(const de_optim_t *o, double lr, int64_t step,
                             const de_param_t *p, size_t m, const float *x,
                             const float *dz, float *grad)
    de_net_t *de_net_create(size_t n_in, double in_rate, int in_inverted,
                            uint64_t in_seed, size_t n_layers,
                            const de_layer_t *layers)
    void de_net_free(de_net_t *net)
    int de_net_predict(const de_net_t *net, size_t m, const float *x,
                       float *y, size_t chunk)
    int de_net_predict_packed(const de_net_t *net, size_t m, const float *x,
                              float *y, size_t chunk,
                              const de_packed_b_t *const *packed)
    int de_net_predict_mc(const de_net_t *net, size_t m, const float *x,
                          size_t samples, uint64_t key, float *mean,
                          float *std, size_t chunk)
    int de_net_evaluate(const de_net_t *net, size_t m, const float *x,
                        const float *t, const float *sw, size_t t_cols,
                        int loss, size_t n_metrics, const int *metrics,
                        size_t chunk, double *sums)
    int de_net_train_setup(de_net_t *net, size_t batch, size_t t_cols,
                           int loss, int fused, size_t n_metrics,
                           const int *metrics, int weighted,
                           const de_param_t *params)
    long de_net_train(de_net_t *net, const de_optim_t *opt, const float *x,
                      const float *t, const float *sw, const int64_t *index,
                      size_t n_index,
                      size_t first, size_t count, int64_t *iterations,
                      float *stats)


cimport numpy as cnp
cnp.import_array()


cdef inline bint _is_f32c(cnp.ndarray a, size_t cols):
    return (cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and <size_t>a.shape[1] == cols)


cdef float *_fptr(a) except? NULL:
    """Data pointer of a C-contiguous native float32 ndarray (None -> NULL).
    Its writeable flag is not asked: weights are read-only to users
    (layers/core.py) and written only by the engine's own code."""
    cdef cnp.ndarray v
    if a is None:
        return NULL
    v = a
    if not (cnp.PyArray_TYPE(v) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(v)
            and cnp.PyArray_IS_C_CONTIGUOUS(v) and cnp.PyArray_SIZE(v) > 0):
        raise ValueError("expected a non-empty C-contiguous native float32 array")
    return <float *>cnp.PyArray_DATA(v)


cdef const void *_ptr(cnp.ndarray a):
    """Data pointer of a C-contiguous array (Python checked dtype and size)."""
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError("array must be C-contiguous")
    return cnp.PyArray_DATA(a)


cdef int _fill_schedule(de_schedule_t *s, dict c) except -1:
    """c: kind and the de_schedule_t fields it uses (schedules.py); bounds
    and values float64 arrays that outlive the C call."""
    cdef const double[::1] bounds, values
    memset(s, 0, sizeof(s[0]))
    s.kind = c["kind"]
    if not 0 <= s.kind < DE_N_LR:
        raise ValueError(f"unknown learning-rate schedule kind {s.kind}")
    s.lr = c["lr"]
    s.steps = c.get("steps", 1.0)
    s.rate = c.get("rate", 0.0)
    s.end = c.get("end", 0.0)
    s.power = c.get("power", 1.0)
    s.alpha = c.get("alpha", 0.0)
    s.target = c.get("target", 0.0)
    s.warmup_steps = c.get("warmup_steps", 0.0)
    s.t_mul = c.get("t_mul", 1.0)
    s.m_mul = c.get("m_mul", 1.0)
    s.staircase = c.get("staircase", False)
    s.cycle = c.get("cycle", False)
    s.warmup = c.get("warmup", False)
    if s.kind == DE_LR_PIECEWISE:
        bounds, values = c["bounds"], c["values"]
        if values.shape[0] != bounds.shape[0] + 1:
            raise ValueError("a piecewise schedule needs one value more than bounds")
        s.n_bounds = bounds.shape[0]
        s.bounds = &bounds[0] if s.n_bounds else NULL
        s.values = &values[0]
    return 0


cdef int _fill_optim(de_optim_t *o, dict c) except -1:
    """c: kind, the hyperparameters, and either lr (a constant rate) or
    schedule (a _fill_schedule dict)."""
    o.kind = c["kind"]
    if c.get("schedule") is not None:
        _fill_schedule(&o.schedule, c["schedule"])
    else:
        _fill_schedule(&o.schedule, {"kind": 0, "lr": c["lr"]})
    o.momentum = c.get("momentum", 0.0)
    o.nesterov = c.get("nesterov", False)
    o.beta_1 = c.get("beta_1", 0.9)
    o.beta_2 = c.get("beta_2", 0.999)
    o.epsilon = c.get("epsilon", 1e-7)
    o.rho = c.get("rho", 0.9)
    o.centered = c.get("centered", False)
    o.weight_decay = c.get("weight_decay", 0.0)
    o.unfused = c.get("unfused", False)


cdef void _fill_param(de_param_t *p, dict c):
    """c: w, slots (list of <= 3 arrays), l1, l2, constraint, max_value, axis."""
    w = c["w"]
    p.w = _fptr(w)
    p.rows = w.shape[0]
    p.cols = w.shape[1] if w.ndim == 2 else 1
    slots = c["slots"]
    for i in range(3):
        p.slot[i] = _fptr(slots[i]) if i < len(slots) else NULL
    p.l1 = c.get("l1", 0.0)
    p.l2 = c.get("l2", 0.0)
    p.constraint = c.get("constraint", 0)
    p.max_value = c.get("max_value", 0.0)
    p.axis = c.get("axis", 0)


cdef void _fill_norm(de_norm_t *nm, dict c) except *:
    """c: None (no normalisation) or kind, post, epsilon, momentum and the
    float32 [n] arrays gamma, beta (or None), moving_mean, moving_var (BN)
    that ``layers.normalization`` builds."""
    memset(nm, 0, sizeof(nm[0]))
    if c is None:
        return
    nm.kind = c["kind"]
    if not 0 < nm.kind <= 2:
        raise ValueError(f"no normalisation kind {nm.kind}")
    nm.post = c["post"]
    nm.epsilon = c["epsilon"]
    nm.momentum = c.get("momentum", 0.0)
    nm.gamma = _fptr(c["gamma"])
    nm.beta = _fptr(c["beta"])
    nm.moving_mean = _fptr(c.get("moving_mean"))
    nm.moving_var = _fptr(c.get("moving_var"))
    if nm.kind == 1 and (nm.moving_mean == NULL or nm.moving_var == NULL):
        raise ValueError("a BatchNormalization needs its moving statistics")


cdef inline const float *_opt_rows(const float[::1] a):
    return &a[0] if a is not None else NULL


def loss_rows(int loss, const float[:, ::1] p, const float[:, ::1] t,
              float[:, ::1] g, bint fused, float gscale,
              const float[::1] sw=None):
    """Sum of per-sample losses (each times sw[i] when given); g (or None)
    receives the scaled gradient."""
    cdef float *pg = &g[0, 0] if g is not None else NULL
    cdef const float *psw = _opt_rows(sw)
    cdef double r
    with nogil:
        r = de_loss_rows(loss, p.shape[0], p.shape[1], &p[0, 0], &t[0, 0],
                         psw, pg, fused, gscale)
    return r

def metric_rows(int metric, const float[:, ::1] p, const float[:, ::1] t,
                const float[::1] sw=None):
    cdef const float *psw = _opt_rows(sw)
    cdef double r
    with nogil:
        r = de_metric_rows(metric, p.shape[0], p.shape[1], &p[0, 0], &t[0, 0],
                           psw)
    return r

def optim_lr(dict opt, int64_t step):
    cdef de_optim_t o
    _fill_optim(&o, opt)
    return de_optim_lr(&o, step)

def schedule_lr(dict schedule, const int64_t[::1] steps, double[::1] out):
    """out[i] = the learning rate the C loop applies at steps[i]."""
    cdef de_schedule_t s
    cdef Py_ssize_t i, n = steps.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} elements, steps {n}")
    _fill_schedule(&s, schedule)
    with nogil:
        for i in range(n):
            out[i] = de_schedule_lr(&s, steps[i])

def param_penalty(dict param):
    cdef de_param_t p
    _fill_param(&p, param)
    cdef double r
    with nogil:
        r = de_param_penalty(&p)
    return r

def param_update(dict opt, int64_t step, dict param, float[::1] grad):
    """One optimizer step on one array (the C loop's update, for tests)."""
    cdef de_optim_t o
    cdef de_param_t p
    _fill_optim(&o, opt)
    _fill_param(&p, param)
    cdef double lr = de_optim_lr(&o, step)
    with nogil:
        de_param_update(&o, lr, step, &p, &grad[0])


def param_update_gemm(dict opt, int64_t step, dict param,
                      const float[:, ::1] x, const float[:, ::1] dz,
                      float[:, ::1] grad):
    """grad = x.T @ dz and the optimizer step on param["w"] (2-D), fused
    as the C loop runs a Dense kernel's (for tests)."""
    cdef de_optim_t o
    cdef de_param_t p
    w = param["w"]
    if (w.ndim != 2 or x.shape[0] != dz.shape[0] or x.shape[1] != w.shape[0]
            or dz.shape[1] != w.shape[1] or grad.shape[0] != w.shape[0]
            or grad.shape[1] != w.shape[1]):
        raise ValueError(f"param_update_gemm: w {w.shape}, x {x.shape}, "
                         f"dz {dz.shape}, grad {grad.shape} do not fit")
    _fill_optim(&o, opt)
    _fill_param(&p, param)
    cdef double lr = de_optim_lr(&o, step)
    cdef int rc
    with nogil:
        rc = de_param_update_gemm(&o, lr, step, &p, x.shape[0], &x[0, 0],
                                  &dz[0, 0], &grad[0, 0])
    _check(rc)


# Rows of a predict big enough for the packed GEMM path (any m > 4 does).
cdef enum:
    DE_PACK_ROWS = 1 << 20


cdef class _Packs:
    """One set of packed kernel panels of a Net (an entry per layer, NULL
    where not packed) and the pack epoch read before they were made.  A
    predict holds a reference for its call, so replacing a Net's set never
    frees panels a concurrent predict is reading."""
    cdef de_packed_b_t **p
    cdef size_t n
    cdef uint64_t epoch
    cdef size_t nbytes

    def __cinit__(self, size_t n, uint64_t epoch):
        self.p = <de_packed_b_t **>calloc(n if n else 1, sizeof(de_packed_b_t *))
        if self.p == NULL:
            raise MemoryError()
        self.n = n
        self.epoch = epoch

    def __dealloc__(self):
        cdef size_t i
        if self.p != NULL:
            for i in range(self.n):
                de_packed_b_free(self.p[i])
            free(self.p)


cdef class Net:
    """A de_net_t plus references keeping every array it points at alive.

    layers: list of dicts (w, b or None, act: a kind or the activation
    tuple of _fill_act, slopes: a PReLU's or None, rate, inverted, seed,
    noise, norm: a _fill_norm dict or None; optional, 0 by default: op,
    steps, pool_steps, vocab, pool, mask_zero, noise_axes, as de_layer_t's);
    the weights must stay the same numpy objects (updated in place).  A net
    with an embedding layer reads token ids: ``reads`` is False
    for it (its x is always validated in Python first).  A DAG's layers
    also give src (an int64 array of source layers, -1 the input) and
    combine (graph.c).

    Prepacked kernels: predict of more than DE_GEMM_SMALL_M rows packs each
    float or bfloat16 Dense kernel's GEMM panels once (lazily, at the first such
    predict) and reuses them while de_gemm_pack_epoch() is unchanged; every
    write to weights bumps the epoch (C training and parameter updates do
    it themselves; Python writes call weights_written()), as does an ISA
    change.  The panels hold about the kernels' size again; batch-1 predict
    (the small-m path reads kernels in place) never makes them.
    """
    cdef de_net_t *net
    cdef _Packs _packs       # packed kernel panels, or None
    cdef list _pack_src      # per layer: (kernel or None, k, n)
    cdef size_t _pack_nmax   # widest packable layer output (0: none)
    cdef list _keep          # the layers' arrays
    cdef list _keep_train    # the arrays of the current training setup
    cdef size_t n_in, n_out
    cdef bint ids
    cdef size_t n_metrics
    cdef int metrics[8]

    def __cinit__(self, size_t n_in, double in_rate, bint in_inverted,
                  uint64_t in_seed, list layers):
        cdef size_t n = len(layers), i
        cdef de_layer_t *ls = <de_layer_t *>malloc(n * sizeof(de_layer_t))
        if ls == NULL:
            raise MemoryError()
        self._keep = []
        self._pack_src = []
        self._pack_nmax = 0
        try:
            for i in range(n):
                c = layers[i]
                ls[i].n_in = c["n_in"]
                ls[i].n_out = c["n_out"]
                _fill_act(&ls[i].act, c["act"])
                if ls[i].act.kind == DE_PRELU and c.get("slopes") is None:
                    raise ValueError("a PReLU layer needs its slopes")
                ls[i].act.slopes = _fptr(c.get("slopes"))
                ls[i].w = _fptr(c["w"])
                q = c.get("int8")
                ls[i].qw = <const int8_t *>_ptr(q.packed) if q else NULL
                ls[i].qcorr = <const int32_t *>_ptr(q.corr) if q else NULL
                ls[i].qscale = <const float *>_ptr(q.scale) if q else NULL
                h = c.get("wbf16")    # quantization.Bf16Kernel or None
                ls[i].bw = <const uint16_t *>_ptr(h.bits) if h else NULL
                ls[i].b = _fptr(c["b"])
                ls[i].rate = c["rate"]
                ls[i].inverted = c["inverted"]
                ls[i].seed = c["seed"]
                ls[i].noise = c.get("noise", 0)
                ls[i].op = c.get("op", 0)
                ls[i].steps = c.get("steps", 0)
                ls[i].pool_steps = c.get("pool_steps", 0)
                ls[i].vocab = c.get("vocab", 0)
                ls[i].pool = c.get("pool", 0)
                ls[i].mask_zero = c.get("mask_zero", 0)
                ls[i].noise_axes = c.get("noise_axes", 0)
                ls[i].bf16 = c.get("bf16", 0)
                if ls[i].op == DE_OP_EMBED and (
                        c["w"] is None or c["w"].shape[0] != ls[i].vocab
                        or c["w"].shape[1] != ls[i].n_out):
                    raise ValueError("an embedding layer needs its table [vocab, n_out]")
                _fill_norm(&ls[i].norm, c.get("norm"))
                src = c.get("src")
                if src is not None and (cnp.PyArray_TYPE(src) != cnp.NPY_INT64
                                        or (<cnp.ndarray>src).ndim != 1):
                    raise ValueError("Net: a layer's src must be a 1-D int64 array")
                ls[i].n_src = 0 if src is None else len(src)
                ls[i].src = <const int64_t *>_ptr(src) if ls[i].n_src else NULL
                ls[i].combine = c.get("combine", 0)
                self._keep += [c["w"], c["b"], q, h, c.get("slopes"), c.get("norm"), src]
                dense = ls[i].op == DE_OP_DENSE
                self._pack_src.append((None if q or not dense or ls[i].bf16
                                       else h.bits if h else c["w"],
                                       ls[i].n_in, ls[i].n_out))
                if dense and not q and ls[i].n_out > self._pack_nmax:
                    self._pack_nmax = ls[i].n_out
            if de_graph_is_dag(n, ls):
                if de_graph_check(n_in, n, ls) != 0:
                    raise ValueError("Net: a layer's sources, ops or widths do not "
                                     "match its merge")
            elif de_layers_check(n_in, n, ls) != 0:
                raise ValueError("Net: the layers do not chain (shapes, ops)")
            self.net = de_net_create(n_in, in_rate, in_inverted, in_seed, n, ls)
        finally:
            free(ls)
        if self.net == NULL:
            raise MemoryError()
        self.n_in = n_in
        self.n_out = layers[n - 1]["n_out"]
        self.ids = any(c.get("op", 0) == DE_OP_EMBED for c in layers)

    def __dealloc__(self):
        de_net_free(self.net)

    cdef inline bint _reads(self, x):
        return (cnp.PyArray_CheckExact(x) and _is_f32c(<cnp.ndarray>x, self.n_in)
                and (<cnp.ndarray>x).shape[0] > 0)

    def reads(self, x):
        """Whether predict reads x as is: a C-contiguous native float32
        [m > 0, n_in] ndarray (not a subclass), and the net does not read
        token ids (those are validated in Python).  The caller's cheap check
        before its one predict call (the same test in Python would cost a
        fifth of a batch-1 predict); it converts anything else first."""
        return not self.ids and self._reads(x)

    def predict(self, x, size_t chunk):
        """The network on x, a new float32 [m, n_out] array.  x must pass
        ``reads`` (the caller checked first); anything else is refused
        here, never read.  Raw pointers rather than memoryviews: at batch 1
        acquiring buffers would cost as much as the network."""
        cdef cnp.ndarray a, y
        cdef cnp.npy_intp dims[2]
        if chunk == 0 or not self._reads(x):
            raise ValueError(f"Net.predict: x must be a C-contiguous native float32 "
                             f"[m > 0, {self.n_in}] ndarray and chunk > 0")
        a = <cnp.ndarray>x
        dims[0] = a.shape[0]
        dims[1] = self.n_out
        y = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        cdef const float *px = <const float *>cnp.PyArray_DATA(a)
        cdef float *py = <float *>cnp.PyArray_DATA(y)
        cdef size_t m = dims[0]
        cdef int rc
        cdef _Packs packs = None
        cdef const de_packed_b_t *const *pp = NULL
        if self._pack_nmax and de_gemm_uses_packed_b(min(m, chunk), self._pack_nmax):
            packs = self._packs
            if packs is None or packs.epoch != de_gemm_pack_epoch():
                packs = self._repack()
            pp = <const de_packed_b_t *const *>packs.p
        with nogil:
            rc = de_net_predict_packed(self.net, m, px, py, chunk, pp)
        _check(rc)
        return y

    cdef _Packs _repack(self):
        """Pack the kernels of the layers whose GEMM packs B (the others
        stay NULL, as does one whose copy would not fit in memory: it runs
        unpacked, as before).  The epoch is read first, so a write during
        packing leaves the set stale."""
        cdef _Packs packs = _Packs(len(self._pack_src), de_gemm_pack_epoch())
        cdef size_t i, k, n
        cdef const float *w
        cdef const uint16_t *h
        for i in range(packs.n):
            src, k, n = self._pack_src[i]
            if src is None or not de_gemm_uses_packed_b(DE_PACK_ROWS, n):
                continue
            if src.dtype == "uint16":      # bfloat16 bits: bf16 panels
                h = <const uint16_t *>_ptr(src)
                with nogil:
                    packs.p[i] = de_gemm_pack_b_wbf16(k, n, h, n)
            else:
                w = _fptr(src)
                with nogil:
                    packs.p[i] = de_gemm_pack_b(k, n, w, n)
            packs.nbytes += de_packed_b_bytes(packs.p[i])
        self._packs = packs
        return packs

    def packed_bytes(self):
        """Bytes of packed kernel panels this net holds now (0 before the
        first predict that packs, and after release_packed)."""
        return self._packs.nbytes if self._packs is not None else 0

    def release_packed(self):
        """Free the packed panels (the next large predict packs again)."""
        self._packs = None

    def predict_mc(self, const float[:, ::1] x, size_t samples, uint64_t key,
                   size_t chunk):
        """(mean, std) over `samples` dropout-active passes (validated x)."""
        cdef cnp.npy_intp dims[2]
        dims[0] = x.shape[0]
        dims[1] = self.n_out
        mean = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        std = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        cdef float[:, ::1] pm = mean, ps = std
        cdef int rc
        with nogil:
            rc = de_net_predict_mc(self.net, x.shape[0], &x[0, 0], samples, key,
                                   &pm[0, 0], &ps[0, 0], chunk)
        _check(rc)
        return mean, std

    def evaluate(self, const float[:, ::1] x, const float[:, ::1] t, int loss,
                 metrics, size_t chunk, const float[::1] sw=None):
        """[sum of losses (weighted by sw when given), sum of each metric]
        over the rows (no penalty)."""
        cdef const float *psw = _opt_rows(sw)
        cdef int ms[8]
        cdef size_t nm = len(metrics), i
        cdef double sums[9]
        cdef int rc
        for i in range(nm):
            ms[i] = metrics[i]
        with nogil:
            rc = de_net_evaluate(self.net, x.shape[0], &x[0, 0], &t[0, 0], psw,
                                 t.shape[1], loss, nm, ms, chunk, sums)
        _check(rc)
        return [sums[i] for i in range(nm + 1)]

    def train_setup(self, size_t batch, size_t t_cols, int loss, bint fused,
                    metrics, list params, bint weighted=False):
        cdef size_t n = len(params), i, nm
        cdef int ms[8]
        cdef de_param_t *ps = <de_param_t *>malloc(n * sizeof(de_param_t))
        cdef int rc
        if ps == NULL:
            raise MemoryError()
        for i in range(<size_t>len(metrics)):
            ms[i] = metrics[i]
        keep = []
        try:
            for i in range(n):
                _fill_param(&ps[i], params[i])
                keep += [params[i]["w"]] + list(params[i]["slots"])
            nm = len(metrics)
            with nogil:
                rc = de_net_train_setup(self.net, batch, t_cols, loss, fused,
                                        nm, ms, weighted, ps)
        finally:
            free(ps)
        self._keep_train = keep
        _check(rc)

    def shm_bytes(self):
        """The bytes of a shared-memory segment for this training setup's
        gradients (0 before one): what ``set_allreduce``'s "shm" needs."""
        return de_net_shm_bytes(self.net)

    def comm_seconds(self):
        """Seconds the training loop spent summing over the processes since
        the last ``set_allreduce`` (de_net_comm_seconds)."""
        return de_net_comm_seconds(self.net)

    def set_allreduce(self, dict a, size_t global_batch):
        """Data-parallel training over MPI (a: the de_allreduce_t fields,
        addresses and handles as ints), or None: this process alone."""
        cdef de_allreduce_t c
        cdef int rc
        cdef char **seg = NULL
        if a is None:
            rc = de_net_set_allreduce(self.net, NULL, 0)
        else:
            c.allreduce = <void *><intptr_t>a["allreduce"]
            c.iallreduce = <void *><intptr_t>a["iallreduce"]
            c.wait = <void *><intptr_t>a["wait"]
            c.comm, c.float32, c.float64 = a["comm"], a["float32"], a["float64"]
            c.sum, c.in_place = a["sum"], a["in_place"]
            c.int_handles, c.rank, c.size = a["int_handles"], a["rank"], a["size"]
            c.buckets = a["buckets"]
            c.shm.seg = NULL
            shm = a.get("shm")
            if shm is not None:
                segs = [int(p) for p in shm["seg"]]
                seg = <char **>malloc(max(1, len(segs)) * sizeof(char *))
                if seg == NULL:
                    raise MemoryError
                for i, p in enumerate(segs):
                    seg[i] = <char *><intptr_t>p
                c.shm.barrier = <void *><intptr_t>shm["barrier"]
                c.shm.win_sync = <void *><intptr_t>shm["win_sync"]
                c.shm.node, c.shm.cross, c.shm.win = shm["node"], shm["cross"], shm["win"]
                c.shm.rank, c.shm.size = shm["rank"], len(segs)
                c.shm.seg, c.shm.seg_bytes = seg, shm["seg_bytes"]
            try:
                rc = de_net_set_allreduce(self.net, &c, global_batch)
            finally:
                free(seg)           # the net keeps its own copy
        if rc == -2:
            raise ValueError(f"Net.set_allreduce: invalid hook {a!r}")
        _check(rc)

    def train(self, dict opt, const float[:, ::1] x, const float[:, ::1] t,
              const int64_t[::1] index, size_t first, size_t count,
              int64_t[::1] iterations, float[:, ::1] stats,
              const float[::1] sw=None):
        """Run batches first..first+count-1; returns how many were applied."""
        cdef de_optim_t o
        cdef long done
        cdef const float *psw = _opt_rows(sw)
        _fill_optim(&o, opt)
        with nogil:
            done = de_net_train(self.net, &o, &x[0, 0], &t[0, 0], psw, &index[0],
                                index.shape[0], first, count, &iterations[0],
                                &stats[0, 0])
        if done < 0:
            _check(<int>done)
        return done


# ================================================================ int8
# qdense.c: the quantized Dense (quantization.py packs and validates).
cdef extern from "engine.h" nogil:
    int de_qdense_forward(size_t m, size_t n, size_t k, const float *x,
                          const int8_t *qw, const int32_t *corr,
                          const float *scale, const float *b,
                          const de_act_t *act, float *y)
    const char *de_qdense_kernel()


def qdense_kernel():
    """The int8 kernel the selected ISA runs."""
    return de_qdense_kernel().decode()


def qdense_forward(const float[:, ::1] x, q, const float[::1] b, act,
                   float[:, ::1] y):
    """y = act(int8 x @ int8 kernel, dequantized, + b); q: a packed kernel
    (quantization.Int8Kernel) whose n_in/n_out match x and y."""
    cdef const int8_t *pw = <const int8_t *>_ptr(q.packed)
    cdef const int32_t *pc = <const int32_t *>_ptr(q.corr)
    cdef const float *ps = <const float *>_ptr(q.scale)
    cdef const float *pb = &b[0] if b is not None else NULL
    cdef de_act_t a
    cdef int rc
    _fill_plain_act(&a, act)
    with nogil:
        rc = de_qdense_forward(x.shape[0], y.shape[1], x.shape[1], &x[0, 0],
                               pw, pc, ps, pb, &a, &y[0, 0])
    _check(rc)


# ======================================================== normalisation
# norm.c's kernels on their own (the C train loop calls them in place);
# for the tests that check them against numpy and torch.
cdef extern from "engine.h" nogil:
    size_t de_norm_stat_floats(const de_norm_t *nm, size_t m, size_t n)
    void de_norm_forward_train(const de_norm_t *nm, size_t m, size_t n,
                               const float *x, float *xhat, float *stat,
                               float *y)
    void de_norm_forward_infer(const de_norm_t *nm, size_t m, size_t n,
                               const float *x, float *y)
    void de_norm_backward(const de_norm_t *nm, size_t m, size_t n,
                          const float *xhat, const float *stat, const float *dy,
                          float *dx, float *dgamma, float *dbeta)
    void de_norm_update_moving(const de_norm_t *nm, size_t n, const float *stat)


def norm_stat_floats(dict norm, size_t m, size_t n):
    cdef de_norm_t nm
    _fill_norm(&nm, norm)
    return de_norm_stat_floats(&nm, m, n)


def norm_forward_train(dict norm, const float[:, ::1] x, float[:, ::1] xhat,
                       float[::1] stat, float[:, ::1] y):
    """Training mode: statistics into stat, xhat and y (the dict as Net's)."""
    cdef de_norm_t nm
    _fill_norm(&nm, norm)
    if stat.shape[0] < <Py_ssize_t>de_norm_stat_floats(&nm, x.shape[0], x.shape[1]):
        raise ValueError("stat is too small")
    with nogil:
        de_norm_forward_train(&nm, x.shape[0], x.shape[1], &x[0, 0], &xhat[0, 0],
                              &stat[0], &y[0, 0])


def norm_forward_infer(dict norm, const float[:, ::1] x, float[:, ::1] y):
    cdef de_norm_t nm
    _fill_norm(&nm, norm)
    with nogil:
        de_norm_forward_infer(&nm, x.shape[0], x.shape[1], &x[0, 0], &y[0, 0])


def norm_backward(dict norm, const float[:, ::1] xhat, const float[::1] stat,
                  const float[:, ::1] dy, float[:, ::1] dx, float[::1] dgamma,
                  float[::1] dbeta):
    cdef de_norm_t nm
    _fill_norm(&nm, norm)
    cdef float *pg = &dgamma[0] if dgamma is not None else NULL
    cdef float *pb = &dbeta[0] if dbeta is not None else NULL
    with nogil:
        de_norm_backward(&nm, xhat.shape[0], xhat.shape[1], &xhat[0, 0], &stat[0],
                         &dy[0, 0], &dx[0, 0], pg, pb)


def norm_update_moving(dict norm, const float[::1] stat):
    cdef de_norm_t nm
    _fill_norm(&nm, norm)
    cdef size_t n = norm["moving_mean"].shape[0]
    with nogil:
        de_norm_update_moving(&nm, n, &stat[0])


cdef extern from "engine.h" nogil:
    int64_t de_read_rows(int fd, int64_t pos0, int64_t stride, size_t row_bytes,
                         const int64_t *rows, size_t n, unsigned char *out, int *err)

def read_rows(int fd, int64_t pos0, int64_t stride, size_t row_bytes,
              const int64_t[::1] rows, unsigned char[::1] out):
    """out = the rows' bytes (see de_read_rows); (rows read, errno)."""
    cdef size_t n = rows.shape[0]
    cdef int err = 0
    cdef int64_t got
    if <size_t>out.shape[0] < n * row_bytes:
        raise ValueError(f"out holds {out.shape[0]} bytes, {n} rows need {n * row_bytes}")
    if n == 0:
        return 0, 0
    with nogil:
        got = de_read_rows(fd, pos0, stride, row_bytes, &rows[0], n, &out[0], &err)
    return got, err
