/*
 * model_plan.c -- a model file's Sequential config turned into the
 * engine's layers by the rules of dropout_engine/_plan.py, mirrored here so
 * that C runs exactly the network Python runs (same ops, same chunking, so
 * the same bits):  [input dropout] (op act [site])*, where
 *  - op is a Dense on the last axis of the per-sample shape (batch * steps
 *    rows on [batch, steps, features]), an Embedding gather (first layer
 *    only; a GlobalAveragePooling1D right after it is its fused mean), a
 *    GlobalAveragePooling1D elsewhere, or the identity (a site of its own);
 *  - Flatten and Reshape only change the shape;
 *  - Dropouts before the first stage form the input dropout; an activation
 *    layer (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax) after a
 *    linear stage becomes its activation, one that commutes with dropout
 *    (relu, leaky_relu, PReLU, ReLU without max_value and threshold) after
 *    a Dropout folds into a linear stage (and relu into a relu one);
 *    stacked Dropouts combine (keep probabilities multiply);
 *  - a noise layer (GaussianDropout, AlphaDropout, GaussianNoise) or a
 *    broadcast mask (a Dropout with noise_shape, SpatialDropout1D) takes a
 *    free site or starts an identity stage; a broadcast mask, softmax,
 *    PReLU and the model's end need the values' current shape (an identity
 *    stage after a Flatten or Reshape that moved the rows);
 *  - a BatchNormalization or LayerNormalization joins the Dense (of one row
 *    per sample) right before it, before its dropout: between the bias and
 *    the activation while the Dense is linear, after the activation
 *    otherwise ("post"); one per Dense (parsed and loaded by de_norm.c).
 * Noise is the identity at inference; a site only matters for "weight"
 * scaling and for where activations fold.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dropout_engine.h"
#include "embed/model_plan.h"

#define MAX_VOCAB ((uint64_t)1 << 24)   /* ids travel as float32 */
#define PFAIL(p, ...) (snprintf((p)->err, (p)->errlen, __VA_ARGS__), DE_EFORMAT)

static uint64_t prod(const shape_t *s)
{
    uint64_t n = 1;
    for (size_t i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

static int shape_eq(const shape_t *a, const shape_t *b)
{
    return a->rank == b->rank && !memcmp(a->d, b->d, a->rank * sizeof a->d[0]);
}

uint64_t de_plan_rows(const stage_t *s)
{
    if (s->op == DE_OP_POOL || s->pool) return 1;
    shape_t lead = s->shape;
    lead.rank--;
    return prod(&lead);
}

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

/* cfg[key] as a bool (dflt when absent); -1 when not a bool. */
static int boolean(const de_json *c, size_t cfg, const char *key, int dflt, int *out)
{
    size_t v = de_json_get(c, cfg, key);
    *out = dflt;
    if (v == DE_JSON_NONE) return 0;
    if (c->nodes[v].type != DE_JSON_TRUE && c->nodes[v].type != DE_JSON_FALSE) return -1;
    *out = c->nodes[v].type == DE_JSON_TRUE;
    return 0;
}

/* A per-sample shape: an array of 1..DE_PLAN_MAX_RANK positive ints (a
 * leading null, the batch axis of old files, skipped). */
static int shape_of(const de_json *c, size_t node, shape_t *s)
{
    if (node == DE_JSON_NONE || c->nodes[node].type != DE_JSON_ARRAY) return -1;
    size_t n = c->nodes[node].count, d = node + 1;
    if (n >= 2 && c->nodes[d].type == DE_JSON_NULL) {
        d = c->nodes[d].next;
        n--;
    }
    if (!n || n > DE_PLAN_MAX_RANK) return -1;
    uint64_t total = 1;
    s->rank = n;
    for (size_t i = 0; i < n; i++, d = c->nodes[d].next) {
        if (de_json_u64(c, d, &s->d[i]) || !s->d[i] || s->d[i] > DE_PLAN_MAX_UNITS)
            return -1;
        total *= s->d[i];
        if (total > DE_PLAN_MAX_UNITS) return -1;
    }
    return 0;
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

static stage_t *last_stage(plan_t *p)
{
    return p->n_stages ? &p->stages[p->n_stages - 1] : NULL;
}

/* A new stage of kind op with output shape `shape` and input width n_in. */
static stage_t *new_stage(plan_t *p, int op, size_t layer, const shape_t *shape,
                          uint64_t n_in)
{
    stage_t *s = &p->stages[p->n_stages++];
    memset(s, 0, sizeof *s);
    s->op = op;
    s->layer = layer;
    s->shape = *shape;
    s->units = shape->d[shape->rank - 1];
    s->n_in = n_in;
    s->drop.inverted = 1;
    de_act_init(&s->act, DE_LINEAR);
    return s;
}

static stage_t *identity(plan_t *p, size_t layer)
{
    return new_stage(p, DE_OP_IDENTITY, layer, &p->cur, p->cur.d[p->cur.rank - 1]);
}

/* The last stage when its output has the current shape, else a new
 * identity stage of that shape. */
static stage_t *at_shape(plan_t *p, size_t layer)
{
    stage_t *s = last_stage(p);
    return s && shape_eq(&s->shape, &p->cur) ? s : identity(p, layer);
}

/* Whether a Dropout's noise_shape (cfg "noise_shape") broadcasts over the
 * current shape: any entry 1 where the axis is longer. */
static int noise_shape_bcast(plan_t *p, size_t cfg, int *bcast)
{
    const de_json *c = p->c;
    size_t ns = de_json_get(c, cfg, "noise_shape");
    *bcast = 0;
    if (ns == DE_JSON_NONE || c->nodes[ns].type == DE_JSON_NULL) return 0;
    if (c->nodes[ns].type != DE_JSON_ARRAY || c->nodes[ns].count != p->cur.rank + 1)
        return PFAIL(p, "a Dropout noise_shape must have the input's rank");
    size_t d = ns + 1;
    for (size_t i = 0; i <= p->cur.rank; i++, d = c->nodes[d].next) {
        uint64_t v;
        if (c->nodes[d].type == DE_JSON_NULL) continue;
        if (de_json_u64(c, d, &v) || !v)
            return PFAIL(p, "a Dropout noise_shape holds positive ints or null");
        if (v == 1 && (i == 0 || p->cur.d[i - 1] > 1)) *bcast = 1;
    }
    return 0;
}

/* A dropout-family layer's site: the input dropout, the last stage's free
 * site, or an identity stage's. */
static int add_site(plan_t *p, size_t layer, double rate, int inverted, int noise,
                    int bcast)
{
    drop_t *d;
    if (!p->n_stages && !noise && !bcast) {
        d = &p->in_drop;
    } else {
        stage_t *s = last_stage(p);
        if (s && bcast && !shape_eq(&s->shape, &p->cur)) s = NULL;
        if (!s || (s->drop.used && (s->drop.noise || s->drop.bcast || noise || bcast)))
            s = identity(p, layer);
        d = &s->drop;
    }
    if (d->used && d->inverted != inverted)
        return PFAIL(p, "stacked Dropout layers must use the same scaling");
    d->rate = noise ? rate : 1.0 - (1.0 - d->rate) * (1.0 - rate);
    d->used = 1;
    d->inverted = inverted;
    d->noise = noise;
    d->bcast = bcast;
    return 0;
}

/* Dropout, SpatialDropout1D, GaussianDropout, AlphaDropout, GaussianNoise. */
static int add_dropout(plan_t *p, size_t cls, size_t cfg, size_t layer)
{
    const de_json *c = p->c;
    double rate;
    int gauss = de_json_streq(c, cls, "GaussianDropout"),
        alpha = de_json_streq(c, cls, "AlphaDropout"),
        additive = de_json_streq(c, cls, "GaussianNoise"),
        spatial = de_json_streq(c, cls, "SpatialDropout1D");
    int noise = gauss ? DE_NOISE_GAUSSIAN : alpha ? DE_NOISE_ALPHA
              : additive ? DE_NOISE_ADDITIVE : DE_NOISE_DROPOUT, bcast = spatial;
    if (additive) {
        if (de_json_double(c, de_json_get(c, cfg, "stddev"), &rate)
            || !(rate >= 0.0 && rate <= 1.0))
            return PFAIL(p, "a GaussianNoise stddev must be a number in [0, 1]");
        return add_site(p, layer, rate, 1, noise, 0);
    }
    if (de_json_double(c, de_json_get(c, cfg, "rate"), &rate) || !(rate >= 0.0 && rate < 1.0))
        return PFAIL(p, "a dropout rate must be a number in [0, 1)");
    if (noise)
        return add_site(p, layer, rate, 1, noise, 0);
    if (spatial && p->cur.rank != 2)
        return PFAIL(p, "a SpatialDropout1D needs [batch, steps, features] inputs");
    size_t sc = de_json_get(c, cfg, "scaling");
    int inverted = sc == DE_JSON_NONE || de_json_streq(c, sc, "inverted");
    if (!inverted && !de_json_streq(c, sc, "weight"))
        return PFAIL(p, "a Dropout scaling must be 'inverted' or 'weight'");
    if (!spatial && noise_shape_bcast(p, cfg, &bcast)) return DE_EFORMAT;
    return add_site(p, layer, rate, inverted, 0, bcast);
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
    if (act.kind == DE_PRELU && p->cur.rank > 1)
        return PFAIL(p, "a PReLU on inputs of more than one axis");
    int element_wise = act.kind != DE_SOFTMAX && act.kind != DE_PRELU;
    stage_t *s = element_wise ? last_stage(p) : at_shape(p, layer);
    if (s->norm.post)
        return PFAIL(p, "an activation after a normalization of an activated Dense layer");
    int dropped = s->drop.rate > 0.0 && !s->drop.noise;
    int after_drop = dropped && commutes_with_dropout(&act);
    if (s->act.kind == DE_LINEAR && (s->drop.rate == 0.0 || after_drop)) s->act = act;
    else if (after_drop && act.kind != DE_PRELU && s->act.kind == DE_RELU)
        return 0;   /* f(relu(x)) = relu(x) */
    else return PFAIL(p, "an activation that cannot be fused after its layer");
    s->prelu = layer;
    return 0;
}

/* A BatchNormalization / LayerNormalization at model index `layer`. */
static int add_norm(plan_t *p, size_t cls, size_t cfg, size_t layer)
{
    stage_t *s = last_stage(p);
    if (!s || s->op != DE_OP_DENSE || de_plan_rows(s) != 1
        || !shape_eq(&s->shape, &p->cur))
        return PFAIL(p, "a normalization must follow a Dense layer on [batch, features]");
    if (s->drop.used)
        return PFAIL(p, "a normalization after a Dropout (it must come before it)");
    if (s->norm.kind) return PFAIL(p, "a second normalization of the same Dense layer");
    if (de_embed_norm_config(p->c, cls, cfg, &s->norm, p->err, p->errlen))
        return DE_EFORMAT;
    s->norm.post = s->act.kind != DE_LINEAR;
    s->norm.layer = layer;
    return 0;
}

static int add_dense(plan_t *p, size_t cfg, size_t layer)
{
    const de_json *c = p->c;
    uint64_t units;
    if (de_json_u64(c, de_json_get(c, cfg, "units"), &units) || !units
        || units > DE_PLAN_MAX_UNITS)
        return PFAIL(p, "Dense units must be a positive integer");
    shape_t out = p->cur;
    out.d[out.rank - 1] = units;
    if (de_plan_rows(&(stage_t){.shape = out}) * units > DE_PLAN_MAX_UNITS)
        return PFAIL(p, "a Dense output of more than 2^31 values per sample");
    stage_t *s = new_stage(p, DE_OP_DENSE, layer, &out, p->cur.d[p->cur.rank - 1]);
    if (activation(c, de_json_get(c, cfg, "activation"), &s->act))
        return PFAIL(p, "unknown activation in a Dense layer");
    if (boolean(c, cfg, "use_bias", 1, &s->use_bias))
        return PFAIL(p, "Dense use_bias must be true or false");
    /* Keras's dtype policy of a Dense after model.quantize("int8"), ours
     * after model.quantize("bfloat16"). */
    size_t dt = de_json_get(c, cfg, "dtype");
    s->int8 = dt != DE_JSON_NONE && de_json_streq(c, dt, "int8_from_float32");
    s->bf16 = dt != DE_JSON_NONE && de_json_streq(c, dt, "bfloat16_from_float32");
    if (dt != DE_JSON_NONE && !s->int8 && !s->bf16 && !de_json_streq(c, dt, "float32"))
        return PFAIL(p, "Dense dtype must be 'float32', 'int8_from_float32' or "
                     "'bfloat16_from_float32'");
    p->cur = out;
    return 0;
}

static int add_embedding(plan_t *p, size_t cfg, size_t layer)
{
    const de_json *c = p->c;
    uint64_t vocab, dim;
    int mask;
    if (layer || p->n_stages || p->in_drop.used)
        return PFAIL(p, "an Embedding must be the first layer");
    if (de_json_u64(c, de_json_get(c, cfg, "input_dim"), &vocab) || !vocab
        || vocab > MAX_VOCAB
        || de_json_u64(c, de_json_get(c, cfg, "output_dim"), &dim) || !dim
        || dim > DE_PLAN_MAX_UNITS || p->cur.rank == DE_PLAN_MAX_RANK
        || prod(&p->cur) * dim > DE_PLAN_MAX_UNITS)
        return PFAIL(p, "an Embedding needs input_dim in [1, 2^24] and a positive "
                     "output_dim");
    if (boolean(c, cfg, "mask_zero", 0, &mask))
        return PFAIL(p, "an Embedding mask_zero must be true or false");
    shape_t out = p->cur;
    out.d[out.rank++] = dim;
    stage_t *s = new_stage(p, DE_OP_EMBED, layer, &out, prod(&p->cur));
    s->vocab = vocab;
    p->cur = out;
    p->masked = mask;
    return 0;
}

static int add_pool(plan_t *p, size_t cfg, size_t layer)
{
    const de_json *c = p->c;
    size_t df = de_json_get(c, cfg, "data_format");
    int keep;
    if (df != DE_JSON_NONE && c->nodes[df].type != DE_JSON_NULL
        && !de_json_streq(c, df, "channels_last"))
        return PFAIL(p, "a GlobalAveragePooling1D data_format must be channels_last");
    if (boolean(c, cfg, "keepdims", 0, &keep))
        return PFAIL(p, "a GlobalAveragePooling1D keepdims must be true or false");
    if (p->cur.rank != 2)
        return PFAIL(p, "a GlobalAveragePooling1D needs [batch, steps, features] inputs");
    shape_t out = {keep ? 2 : 1, {0}};
    out.d[0] = 1;
    out.d[out.rank - 1] = p->cur.d[1];
    stage_t *s = last_stage(p);
    if (s && s->op == DE_OP_EMBED && !s->pool && shape_eq(&s->shape, &p->cur)
        && s->act.kind == DE_LINEAR && !s->drop.used) {
        s->pool = 1;               /* the gather's own mean */
        s->shape = out;
    } else {
        s = new_stage(p, DE_OP_POOL, layer, &out, p->cur.d[1]);
        s->pool_steps = p->cur.d[0];
    }
    s->mask_zero = p->masked;
    p->masked = 0;
    p->cur = out;
    return 0;
}

/* Flatten and Reshape: the values stay where they are. */
static int add_reshape(plan_t *p, size_t cls, size_t cfg)
{
    const de_json *c = p->c;
    uint64_t n = prod(&p->cur);
    if (p->masked) return PFAIL(p, "a Flatten or Reshape would drop an Embedding's mask");
    if (de_json_streq(c, cls, "Flatten")) {
        size_t df = de_json_get(c, cfg, "data_format");
        if (df != DE_JSON_NONE && c->nodes[df].type != DE_JSON_NULL
            && !de_json_streq(c, df, "channels_last"))
            return PFAIL(p, "a Flatten data_format must be channels_last");
        p->cur.rank = 1;
        p->cur.d[0] = n;
        return 0;
    }
    size_t ts = de_json_get(c, cfg, "target_shape"), d = ts + 1, infer = DE_JSON_NONE;
    if (ts == DE_JSON_NONE || c->nodes[ts].type != DE_JSON_ARRAY
        || !c->nodes[ts].count || c->nodes[ts].count > DE_PLAN_MAX_RANK)
        return PFAIL(p, "a Reshape target_shape must be a list of 1 to %d ints",
                     DE_PLAN_MAX_RANK);
    shape_t out = {c->nodes[ts].count, {0}};
    uint64_t known = 1;
    for (size_t i = 0; i < out.rank; i++, d = c->nodes[d].next) {
        double v;
        if (de_json_double(c, d, &v)) return PFAIL(p, "a Reshape target_shape holds ints");
        if (v == -1.0 && infer == DE_JSON_NONE) {
            infer = i;
            continue;
        }
        if (de_json_u64(c, d, &out.d[i]) || !out.d[i] || out.d[i] > n)
            return PFAIL(p, "a Reshape target_shape holds positive ints and one -1");
        known *= out.d[i];
        if (known > n) break;
    }
    if (infer != DE_JSON_NONE) out.d[infer] = known && n % known == 0 ? n / known : 0;
    if (prod(&out) != n || !n)
        return PFAIL(p, "a Reshape target_shape must hold the input's %llu values",
                     (unsigned long long)n);
    p->cur = out;
    return 0;
}

static int is(const de_json *c, size_t cls, const char *const *names)
{
    for (; *names; names++)
        if (de_json_streq(c, cls, *names)) return 1;
    return 0;
}

int de_plan_build(plan_t *p)
{
    static const char *const acts[] = {"ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", NULL};
    static const char *const drops[] = {"Dropout", "SpatialDropout1D", "GaussianDropout",
                                        "AlphaDropout", "GaussianNoise", NULL};
    static const char *const reshapes[] = {"Flatten", "Reshape", NULL};
    static const char *const merges[] = {"Concatenate", "Add", "Subtract", "Average",
                                         "Multiply", "Maximum", "Minimum", NULL};
    const de_json *c = p->c;
    size_t layers = de_json_get(c, 0, "layers");
    if (layers == DE_JSON_NONE || c->nodes[layers].type != DE_JSON_ARRAY)
        return PFAIL(p, "the model config must be an object with a 'layers' list");
    /* every layer makes at most one stage, plus one identity at the end */
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
            if (shape_of(c, sh == DE_JSON_NONE ? de_json_get(c, cfg, "input_shape") : sh,
                         &p->in_shape))
                return PFAIL(p, "the InputLayer shape must be a list of positive ints");
            p->cur = p->in_shape;
            continue;
        }
        if (index == 0 && !p->in_shape.rank) {
            size_t sh = de_json_get(c, cfg, "input_shape");
            if (sh != DE_JSON_NONE && shape_of(c, sh, &p->in_shape))
                return PFAIL(p, "layers[%zu]: input_shape must be a list of positive ints", i);
            p->cur = p->in_shape;
        }
        if (!p->in_shape.rank) return PFAIL(p, "the model config has no input shape");
        if (de_json_streq(c, cls, "Dense")) rc = add_dense(p, cfg, index);
        else if (de_json_streq(c, cls, "Embedding")) rc = add_embedding(p, cfg, index);
        else if (de_json_streq(c, cls, "GlobalAveragePooling1D")) rc = add_pool(p, cfg, index);
        else if (is(c, cls, reshapes)) rc = add_reshape(p, cls, cfg);
        else if (is(c, cls, drops)) rc = add_dropout(p, cls, cfg, index);
        else if (de_json_streq(c, cls, "Activation"))
            rc = add_activation(p, DE_JSON_NONE, cfg, index);
        else if (is(c, cls, acts)) rc = add_activation(p, cls, cfg, index);
        else if (de_json_streq(c, cls, "BatchNormalization")
                 || de_json_streq(c, cls, "LayerNormalization"))
            rc = add_norm(p, cls, cfg, index);
        else if (is(c, cls, merges))
            return PFAIL(p, "layers[%zu]: a functional model with merged branches "
                         "(Concatenate, Add, ...) is not supported by the C loader "
                         "(a chain of layers is: a Sequential, or a functional model "
                         "whose layers each read the one before)", i);
        else return PFAIL(p, "layers[%zu]: class_name must be InputLayer, Dense, "
                          "Embedding, GlobalAveragePooling1D, Flatten, Reshape, "
                          "Dropout, SpatialDropout1D, GaussianDropout, AlphaDropout, "
                          "GaussianNoise, Activation, ReLU, LeakyReLU, PReLU, ELU, "
                          "Softmax, BatchNormalization or LayerNormalization", i);
        if (rc) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", p->err);
            return PFAIL(p, "layers[%zu]: %s", i, msg);
        }
        index++;
    }
    int weighted = 0;
    for (size_t s = 0; s < p->n_stages; s++)
        weighted |= p->stages[s].op == DE_OP_DENSE || p->stages[s].op == DE_OP_EMBED;
    if (!weighted) return PFAIL(p, "the model needs at least one Dense layer");
    if (p->masked) return PFAIL(p, "an Embedding's mask_zero needs a GlobalAveragePooling1D");
    if (p->cur.rank != 1) return PFAIL(p, "the model's output must be one vector per sample");
    at_shape(p, index ? index - 1 : 0);
    p->n_in = prod(&p->in_shape);
    return 0;
}
