/*
 * engine.h -- the one C API that _engine.pyx sees.
 *
 * Conventions (read these before calling anything):
 *  - float32 everywhere; matrices are row-major with an explicit row stride
 *    ("ld", in elements); the column stride is always 1.
 *  - Python validates every argument before it calls in here; these functions
 *    assume valid shapes and non-aliasing unless a comment says otherwise.
 *  - Functions returning int return 0 on success and a negative DE_E* code
 *    on failure (only allocation can fail); they never abort the process.
 *  - Every function is safe to call without the GIL and from several threads
 *    at once (no hidden state but the dispatch table and the thread count).
 *  - Dropout masks are bit arrays over the row-major m*n output, bit
 *    (i*n + j) of the little-endian bit stream: word (i*n+j)/64, bit (i*n+j)%64
 *    of a uint64_t array of ceil(m*n/64) words.  A set bit means "kept".
 *    Callers pass masks zero-filled; kernels OR bits in (atomically where two
 *    threads may share a word).
 */
#ifndef DE_ENGINE_H
#define DE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#define DE_OK 0
#define DE_ENOMEM (-1)
#define DE_EINVAL (-2)
#define DE_ECOMM (-3)    /* an MPI call of the gradient all-reduce failed */

/* ---------------------------------------------------------------- cpu.c */
enum { DE_ISA_GENERIC = 0, DE_ISA_AVX2 = 1, DE_ISA_AVX512 = 2, DE_N_ISA = 3 };

/* 1 if the ISA's kernels were compiled in and this CPU + OS can run them. */
int de_isa_available(int isa);
/* Best available ISA; chosen by CPUID. */
int de_isa_best(void);
/* Select the kernels; 0 on success, DE_EINVAL if not available. Not meant
 * to be called while kernels run in other threads (Python calls it once at
 * import, from DROPOUT_ENGINE_ISA or the best ISA). */
int de_isa_set(int isa);
int de_isa_get(void);
const char *de_isa_name(int isa);

/* Threads: the engine uses min(de_get_num_threads(), omp_get_max_threads())
 * so that threadpoolctl and OMP_NUM_THREADS limits are respected. */
void de_set_num_threads(int n);
int de_get_num_threads(void);
int de_openmp_enabled(void);

/* buildinfo.c: the compiler that built the library ("gcc 12.2.0", ...) and
 * the OpenMP version it implements (yyyymm of _OPENMP; 0 without OpenMP). */
const char *de_compiler(void);
long de_openmp_version(void);

/* ---------------------------------------------------------------- rng.c */
/* Stream key for one dropout site: a SplitMix64 mix of (seed, stream, step).
 * stream identifies the layer (0 for the ops API), step the training step. */
uint64_t de_rng_key(uint64_t seed, uint64_t stream, uint64_t step);

/* The key whose mask row i is row row0 + i of the mask of `key` (and whose
 * flat stream, de_random_bits, is that row's): so a process that holds rows
 * row0.. of a batch draws the masks one process would draw for them. */
uint64_t de_rng_rows_key(uint64_t key, uint64_t row0);

/* The generator that draws the masks, as a flat stream: the first n uint32
 * words that row 0 of a mask with key `key` would consume if the row were
 * infinitely long (for statistical testing). */
void de_random_bits(uint64_t key, uint32_t *out, size_t n);

/* Dropout as actually thresholded: a unit is dropped iff its uint32 draw is
 * < drop_below; kept units are multiplied by scale.  For inverted dropout
 * scale = 2^32 / (2^32 - drop_below), so E[dropout(x)] = x exactly up to float
 * rounding; for "weight" scaling (the original paper) scale = 1. */
typedef struct {
    uint32_t drop_below; /* 0 means: no dropout at all (identity, no RNG) */
    float scale;
    uint64_t key;
} de_dropout_t;

/* Fill *d for rate in [0, 1). inverted: 1 = scale kept units, 0 = no scale. */
void de_dropout_params(double rate, int inverted, uint64_t key, de_dropout_t *d);

/* ---------------------------------------------------------- activations */
/* Kinds 0 .. DE_N_NAMED_ACT-1 are Keras's activation names, in the order of
 * ops.ACTIVATIONS (the model file's names, model_file.c); the rest are only
 * reached through layers: DE_RELU_X is keras.layers.ReLU (or
 * activations.relu) with non-default arguments, DE_PRELU keras.layers.PReLU.
 * Every activation propagates NaN (NaN in, NaN out); +-Inf give the IEEE
 * value of the formula (so gelu(-inf) = silu(-inf) = NaN, as Keras's). */
enum {
    DE_LINEAR = 0, DE_RELU, DE_TANH, DE_SIGMOID, DE_ELU, DE_SELU, DE_GELU,
    DE_SOFTMAX, DE_LEAKY_RELU, DE_RELU6, DE_SILU, DE_SOFTPLUS,
    DE_HARD_SIGMOID, DE_N_NAMED_ACT,
    DE_RELU_X = DE_N_NAMED_ACT, DE_PRELU, DE_N_ACT
};

/* An activation with its parameters, fixed per layer (the kernels read them
 * once per row, never per element).  The relu family (LEAKY_RELU, RELU6,
 * RELU_X) is Keras's ReLU:
 *   f(x) = x <= threshold ? alpha * (x - threshold) : min(x, max_value)
 * (0 for x <= threshold when alpha == 0); ELU: x > 0 ? x : alpha (e^x - 1);
 * PRELU: x > 0 ? x : slopes[j] * x for output column j. */
typedef struct {
    int kind;              /* DE_* */
    float alpha;           /* ELU alpha; relu family: negative slope */
    float max_value;       /* relu family: upper clip, INFINITY for none */
    float threshold;       /* relu family, >= 0 */
    const float *slopes;   /* PRELU: [n] per output column, caller-owned */
} de_act_t;

/* *a = kind with Keras's defaults for the function of that name (ELU alpha
 * 1, leaky_relu slope 0.2, relu6 max 6; RELU_X as plain relu; PRELU with
 * slopes NULL, which the caller must set). */
void de_act_init(de_act_t *a, int kind);

/* 1 if the backward pass of `a` needs the pre-activation z (its derivative
 * is not a function of the output): GELU, SILU, PRELU, ELU with alpha < 0,
 * and SOFTMAX when `dropout` (dropped units lost their output). */
int de_act_needs_pre(const de_act_t *a, int dropout);

/* What the GEMM does to a finished tile while it is still in cache:
 * y = dropout(act(acc + bias)).  act.kind must not be DE_SOFTMAX (a row-wise
 * op; de_dense_forward handles it).  mask may be NULL only when
 * drop.drop_below == 0. */
typedef struct {
    const float *bias;   /* [n] or NULL */
    de_act_t act;
    de_dropout_t drop;
    uint64_t *mask;      /* zero-filled, ceil(m*n/64) words, or NULL */
} de_epilogue_t;

/* --------------------------------------------------------------- gemm.c */
/* C[m x n] = op(A) @ op(B)  (+ C when accumulate), then the epilogue if ep is
 * not NULL (ep is only allowed when accumulate == 0).
 * op(A) is m x k: A is stored m x k (trans_a = 0) or k x m (trans_a = 1),
 * row stride lda.  op(B) is k x n: B is stored k x n or n x k, row stride ldb.
 * Transposes are taken by the packing routines, never by copying.
 * The sum over k runs in an order fixed by the blocking (KC), never by the
 * thread count, so results are bit-identical for any number of threads. */
int de_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
            const float *a, size_t lda, const float *b, size_t ldb,
            float *c, size_t ldc, int accumulate, const de_epilogue_t *ep);

/* The same with op(A) and op(B) rounded to bfloat16 (denormals to zero)
 * as they are packed and each element summed as VDPBF16PS sums (float32
 * accumulation, in k order, tiny results flushed; frame/dispatch.h): on
 * every ISA and thread count the same bits.  Always the packed path. */
int de_gemm_bf16(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                 const float *a, size_t lda, const float *b, size_t ldb,
                 float *c, size_t ldc, int accumulate, const de_epilogue_t *ep);
/* Whether VDPBF16PS can run (compiled in, AVX-512 path available, CPU has
 * AVX512_BF16); de_bf16_set_native(0) makes the AVX-512 path use its
 * emulation instead (tests), 1 the instruction where it can; the name of
 * the kernel that runs ("avx512-bf16", "<isa>-emulated"). */
int de_bf16_native_available(void);
void de_bf16_set_native(int on);
const char *de_bf16_kernel(void);
/* The same with no epilogue, accumulate 0, and a callback instead of a
 * result: done->fn(ctx, v, ldv, i0, i1, j0, j1) is called once for every
 * block of the product, rows [i0, i1) x columns [j0, j1), with its final
 * sums at v (row stride ldv; fn may overwrite them), by the thread that
 * computed them, right after (while they are in cache).  v is in C or in
 * the frame's scratch: on return C's contents are unspecified (it is the
 * product's scratch).  The blocks partition the product; how it is cut
 * depends on the path and the thread count, so what fn does to an element
 * must depend on nothing else. */
typedef struct {
    void (*fn)(const void *ctx, float *v, size_t ldv, size_t i0, size_t i1,
               size_t j0, size_t j1);
    const void *ctx;
} de_gemm_hook_t;
int de_gemm_hooked(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   const float *a, size_t lda, const float *b, size_t ldb,
                   float *c, size_t ldc, const de_gemm_hook_t *done);

/* Prepacked B (inference weights).  de_gemm packs op(B) into micro-panels at
 * every call; a weight matrix that does not change can be packed once.
 * de_gemm_pack_b packs B (k x n, row stride ldb, not transposed) into the
 * very panels the packed path builds per call, for the kernels selected now
 * (the same KC blocking, so the same sums): de_gemm_prepacked then gives
 * results bit-identical to de_gemm(0, 0, ...) on the same B.  The copy holds
 * k x round_up(n, NR) floats (about the weights' size again); NULL when out
 * of memory.  Free it with de_packed_b_free.  de_gemm_prepacked still needs
 * B itself: the small-m and thin paths read B in place, and a copy packed
 * for other kernels (the ISA changed) or another shape is not used (the
 * call packs B as de_gemm does).  de_gemm_uses_packed_b(m, n) says whether
 * de_gemm packs B for such a shape at all (m rows of output, n columns);
 * packing is only worth it where it does. */
typedef struct de_packed_b de_packed_b_t;
de_packed_b_t *de_gemm_pack_b(size_t k, size_t n, const float *b, size_t ldb);
void de_packed_b_free(de_packed_b_t *pb);
size_t de_packed_b_bytes(const de_packed_b_t *pb);
int de_gemm_uses_packed_b(size_t m, size_t n);
int de_gemm_prepacked(size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, const de_packed_b_t *pb,
                      float *c, size_t ldc, int accumulate,
                      const de_epilogue_t *ep);
/* Weight-only bfloat16 (model.quantize("bfloat16")): the same GEMM with B
 * stored as bf16 (k x n, row stride ldb, not transposed; frame/bf16.h),
 * widened exactly to float32 in registers: the result is bit-identical to
 * de_gemm_prepacked(..., B widened, ...) on the same ISA.  de_gemm_pack_b_wbf16
 * packs such a B into bf16 panels (half the floats' bytes); a packed copy of
 * the other kind is never used by either call. */
de_packed_b_t *de_gemm_pack_b_wbf16(size_t k, size_t n, const uint16_t *b,
                                   size_t ldb);
int de_gemm_wbf16(size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const uint16_t *b, size_t ldb, const de_packed_b_t *pb,
                 float *c, size_t ldc, int accumulate, const de_epilogue_t *ep);
/* The generation of packed copies: bumped (de_gemm_packs_stale) whenever
 * weights may have been written (training, parameter updates, the caller's
 * own writes) or the ISA changed.  A holder of packed copies compares it
 * with the value read before it packed and repacks when they differ. */
uint64_t de_gemm_pack_epoch(void);
void de_gemm_packs_stale(void);

/* ---------------------------------------------- elementwise (unfused) */
/* The unfused pieces: references for the fused path, and the building
 * blocks for layers that stand alone.  All work in place on y[m x n]
 * (row stride n) unless they take separate x/y. */
void de_bias_act(size_t m, size_t n, const float *bias, const de_act_t *act,
                 float *y);
void de_softmax_rows(size_t m, size_t n, float *y);
/* y = dropout(x); y may equal x.  mask zero-filled, ceil(m*n/64) words.
 * Bit-identical to the dropout the fused GEMM epilogue draws for the same
 * key and shape. */
void de_dropout(size_t m, size_t n, const float *x, float *y, uint64_t *mask,
                const de_dropout_t *d);

/* ---------------------------------------------------------------- dense.c */
/* y = dropout(act(x @ w + b)), x [m x k], w [k x n], b [n] or NULL, y [m x n].
 * Fused: one GEMM whose epilogue applies bias, activation and dropout (for
 * softmax: GEMM + bias, then a row pass for softmax and dropout). */
int de_dense_forward(size_t m, size_t n, size_t k, const float *x,
                     const float *w, const float *b, const de_act_t *act,
                     const de_dropout_t *drop, float *y, uint64_t *mask);
/* The same with w's panels prepacked (de_gemm_pack_b of w, or NULL). */
int de_dense_forward_packed(size_t m, size_t n, size_t k, const float *x,
                            const float *w, const de_packed_b_t *wp,
                            const float *b, const de_act_t *act,
                            const de_dropout_t *drop, float *y, uint64_t *mask);
/* de_gemm, or de_gemm_bf16 when bf16 (a layer's GEMMs). */
typedef int (*de_gemm_fn)(int trans_a, int trans_b, size_t m, size_t n,
                          size_t k, const float *a, size_t lda, const float *b,
                          size_t ldb, float *c, size_t ldc, int accumulate,
                          const de_epilogue_t *ep);
de_gemm_fn de_gemm_of(int bf16);

/* dz = dy * keep * scale * act'(.) in one pass (dz may equal dy).
 *  y: the forward output (after dropout); z: the pre-activation x@w+b, needed
 *  only where de_act_needs_pre says so; else NULL.
 *  mask: NULL when drop->drop_below == 0. */
void de_backward_act(size_t m, size_t n, const de_act_t *act,
                     const de_dropout_t *drop,
                     const uint64_t *mask, const float *y, const float *z,
                     const float *dy, float *dz);

/* Column sums: db[j] = sum_i dz[i, j], rows added in order 0..m-1 (so the
 * result does not depend on the thread count). */
void de_sum_rows(size_t m, size_t n, const float *dz, float *db);

/* PReLU's slope gradient, before de_backward_act overwrites dy:
 * ds[j] = sum_i g[i, j] * min(z[i, j], 0) with g = dy * keep * scale (the
 * gradient reaching the activation's output), rows added in order 0..m-1. */
void de_prelu_slope_grad(size_t m, size_t n, const de_dropout_t *drop,
                         const uint64_t *mask, const float *z, const float *dy,
                         float *ds);

/* Backward of de_dense_forward: dz pass, then dW = x^T dz, db = sum_rows dz,
 * dx = dz w^T.  dx may be NULL (first layer).  scratch: m*n floats (dz). */
int de_dense_backward(size_t m, size_t n, size_t k, const float *x,
                      const float *w, const float *y, const float *z,
                      const uint64_t *mask, const de_act_t *act,
                      const de_dropout_t *drop,
                      const float *dy, float *scratch, float *dx, float *dw,
                      float *db);

/* --------------------------------------------------------------- qdense.c */
/* int8 inference (model.quantize("int8")), Keras 3's arithmetic: each row of
 * x is quantised abs-max to int8 on the fly, the products are summed exactly
 * in int32, then y = act((float)acc / (scale[j] * row_scale) + b[j]).
 * qw: the int8 kernel packed in 64-column panels (layout in dispatch.h;
 * Python packs it once); corr[j] = 128 * sum_k kernel[k][j] and scale (the
 * kernel_scale) hold ceil(n/64)*64 entries (scale padded with 1).
 * Bit-identical for every ISA and thread count.  Exact while the int32 sums
 * cannot overflow: Python keeps k <= 65536. */
int de_qdense_forward(size_t m, size_t n, size_t k, const float *x,
                      const int8_t *qw, const int32_t *corr,
                      const float *scale, const float *b, const de_act_t *act,
                      float *y);
/* The int8 kernel the selected ISA runs ("avx512-vnni", "avx2", "generic"). */
const char *de_qdense_kernel(void);

/* ============================================================ training
 * The Keras-shaped model's C side: loss.c (losses, metrics), optim.c
 * (optimizers, regularizers, constraints) and train.c (the network: fused
 * forward, inference, the batch loop of fit).  Python builds the plan
 * (which layers fuse, which loss/gradient pairing) and validates; these
 * functions only execute it.
 */

/* ---------------------------------------------------------------- loss.c */
enum { DE_LOSS_MSE = 0, DE_LOSS_MAE, DE_LOSS_BCE, DE_LOSS_CCE, DE_LOSS_SCCE,
       DE_N_LOSS };
enum { DE_METRIC_BINARY_ACC = 0, DE_METRIC_CAT_ACC, DE_METRIC_SPARSE_CAT_ACC,
       DE_METRIC_MSE, DE_METRIC_MAE, DE_N_METRIC };

/* Sum over the m rows of the per-sample loss of predictions p[m x k]
 * against targets t (m x k, or m x 1 class indices stored as floats for
 * DE_LOSS_SCCE), computed as Keras does from probabilities (clipped to
 * [1e-7, 1 - 1e-7]).  If g is not NULL it receives gscale * dloss/dp, or,
 * when fused, gscale * dloss/dz for the pre-activation z of a softmax
 * (CCE, SCCE) or sigmoid (BCE) output: the stable (p - t) form.  With sample
 * weights sw (NULL: all 1), row i's loss and gradient are multiplied by
 * sw[i] (Keras: the weighted sum, divided by the row count by the caller). */
double de_loss_rows(int loss, size_t m, size_t k, const float *p,
                    const float *t, const float *sw, float *g, int fused,
                    float gscale);

/* Sum over the m rows of a per-sample metric (targets as for the loss),
 * each times sw[i] when sw is not NULL. */
double de_metric_rows(int metric, size_t m, size_t k, const float *p,
                      const float *t, const float *sw);

/* ------------------------------------------------------------ schedule.c */
/* A learning rate as a function of the step s (the optimizer's iteration
 * count before the update), Keras 3's schedules in float64; with p = s /
 * steps (floored when staircase):
 *   CONSTANT         lr
 *   EXPONENTIAL      lr * rate^p
 *   INVERSE_TIME     lr / (1 + rate * p)
 *   POLYNOMIAL       (lr - end) (1 - s'/d)^power + end: s' = min(s, steps),
 *                    d = steps; cycle: s' = s, d = steps max(1, ceil(s/steps))
 *   PIECEWISE        values[the number of bounds below s]
 *   COSINE           lr ((1 - alpha) (1 + cos(pi s'/steps)) / 2 + alpha),
 *                    s' = min(s, steps); warmup: first lr + (target - lr)
 *                    s/warmup_steps, then the decay from target (not lr)
 *                    over s' = min(s - warmup_steps, steps)
 *   COSINE_RESTARTS  SGDR: periods of steps * t_mul^i, peaks lr * m_mul^i
 * schedules.py evaluates the same operations in the same order. */
enum { DE_LR_CONSTANT = 0, DE_LR_EXPONENTIAL, DE_LR_INVERSE_TIME,
       DE_LR_POLYNOMIAL, DE_LR_PIECEWISE, DE_LR_COSINE, DE_LR_COSINE_RESTARTS,
       DE_N_LR };
typedef struct {
    int kind;               /* DE_LR_* */
    double lr;              /* the constant, or initial, learning rate */
    double steps;           /* decay_steps (restarts: first_decay_steps) */
    double rate;            /* decay_rate */
    double end, power;      /* polynomial: end_learning_rate, power */
    double alpha;           /* cosine: the floor, a fraction of the peak */
    double target, warmup_steps;    /* cosine warmup (when warmup) */
    double t_mul, m_mul;    /* restarts */
    int staircase, cycle, warmup;
    size_t n_bounds;        /* piecewise: bounds[n_bounds] ascending, */
    const double *bounds, *values;  /* values[n_bounds + 1]; caller-owned */
} de_schedule_t;

double de_schedule_lr(const de_schedule_t *s, int64_t step);

/* --------------------------------------------------------------- optim.c */
enum { DE_OPT_SGD = 0, DE_OPT_ADAM, DE_OPT_RMSPROP, DE_N_OPT };
enum { DE_CONSTRAINT_NONE = 0, DE_CONSTRAINT_MAXNORM, DE_CONSTRAINT_NONNEG };

/* An optimizer with Keras 3's update rules; its learning rate at step s is
 * de_schedule_lr(&schedule, s). */
typedef struct {
    int kind;
    de_schedule_t schedule;
    float momentum;     /* SGD, RMSprop */
    int nesterov;       /* SGD */
    float beta_1, beta_2, epsilon;  /* Adam; epsilon also RMSprop */
    float rho;          /* RMSprop */
    int centered;       /* RMSprop */
    float weight_decay; /* decoupled, Keras's base-optimizer rule (AdamW) */
    int unfused;        /* de_net_train: update Dense kernels in a pass after
                           the backward, not in their gradient GEMMs (the
                           same bits; for tests and timing) */
} de_optim_t;

/* One trainable array and what is applied to it around each update.
 * A kernel is rows x cols = in x out; a bias is n x 1 (so that MaxNorm's
 * axis 0 spans the whole vector, as Keras's does for a 1-D weight). */
typedef struct {
    float *w;              /* caller-owned values */
    size_t rows, cols;
    float *slot[3];        /* caller-owned optimizer state, zero at start */
    float l1, l2;          /* regularizer: l1 * sum|w| + l2 * sum w^2 */
    int constraint;        /* DE_CONSTRAINT_* */
    float max_value;       /* MaxNorm */
    int axis;              /* MaxNorm: 0 = norms of columns, 1 = of rows */
} de_param_t;

/* The learning rate of step `step`: the schedule's. */
double de_optim_lr(const de_optim_t *o, int64_t step);

/* The regularization penalty of p (0 when l1 == l2 == 0). */
double de_param_penalty(const de_param_t *p);

/* grad += regularizer gradient, then the optimizer update for step `step`
 * (iterations before this update) with learning rate lr, then the
 * constraint.  Element-wise work is split over threads; every element's
 * arithmetic is independent of the split. */
void de_param_update(const de_optim_t *o, double lr, int64_t step,
                     const de_param_t *p, float *grad);
/* The same with a gradient other processes read too (data parallelism's
 * shared sums, shm_reduce.c): left as it is (the regularizers add to
 * copies); the same bits as de_param_update. */
void de_param_update_shared(const de_optim_t *o, double lr, int64_t step,
                            const de_param_t *p, const float *g);

/* A kernel's weight gradient and its update in one: the gradient x^T dz
 * (x [m x rows], dz [m x cols], both row-major), each block of it applied
 * as de_param_update would apply it (the same bits) by the thread whose
 * GEMM finished it, while it is in cache; then MaxNorm.  grad: rows x cols
 * floats of scratch (its contents after are unspecified).  Saves the
 * separate pass over w, the gradient and the slots. */
int de_param_update_gemm(const de_optim_t *o, double lr, int64_t step,
                         const de_param_t *p, size_t m, const float *x,
                         const float *dz, float *grad);

/* ---------------------------------------------------------------- noise.c */
enum { DE_NOISE_DROPOUT = 0, DE_NOISE_GAUSSIAN, DE_NOISE_ALPHA,
       DE_NOISE_ADDITIVE };

/* Training noise of GaussianDropout / AlphaDropout / GaussianNoise on
 * y[len] in place: y = y * mul + add (see noise.c); mul[len] receives the
 * multiplier, the backward pass's dy/dx (ADDITIVE: y += N(0, rate^2), rate
 * being the stddev; mul is only scratch and dy/dx = 1).  mul must hold
 * len + 1 floats (it is also the scratch for the random words).  rate > 0,
 * and < 1 for GAUSSIAN and ALPHA. */
void de_noise(int kind, double rate, uint64_t key, size_t len, float *y,
              float *mul);

/* ---------------------------------------------------------------- norm.c */
/* Keras 3's BatchNormalization (each feature over the batch) and
 * LayerNormalization (each row over its features) of x [m x n]:
 *   xhat = (x - mean) / sqrt(var + epsilon),  y = gamma * xhat + beta
 * with the biased variance (Keras's).  At inference BN uses the moving
 * statistics, folded into one affine map per column (de_norm_fold, Keras's
 * ops.batch_normalization order: s = gamma / sqrt(var + eps), t = beta -
 * mean * s, y = x * s + t); LN always uses the row's own.  Statistics are
 * sums in double over a fixed order (rows 0..m-1 for a column, columns
 * 0..n-1 for a row) and threads take whole columns or rows, so every
 * result is bit-identical for any thread count. */
enum { DE_NORM_NONE = 0, DE_NORM_BATCH, DE_NORM_LAYER };

typedef struct {
    int kind;              /* DE_NORM_* */
    int post;              /* 0: between the bias and the activation
                              (Dense -> BN -> Activation); 1: after the
                              activation (Dense(act) -> BN), before dropout */
    float epsilon;
    double momentum;       /* BN: moving = moving * momentum + batch * (1 - momentum) */
    float *gamma, *beta;   /* [n] or NULL (scale=False / center=False); trained */
    float *moving_mean, *moving_var;   /* BN [n]; fit updates them */
    /* BN, optional: de_norm_fold's s and t [n], precomputed by a loader for
     * an inference-only net (the C library folds once at load); NULL:
     * computed from the moving statistics at each call (the same bits). */
    const float *fold_scale, *fold_shift;
} de_norm_t;

/* Floats of the statistics buffer de_norm_forward_train fills for m rows
 * of n features: BN mean, var, rstd [n] each; LN mean, rstd [m] each. */
size_t de_norm_stat_floats(const de_norm_t *nm, size_t m, size_t n);

/* Training mode: the batch's (BN) or each row's (LN) statistics into stat,
 * xhat [m x n] (may equal x), y = gamma * xhat + beta (may equal x). */
void de_norm_forward_train(const de_norm_t *nm, size_t m, size_t n,
                           const float *x, float *xhat, float *stat, float *y);

/* Inference: y = the normalisation of x with the moving statistics (BN) or
 * the row's own (LN); y may equal x. */
void de_norm_forward_infer(const de_norm_t *nm, size_t m, size_t n,
                           const float *x, float *y);

/* BN's inference map of columns [j0, j1): s[j - j0], t[j - j0]. */
void de_norm_fold(const de_norm_t *nm, size_t j0, size_t j1, float *s,
                  float *t);

/* Backward of de_norm_forward_train for upstream dy: dx (may equal dy),
 * dgamma and dbeta [n] (NULL when the layer has none). */
void de_norm_backward(const de_norm_t *nm, size_t m, size_t n,
                      const float *xhat, const float *stat, const float *dy,
                      float *dx, float *dgamma, float *dbeta);

/* BN: the moving averages from a batch's stat (Keras's momentum rule, in
 * float32 as Keras computes it); no-op for LN. */
void de_norm_update_moving(const de_norm_t *nm, size_t n, const float *stat);

/* ------------------------------------------------------------ allreduce.c */
/* The collective of data-parallel training (dropout_engine.distribute): sums
 * over the processes of an MPI communicator, through MPI's own functions
 * that Python found at run time in the MPI library mpi4py loaded (nothing
 * MPI is needed to build).  Every process must make the same calls, in the
 * same order, with the same counts. */
enum {
    DE_BUCKET_STEP = 0,     /* one all-reduce of every gradient per step */
    DE_BUCKET_LAYER = 1,    /* one per layer, as its backward ends */
    DE_BUCKET_OVERLAP = 2   /* one per layer, non-blocking (MPI_Iallreduce),
                               all waited for before the update */
};
/* DE_BUCKET_STEP through a shared-memory window of the processes of a
 * node (shm_reduce.c); seg NULL: MPI_Allreduce alone. */
typedef struct {
    void *barrier, *win_sync;   /* MPI_Barrier, MPI_Win_sync */
    intptr_t node, cross, win;  /* this node's communicator; the one
                                   of this process's peers on the other
                                   nodes (0: one node); the window */
    int rank, size;             /* this process in node, node's size */
    char *const *seg;           /* node rank k's segment at seg[k]
                                   (copied by de_net_set_allreduce) */
    size_t seg_bytes;           /* of each, >= de_net_shm_bytes */
} de_shm_t;

typedef struct {
    void *allreduce;        /* MPI_Allreduce */
    void *iallreduce;       /* MPI_Iallreduce (DE_BUCKET_OVERLAP), or NULL */
    void *wait;             /* MPI_Wait */
    intptr_t comm, float32, float64, sum;   /* MPI_Comm, MPI_FLOAT,
                               MPI_DOUBLE, MPI_SUM handles */
    intptr_t in_place;      /* MPI_IN_PLACE */
    int int_handles;        /* handles are C ints (MPICH's ABI), else
                               pointers (Open MPI's) */
    int rank, size;         /* this process in comm, and comm's size */
    int buckets;            /* DE_BUCKET_* */
    de_shm_t shm;
} de_allreduce_t;

/* An MPI_Request of either ABI, and whether it is still to be waited for. */
typedef struct {
    void *p;
    int i;
    int pending;
} de_ar_request_t;

/* buf[n] (float32, or float64 when f64) summed over the processes, in
 * place.  0 or DE_ECOMM. */
int de_allreduce_sum(const de_allreduce_t *a, void *buf, size_t n, int f64);
/* Start a float32 sum in place (blocking when there is no MPI_Iallreduce
 * or n is too large for one call); de_allreduce_wait finishes it. */
int de_allreduce_start(const de_allreduce_t *a, float *buf, size_t n,
                       de_ar_request_t *req);
int de_allreduce_wait(const de_allreduce_t *a, de_ar_request_t *req);

/* ---------------------------------------------------------- shm_reduce.c */
/* A segment's layout: the step's loss and metric sums (DE_SHM_SUMS
 * doubles), then the gradients (g floats, as the arena lays them out),
 * then (node rank 0's segment) as many floats of the summed gradients. */
#define DE_SHM_SUMS 16
size_t de_shm_bytes(size_t g);
/* This process's gradients in its segment; the summed gradients (read
 * by every process: update with de_param_update_shared). */
float *de_shm_grads(const de_allreduce_t *a);
const float *de_shm_summed(const de_allreduce_t *a, size_t g);
/* The gradients (g floats) and sums[ns] (ns <= DE_SHM_SUMS) summed over
 * every process: over the node through the window, then (more than one
 * node) each slice over the nodes with MPI_Allreduce.  0 or DE_ECOMM. */
int de_shm_reduce(const de_allreduce_t *a, size_t g, double *sums, size_t ns);
/* The backward of de_noise: dz[len] *= mul (nothing for ADDITIVE). */
void de_noise_backward(int kind, size_t len, const float *mul, float *dz);

/* Axes along which a dropout mask varies (Keras's noise_shape entries that
 * are not 1), for outputs of m samples of `steps` rows of n features. */
enum { DE_AXIS_SAMPLE = 1, DE_AXIS_STEP = 2, DE_AXIS_FEATURE = 4 };

/* Dropout with a broadcast mask, in place on y[m * steps x n] (row r is
 * step r % steps of sample r / steps): element (b, t, j) is kept iff the
 * mask dropout would keep element (b', t', j') of the small mask
 * [rows' x n'] drawn with d's key, where b' = b (SAMPLE) or b / group
 * (group 0: 0, the whole batch shares it), t' = t or 0 (STEP), j' = j or 0
 * (FEATURE), and row b' * steps' + t'.  The small mask's draws are exactly
 * de_dropout's for that shape, so they depend on (key, index) only, never
 * on threads.  mask: zero-filled bits over the full m * steps * n elements
 * (what de_backward_act reads); dropped units are 0 even when NaN. */
void de_dropout_bcast(size_t m, size_t steps, size_t n, int axes, size_t group,
                      const de_dropout_t *d, float *y, uint64_t *mask);

/* ---------------------------------------------------------------- train.c */
/* One layer (a Dense unless op says otherwise) with its activation and the
 * dropout site that follows it. */
typedef struct {
    size_t n_in, n_out;
    de_act_t act;          /* a PRELU's slopes are trained (a param) */
    const float *w;        /* [n_in x n_out], caller-owned */
    const float *b;        /* [n_out] or NULL */
    double rate;           /* dropout on the output; 0 = none (noise: its
                              rate; GaussianNoise: its stddev) */
    int inverted;          /* 1: scale kept units by 1/(1-rate) in training;
                              0: "weight" scaling, multiply by (1-rate) at
                              inference */
    uint64_t seed;         /* this dropout site's seed */
    int noise;             /* DE_NOISE_*: what `rate` means in training */
    /* int8 weights (de_qdense_forward's qw, corr, scale), or all NULL for
     * a float32 layer.  A net with an int8 layer runs inference only
     * (predict, evaluate): w may then be NULL. */
    const int8_t *qw;
    const int32_t *qcorr;
    const float *qscale;
    /* A bfloat16 kernel [n_in x n_out] (model.quantize("bfloat16"): the
     * weights rounded to bf16, float32 math), or NULL.  w is then NULL; such
     * a net predicts (MC dropout too) but does not train. */
    const uint16_t *bw;
    /* What computes the output and its geometry (stage.c).  All zero: a
     * Dense on [batch, n_in] rows, as before these fields existed. */
    int op;                /* DE_OP_* */
    size_t steps;          /* rows per sample of the output (0 means 1):
                              DENSE and IDENTITY run batch * steps rows of
                              n_in (Keras's Dense on [batch, steps, n_in]);
                              EMBED without pool: n_in */
    size_t pool_steps;     /* POOL: the input's rows per sample */
    size_t vocab;          /* EMBED: rows of w, the table [vocab x n_out] */
    int pool;              /* EMBED: average each sample's rows (a fused
                              GlobalAveragePooling1D): steps is 1 */
    int mask_zero;         /* EMBED with pool, POOL: steps whose token id
                              (the net's input, n_in ids per sample) is 0
                              are left out of the mean (Keras's mask) */
    int noise_axes;        /* mask dropout: DE_AXIS_* bits of a broadcast
                              mask (de_dropout_bcast); 0: per element */
    de_norm_t norm;        /* kind DE_NORM_NONE: no normalisation */
    /* Where the input comes from (graph.c; all zero: a chain).  n_src == 0:
     * the previous layer's output (the net's input for layer 0).  Else the
     * sources src[0 .. n_src) (-1: the net's input after its dropout; i:
     * the output of layer i < this one), merged by `combine` (DE_COMBINE_*)
     * into the n_in input columns.  A merge layer, or an activation or
     * dropout that cannot fuse into a Dense, is an IDENTITY op (stage.c):
     * y = dropout(act(merged input)). */
    size_t n_src;
    const int64_t *src;    /* caller-owned */
    int combine;
    int bf16;              /* mixed_bfloat16: the layer's forward, dX and
                              dW GEMMs are de_gemm_bf16's (float32 weights,
                              sums, epilogue and optimizer) */
} de_layer_t;

/* The Dense forward of layer L (dense.c; its float, bfloat16 or int8
 * kernel, the GEMM in bfloat16 when L->bf16 (mixed_bfloat16, wp then
 * unused); wp: its prepacked panels or NULL) with activation act and dropout
 * drop.  An int8 kernel draws no dropout (such nets are inference-only). */
int de_layer_dense_forward(size_t m, const de_layer_t *L, const float *x,
                           const de_packed_b_t *wp, const de_act_t *act,
                           const de_dropout_t *drop, float *y, uint64_t *mask);

/* The layer step of a layer with a normalisation (norm.c), called by
 * train.c.  Per-layer training buffers: */
typedef struct {
    float *xhat;           /* [batch x n_out] */
    float *stat;           /* de_norm_stat_floats(batch) */
    float *act;            /* post: the activation's output [batch x n_out] */
} de_norm_buf_t;

/* Training forward: y = dropout(act(norm(x @ w + b))) (or dropout(norm(
 * act(.))) when post), mask as de_dense_forward's; pre (or NULL): the
 * activation's input where de_act_needs_pre asks for it. */
int de_norm_layer_forward(size_t m, const de_layer_t *L, const float *x,
                          const de_dropout_t *drop, float *pre,
                          const de_norm_buf_t *nb, float *y, uint64_t *mask);

/* Inference forward of the same (float or int8 kernel, BN's moving
 * statistics); drop as the caller wants it (MC dropout draws). */
int de_norm_layer_infer(size_t m, const de_layer_t *L, const float *x,
                        const de_dropout_t *drop, float *y, uint64_t *mask);

/* Backward from dz = dL/dy (overwritten with dL/d(x @ w + b)) through the
 * dropout, activation and normalisation; dgamma, dbeta, dslopes: the
 * layer's param gradients or NULL.  fused: dz is already the gradient at
 * the activation's input (the loss fused with the output softmax/sigmoid;
 * only without post). */
void de_norm_layer_backward(size_t m, const de_layer_t *L,
                            const de_dropout_t *drop, const uint64_t *mask,
                            const float *y, const float *pre,
                            const de_norm_buf_t *nb, int fused, float *dz,
                            float *dgamma, float *dbeta, float *dslopes);

/* ---------------------------------------------------------------- stage.c */
/* The layers that are not x @ w + b:
 *   EMBED     token ids (floats holding integers, n_in per sample) gather
 *             rows of the table w; with pool, each sample's rows averaged;
 *   POOL      the mean of each sample's pool_steps rows (GlobalAveragePooling1D);
 *   IDENTITY  the input itself: a site for noise the layer before cannot
 *             take (on the input, or a second noise layer in a row).
 * Each is followed, like a Dense, by its activation and its dropout site. */
enum { DE_OP_DENSE = 0, DE_OP_EMBED, DE_OP_POOL, DE_OP_IDENTITY, DE_N_OP };

/* Rows per sample of layer L's output and of its input. */
size_t de_layer_rows(const de_layer_t *L);
size_t de_layer_in_rows(const de_layer_t *L);

/* DE_OK if the layers chain (each input is the previous output, n_in
 * floats per sample for the first), the last has one row per sample, an
 * EMBED is first, a POOL's mask has its ids; else DE_EINVAL. */
int de_layers_check(size_t n_in, size_t n_layers, const de_layer_t *layers);

/* y = dropout(act(op(x))) for m samples of a layer whose op is not DENSE
 * (what de_dense_forward is for a Dense): z (or NULL) receives op(x),
 * mask the dropout's bits when drop->drop_below.  ids: the net's input
 * (n_in of the first layer per sample), read by a masked mean.  Returns
 * DE_EINVAL, having written nothing, when a token id is not an integer in
 * [0, vocab). */
int de_stage_forward(const de_layer_t *L, size_t m, const float *x,
                     const float *ids, const de_dropout_t *drop, float *y,
                     float *z, uint64_t *mask);

/* The op's backward for m samples, dz being the gradient at op(x) (after
 * the activation's and the dropout's backward): EMBED sums it into grad
 * [vocab x n_out] (zeroed first), in an order fixed by the ids, never by
 * threads; POOL and IDENTITY write dx (the input's gradient). */
void de_stage_backward(const de_layer_t *L, size_t m, const float *ids,
                       const float *dz, float *dx, float *grad);
/* ---------------------------------------------------------------- graph.c */
enum { DE_COMBINE_NONE = 0, DE_COMBINE_CONCAT, DE_COMBINE_ADD,
       DE_COMBINE_SUBTRACT, DE_COMBINE_AVERAGE, DE_COMBINE_MULTIPLY,
       DE_COMBINE_MAXIMUM, DE_COMBINE_MINIMUM, DE_N_COMBINE };

/* DE_OK if every layer's sources exist (earlier layers or the input), have
 * the widths its merge needs, every layer has one row per sample and is a
 * DENSE, an IDENTITY (n_out == n_in) or a pooled EMBED reading the input;
 * else DE_EINVAL.  Callers check DAGs with it (chains with
 * de_layers_check) before de_net_create. */
int de_graph_check(size_t n_in, size_t n_layers, const de_layer_t *layers);
/* 1 if some layer names its sources (the net is a DAG, not a chain). */
int de_graph_is_dag(size_t n_layers, const de_layer_t *layers);
/* 1 if layer L's input is a merge (written into a buffer), 0 if it reads
 * one source as is. */
int de_graph_merges(const de_layer_t *L);
/* Layer l's i-th source (-1: the net's input); a chain layer's one source
 * is l - 1. */
int64_t de_graph_source(const de_layer_t *L, size_t l, size_t i);
/* 1 if some source of layer l is a layer (its input has a gradient to pass
 * back), 0 if it reads only the net's input. */
int de_graph_needs_dx(const de_layer_t *L, size_t l);
/* Layer l's input for m rows: its source's buffer, or the merge written
 * into buf [m x n_in].  x: the net's input (after dropout), n_in its
 * width; outs[i]: layer i's output (m rows). */
const float *de_graph_input(const de_layer_t *layers, size_t l, size_t m,
                            size_t n_in, const float *x, float *const *outs,
                            float *buf);
/* Backward of the merge: adds the share of dx [m x layer l's n_in] (the
 * gradient of its merged input) of each source i >= 0 into dys[i]. */
void de_graph_input_backward(const de_layer_t *layers, size_t l, size_t m,
                             size_t n_in, const float *x, float *const *outs,
                             const float *dx, float *const *dys);

typedef struct de_net de_net_t;   /* opaque */

/* A network: optional dropout on the input (in_rate, in_inverted, in_seed),
 * then n_layers fused layers (Dense or the ops of stage.c; the caller has
 * checked them with de_layers_check).  n_in: values per sample of the
 * input.  The layer array is copied; the weights it points to must outlive
 * the net.  NULL when out of memory. */
de_net_t *de_net_create(size_t n_in, double in_rate, int in_inverted,
                        uint64_t in_seed, size_t n_layers,
                        const de_layer_t *layers);
void de_net_free(de_net_t *net);

/* Inference: y[m x n_out] for x[m x n_in], rows in chunks of `chunk`, with
 * scratch allocated per call (so any number of threads may predict at once
 * on one net). */
int de_net_predict(const de_net_t *net, size_t m, const float *x, float *y,
                   size_t chunk);
/* The same with layer l's kernel panels packed[l] (de_gemm_pack_b of its
 * w, or NULL for any layer; packed itself may be NULL): bit-identical
 * results.  The net keeps no packed copy itself: the caller owns them and
 * keeps them alive for the call, so concurrent predicts stay safe while it
 * replaces them. */
int de_net_predict_packed(const de_net_t *net, size_t m, const float *x,
                          float *y, size_t chunk,
                          const de_packed_b_t *const *packed);

/* Monte-Carlo dropout: `samples` forward passes of each row with every
 * dropout site active as in training (inverted: kept units scaled;
 * "weight": unscaled), masks independent across passes and rows, drawn from
 * keys de_rng_key(seed_site, site, key + c * n_groups + g) for row chunk c,
 * group g.  mean and std (ddof 0) are [m x n_out].  Passes run stacked, at
 * most `chunk` (>= 1) rows per GEMM: groups of G = min(samples, chunk)
 * copies of chunk / G rows, merged into running statistics. */
int de_net_predict_mc(const de_net_t *net, size_t m, const float *x,
                      size_t samples, uint64_t key, float *mean, float *std,
                      size_t chunk);

/* Inference plus loss and metrics: sums[0] = sum of per-sample losses
 * (each times sw[i] when sw is not NULL), sums[1 + i] = sum of metric i
 * over the m rows (unweighted, as Keras's `metrics`). */
int de_net_evaluate(const de_net_t *net, size_t m, const float *x,
                    const float *t, const float *sw, size_t t_cols, int loss,
                    size_t n_metrics, const int *metrics, size_t chunk,
                    double *sums);

/* Data-parallel training (NULL: this process alone, the default).  From
 * then on a training batch of de_net_train is a *global* batch of
 * `global_batch` rows, split over the a->size processes: process r trains
 * on rows [mg r / size, mg (r + 1) / size) of each global batch of mg rows,
 * drawing its dropout masks as those global rows (so N processes give the
 * masks of one), scales the loss gradient by 1 / mg, and sums gradients
 * and the batch's loss and metric sums over the processes (as a->buckets
 * says) before the update.  The arena (de_net_train_setup, after this
 * call) then needs ceil(global_batch / size) rows.  The struct is copied. */
int de_net_set_allreduce(de_net_t *net, const de_allreduce_t *a,
                         size_t global_batch);
/* The bytes a shared-memory segment needs for this net's training setup
 * (de_shm_bytes of its gradients; 0 before a setup).  A hook with
 * a->shm.seg must be set after de_net_train_setup, which drops the hook;
 * the gradients then live in this process's segment until the hook is
 * dropped or replaced. */
size_t de_net_shm_bytes(const de_net_t *net);
/* Wall-clock seconds de_net_train spent in the sums over the processes
 * (MPI calls, the window's barriers and slice sums, waits for a late
 * peer) since the hook was last set: a step's communication share. */
double de_net_comm_seconds(const de_net_t *net);

/* Training setup: the arena for batches of up to `batch` rows (allocated
 * once, reused by every de_net_train call), the loss (fused with the last
 * activation when `fused`), the metrics (at most 8), whether rows carry
 * sample weights, and the params of each layer in order (kernel, then bias
 * when the layer has one, then the normalisation's gamma and beta when it
 * has them, then the slopes of a PRELU activation).  Each step also moves
 * the BN layers' moving statistics (once the step is applied). */
int de_net_train_setup(de_net_t *net, size_t batch, size_t t_cols, int loss,
                       int fused, size_t n_metrics, const int *metrics,
                       int weighted, const de_param_t *params);

/* The batch loop.  Batch j of the epoch holds rows index[j*batch ...
 * min((j+1)*batch, n_index)) of x / t (and of sw, the sample weights, which
 * must be given exactly when the setup said `weighted`).  Runs batches first .. first+count-1,
 * each: gather, forward (dropout keys from (seed, site, *iterations)), loss,
 * backward, regularizers, update, constraints, ++*iterations.
 * stats[(j - first) * (1 + n_metrics) + ...] = batch mean loss (penalty
 * included), batch mean metrics.  A batch whose loss is not finite is
 * reported in stats but not applied: the loop stops there.
 * Returns the number of batches applied (>= 0), or a DE_E* code. */
long de_net_train(de_net_t *net, const de_optim_t *opt, const float *x,
                  const float *t, const float *sw, const int64_t *index,
                  size_t n_index,
                  size_t first, size_t count, int64_t *iterations,
                  float *stats);

/* io/rows.c: out[i] = the row_bytes bytes at pos0 + rows[i] * stride of the
 * file open as fd, for i < n (rows sorted for locality; runs of consecutive
 * rows are one read when stride == row_bytes).  Returns n, or the index of
 * the row a read failed in, with *err the errno (0: the file ended). */
int64_t de_read_rows(int fd, int64_t pos0, int64_t stride, size_t row_bytes,
                     const int64_t *rows, size_t n, uint8_t *out, int *err);

#endif
