/*
 * model_plan.h -- internal: the Sequential config of a model file turned
 * into the engine's layers, by the rules of dropout_engine/_plan.py (see
 * model_plan.c), for de_model.c to load the weights into.
 */
#ifndef DE_MODEL_PLAN_H
#define DE_MODEL_PLAN_H

#include "engine.h"
#include "io/json.h"
#include "embed/de_norm.h"

#define DE_PLAN_MAX_RANK 8     /* axes of a per-sample shape */
#define DE_PLAN_MAX_UNITS ((uint64_t)1 << 31)

typedef struct {
    size_t rank;
    uint64_t d[DE_PLAN_MAX_RANK];
} shape_t;

/* A dropout site: combined rate, scaling rule, and what it holds. */
typedef struct {
    double rate;
    int inverted, used;
    int noise;               /* DE_NOISE_*: a noise layer's site */
    int bcast;               /* a Dropout with a broadcast noise_shape */
} drop_t;

/* One engine layer: op, geometry, activation, site, and where its
 * weights are ("weights/<layer>/..."). */
typedef struct {
    int op;                  /* DE_OP_* */
    size_t layer;            /* the model layer owning the weights */
    size_t prelu;            /* the PReLU layer's index (act.kind DE_PRELU) */
    uint64_t units, n_in;    /* n_out; the op's input width (ids for EMBED) */
    uint64_t vocab;          /* EMBED */
    shape_t shape;           /* the output's per-sample shape */
    int use_bias, int8, bf16, pool, mask_zero;
    uint64_t pool_steps;
    de_act_t act;
    drop_t drop;
    de_embed_norm_t norm;    /* kind 0: none (only a Dense's, de_norm.c) */
} stage_t;

typedef struct {
    const de_json *c;
    stage_t *stages;
    size_t n_stages;
    drop_t in_drop;
    shape_t in_shape, cur;   /* the input's, the values' here */
    uint64_t n_in;           /* values per sample of the input */
    int masked;              /* an Embedding's mask_zero is in flight */
    char *err;
    size_t errlen;
} plan_t;

/* Rows per sample of a stage's output. */
uint64_t de_plan_rows(const stage_t *s);

/* Walk the Sequential config (node 0 of p->c, p->err set) into p;
 * p->stages is the caller's to free.  0, or DE_EFORMAT / DE_ENOMEM with
 * the message in p->err. */
int de_plan_build(plan_t *p);

#endif
