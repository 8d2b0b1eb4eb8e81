/*
 * de_norm.h -- internal: how the C library reads a BatchNormalization or
 * LayerNormalization layer of a model file (de_norm.c); de_model.c's plan
 * decides where it goes (the rules of _plan.py).
 */
#ifndef DE_EMBED_NORM_H
#define DE_EMBED_NORM_H

#include "engine.h"
#include "io/safetensors.h"

typedef struct {
    int kind;             /* DE_NORM_BATCH or DE_NORM_LAYER; 0: none */
    int post;             /* after the Dense's activation */
    int center, scale;    /* has beta / gamma */
    float epsilon;
    size_t layer;         /* its index among the model's layers */
} de_embed_norm_t;

/* The layer's config (class node cls, config node cfg) with Keras's
 * defaults: axis -1 or 1 (or a list of one of them), epsilon > 0, center
 * and scale booleans, no renorm / rms_scaling.  0, or -1 with err set. */
int de_embed_norm_config(const de_json *c, size_t cls, size_t cfg,
                         de_embed_norm_t *nm, char *err, size_t errlen);

/* The name of the layer's tensor i (0 gamma, 1 beta, 2 moving_mean,
 * 3 moving_variance; float32 [units] each), or NULL when it has none. */
const char *de_embed_norm_tensor(const de_embed_norm_t *nm, int i);

/* Read the tensors t[0..3] (NULL where the layer has none) of a layer of
 * n units into dst (2 n floats of the model's block) and describe it in
 * *out for inference: BN folded once into dst = s, t (de_norm_fold, as
 * Python computes it at every predict), LN's gamma and beta.  0 or a DE_E*
 * code with err set. */
int de_embed_norm_load(const de_st_file *st, const de_embed_norm_t *nm,
                       size_t n, const de_st_tensor *const *t, float *dst,
                       de_norm_t *out, char *err, size_t errlen);

#endif
