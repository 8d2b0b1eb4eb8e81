/*
 * de_model.c -- the embedding API of dropout_engine.h: load a file that
 * model.save wrote, predict with the engine's kernels.
 *
 * The file's metadata holds the Sequential config (JSON inside a JSON
 * string), or a functional model's whose layers form a chain (its layers
 * come in chain order; one with merged branches is refused).  It is turned into the engine's fused layers by the rules of
 * dropout_engine/_plan.py, mirrored here so that C runs exactly the
 * network Python runs (same de_net_predict, same chunking, so the same
 * bits):  [input dropout] (Dense act [dropout])*, where Dropouts before the
 * first Dense form the input dropout, an activation layer (Activation,
 * ReLU, LeakyReLU, PReLU, ELU, Softmax) after a linear Dense becomes its
 * activation, one that commutes with dropout (relu, leaky_relu, PReLU,
 * ReLU without max_value and threshold) after a Dropout folds into a linear
 * Dense (and relu into a relu Dense), stacked Dropouts combine (keep
 * probabilities multiply), a BatchNormalization or LayerNormalization joins
 * the Dense before it (before its Dropout; between bias and activation
 * while the Dense is linear, after the activation otherwise, "post"; one
 * per Dense; parsed and loaded by de_norm.c, BN folded once into an affine
 * map per column).
 * Weights must be exactly "weights/<layer index>/kernel|bias" (float32,
 * Keras shapes [in, units] and [units]) for every Dense and nothing else
 * outside "optimizer/" (and "weights/<index>/alpha" [units] for a PReLU,
 * "weights/<index>/gamma|beta|moving_mean|moving_variance" for a norm):
 * the same check Python's load_model makes.  A Dense
 * of dtype "int8_from_float32" (model.quantize("int8")) has instead an I8
 * kernel [in, units] and a float32 kernel_scale [units] (plus the bias),
 * which are packed here as quantization.Int8Kernel.repack packs them, so
 * that de_qdense_forward runs on the same bytes as in Python.  All of a
 * model's arrays live in one 64-byte aligned block; the int8 ones each
 * start on a 64-byte boundary, as Python's.
 *
 * Threads: a model is read-only after loading; de_net_predict allocates
 * its scratch per call.  The ISA is chosen once (pthread_once) at the first
 * load.  Errors go to a thread-local message.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frame/dispatch.h"
#include "dropout_engine.h"
#include "io/safetensors.h"
#include "embed/de_norm.h"

#define PREDICT_CHUNK 1024  /* Python's model.predict chunk */
#define MAX_UNITS ((uint64_t)1 << 31)
#define Q_MAX_INPUTS 65536  /* quantization.MAX_INPUTS: exact int32 sums */
#define PER_STAGE 8         /* tensors: kernel, bias, kernel_scale, alpha, 4 norm */

struct de_model {
    de_net_t *net;
    void *weights;           /* every layer's arrays, one block */
    size_t n_in, n_out;
};

static _Thread_local char last_error[512];

static int set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *de_last_error(void) { return last_error; }
const char *de_version(void) { return DE_VERSION_STRING; }

/* ------------------------------------------------------------ ISA choice */

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static char isa_problem[160];

static void choose_isa(void)
{
    static const char *const names[DE_N_ISA] = {"generic", "avx2", "avx512"};
    const char *env = getenv("DROPOUT_ENGINE_ISA");
    char want[16] = "";
    size_t n = 0;
    for (; env && *env && n + 1 < sizeof want; env++)
        if (!isspace((unsigned char)*env)) want[n++] = (char)tolower((unsigned char)*env);
    want[n] = 0;
    if (!n) {
        de_isa_set(de_isa_best());
        return;
    }
    for (int i = 0; i < DE_N_ISA; i++)
        if (!strcmp(want, names[i])) {
            if (de_isa_set(i))
                snprintf(isa_problem, sizeof isa_problem, "DROPOUT_ENGINE_ISA=%s: "
                         "this CPU or build cannot run the %s kernels", want, want);
            return;
        }
    snprintf(isa_problem, sizeof isa_problem, "DROPOUT_ENGINE_ISA must be one "
             "of generic, avx2, avx512, got '%s'", want);
}

/* ------------------------------------------------------------- the plan */

typedef struct {
    double rate;
    int inverted, used;
} drop_t;

typedef struct {
    size_t layer;            /* index among the model's layers */
    size_t prelu;            /* the PReLU layer's index (act.kind DE_PRELU) */
    uint64_t units;
    int use_bias;
    de_act_t act;
    int int8;                /* dtype "int8_from_float32" */
    drop_t drop;
    int noised;              /* a GaussianDropout/AlphaDropout follows */
    de_embed_norm_t norm;    /* kind 0: none */
} stage_t;

typedef struct {
    const de_json *c;
    stage_t *stages;
    size_t n_stages;
    drop_t in_drop;
    uint64_t n_in;
    char *err;
    size_t errlen;
} plan_t;

#define PFAIL(p, ...) (snprintf((p)->err, (p)->errlen, __VA_ARGS__), DE_EFORMAT)

/* An activation name (ops.ACTIVATIONS, and Keras's alias "swish"), or
 * null for linear. */
static int activation(const de_json *c, size_t node, de_act_t *act)
{
    static const char *const names[DE_N_NAMED_ACT] = {
        "linear", "relu", "tanh", "sigmoid", "elu", "selu", "gelu", "softmax",
        "leaky_relu", "relu6", "silu", "softplus", "hard_sigmoid"};
    if (node == DE_JSON_NONE || c->nodes[node].type == DE_JSON_NULL) {
        de_act_init(act, DE_LINEAR);
        return 0;
    }
    if (de_json_streq(c, node, "swish")) {
        de_act_init(act, DE_SILU);
        return 0;
    }
    for (int i = 0; i < DE_N_NAMED_ACT; i++)
        if (de_json_streq(c, node, names[i])) {
            de_act_init(act, i);
            return 0;
        }
    return -1;
}

/* cfg[key] as a number >= lo (dflt when absent or, if null_ok, null);
 * -1 otherwise. */
static int number(const de_json *c, size_t cfg, const char *key, double dflt,
                  double lo, int null_ok, double *out)
{
    size_t v = de_json_get(c, cfg, key);
    *out = dflt;
    if (v == DE_JSON_NONE || (null_ok && c->nodes[v].type == DE_JSON_NULL))
        return 0;
    return de_json_double(c, v, out) || !(*out >= lo) || !isfinite(*out) ? -1 : 0;
}

/* The activation of a ReLU, LeakyReLU, ELU, Softmax or PReLU layer (class
 * name cls), with Keras's argument defaults; -1 with p's error set. */
static int layer_activation(plan_t *p, size_t cls, size_t cfg, de_act_t *act)
{
    const de_json *c = p->c;
    double slope, mx, thr, alpha;
    if (de_json_streq(c, cls, "LeakyReLU")) {
        /* Keras 2's files say "alpha" */
        const char *key = de_json_get(c, cfg, "negative_slope") == DE_JSON_NONE
                          && de_json_get(c, cfg, "alpha") != DE_JSON_NONE
                          ? "alpha" : "negative_slope";
        if (number(c, cfg, key, 0.3, 0.0, 0, &slope))
            return PFAIL(p, "a LeakyReLU negative_slope must be a number >= 0");
        de_act_init(act, DE_LEAKY_RELU);
        act->alpha = (float)slope;
    } else if (de_json_streq(c, cls, "ReLU")) {
        if (number(c, cfg, "max_value", INFINITY, 0.0, 1, &mx)
            || number(c, cfg, "negative_slope", 0.0, 0.0, 0, &slope)
            || number(c, cfg, "threshold", 0.0, 0.0, 0, &thr))
            return PFAIL(p, "a ReLU's max_value (or null), negative_slope and "
                         "threshold must be numbers >= 0");
        int plain = mx == INFINITY && slope == 0.0 && thr == 0.0;
        de_act_init(act, plain ? DE_RELU : DE_RELU_X);
        act->alpha = (float)slope;
        act->max_value = (float)mx;
        act->threshold = (float)thr;
    } else if (de_json_streq(c, cls, "ELU")) {
        if (number(c, cfg, "alpha", 1.0, -HUGE_VAL, 0, &alpha))
            return PFAIL(p, "an ELU alpha must be a number");
        de_act_init(act, DE_ELU);
        act->alpha = (float)alpha;
    } else if (de_json_streq(c, cls, "Softmax")) {
        size_t ax = de_json_get(c, cfg, "axis");
        if (ax != DE_JSON_NONE && !(de_json_double(c, ax, &alpha) == 0
                                    && (alpha == -1.0 || alpha == 1.0)))
            return PFAIL(p, "a Softmax axis must be -1 (the features)");
        de_act_init(act, DE_SOFTMAX);
    } else {   /* PReLU */
        size_t sh = de_json_get(c, cfg, "shared_axes");
        if (sh != DE_JSON_NONE && c->nodes[sh].type != DE_JSON_NULL)
            return PFAIL(p, "a PReLU shared_axes must be null");
        de_act_init(act, DE_PRELU);
    }
    return 0;
}

/* A shape (features,) or (null, features) with features > 0. */
static int shape_dim(const de_json *c, size_t node, uint64_t *dim)
{
    if (node == DE_JSON_NONE || c->nodes[node].type != DE_JSON_ARRAY) return -1;
    size_t n = c->nodes[node].count, d = node + 1;
    if (n == 2 && c->nodes[d].type == DE_JSON_NULL) d++;
    else if (n != 1) return -1;
    return de_json_u64(c, d, dim) || *dim == 0 || *dim > MAX_UNITS ? -1 : 0;
}

static int add_dropout(plan_t *p, size_t cfg)
{
    const de_json *c = p->c;
    double rate;
    size_t sc = de_json_get(c, cfg, "scaling");
    int inverted = sc == DE_JSON_NONE || de_json_streq(c, sc, "inverted");
    if (de_json_double(c, de_json_get(c, cfg, "rate"), &rate) || !(rate >= 0.0 && rate < 1.0))
        return PFAIL(p, "a Dropout rate must be a number in [0, 1)");
    if (!inverted && !de_json_streq(c, sc, "weight"))
        return PFAIL(p, "a Dropout scaling must be 'inverted' or 'weight'");
    drop_t *d = p->n_stages ? &p->stages[p->n_stages - 1].drop : &p->in_drop;
    if (d->used && d->inverted != inverted)
        return PFAIL(p, "stacked Dropout layers must use the same scaling");
    d->used = 1;
    d->inverted = inverted;
    d->rate = 1.0 - (1.0 - d->rate) * (1.0 - rate);
    return 0;
}

/* GaussianDropout / AlphaDropout: training noise only, the identity here. */
static int add_noise(plan_t *p, size_t cfg)
{
    double rate;
    if (de_json_double(p->c, de_json_get(p->c, cfg, "rate"), &rate)
        || !(rate >= 0.0 && rate < 1.0))
        return PFAIL(p, "a GaussianDropout/AlphaDropout rate must be a number in [0, 1)");
    if (!p->n_stages)
        return PFAIL(p, "a GaussianDropout/AlphaDropout before the first Dense layer");
    p->stages[p->n_stages - 1].noised = 1;
    return 0;
}

/* A BatchNormalization / LayerNormalization at model index `layer`. */
static int add_norm(plan_t *p, size_t cls, size_t cfg, size_t layer)
{
    if (!p->n_stages) return PFAIL(p, "a normalization before the first Dense layer");
    stage_t *s = &p->stages[p->n_stages - 1];
    if (s->drop.used || s->noised)
        return PFAIL(p, "a normalization after a Dropout (it must come before it)");
    if (s->norm.kind) return PFAIL(p, "a second normalization of the same Dense layer");
    if (de_embed_norm_config(p->c, cls, cfg, &s->norm, p->err, p->errlen))
        return DE_EFORMAT;
    s->norm.post = s->act.kind != DE_LINEAR;
    s->norm.layer = layer;
    return 0;
}

/* relu, leaky_relu, PReLU and ReLU without max_value or threshold commute
 * with dropout: f(s m x) = s m f(x) for s > 0, m in {0, 1}. */
static int commutes_with_dropout(const de_act_t *a)
{
    return a->kind == DE_RELU || a->kind == DE_LEAKY_RELU || a->kind == DE_PRELU
        || (a->kind == DE_RELU_X && a->threshold == 0.f
            && a->max_value == INFINITY);
}

/* An Activation (cls NONE) or activation layer at model index `layer`. */
static int add_activation(plan_t *p, size_t cls, size_t cfg, size_t layer)
{
    de_act_t act;
    if (cls == DE_JSON_NONE) {
        if (activation(p->c, de_json_get(p->c, cfg, "activation"), &act))
            return PFAIL(p, "unknown activation in an Activation layer");
    } else if (layer_activation(p, cls, cfg, &act)) {
        return DE_EFORMAT;
    }
    if (act.kind == DE_LINEAR) return 0;
    if (!p->n_stages) return PFAIL(p, "an activation before the first Dense layer");
    stage_t *s = &p->stages[p->n_stages - 1];
    if (s->norm.post)
        return PFAIL(p, "an activation after a normalization of an activated Dense layer");
    int after_drop = s->drop.rate > 0.0 && commutes_with_dropout(&act);
    if (s->act.kind == DE_LINEAR && (s->drop.rate == 0.0 || after_drop)) s->act = act;
    else if (after_drop && act.kind != DE_PRELU && s->act.kind == DE_RELU)
        return 0;   /* f(relu(x)) = relu(x) */
    else return PFAIL(p, "an activation that cannot be fused after its Dense layer");
    s->prelu = layer;
    return 0;
}

static int add_dense(plan_t *p, size_t cfg, size_t layer)
{
    const de_json *c = p->c;
    stage_t *s = &p->stages[p->n_stages];
    size_t ub = de_json_get(c, cfg, "use_bias");
    memset(s, 0, sizeof *s);
    s->layer = layer;
    s->drop.inverted = 1;
    if (de_json_u64(c, de_json_get(c, cfg, "units"), &s->units) || !s->units
        || s->units > MAX_UNITS)
        return PFAIL(p, "Dense units must be a positive integer");
    if (activation(c, de_json_get(c, cfg, "activation"), &s->act))
        return PFAIL(p, "unknown activation in a Dense layer");
    if (ub != DE_JSON_NONE && c->nodes[ub].type != DE_JSON_TRUE
        && c->nodes[ub].type != DE_JSON_FALSE)
        return PFAIL(p, "Dense use_bias must be true or false");
    s->use_bias = ub == DE_JSON_NONE || c->nodes[ub].type == DE_JSON_TRUE;
    /* Keras's dtype policy of a Dense after model.quantize("int8"). */
    size_t dt = de_json_get(c, cfg, "dtype");
    s->int8 = dt != DE_JSON_NONE && de_json_streq(c, dt, "int8_from_float32");
    if (dt != DE_JSON_NONE && !s->int8 && !de_json_streq(c, dt, "float32"))
        return PFAIL(p, "Dense dtype must be 'float32' or 'int8_from_float32'");
    p->n_stages++;
    return 0;
}

/* A merge layer of the functional API (Python's layers/merging.py). */
static int is_merge(const de_json *c, size_t cls)
{
    static const char *const names[] = {"Concatenate", "Add", "Subtract", "Average",
                                        "Multiply", "Maximum", "Minimum"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (de_json_streq(c, cls, names[i])) return 1;
    return 0;
}

/* Walk the Sequential config (node 0 of p->c) into p; a functional
 * model's config lists a chain's layers in the same order. */
static int build_plan(plan_t *p)
{
    const de_json *c = p->c;
    size_t layers = de_json_get(c, 0, "layers");
    if (layers == DE_JSON_NONE || c->nodes[layers].type != DE_JSON_ARRAY)
        return PFAIL(p, "the model config must be an object with a 'layers' list");
    p->stages = calloc(c->nodes[layers].count + 1, sizeof *p->stages);
    if (!p->stages) {
        snprintf(p->err, p->errlen, "out of memory");
        return DE_ENOMEM;
    }
    p->in_drop.inverted = 1;
    size_t index = 0;   /* among the model's layers (Input excluded) */
    for (size_t l = layers + 1, i = 0; i < c->nodes[layers].count; i++, l = c->nodes[l].next) {
        size_t cls = de_json_get(c, l, "class_name"), cfg = de_json_get(c, l, "config");
        if (cfg == DE_JSON_NONE || c->nodes[cfg].type != DE_JSON_OBJECT)
            return PFAIL(p, "layers[%zu] must be {'class_name': ..., 'config': {...}}", i);
        int rc;
        if (de_json_streq(c, cls, "InputLayer")) {
            size_t sh = de_json_get(c, cfg, "shape");
            if (i != 0) return PFAIL(p, "an InputLayer can only come first");
            if (shape_dim(c, sh == DE_JSON_NONE ? de_json_get(c, cfg, "input_shape") : sh,
                          &p->n_in))
                return PFAIL(p, "the InputLayer shape must be [features]");
            continue;
        }
        if (index == 0 && !p->n_in) {
            size_t sh = de_json_get(c, cfg, "input_shape");
            if (sh != DE_JSON_NONE && shape_dim(c, sh, &p->n_in))
                return PFAIL(p, "layers[%zu]: input_shape must be [features]", i);
        }
        if (de_json_streq(c, cls, "Dense")) rc = add_dense(p, cfg, index);
        else if (de_json_streq(c, cls, "Dropout")) rc = add_dropout(p, cfg);
        else if (de_json_streq(c, cls, "Activation"))
            rc = add_activation(p, DE_JSON_NONE, cfg, index);
        else if (de_json_streq(c, cls, "ReLU") || de_json_streq(c, cls, "LeakyReLU")
                 || de_json_streq(c, cls, "PReLU") || de_json_streq(c, cls, "ELU")
                 || de_json_streq(c, cls, "Softmax"))
            rc = add_activation(p, cls, cfg, index);
        else if (de_json_streq(c, cls, "GaussianDropout")
                 || de_json_streq(c, cls, "AlphaDropout")) rc = add_noise(p, cfg);
        else if (de_json_streq(c, cls, "BatchNormalization")
                 || de_json_streq(c, cls, "LayerNormalization"))
            rc = add_norm(p, cls, cfg, index);
        else if (is_merge(c, cls))
            return PFAIL(p, "layers[%zu]: a functional model with merged branches "
                         "(Concatenate, Add, ...) is not supported by the C loader "
                         "(a chain of layers is)", i);
        else return PFAIL(p, "layers[%zu]: class_name must be InputLayer, Dense, "
                          "Dropout, GaussianDropout, AlphaDropout, Activation, "
                          "ReLU, LeakyReLU, PReLU, ELU, Softmax, "
                          "BatchNormalization or LayerNormalization", i);
        if (rc) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", p->err);
            return PFAIL(p, "layers[%zu]: %s", i, msg);
        }
        index++;
    }
    if (!p->n_stages) return PFAIL(p, "the model needs at least one Dense layer");
    if (!p->n_in) return PFAIL(p, "the model config has no input shape");
    return 0;
}

/* --------------------------------------------------------------- loading */

/* Tensor "weights/<layer>/<what>" of dtype I8 (i8) or F32 and shape [d0]
 * (d1 == 0) or [d0, d1]; NULL with the message in err when it is not. */
static const de_st_tensor *find_weight(const de_st_file *st, size_t layer,
                                       const char *what, int i8, uint64_t d0,
                                       uint64_t d1, char *err, size_t errlen)
{
    char name[64], dims[48];
    size_t ndim = d1 ? 2 : 1;
    snprintf(name, sizeof name, "weights/%zu/%s", layer, what);
    const de_st_tensor *t = de_st_find(st, name);
    if (t && (i8 ? t->is_i8 : t->is_f32) && t->ndim == ndim && t->shape[0] == d0
        && (ndim < 2 || t->shape[1] == d1))
        return t;
    if (d1) snprintf(dims, sizeof dims, "%llu, %llu", (unsigned long long)d0,
                     (unsigned long long)d1);
    else snprintf(dims, sizeof dims, "%llu", (unsigned long long)d0);
    snprintf(err, errlen, "tensor '%s' must be %s [%s]%s", name, i8 ? "int8" : "float32",
             dims, t ? "" : " (it is missing)");
    return NULL;
}

/* Where stage s's arrays go in the model's block: byte offsets. */
typedef struct {
    size_t w, b, qw, corr, scale, slopes, norm;
} place_t;

static size_t up64(size_t n) { return (n + 63) / 64 * 64; }

/* Lay out every stage's arrays (float kernels and biases packed as they
 * come; the int8 arrays as Int8Kernel's, 64-byte aligned, padded to whole
 * panels and k-quads) and return the block's size in bytes.  No overflow:
 * match_weights has checked every kernel against the file (its bytes lie
 * in the data region) and every int8 layer's inputs (<= Q_MAX_INPUTS), so
 * an int8 kernel grows at most 64-fold, to a panel per column. */
static size_t place(const plan_t *p, place_t *at)
{
    size_t off = 0, dim = (size_t)p->n_in;
    for (size_t s = 0; s < p->n_stages; s++) {
        const stage_t *S = &p->stages[s];
        size_t units = (size_t)S->units;
        if (S->int8) {
            size_t cols = (units + DE_Q_PANEL - 1) / DE_Q_PANEL * DE_Q_PANEL;
            at[s].qw = off = up64(off);
            off += (dim + 3) / 4 * 4 * cols;
            at[s].corr = off;
            off += cols * sizeof(int32_t);
            at[s].scale = off;
            off += cols * sizeof(float);
        } else {
            at[s].w = off;
            off += dim * units * sizeof(float);
        }
        at[s].b = off;
        off += S->use_bias ? units * sizeof(float) : 0;
        at[s].slopes = off;
        off += S->act.kind == DE_PRELU ? units * sizeof(float) : 0;
        at[s].norm = off;
        off += S->norm.kind ? 2 * units * sizeof(float) : 0;
        dim = units;
    }
    return off;
}

/* Find stage s's kernel, bias, (int8) kernel_scale, (PReLU) alpha and
 * norm tensors (w[PER_STAGE s ..], de_embed_norm_tensor's order from + 4)
 * with the dtypes and shapes the plan implies; no other tensor may sit
 * outside "optimizer/". */
static int match_weights(const plan_t *p, const de_st_file *st,
                         const de_st_tensor **w, char *err, size_t errlen)
{
    uint64_t dim = p->n_in;
    size_t n_expected = 0, n_own = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        const stage_t *S = &p->stages[s];
        const de_st_tensor **t = w + PER_STAGE * s;
        if (S->int8 && dim > Q_MAX_INPUTS)
            return snprintf(err, errlen, "layer %zu: int8 quantization supports at most "
                            "%d inputs, the layer has %llu", S->layer, Q_MAX_INPUTS,
                            (unsigned long long)dim), DE_EFORMAT;
        if (!(t[0] = find_weight(st, S->layer, "kernel", S->int8, dim, S->units, err, errlen))
            || (S->use_bias && !(t[1] = find_weight(st, S->layer, "bias", 0, S->units, 0,
                                                    err, errlen)))
            || (S->int8 && !(t[2] = find_weight(st, S->layer, "kernel_scale", 0, S->units,
                                                0, err, errlen)))
            || (S->act.kind == DE_PRELU
                && !(t[3] = find_weight(st, S->prelu, "alpha", 0, S->units, 0, err,
                                        errlen))))
            return DE_EFORMAT;
        n_expected += 1 + (size_t)S->use_bias + (size_t)S->int8
                      + (size_t)(S->act.kind == DE_PRELU);
        for (int i = 0; S->norm.kind && i < 4; i++) {
            const char *name = de_embed_norm_tensor(&S->norm, i);
            if (!name) continue;
            if (!(t[4 + i] = find_weight(st, S->norm.layer, name, 0, S->units, 0, err,
                                         errlen)))
                return DE_EFORMAT;
            n_expected++;
        }
        dim = S->units;
    }
    for (size_t i = 0; i < st->n_tensors; i++) {
        const de_json_node *k = &st->header.nodes[st->tensors[i].name];
        n_own += !(k->len >= 10 && !memcmp(st->header.text + k->start, "optimizer/", 10));
    }
    if (n_own != n_expected)
        return snprintf(err, errlen, "the file holds %zu weight tensors, the model "
                        "has %zu", n_own, n_expected), DE_EFORMAT;
    return 0;
}

/* Int8Kernel.repack (quantization.py): kernel [k x n] into 64-column
 * panels with k padded to whole quads (layout in dispatch.h), and corr[j]
 * = 128 * column sum j.  packed and corr arrive zeroed: the padding. */
static void pack_int8(const int8_t *kernel, size_t k, size_t n, int8_t *packed,
                      int32_t *corr)
{
    size_t kq = (k + 3) / 4;
    for (size_t r = 0; r < k; r++)
        for (size_t j = 0; j < n; j++) {
            size_t panel = j / DE_Q_PANEL, col = j % DE_Q_PANEL;
            packed[((panel * kq + r / 4) * DE_Q_PANEL + col) * 4 + r % 4] = kernel[r * n + j];
            corr[j] += 128 * kernel[r * n + j];
        }
}

/* Stage s's arrays into the block at `at`, pointed to by L. */
static int read_stage(const de_st_file *st, const stage_t *S, const de_st_tensor **t,
                      const place_t *at, char *block, de_layer_t *L, char *err,
                      size_t errlen)
{
    int rc = DE_OK;
    if (S->int8) {
        size_t cols = (L->n_out + DE_Q_PANEL - 1) / DE_Q_PANEL * DE_Q_PANEL;
        int8_t *kernel = malloc(L->n_in * L->n_out + 1);
        float *scale = (float *)(block + at->scale);
        if (!kernel) return snprintf(err, errlen, "out of memory"), DE_ENOMEM;
        rc = de_st_read_i8(st, t[0], kernel, err, errlen);
        if (!rc) rc = de_st_read_f32(st, t[2], scale, err, errlen);
        if (!rc) {
            pack_int8(kernel, L->n_in, L->n_out, (int8_t *)(block + at->qw),
                      (int32_t *)(block + at->corr));
            for (size_t j = L->n_out; j < cols; j++) scale[j] = 1.0f;
        }
        free(kernel);
        L->qw = (const int8_t *)(block + at->qw);
        L->qcorr = (const int32_t *)(block + at->corr);
        L->qscale = scale;
    } else {
        L->w = (const float *)(block + at->w);
        rc = de_st_read_f32(st, t[0], (float *)(block + at->w), err, errlen);
    }
    if (!rc && S->use_bias) {
        L->b = (const float *)(block + at->b);
        rc = de_st_read_f32(st, t[1], (float *)(block + at->b), err, errlen);
    }
    if (!rc && S->act.kind == DE_PRELU) {
        L->act.slopes = (const float *)(block + at->slopes);
        rc = de_st_read_f32(st, t[3], (float *)(block + at->slopes), err, errlen);
    }
    if (!rc && S->norm.kind)
        rc = de_embed_norm_load(st, &S->norm, L->n_out, t + 4,
                                (float *)(block + at->norm), &L->norm, err, errlen);
    return rc;
}

/* The model from an opened, validated container. */
static int assemble(de_st_file *st, de_model *m, char *err, size_t errlen)
{
    const de_json *h = &st->header;
    size_t meta = st->metadata;
    size_t fmt = de_json_get(h, meta, "format"), ver = de_json_get(h, meta, "version"),
           cfg = de_json_get(h, meta, "model");
    if (!de_json_streq(h, fmt, "dropout_engine.model"))
        return snprintf(err, errlen, "the metadata format must be 'dropout_engine.model' "
                        "(a file from model.save)"), DE_EFORMAT;
    if (!de_json_streq(h, ver, "1"))
        return snprintf(err, errlen, "the format version must be '1'"), DE_EFORMAT;
    if (cfg == DE_JSON_NONE)
        return snprintf(err, errlen, "the metadata has no 'model' config"), DE_EFORMAT;
    de_json c;
    char jerr[160];
    if (de_json_parse(&c, h->text + h->nodes[cfg].start, h->nodes[cfg].len, jerr, sizeof jerr))
        return snprintf(err, errlen, "the model config is not valid JSON (%s)", jerr),
               DE_EFORMAT;
    plan_t p = {&c, NULL, 0, {0.0, 1, 0}, 0, err, errlen};
    int rc = build_plan(&p);
    const de_st_tensor **w = NULL;
    de_layer_t *layers = NULL;
    place_t *at = NULL;
    if (!rc) {
        w = calloc(PER_STAGE * p.n_stages, sizeof *w);
        layers = calloc(p.n_stages, sizeof *layers);
        at = calloc(p.n_stages, sizeof *at);
        rc = !w || !layers || !at ? (snprintf(err, errlen, "out of memory"), DE_ENOMEM)
                                  : match_weights(&p, st, w, err, errlen);
    }
    if (!rc) {
        /* 64-byte aligned like the engine's own buffers; zeroed: the int8
         * arrays' padding. */
        size_t bytes = up64(place(&p, at) + 1);
        m->weights = aligned_alloc(64, bytes);
        if (!m->weights) rc = (snprintf(err, errlen, "out of memory"), DE_ENOMEM);
        else memset(m->weights, 0, bytes);
    }
    for (size_t s = 0; !rc && s < p.n_stages; s++) {
        const stage_t *S = &p.stages[s];
        de_layer_t *L = &layers[s];
        L->n_in = s ? layers[s - 1].n_out : (size_t)p.n_in;
        L->n_out = (size_t)S->units;
        L->act = S->act;
        L->rate = S->drop.rate;
        L->inverted = S->drop.inverted;
        rc = read_stage(st, S, w + PER_STAGE * s, &at[s], m->weights, L, err, errlen);
    }
    if (!rc) {
        m->n_in = (size_t)p.n_in;
        m->n_out = layers[p.n_stages - 1].n_out;
        m->net = de_net_create(m->n_in, p.in_drop.rate, p.in_drop.inverted, 0,
                               p.n_stages, layers);
        if (!m->net) rc = (snprintf(err, errlen, "out of memory"), DE_ENOMEM);
    }
    free(w);
    free(layers);
    free(at);
    free(p.stages);
    de_json_free(&c);
    return rc;
}

int de_model_load(const char *path, de_model **out)
{
    char err[400];
    if (out) *out = NULL;
    if (!path || !out) return set_error(DE_EINVAL, "de_model_load: path and out must not be NULL");
    pthread_once(&isa_once, choose_isa);
    if (isa_problem[0]) return set_error(DE_EINVAL, "%s", isa_problem);
    de_model *m = calloc(1, sizeof *m);
    if (!m) return set_error(DE_ENOMEM, "out of memory");
    de_st_file st;
    int rc = de_st_open(&st, path, err, sizeof err);
    if (!rc) {
        rc = assemble(&st, m, err, sizeof err);
        de_st_close(&st);
    }
    if (rc) {
        de_model_free(m);
        return set_error(rc, "'%s' is not a valid model file: %s", path, err);
    }
    *out = m;
    return DE_OK;
}

int de_model_predict(const de_model *m, const float *x, size_t rows,
                     size_t cols, float *y)
{
    if (!m) return set_error(DE_EINVAL, "de_model_predict: the model is NULL");
    if (cols != m->n_in)
        return set_error(DE_EINVAL, "x has %zu features, the model expects %zu",
                         cols, m->n_in);
    if (!rows) return DE_OK;
    if (!x || !y) return set_error(DE_EINVAL, "de_model_predict: x and y must not be NULL");
    if (rows > ((size_t)-1) / sizeof(float) / (cols > m->n_out ? cols : m->n_out))
        return set_error(DE_EINVAL, "de_model_predict: %zu rows do not fit in memory", rows);
    int rc = de_net_predict(m->net, rows, x, y, PREDICT_CHUNK);
    return rc ? set_error(rc, "de_model_predict: out of memory") : DE_OK;
}

size_t de_model_input_dim(const de_model *m) { return m ? m->n_in : 0; }
size_t de_model_output_dim(const de_model *m) { return m ? m->n_out : 0; }

void de_model_free(de_model *m)
{
    if (!m) return;
    de_net_free(m->net);
    free(m->weights);
    free(m);
}
