/*
 * train.c -- the network: fused inference and the batch loop of fit.
 *
 * A net is a list of fused layers y = dropout(act(x @ w + b)) after an
 * optional input dropout; a layer whose op is not a Dense (an embedding
 * gather, a mean over steps, an identity carrying a noise site: stage.c)
 * has the same activation and dropout site around its op.  Sizes are per
 * sample: layer l's output is de_layer_rows(l) rows of n_out floats.
 * Weights are the caller's (numpy) arrays; the net only points at them.
 * Training buffers for batches of up to `batch` samples live in one
 * 64-byte-aligned arena made by de_net_train_setup: per layer
 * its output (post-dropout, what the next layer and the backward pass
 * read), its mask bits and, where the activation's derivative needs it
 * (de_act_needs_pre), its pre-activation; two ping-pong gradient buffers; one gradient per param.
 * A layer with a normalisation (norm.c) also keeps its xhat, statistics
 * and (post) activation output, de_norm_buf_t.
 * A training step allocates nothing.  Inference allocates its scratch per
 * call, so concurrent predicts on one net never share a buffer.
 *
 * A DAG net (the functional API's merged branches; some layer names its
 * sources, graph.c) keeps every layer's output, not two ping-pong
 * buffers: inference carves them per call (dag_carve), training has them
 * in the arena anyway, plus per layer its merged input (where it merges)
 * and the gradient of its output, zeroed per step and summed into by every
 * layer that reads it (dag_dx).  A merge, or an activation or dropout with
 * no Dense to fuse into, is an IDENTITY op.  Every layer of a DAG has one
 * row per sample.  A chain runs exactly the code it ran before: the DAG
 * parts are dag_carve, dag_dx and the net->dag branches.
 *
 * Determinism: the dropout key of site s (0 = input, l + 1 = layer l) at
 * step t is de_rng_key(seed_s, s, t), and every kernel called here is
 * thread-count independent, so a seeded fit is bit-identical for any
 * number of threads.
 *
 * Data parallelism (de_net_set_allreduce): each process runs this loop on
 * its slice of every global batch, keyed as those global rows
 * (de_rng_rows_key); the only other difference is the hook: the batch's
 * loss and metric sums are summed over the processes before the finite
 * check (so every process stops at the same batch), and the gradients
 * after each layer's backward (ar_bucket) and before the update
 * (ar_finish).  With a shared-memory window (shm_reduce.c) the gradients
 * live in it while the hook is set, and the loss and metric sums are
 * summed with them, after the backward pass.  Everything of it is in the
 * "data parallelism" section.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "frame/dispatch.h"

#define ALIGN 64
#define MAX_METRICS 8
_Static_assert(1 + MAX_METRICS <= DE_SHM_SUMS, "a window segment's sums");
#define SMALL_SCRATCH 4096   /* floats of predict scratch kept on the stack */
#define GATHER_PAR_MIN 65536 /* floats a batch gathers before threads help */

struct de_net {
    size_t n_in, n_layers, width;    /* width: widest layer output */
    double in_rate;
    int in_inverted;
    uint64_t in_seed;
    de_layer_t *layers;
    /* training state, set by de_net_train_setup */
    char *arena;
    size_t batch, t_cols, n_params, n_metrics;
    int loss, fused, weighted, metrics[MAX_METRICS];
    de_param_t *params;
    float *xb, *tb, *wb, *gbuf[2];      /* wb: sample weights, or NULL */
    uint64_t *in_mask;
    float **out, **pre, **grad;      /* per layer / per param */
    float **act, **mul;              /* per noise layer: pre-noise output,
                                        noise multiplier (noise.c) */
    uint64_t **mask;
    de_dropout_t *drop;              /* per layer, this step's dropout */
    de_norm_buf_t *nbuf;             /* per layer: normalisation buffers */
    /* data parallelism, set by de_net_set_allreduce */
    de_allreduce_t *ar;              /* NULL: this process alone */
    de_ar_request_t *ar_req;         /* per layer (DE_BUCKET_OVERLAP) */
    size_t global_batch;
    char **shm_seg;                  /* ar->shm.seg's copy, or NULL */
    float *grad_home;                /* the arena's grad[0] while the
                                        gradients live in the window */
    double comm_seconds;             /* in the sums since the hook was set */
    /* DAG nets (graph.c) */
    int dag;
    size_t dag_w;                    /* inference floats per row (dag_carve) */
    const float **in;                /* per layer: this step's input */
    float **inb, **dy;               /* per layer: merged input (or NULL),
                                        gradient of the output */
    float *gx;                       /* gradient of a merged input */
};

static size_t mask_words(size_t m, size_t n) { return (m * n + 63) / 64; }

/* A layer whose rate is a Dropout's (a mask), not Gaussian/Alpha noise.
 * A broadcast mask (noise_axes) is drawn after the op (de_dropout_bcast);
 * a per-element one is fused into it. */
static int has_mask(const de_layer_t *l)
{
    return l->rate > 0.0 && !l->noise;
}

/* A normalisation after the activation keeps the activation's output
 * whole (norm.c), so the dropout never hides it. */
static int needs_pre(const de_layer_t *l)
{
    return de_act_needs_pre(&l->act, has_mask(l) && !l->norm.post);
}

/* PReLU's slopes are the layer's last param. */
static int has_slopes(const de_layer_t *l)
{
    return l->act.kind == DE_PRELU;
}

/* A Dense's kernel or an embedding's table: the layer's first param. */
static int has_kernel(const de_layer_t *l)
{
    return l->op == DE_OP_DENSE || l->op == DE_OP_EMBED;
}

/* The layer's params: kernel (a Dense's, an embedding's table), bias,
 * gamma, beta, slopes (those it has). */
static size_t n_params(const de_layer_t *l)
{
    return has_kernel(l) + !!l->b + !!l->norm.gamma + !!l->norm.beta
        + has_slopes(l);
}

static int has_noise(const de_layer_t *l)
{
    return l->rate > 0.0 && l->noise;
}

/* Floats per sample of layer l's output. */
static size_t per_sample(const de_layer_t *l)
{
    return de_layer_rows(l) * l->n_out;
}

/* The dropout the op applies itself: a broadcast mask is drawn after it. */
static de_dropout_t op_dropout(const de_layer_t *l, const de_dropout_t *d)
{
    de_dropout_t f = *d;
    if (l->noise_axes) f.drop_below = 0;
    return f;
}

/* A net with an int8 layer has no float kernel to train or to run MC
 * dropout with, one with a bfloat16 layer (bf16_too) none to train
 * (Python refuses first; this keeps C safe regardless). */
static int quantized(const de_net_t *net, int bf16_too)
{
    for (size_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].qw || (bf16_too && net->layers[l].bw)) return 1;
    return 0;
}

de_net_t *de_net_create(size_t n_in, double in_rate, int in_inverted,
                        uint64_t in_seed, size_t n_layers,
                        const de_layer_t *layers)
{
    de_net_t *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->layers = malloc(n_layers * sizeof *layers);
    if (!net->layers) {
        free(net);
        return NULL;
    }
    memcpy(net->layers, layers, n_layers * sizeof *layers);
    net->n_in = n_in;
    net->n_layers = n_layers;
    net->in_rate = in_rate;
    net->in_inverted = in_inverted;
    net->in_seed = in_seed;
    net->width = n_in;
    for (size_t l = 0; l < n_layers; l++)
        if (per_sample(&layers[l]) > net->width) net->width = per_sample(&layers[l]);
    net->dag = de_graph_is_dag(n_layers, layers);
    net->dag_w = n_in;
    for (size_t l = 0; l < n_layers; l++)
        net->dag_w += layers[l].n_out
                      + (de_graph_merges(&layers[l]) ? layers[l].n_in : 0);
    return net;
}

static void free_train(de_net_t *net)
{
    net->grad_home = NULL;      /* (the hook is dropped before a setup) */
    free(net->arena);
    free(net->params);
    free(net->out);
    free(net->pre);
    free(net->grad);
    free(net->mask);
    free(net->drop);
    free(net->act);
    free(net->mul);
    free(net->nbuf);
    net->nbuf = NULL;
    free(net->in);
    free(net->inb);
    free(net->dy);
    net->in = NULL;
    net->inb = net->dy = NULL;
    net->arena = NULL;
    net->params = NULL;
    net->out = net->pre = net->grad = NULL;
    net->mask = NULL;
    net->drop = NULL;
    net->act = net->mul = NULL;
}

void de_net_free(de_net_t *net)
{
    if (!net) return;
    free_train(net);
    free(net->ar);
    free(net->ar_req);
    free(net->shm_seg);
    free(net->layers);
    free(net);
}

/* ------------------------------------------------------------ inference */

static void scale(size_t n, float f, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] * f;
}

/* ---- DAG inference scratch: the pointers to each layer's output and
 * merged input (2 * n_layers, rounded to 64 bytes), then for m rows the
 * weight-scaled input, the outputs and the merged inputs. */
static size_t dag_ptr_floats(const de_net_t *net)
{
    return (2 * net->n_layers * sizeof(float *) + ALIGN - 1) / ALIGN * ALIGN
           / sizeof(float);
}

/* Floats of inference scratch for up to `rows` rows (a, b of a chain). */
static size_t infer_floats(const de_net_t *net, size_t rows)
{
    return net->dag ? dag_ptr_floats(net) + rows * net->dag_w
                    : 2 * rows * net->width;
}

/* Carve s for m rows: *xs the scaled-input buffer, outs/inbs per layer. */
static float **dag_carve(const de_net_t *net, size_t m, float *s, float **xs,
                         float ***inbs)
{
    float **outs = (float **)(void *)s;
    float *f = s + dag_ptr_floats(net);
    *inbs = outs + net->n_layers;
    *xs = f;
    f += m * net->n_in;
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        outs[l] = f;
        f += m * L->n_out;
        (*inbs)[l] = de_graph_merges(L) ? f : NULL;
        if ((*inbs)[l]) f += m * L->n_in;
    }
    return outs;
}

/* Forward m rows in inference mode: dropout is the identity, "weight"
 * scaling multiplies by (1 - rate).  a, b: scratch of m * width floats (a
 * DAG's: a holds infer_floats(net, rows >= m), b is unused). */
static int infer_rows(const de_net_t *net, size_t m, const float *x, float *y,
                      float *a, float *b, const de_packed_b_t *const *packed)
{
    static const de_dropout_t none = {0, 1.f, 0};
    float *xs = a, **inbs = NULL;
    float **outs = net->dag ? dag_carve(net, m, a, &xs, &inbs) : NULL;
    const float *in = x;
    if (net->in_rate > 0.0 && !net->in_inverted) {
        scale(m * net->n_in, (float)(1.0 - net->in_rate), x, xs);
        in = xs;
    }
    const float *x0 = in;
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        float *o = l + 1 == net->n_layers ? y : outs ? outs[l] : (in == a ? b : a);
        if (outs)
            in = de_graph_input(net->layers, l, m, net->n_in, x0, outs, inbs[l]);
        size_t M = m * de_layer_rows(L);
        int rc = L->op != DE_OP_DENSE
            ? de_stage_forward(L, m, in, x, &none, o, NULL, NULL)
            : L->norm.kind ? de_norm_layer_infer(M, L, in, &none, o, NULL)
            : de_layer_dense_forward(M, L, in, packed ? packed[l] : NULL,
                                     &L->act, &none, o, NULL);
        if (rc) return rc;
        if (has_mask(L) && !L->inverted)
            scale(M * L->n_out, (float)(1.0 - L->rate), o, o);
        in = o;
    }
    return DE_OK;
}

int de_net_predict(const de_net_t *net, size_t m, const float *x, float *y,
                   size_t chunk)
{
    return de_net_predict_packed(net, m, x, y, chunk, NULL);
}

int de_net_predict_packed(const de_net_t *net, size_t m, const float *x,
                          float *y, size_t chunk,
                          const de_packed_b_t *const *packed)
{
    size_t rows = chunk < m ? chunk : m;
    size_t need = infer_floats(net, rows);
    /* Small scratch (batch-1 latency) lives on the stack: no malloc. */
    float small[SMALL_SCRATCH] __attribute__((aligned(ALIGN)));
    float *s = need <= SMALL_SCRATCH ? small
        : aligned_alloc(ALIGN, (need * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN);
    if (!s) return DE_ENOMEM;
    int rc = DE_OK;
    size_t n_out = net->layers[net->n_layers - 1].n_out;
    for (size_t r = 0; r < m && !rc; r += rows) {
        size_t mr = m - r < rows ? m - r : rows;
        rc = infer_rows(net, mr, x + r * net->n_in, y + r * n_out, s,
                        s + rows * net->width, packed);
    }
    if (s != small) free(s);
    return rc;
}

int de_net_evaluate(const de_net_t *net, size_t m, const float *x,
                    const float *t, const float *sw, size_t t_cols, int loss,
                    size_t n_metrics, const int *metrics, size_t chunk,
                    double *sums)
{
    size_t rows = chunk < m ? chunk : m;
    size_t n_out = net->layers[net->n_layers - 1].n_out;
    size_t n = infer_floats(net, rows) + n_out * rows;
    float *s = aligned_alloc(ALIGN, (n * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN);
    if (!s) return DE_ENOMEM;
    float *p = s + infer_floats(net, rows);
    int rc = DE_OK;
    memset(sums, 0, (1 + n_metrics) * sizeof *sums);
    for (size_t r = 0; r < m && !rc; r += rows) {
        size_t mr = m - r < rows ? m - r : rows;
        const float *tr = t + r * t_cols;
        rc = infer_rows(net, mr, x + r * net->n_in, p, s, s + rows * net->width,
                        NULL);
        sums[0] += de_loss_rows(loss, mr, n_out, p, tr, sw ? sw + r : NULL,
                                NULL, 0, 1.f);
        for (size_t i = 0; i < n_metrics; i++)
            sums[1 + i] += de_metric_rows(metrics[i], mr, n_out, p, tr, NULL);
    }
    free(s);
    return rc;
}

/* ---------------------------------------------------- Monte-Carlo dropout */

/* Statistics of G stacked copies (y: G blocks of len floats, copy s of
 * element i at s * len + i): gm their mean, gq the sum of squared
 * deviations from it.  Two passes over whole contiguous blocks (so they
 * vectorise), the second on deviations so that there is no cancellation. */
static void mc_group(size_t G, size_t len, const float *y, float *gm, float *gq)
{
    float inv = 1.f / (float)G;
    memcpy(gm, y, len * sizeof *gm);
    for (size_t s = 1; s < G; s++) {
        const float *ys = y + s * len;
        for (size_t i = 0; i < len; i++) gm[i] += ys[i];
    }
    for (size_t i = 0; i < len; i++) {
        gm[i] *= inv;
        gq[i] = 0.f;
    }
    for (size_t s = 0; s < G; s++) {
        const float *ys = y + s * len;
        for (size_t i = 0; i < len; i++) {
            float d = ys[i] - gm[i];
            gq[i] += d * d;
        }
    }
}

/* Merge a group of G copies into the running (mean, q) of n copies: the
 * pairwise update of Chan, Golub and LeVeque. */
static void mc_merge(size_t n, size_t G, size_t len, const float *gm,
                     const float *gq, float *mean, float *q)
{
    if (n == 0) {
        memcpy(mean, gm, len * sizeof *mean);
        memcpy(q, gq, len * sizeof *q);
        return;
    }
    float f = (float)G / (float)(n + G), g = (float)n * f;
    for (size_t i = 0; i < len; i++) {
        float d = gm[i] - mean[i];
        mean[i] += d * f;
        q[i] += gq[i] + d * d * g;
    }
}

/* Forward the S stacked copies xs[S*mr x n_in] (overwritten by the input
 * dropout) with every dropout site drawing, as in training, from key
 * de_rng_key(seed_site, site, step).  *out: the output, a or b (a DAG's:
 * in g, infer_floats(net, rows) floats). */
static int mc_forward(const de_net_t *net, size_t rows, size_t group,
                      float *xs, uint64_t step, float *a, float *b, float *g,
                      uint64_t *mask, float *mul, const float **out)
{
    float *unused, **inbs = NULL;
    float **outs = net->dag ? dag_carve(net, rows, g, &unused, &inbs) : NULL;
    de_dropout_t d;
    if (net->in_rate > 0.0) {
        de_dropout_params(net->in_rate, net->in_inverted,
                          de_rng_key(net->in_seed, 0, step), &d);
        memset(mask, 0, mask_words(rows, net->n_in) * 8);
        de_dropout(rows, net->n_in, xs, xs, mask, &d);
    }
    const float *in = xs;
    float *o = a;
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        o = outs ? outs[l] : in == a ? b : a;
        if (outs)
            in = de_graph_input(net->layers, l, rows, net->n_in, xs, outs, inbs[l]);
        uint64_t key = de_rng_key(L->seed, l + 1, step);
        size_t M = rows * de_layer_rows(L);
        de_dropout_params(has_mask(L) ? L->rate : 0.0, L->inverted, key, &d);
        de_dropout_t fd = op_dropout(L, &d);
        memset(mask, 0, mask_words(M, L->n_out) * 8);
        int rc = L->op != DE_OP_DENSE
            ? de_stage_forward(L, rows, in, xs, &fd, o, NULL, mask)
            : L->norm.kind ? de_norm_layer_infer(M, L, in, &fd, o, mask)
            : de_layer_dense_forward(M, L, in, NULL, &L->act, &fd, o, mask);
        if (rc) return rc;
        /* a copy's rows share what the whole batch shares in training */
        if (L->noise_axes)
            de_dropout_bcast(rows, de_layer_rows(L), L->n_out, L->noise_axes,
                             group, &d, o, mask);
        if (has_noise(L))
            de_noise(L->noise, L->rate, key, M * L->n_out, o, mul);
        in = o;
    }
    *out = o;
    return DE_OK;
}

int de_net_predict_mc(const de_net_t *net, size_t m, const float *x,
                      size_t samples, uint64_t key, float *mean, float *std,
                      size_t chunk)
{
    /* Stacking copies makes one GEMM of G * rows rows per layer: MC dropout
     * on a single sample runs at batch-G efficiency.  At most `chunk` rows
     * are stacked, so memory is bounded whatever `samples` is; more samples
     * than that run in groups of G merged into running statistics. */
    if (quantized(net, 0)) return DE_EINVAL;
    size_t S = samples, G = S < chunk ? S : chunk;
    size_t rows = chunk / G, n_groups = (S + G - 1) / G;
    if (rows > m) rows = m;
    size_t R = G * rows, w = net->width, n_out = net->layers[net->n_layers - 1].n_out;
    /* floats rounded to 64 bytes so that the mask words after them align */
    size_t ng = net->dag ? infer_floats(net, R) + 16 : 0;  /* a DAG's, aligned */
    size_t nf = (R * (net->n_in + 3 * w) + 1 + 2 * rows * n_out + ng + 15) & ~(size_t)15;
    size_t nm = mask_words(R, w);
    float *buf = aligned_alloc(ALIGN, ((nf * sizeof(float) + nm * 8) + ALIGN - 1)
                               / ALIGN * ALIGN);
    if (!buf) return DE_ENOMEM;
    float *xs = buf, *a = xs + R * net->n_in, *b = a + R * w;
    float *mul = b + R * w;           /* R * w + 1 floats: de_noise's */
    float *gm = mul + R * w + 1, *gq = gm + rows * n_out;
    float *g = (float *)((uintptr_t)(gq + rows * n_out + 15) & ~(uintptr_t)63);
    uint64_t *mask = (uint64_t *)(xs + nf);
    int rc = DE_OK;
    for (size_t r = 0, c = 0; r < m && !rc; r += rows, c++) {
        size_t mr = m - r < rows ? m - r : rows, len = mr * n_out;
        float *mu = mean + r * n_out, *q = std + r * n_out;
        for (size_t g0 = 0, gi = 0; g0 < S && !rc; g0 += G, gi++) {
            size_t gn = S - g0 < G ? S - g0 : G;
            for (size_t s = 0; s < gn; s++)
                memcpy(xs + s * mr * net->n_in, x + r * net->n_in,
                       mr * net->n_in * sizeof(float));
            const float *y = NULL;
            rc = mc_forward(net, gn * mr, mr, xs, key + c * n_groups + gi, a,
                            b, g, mask, mul, &y);
            if (rc) break;
            mc_group(gn, len, y, gm, gq);
            mc_merge(g0, gn, len, gm, gq, mu, q);
        }
        for (size_t i = 0; i < len; i++) q[i] = sqrtf(q[i] / (float)S);
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- training */

/* Carve n bytes from the arena cursor (64-byte aligned); with base NULL
 * only counts. */
static void *carve(char *base, size_t *at, size_t n)
{
    void *p = base ? base + *at : NULL;
    *at += (n + ALIGN - 1) / ALIGN * ALIGN;
    return p;
}

/* Lay out (base NULL: size) the arena; returns its size. */
static size_t layout(de_net_t *net, char *base)
{
    size_t at = 0, B = net->batch;
    net->xb = carve(base, &at, B * net->n_in * sizeof(float));
    net->tb = carve(base, &at, B * net->t_cols * sizeof(float));
    net->wb = net->weighted ? carve(base, &at, B * sizeof(float)) : NULL;
    net->in_mask = carve(base, &at, mask_words(B, net->n_in) * 8);
    net->gbuf[0] = carve(base, &at, B * net->width * sizeof(float));
    net->gbuf[1] = carve(base, &at, B * net->width * sizeof(float));
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        size_t n = B * per_sample(L);
        net->out[l] = carve(base, &at, n * sizeof(float));
        net->mask[l] = has_mask(L) ? carve(base, &at, mask_words(n, 1) * 8) : NULL;
        net->act[l] = has_noise(L) ? carve(base, &at, n * sizeof(float)) : NULL;
        net->mul[l] = has_noise(L)
            ? carve(base, &at, (n + 1) * sizeof(float)) : NULL;
        net->pre[l] = needs_pre(L) ? carve(base, &at, n * sizeof(float)) : NULL;
        /* a normalised layer is a Dense of one row per sample (the plan) */
        de_norm_buf_t *nb = &net->nbuf[l];
        nb->xhat = nb->stat = nb->act = NULL;
        if (L->norm.kind) {
            nb->xhat = carve(base, &at, n * sizeof(float));
            nb->stat = carve(base, &at, de_norm_stat_floats(&L->norm, B, L->n_out)
                             * sizeof(float));
            if (L->norm.post)
                nb->act = carve(base, &at, n * sizeof(float));
        }
    }
    if (net->dag) {
        size_t widest = 0;
        for (size_t l = 0; l < net->n_layers; l++) {
            const de_layer_t *L = &net->layers[l];
            net->inb[l] = de_graph_merges(L)
                ? carve(base, &at, B * L->n_in * sizeof(float)) : NULL;
            net->dy[l] = l + 1 < net->n_layers
                ? carve(base, &at, B * L->n_out * sizeof(float)) : net->gbuf[0];
            if (L->n_in > widest) widest = L->n_in;
        }
        net->gx = carve(base, &at, B * widest * sizeof(float));
    }
    for (size_t i = 0; i < net->n_params; i++)
        net->grad[i] = carve(base, &at, net->params[i].rows
                             * net->params[i].cols * sizeof(float));
    return at;
}

int de_net_train_setup(de_net_t *net, size_t batch, size_t t_cols, int loss,
                       int fused, size_t n_metrics, const int *metrics,
                       int weighted, const de_param_t *params)
{
    de_net_set_allreduce(net, NULL, 0);   /* it may hold the gradients */
    free_train(net);
    if (n_metrics > MAX_METRICS || quantized(net, 1)) return DE_EINVAL;
    size_t L = net->n_layers, np = 0;
    for (size_t l = 0; l < L; l++)
        np += n_params(&net->layers[l]);
    net->batch = batch;
    net->t_cols = t_cols;
    net->loss = loss;
    net->fused = fused;
    net->weighted = weighted;
    net->n_metrics = n_metrics;
    memcpy(net->metrics, metrics, n_metrics * sizeof *metrics);
    net->n_params = np;
    net->params = malloc(np * sizeof *params);
    net->out = malloc(L * sizeof *net->out);
    net->pre = malloc(L * sizeof *net->pre);
    net->mask = malloc(L * sizeof *net->mask);
    net->drop = malloc(L * sizeof *net->drop);
    net->grad = malloc(np * sizeof *net->grad);
    net->act = malloc(L * sizeof *net->act);
    net->mul = malloc(L * sizeof *net->mul);
    net->nbuf = malloc(L * sizeof *net->nbuf);
    net->in = malloc(L * sizeof *net->in);
    net->inb = malloc(L * sizeof *net->inb);
    net->dy = malloc(L * sizeof *net->dy);
    if (!net->params || !net->out || !net->pre || !net->mask || !net->drop
        || !net->grad || !net->act || !net->mul || !net->nbuf || !net->in
        || !net->inb || !net->dy)
        goto oom;
    memcpy(net->params, params, np * sizeof *params);
    size_t size = layout(net, NULL);
    net->arena = aligned_alloc(ALIGN, size);
    if (!net->arena) goto oom;
    memset(net->arena, 0, size);
    layout(net, net->arena);
    return DE_OK;
oom:
    free_train(net);
    return DE_ENOMEM;
}

/* row0: the batch row of this process's first row (data parallelism). */
static int forward_train(de_net_t *net, size_t m, uint64_t step, size_t row0)
{
    const float *in = net->xb;
    if (net->in_rate > 0.0) {
        de_dropout_t d;
        de_dropout_params(net->in_rate, net->in_inverted,
                          de_rng_rows_key(de_rng_key(net->in_seed, 0, step), row0),
                          &d);
        memset(net->in_mask, 0, mask_words(m, net->n_in) * 8);
        de_dropout(m, net->n_in, net->xb, net->xb, net->in_mask, &d);
    }
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        de_dropout_t *d = &net->drop[l];
        size_t n = L->n_out, k = L->n_in, M = m * de_layer_rows(L);
        float *y = has_noise(L) ? net->act[l] : net->out[l], *z = net->pre[l];
        /* a layer of r rows per sample holds global rows row0 * r.. */
        uint64_t key = de_rng_rows_key(de_rng_key(L->seed, l + 1, step),
                                       row0 * de_layer_rows(L));
        int rc;
        if (net->dag) {
            in = de_graph_input(net->layers, l, m, net->n_in, net->xb, net->out,
                                net->inb[l]);
            net->in[l] = in;
        }
        de_dropout_params(has_mask(L) ? L->rate : 0.0, L->inverted, key, d);
        de_dropout_t fd = op_dropout(L, d);
        if (net->mask[l]) memset(net->mask[l], 0, mask_words(M, n) * 8);
        if (L->op != DE_OP_DENSE) {
            rc = de_stage_forward(L, m, in, net->xb, &fd, y, z, net->mask[l]);
        } else if (L->norm.kind) {
            rc = de_norm_layer_forward(M, L, in, &fd, z, &net->nbuf[l], y,
                                       net->mask[l]);
        } else if (z) {
            /* The backward pass needs the pre-activation: unfused steps. */
            de_epilogue_t ep = {L->b, {DE_LINEAR, 0.f, 0.f, 0.f, NULL},
                                {0, 1.f, 0}, NULL};
            rc = de_gemm_of(L->bf16)(0, 0, M, n, k, in, k, L->w, n, z, n, 0,
                                     &ep);
            memcpy(y, z, M * n * sizeof *y);
            de_bias_act(M, n, NULL, &L->act, y);
            if (fd.drop_below) de_dropout(M, n, y, y, net->mask[l], &fd);
        } else {
            rc = de_layer_dense_forward(M, L, in, NULL, &L->act, &fd, y,
                                        net->mask[l]);
        }
        if (rc) return rc;
        if (L->noise_axes)
            de_dropout_bcast(m, de_layer_rows(L), n, L->noise_axes, 0, d, y,
                             net->mask[l]);
        if (has_noise(L)) {
            memcpy(net->out[l], y, M * n * sizeof *y);
            de_noise(L->noise, L->rate, key, M * n, net->out[l], net->mul[l]);
        }
        in = net->out[l];
    }
    return DE_OK;
}

/* ------------------------------------------------------ data parallelism */

static float *grad_end(const de_net_t *net, size_t i)
{
    return net->grad[i] + net->params[i].rows * net->params[i].cols;
}

/* Floats from the first gradient to the end of the last (0: none). */
static size_t grad_span(const de_net_t *net)
{
    if (!net->arena || !net->n_params) return 0;
    return (size_t)(grad_end(net, net->n_params - 1) - net->grad[0]);
}

size_t de_net_shm_bytes(const de_net_t *net)
{
    return grad_span(net) ? de_shm_bytes(grad_span(net)) : 0;
}

/* The gradients moved to `to` (same offsets), from wherever they are. */
static void move_grads(de_net_t *net, float *to)
{
    float *from = net->grad[0];
    memcpy(to, from, grad_span(net) * sizeof *to);
    for (size_t i = 0; i < net->n_params; i++)
        net->grad[i] = to + (net->grad[i] - from);
}

int de_net_set_allreduce(de_net_t *net, const de_allreduce_t *a,
                         size_t global_batch)
{
    if (net->grad_home) move_grads(net, net->grad_home);   /* back home */
    net->grad_home = NULL;
    net->comm_seconds = 0.0;
    free(net->ar);
    free(net->ar_req);
    free(net->shm_seg);
    net->ar = NULL;
    net->ar_req = NULL;
    net->shm_seg = NULL;
    if (!a) return DE_OK;
    int shm = a->shm.seg != NULL;
    if (a->size < 1 || a->rank < 0 || a->rank >= a->size || !a->allreduce
        || global_batch == 0
        || (a->buckets == DE_BUCKET_OVERLAP && (!a->iallreduce || !a->wait))
        || (shm && (a->buckets != DE_BUCKET_STEP || !grad_span(net)
                    || a->shm.size < 1 || a->shm.rank < 0
                    || a->shm.rank >= a->shm.size || !a->shm.barrier
                    || !a->shm.win_sync
                    || a->shm.seg_bytes < de_net_shm_bytes(net))))
        return DE_EINVAL;
    net->ar = malloc(sizeof *a);
    net->ar_req = calloc(net->n_layers, sizeof *net->ar_req);
    net->shm_seg = shm ? malloc((size_t)a->shm.size * sizeof *net->shm_seg)
                       : NULL;
    if (!net->ar || !net->ar_req || (shm && !net->shm_seg)) {
        de_net_set_allreduce(net, NULL, 0);
        return DE_ENOMEM;
    }
    *net->ar = *a;
    net->global_batch = global_batch;
    if (shm) {                  /* the backward pass writes into the window */
        memcpy(net->shm_seg, a->shm.seg, (size_t)a->shm.size * sizeof(char *));
        net->ar->shm.seg = net->shm_seg;
        net->grad_home = net->grad[0];
        move_grads(net, de_shm_grads(net->ar));
    }
    return DE_OK;
}

/* Seconds on a monotonic clock (the time a step spends in its sums). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double de_net_comm_seconds(const de_net_t *net)
{
    return net->comm_seconds;
}

/* The gradients of params [p0, p1) (layer l's) are final: sum them now,
 * or start to.  The arena holds the gradients one after the other, in
 * param order, and its padding between them is zero, so a layer's (and
 * the whole step's) are one buffer. */
static int ar_bucket(de_net_t *net, size_t l, size_t p0, size_t p1)
{
    const de_allreduce_t *a = net->ar;
    float *lo = net->grad[p0];
    size_t n = (size_t)(grad_end(net, p1 - 1) - lo);
    int rc = DE_OK;
    double t0 = now();
    if (a->buckets == DE_BUCKET_LAYER) rc = de_allreduce_sum(a, lo, n, 0);
    if (a->buckets == DE_BUCKET_OVERLAP)
        rc = de_allreduce_start(a, lo, n, &net->ar_req[l]);
    net->comm_seconds += now() - t0;
    return rc;
}

/* Every gradient summed over the processes, before the update; through
 * the window (shm_reduce.c) also the batch's sums[ns]. */
static int ar_finish(de_net_t *net, double *sums, size_t ns)
{
    const de_allreduce_t *a = net->ar;
    int rc = DE_OK;
    if (a->shm.seg) return de_shm_reduce(a, grad_span(net), sums, ns);
    if (a->buckets == DE_BUCKET_STEP)
        return de_allreduce_sum(a, net->grad[0], grad_span(net), 0);
    for (size_t l = 0; l < net->n_layers; l++) {
        int r = de_allreduce_wait(a, &net->ar_req[l]);
        if (!rc) rc = r;
    }
    return rc;
}

/* ------------------------------------------------------------- backward */

/* DAG: the gradient of layer l's input (dz times its kernel, or dz itself
 * without one) summed into the gradients of its sources. */
static int dag_dx(de_net_t *net, size_t l, size_t m, const float *dz)
{
    const de_layer_t *L = &net->layers[l];
    size_t n = L->n_out, k = L->n_in;
    const float *dx = dz;
    int gemm = L->op == DE_OP_DENSE;
    if (!de_graph_needs_dx(L, l)) return DE_OK;
    if (gemm && !de_graph_merges(L))   /* straight into the source's */
        return de_gemm_of(L->bf16)(0, 1, m, k, n, dz, n, L->w, n,
                       net->dy[de_graph_source(L, l, 0)], k, 1, NULL);
    if (gemm) {
        int rc = de_gemm_of(L->bf16)(0, 1, m, k, n, dz, n, L->w, n, net->gx, k,
                                     0, NULL);
        if (rc) return rc;
        dx = net->gx;
    }
    de_graph_input_backward(net->layers, l, m, net->n_in, net->xb, net->out,
                            dx, net->dy);
    return DE_OK;
}

/* Gradients of every param for the batch; the loss gradient is in gbuf[0].
 * fo (NULL: none): the step's optimizer, lr and step, which each Dense
 * kernel's weight-gradient GEMM then applies to it (update_params skips
 * those); on an error, the kernels of the layers above are updated. */
static int backward(de_net_t *net, size_t m, const de_optim_t *fo, double lr,
                    int64_t step)
{
    int cur = 0;
    size_t p = net->n_params;
    if (net->dag)        /* summed into by every layer reading the output */
        for (size_t l = 0; l + 1 < net->n_layers; l++)
            memset(net->dy[l], 0, m * net->layers[l].n_out * sizeof(float));
    for (size_t l = net->n_layers; l-- > 0;) {
        const de_layer_t *L = &net->layers[l];
        size_t p_end = p;     /* layer l's params are [p, p_end) below */
        size_t n = L->n_out, k = L->n_in, M = m * de_layer_rows(L);
        float *dz = net->dag ? net->dy[l] : net->gbuf[cur];
        const float *x = net->dag ? net->in[l] : l ? net->out[l - 1] : net->xb;
        const float *y = has_noise(L) ? net->act[l] : net->out[l];
        const int fused = net->fused && l + 1 == net->n_layers;
        /* This layer's param gradients, in de_net_train_setup's order. */
        float **g = net->grad + (p -= n_params(L));
        float *gw = has_kernel(L) ? *g++ : NULL, *gb = L->b ? *g++ : NULL;
        float *ggamma = L->norm.gamma ? *g++ : NULL;
        float *gbeta = L->norm.beta ? *g++ : NULL;
        float *gslopes = has_slopes(L) ? *g : NULL;
        if (has_noise(L)) de_noise_backward(L->noise, M * n, net->mul[l], dz);
        if (L->norm.kind) {
            de_norm_layer_backward(M, L, &net->drop[l], net->mask[l], y,
                                   net->pre[l], &net->nbuf[l], fused, dz,
                                   ggamma, gbeta, gslopes);
        } else {
            if (gslopes)   /* from dy, before dz overwrites it */
                de_prelu_slope_grad(M, n, &net->drop[l], net->mask[l],
                                    net->pre[l], dz, gslopes);
            if (!fused)
                de_backward_act(M, n, &L->act, &net->drop[l], net->mask[l], y,
                                net->pre[l], dz, dz);
        }
        if (L->op != DE_OP_DENSE) {    /* stage.c: no bias, no GEMM */
            de_stage_backward(L, m, net->xb, dz,
                              l && !net->dag ? net->gbuf[1 - cur] : NULL,
                              L->op == DE_OP_EMBED ? gw : NULL);
            if (net->ar && p_end > p) {
                int rc = ar_bucket(net, l, p, p_end);
                if (rc) return rc;
            }
            if (net->dag) {
                int rc = dag_dx(net, l, m, dz);
                if (rc) return rc;
            }
            cur = 1 - cur;
            continue;
        }
        if (gb) de_sum_rows(M, n, dz, gb);
        const de_gemm_fn gemm = de_gemm_of(L->bf16);
        int rc = fo ? DE_OK : gemm(1, 0, k, n, M, x, k, dz, n, gw, n, 0, NULL);
        if (!rc && net->ar) rc = ar_bucket(net, l, p, p_end);
        if (!rc && net->dag)
            rc = dag_dx(net, l, m, dz);
        else if (!rc && l)
            rc = gemm(0, 1, M, k, n, dz, n, L->w, n, net->gbuf[1 - cur], k,
                      0, NULL);
        /* fused: after dx, which reads the kernel before its update */
        if (!rc && fo)
            rc = de_param_update_gemm(fo, lr, step, &net->params[p], M, x, dz, gw);
        if (rc) return rc;
        cur = 1 - cur;
    }
    return DE_OK;
}

/* The batch's rows of x, t (and sw) into the arena.  Split over the
 * threads when a batch is large (W1's 128 x 784: 56 us on one thread, the
 * rows scattered over 19 MB). */
static void gather(de_net_t *net, const float *x, const float *t,
                   const float *sw, const int64_t *index, size_t m)
{
    size_t tc = net->t_cols, n_in = net->n_in;
    int nt = m * n_in >= GATHER_PAR_MIN ? de_threads() : 1;
    DE_PARALLEL({
        size_t lo = m * (size_t)DE_TEAM_ID() / (size_t)DE_TEAM_SIZE();
        size_t hi = m * ((size_t)DE_TEAM_ID() + 1) / (size_t)DE_TEAM_SIZE();
        for (size_t i = lo; i < hi; i++) {
            size_t r = (size_t)index[i];
            memcpy(net->xb + i * n_in, x + r * n_in, n_in * sizeof(float));
            memcpy(net->tb + i * tc, t + r * tc, tc * sizeof(float));
            if (sw) net->wb[i] = sw[r];
        }
    });
}

/* Some Dense kernel is another param's array too (a layer used twice):
 * its update needs every use's gradient, and a fused one would change the
 * kernel under the dx of its use below. */
static int shared_kernels(const de_net_t *net)
{
    size_t p = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        if (net->layers[l].op == DE_OP_DENSE)
            for (size_t q = 0; q < net->n_params; q++)
                if (q != p && net->params[q].w == net->params[p].w) return 1;
        p += n_params(&net->layers[l]);
    }
    return 0;
}

/* Some layer runs its GEMMs in bfloat16 (mixed_bfloat16): its weight
 * gradient is de_gemm_bf16's, which the hooked float32 GEMM of the fused
 * update does not compute. */
static int bf16_layers(const de_net_t *net)
{
    for (size_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].bf16) return 1;
    return 0;
}

/* Every param's update but the Dense kernels' when backward fused those. */
static void update_params(de_net_t *net, const de_optim_t *opt, double lr,
                          int64_t step, int fused)
{
    size_t p = 0;
    /* summed over the processes in a shared window: read from there */
    const float *summed = net->ar && net->ar->shm.seg
        ? de_shm_summed(net->ar, grad_span(net)) : NULL;
    for (size_t l = 0; l < net->n_layers; l++) {
        const de_layer_t *L = &net->layers[l];
        size_t end = p + n_params(L);
        if (fused && L->op == DE_OP_DENSE) p++;     /* its kernel: param p */
        for (; p < end; p++)
            if (summed)
                de_param_update_shared(opt, lr, step, &net->params[p],
                                       summed + (net->grad[p] - net->grad[0]));
            else
                de_param_update(opt, lr, step, &net->params[p], net->grad[p]);
    }
}

/* st = the batch's [loss (with the penalties), metrics...] from the sums
 * over its mb rows; whether the loss is finite. */
static int batch_stats(const de_net_t *net, const double *sums, size_t mb,
                       float *st)
{
    double loss = sums[0] / (double)mb;
    for (size_t i = 0; i < net->n_params; i++)
        loss += de_param_penalty(&net->params[i]);
    st[0] = (float)loss;
    for (size_t i = 0; i < net->n_metrics; i++)
        st[1 + i] = (float)(sums[1 + i] / (double)mb);
    return isfinite(st[0]);
}

long de_net_train(de_net_t *net, const de_optim_t *opt, const float *x,
                  const float *t, const float *sw, const int64_t *index,
                  size_t n_index,
                  size_t first, size_t count, int64_t *iterations,
                  float *stats)
{
    const de_allreduce_t *ar = net->ar;
    /* B: the rows of a batch, all processes' (data parallelism) */
    size_t B = ar ? net->global_batch : net->batch, nm = net->n_metrics;
    size_t k = net->layers[net->n_layers - 1].n_out;
    const float *out = net->out[net->n_layers - 1];
    long done = 0;
    /* Dense kernels are updated in their gradient GEMMs (optim.c), unless
     * the gradients are first summed over the processes (MPI), a kernel
     * is shared, a layer computes in bfloat16, or opt->unfused asks for
     * the separate pass (the tests' reference).  A gradient clipnorm or
     * accumulation would need the whole gradient first too (the optimizers
     * refuse them today). */
    const de_optim_t *fo = ar || opt->unfused || shared_kernels(net)
        || bf16_layers(net) ? NULL : opt;
    if (!sw != !net->weighted) return DE_EINVAL;
    if (ar && (B + (size_t)ar->size - 1) / (size_t)ar->size > net->batch)
        return DE_EINVAL;
    for (size_t j = first; j < first + count; j++) {
        /* mb rows in the batch; this process trains on [lo, lo + m) of them */
        size_t r0 = j * B, mb = n_index - r0 < B ? n_index - r0 : B;
        size_t lo = ar ? mb * (size_t)ar->rank / (size_t)ar->size : 0;
        size_t m = ar ? mb * ((size_t)ar->rank + 1) / (size_t)ar->size - lo : mb;
        gather(net, x, t, sw, index + r0 + lo, m);
        int64_t step = *iterations;
        int rc = forward_train(net, m, (uint64_t)step, lo);
        if (rc) return rc;
        double sums[1 + MAX_METRICS];   /* the batch's loss, metric sums */
        sums[0] = de_loss_rows(net->loss, m, k, out, net->tb, net->wb,
                               net->gbuf[0], net->fused, 1.f / (float)mb);
        for (size_t i = 0; i < nm; i++)
            sums[1 + i] = de_metric_rows(net->metrics[i], m, k, out, net->tb,
                                         NULL);
        float *st = stats + (j - first) * (1 + nm);
        /* Through the window the sums go with the gradients, after the
         * backward pass (one meeting a step, not two); a NaN/Inf loss
         * still stops every process before the update. */
        const int late = ar && ar->shm.seg;
        double t0 = ar ? now() : 0.0;
        if (ar && !late && (rc = de_allreduce_sum(ar, sums, 1 + nm, 1)))
            return rc;
        if (ar) net->comm_seconds += now() - t0;
        if (!late && !batch_stats(net, sums, mb, st)) break;
        double lr = de_optim_lr(opt, step);
        rc = backward(net, m, fo, lr, step);
        if (ar) {               /* waits for every started sum, even on error */
            t0 = now();
            int rf = ar_finish(net, sums, 1 + nm);
            net->comm_seconds += now() - t0;
            if (!rc) rc = rf;
        }
        if (rc) return rc;
        if (late && !batch_stats(net, sums, mb, st)) break;
        update_params(net, opt, lr, step, fo != NULL);
        for (size_t l = 0; l < net->n_layers; l++)   /* BN's moving stats */
            de_norm_update_moving(&net->layers[l].norm, net->layers[l].n_out,
                                  net->nbuf[l].stat);
        *iterations = step + 1;
        done++;
    }
    return done;
}
