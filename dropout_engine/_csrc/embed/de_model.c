/*
 * de_model.c -- the embedding API of dropout_engine.h: load a file that
 * model.save wrote, predict with the engine's kernels.
 *
 * The file's metadata holds the Sequential config (JSON inside a JSON
 * string), or a functional model's whose layers form a chain (they come in
 * chain order; one with merged branches is refused), turned into the
 * engine's layers by model_plan.c (the rules of
 * dropout_engine/_plan.py, mirrored so that C runs exactly the network
 * Python runs: same de_net_predict, same chunking, so the same bits; a
 * BatchNormalization or LayerNormalization joins the Dense before it,
 * parsed and loaded by de_norm.c, BN folded once into an affine map per
 * column).
 * Weights must be exactly "weights/<layer index>/kernel|bias" (float32,
 * Keras shapes [in, units] and [units]) for every Dense,
 * "weights/<index>/embeddings" [input_dim, output_dim] for an Embedding,
 * "weights/<index>/alpha" [units] for a PReLU,
 * "weights/<index>/gamma|beta|moving_mean|moving_variance" for a norm, and
 * nothing else outside "optimizer/": the same check Python's load_model
 * makes.  A Dense of
 * dtype "int8_from_float32" (model.quantize("int8")) has instead an I8
 * kernel [in, units] and a float32 kernel_scale [units] (plus the bias),
 * which are packed here as quantization.Int8Kernel.repack packs them, so
 * that de_qdense_forward runs on the same bytes as in Python.  A Dense of
 * dtype "bfloat16_from_float32" (model.quantize("bfloat16")) has a BF16
 * kernel [in, units], kept as its bits (de_gemm_wbf16 reads them as Python's
 * predict does).  All of a
 * model's arrays live in one 64-byte aligned block; the int8 ones each
 * start on a 64-byte boundary, as Python's.  Inputs are a sample's values
 * flattened (an image model takes [rows, 28 * 28]); an Embedding model's
 * are its token ids as floats, each checked at predict.
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
#include "embed/model_plan.h"

#define PREDICT_CHUNK 1024  /* Python's model.predict chunk */
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

/* --------------------------------------------------------------- loading */

enum { F32 = 0, I8 = 1, BF16 = 2 };   /* find_weight's dtypes */

/* Tensor "weights/<layer>/<what>" of dtype `kind` (F32, I8 or BF16) and
 * shape [d0] (d1 == 0) or [d0, d1]; NULL with the message in err when it is
 * not. */
static const de_st_tensor *find_weight(const de_st_file *st, size_t layer,
                                       const char *what, int kind, uint64_t d0,
                                       uint64_t d1, char *err, size_t errlen)
{
    static const char *const names[] = {"float32", "int8", "bfloat16"};
    char name[64], dims[48];
    size_t ndim = d1 ? 2 : 1;
    snprintf(name, sizeof name, "weights/%zu/%s", layer, what);
    const de_st_tensor *t = de_st_find(st, name);
    int is = kind == I8 ? t && t->is_i8 : kind == BF16 ? t && t->is_bf16 : t && t->is_f32;
    if (t && is && t->ndim == ndim && t->shape[0] == d0
        && (ndim < 2 || t->shape[1] == d1))
        return t;
    if (d1) snprintf(dims, sizeof dims, "%llu, %llu", (unsigned long long)d0,
                     (unsigned long long)d1);
    else snprintf(dims, sizeof dims, "%llu", (unsigned long long)d0);
    snprintf(err, errlen, "tensor '%s' must be %s [%s]%s", name, names[kind],
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
    size_t off = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        const stage_t *S = &p->stages[s];
        size_t units = (size_t)S->units, dim = (size_t)S->n_in;
        if (S->op == DE_OP_EMBED) {
            at[s].w = off;
            off += (size_t)S->vocab * units * sizeof(float);
        } else if (S->op != DE_OP_DENSE) {
            /* no kernel */
        } else if (S->int8) {
            size_t cols = (units + DE_Q_PANEL - 1) / DE_Q_PANEL * DE_Q_PANEL;
            at[s].qw = off = up64(off);
            off += (dim + 3) / 4 * 4 * cols;
            at[s].corr = off;
            off += cols * sizeof(int32_t);
            at[s].scale = off;
            off += cols * sizeof(float);
        } else if (S->bf16) {
            at[s].w = off = up64(off);
            off += up64(dim * units * sizeof(uint16_t));
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
    }
    return off;
}

/* Find stage s's kernel (an Embedding's table), bias, (int8) kernel_scale,
 * (PReLU) alpha and norm tensors (w[PER_STAGE s ..], de_embed_norm_tensor's
 * order from + 4) with the dtypes and shapes the plan implies; no other
 * tensor may sit outside "optimizer/". */
static int match_weights(const plan_t *p, const de_st_file *st,
                         const de_st_tensor **w, char *err, size_t errlen)
{
    size_t n_expected = 0, n_own = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        const stage_t *S = &p->stages[s];
        const de_st_tensor **t = w + PER_STAGE * s;
        uint64_t dim = S->n_in;
        int prelu = S->act.kind == DE_PRELU;
        if (S->op != DE_OP_DENSE) {
            if ((S->op == DE_OP_EMBED
                 && !(t[0] = find_weight(st, S->layer, "embeddings", 0, S->vocab,
                                         S->units, err, errlen)))
                || (prelu && !(t[3] = find_weight(st, S->prelu, "alpha", 0, S->units,
                                                  0, err, errlen))))
                return DE_EFORMAT;
            n_expected += (size_t)(S->op == DE_OP_EMBED) + (size_t)prelu;
            continue;
        }
        if (S->int8 && dim > Q_MAX_INPUTS)
            return snprintf(err, errlen, "layer %zu: int8 quantization supports at most "
                            "%d inputs, the layer has %llu", S->layer, Q_MAX_INPUTS,
                            (unsigned long long)dim), DE_EFORMAT;
        if (!(t[0] = find_weight(st, S->layer, "kernel", S->int8 ? I8 : S->bf16 ? BF16 : F32,
                                 dim, S->units, err, errlen))
            || (S->use_bias && !(t[1] = find_weight(st, S->layer, "bias", 0, S->units, 0,
                                                    err, errlen)))
            || (S->int8 && !(t[2] = find_weight(st, S->layer, "kernel_scale", 0, S->units,
                                                0, err, errlen)))
            || (S->act.kind == DE_PRELU
                && !(t[3] = find_weight(st, S->prelu, "alpha", 0, S->units, 0, err,
                                        errlen))))
            return DE_EFORMAT;
        n_expected += 1 + (size_t)S->use_bias + (size_t)S->int8 + (size_t)prelu;
        for (int i = 0; S->norm.kind && i < 4; i++) {
            const char *name = de_embed_norm_tensor(&S->norm, i);
            if (!name) continue;
            if (!(t[4 + i] = find_weight(st, S->norm.layer, name, 0, S->units, 0, err,
                                         errlen)))
                return DE_EFORMAT;
            n_expected++;
        }
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
    if (S->op == DE_OP_EMBED) {
        L->w = (const float *)(block + at->w);
        rc = de_st_read_f32(st, t[0], (float *)(block + at->w), err, errlen);
    } else if (S->op != DE_OP_DENSE) {
        /* no kernel */
    } else if (S->int8) {
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
    } else if (S->bf16) {
        L->bw = (const uint16_t *)(block + at->w);
        rc = de_st_read_bf16(st, t[0], (uint16_t *)(block + at->w), err, errlen);
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
    plan_t p;
    memset(&p, 0, sizeof p);
    p.c = &c;
    p.err = err;
    p.errlen = errlen;
    int rc = de_plan_build(&p);
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
        L->op = S->op;
        L->n_in = (size_t)S->n_in;
        L->n_out = (size_t)S->units;
        L->steps = (size_t)de_plan_rows(S);
        L->pool_steps = (size_t)S->pool_steps;
        L->vocab = (size_t)S->vocab;
        L->pool = S->pool;
        L->mask_zero = S->mask_zero;
        L->act = S->act;
        L->rate = S->drop.rate;
        L->inverted = S->drop.inverted;
        L->noise = S->drop.noise;
        rc = read_stage(st, S, w + PER_STAGE * s, &at[s], m->weights, L, err, errlen);
    }
    if (!rc && de_layers_check((size_t)p.n_in, p.n_stages, layers))
        rc = (snprintf(err, errlen, "the layers do not chain"), DE_EFORMAT);
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
    if (rc == DE_EINVAL)   /* the one input check inside: an Embedding's ids */
        return set_error(rc, "de_model_predict: x holds a token id that is not an "
                         "integer in [0, input_dim) of the model's Embedding");
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
