/*
 * de_norm.c -- the C library's side of BatchNormalization and
 * LayerNormalization: their config, and their tensors read and, for BN,
 * folded once at load into the per-column affine map inference runs (the
 * moving statistics are fixed in a loaded model).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "embed/de_norm.h"

static const char *const names[4] = {"gamma", "beta", "moving_mean",
                                     "moving_variance"};

/* cfg[key] as a boolean (dflt when absent); -1 when not a boolean. */
static int flag(const de_json *c, size_t cfg, const char *key, int dflt, int *out)
{
    size_t v = de_json_get(c, cfg, key);
    *out = dflt;
    if (v == DE_JSON_NONE) return 0;
    if (c->nodes[v].type != DE_JSON_TRUE && c->nodes[v].type != DE_JSON_FALSE)
        return -1;
    *out = c->nodes[v].type == DE_JSON_TRUE;
    return 0;
}

/* axis: -1 or 1, or a list holding one of them (a built LayerNorm's). */
static int feature_axis(const de_json *c, size_t cfg)
{
    size_t v = de_json_get(c, cfg, "axis");
    double a;
    if (v == DE_JSON_NONE) return 0;
    if (c->nodes[v].type == DE_JSON_ARRAY) {
        if (c->nodes[v].count != 1) return -1;
        v++;
    }
    return de_json_double(c, v, &a) || (a != -1.0 && a != 1.0) ? -1 : 0;
}

int de_embed_norm_config(const de_json *c, size_t cls, size_t cfg,
                         de_embed_norm_t *nm, char *err, size_t errlen)
{
    int batch = de_json_streq(c, cls, "BatchNormalization"), off;
    const char *what = batch ? "a BatchNormalization" : "a LayerNormalization";
    size_t e = de_json_get(c, cfg, "epsilon");
    double eps = 1e-3;
    memset(nm, 0, sizeof *nm);
    nm->kind = batch ? DE_NORM_BATCH : DE_NORM_LAYER;
    if (feature_axis(c, cfg))
        return snprintf(err, errlen, "%s axis must be -1 (the features)", what), -1;
    if (e != DE_JSON_NONE && (de_json_double(c, e, &eps) || !(eps > 0.0)
                              || !isfinite(eps) || !((float)eps > 0.f)))
        return snprintf(err, errlen, "%s epsilon must be a number > 0", what), -1;
    nm->epsilon = (float)eps;
    if (flag(c, cfg, "center", 1, &nm->center) || flag(c, cfg, "scale", 1, &nm->scale))
        return snprintf(err, errlen, "%s center and scale must be true or false",
                        what), -1;
    if (flag(c, cfg, batch ? "renorm" : "rms_scaling", 0, &off) || off)
        return snprintf(err, errlen, "%s %s must be false", what,
                        batch ? "renorm" : "rms_scaling"), -1;
    return 0;
}

const char *de_embed_norm_tensor(const de_embed_norm_t *nm, int i)
{
    if (i == 0 && !nm->scale) return NULL;
    if (i == 1 && !nm->center) return NULL;
    if (i >= 2 && nm->kind != DE_NORM_BATCH) return NULL;
    return names[i];
}

int de_embed_norm_load(const de_st_file *st, const de_embed_norm_t *nm,
                       size_t n, const de_st_tensor *const *t, float *dst,
                       de_norm_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = nm->kind;
    out->post = nm->post;
    out->epsilon = nm->epsilon;
    if (nm->kind == DE_NORM_LAYER) {
        int rc = DE_OK;
        if (t[0]) rc = de_st_read_f32(st, t[0], out->gamma = dst, err, errlen);
        if (!rc && t[1]) rc = de_st_read_f32(st, t[1], out->beta = dst + n, err, errlen);
        return rc;
    }
    /* BN: the four vectors in a scratch, folded into dst. */
    float *v = malloc(4 * n * sizeof *v + 1);
    if (!v) return snprintf(err, errlen, "out of memory"), DE_ENOMEM;
    int rc = DE_OK;
    for (int i = 0; i < 4 && !rc; i++)
        if (t[i]) rc = de_st_read_f32(st, t[i], v + i * n, err, errlen);
    if (!rc) {
        de_norm_t raw = *out;
        raw.gamma = t[0] ? v : NULL;
        raw.beta = t[1] ? v + n : NULL;
        raw.moving_mean = v + 2 * n;
        raw.moving_var = v + 3 * n;
        de_norm_fold(&raw, 0, n, dst, dst + n);
        out->fold_scale = dst;
        out->fold_shift = dst + n;
    }
    free(v);
    return rc;
}
