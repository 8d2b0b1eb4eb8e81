/*
 * json.c -- the strict JSON reader of json.h.
 *
 * Recursive descent over a private copy of the text with an explicit
 * depth limit, so hostile input can neither overflow the C stack nor make
 * us read past `size`: every read goes through `peek`, which checks the
 * position against the end.  Strings are decoded in place (the write
 * cursor never overtakes the read cursor: an escape is at least as long as
 * what it decodes to).  After parsing, every object's keys are sorted to
 * find duplicates in O(n log n), as Python's reader refuses them too.
 */
#define _GNU_SOURCE  /* strtod_l, newlocale (glibc) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <locale.h>
#include <pthread.h>
#endif
#include "io/json.h"

#define MAX_DEPTH 64

typedef struct {
    de_json *doc;
    char *s;
    size_t pos, size;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *what)
{
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
    return -1;
}

static int peek(const parser *p) { return p->pos < p->size ? (unsigned char)p->s[p->pos] : -1; }

static void skip_ws(parser *p)
{
    int c;
    while ((c = peek(p)) == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
}

static size_t add_node(parser *p, int type)
{
    de_json *d = p->doc;
    if (d->n_nodes == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        void *n = cap > ((size_t)-1) / sizeof *d->nodes ? NULL
                  : realloc(d->nodes, cap * sizeof *d->nodes);
        if (!n) return DE_JSON_NONE;
        d->nodes = n;
        d->cap = cap;
    }
    de_json_node *n = &d->nodes[d->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->start = p->pos;
    return d->n_nodes++;
}

static int literal(parser *p, const char *word, int type)
{
    size_t n = strlen(word);
    if (p->size - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid literal");
    size_t i = add_node(p, type);
    if (i == DE_JSON_NONE) return fail(p, "out of memory");
    p->pos += n;
    p->doc->nodes[i].len = n;
    p->doc->nodes[i].next = i + 1;
    return 0;
}

static int digits(parser *p)
{
    size_t at = p->pos;
    while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    return p->pos > at ? 0 : fail(p, "expected a digit");
}

static int number(parser *p)
{
    size_t i = add_node(p, DE_JSON_NUMBER);
    if (i == DE_JSON_NONE) return fail(p, "out of memory");
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') p->pos++;
    else if (digits(p)) return -1;
    if (peek(p) == '.') {
        p->pos++;
        if (digits(p)) return -1;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (digits(p)) return -1;
    }
    p->doc->nodes[i].len = p->pos - p->doc->nodes[i].start;
    p->doc->nodes[i].next = i + 1;
    return 0;
}

static int hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int c = peek(p);
        if (c >= '0' && c <= '9') v = v * 16 + (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v = v * 16 + (unsigned)(c - 'A' + 10);
        else return fail(p, "invalid \\u escape");
        p->pos++;
    }
    *out = v;
    return 0;
}

/* A \u escape (after the "\u"), a surrogate pair when it takes two. */
static int unicode_escape(parser *p, unsigned *cp)
{
    if (hex4(p, cp)) return -1;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF) return fail(p, "lone low surrogate");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        unsigned lo;
        if (peek(p) != '\\') return fail(p, "lone high surrogate");
        p->pos++;
        if (peek(p) != 'u') return fail(p, "lone high surrogate");
        p->pos++;
        if (hex4(p, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "lone high surrogate");
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at the cursor (lead byte >= 0x80),
 * or 0: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const parser *p)
{
    const unsigned char *s = (const unsigned char *)p->s + p->pos;
    size_t left = p->size - p->pos, n;
    unsigned lo = 0x80, hi = 0xBF;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        if (s[0] == 0xE0) lo = 0xA0;
        if (s[0] == 0xED) hi = 0x9F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        if (s[0] == 0xF0) lo = 0x90;
        if (s[0] == 0xF4) hi = 0x8F;
    } else return 0;
    if (left < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return n;
}

static int string(parser *p, int type)
{
    size_t i = add_node(p, type);
    if (i == DE_JSON_NONE) return fail(p, "out of memory");
    p->pos++;                          /* the opening quote */
    size_t out = p->pos;
    p->doc->nodes[i].start = out;
    for (;;) {
        int c = peek(p);
        if (c < 0) return fail(p, "unterminated string");
        if (c == '"') break;
        if (c < 0x20) return fail(p, "control character in string");
        if (c == '\\') {
            p->pos++;
            int e = peek(p);
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = e > 0 ? strchr(from, e) : NULL;
            if (e == 'u') {
                unsigned cp;
                p->pos++;
                if (unicode_escape(p, &cp)) return -1;
                out += put_utf8(p->s + out, cp);
            } else if (k) {
                p->pos++;
                p->s[out++] = to[k - from];
            } else {
                return fail(p, "invalid escape");
            }
        } else if (c < 0x80) {
            p->s[out++] = p->s[p->pos++];
        } else {
            size_t n = utf8_len(p);
            if (!n) return fail(p, "invalid UTF-8");
            memmove(p->s + out, p->s + p->pos, n);
            out += n;
            p->pos += n;
        }
    }
    p->pos++;                          /* the closing quote */
    p->doc->nodes[i].len = out - p->doc->nodes[i].start;
    p->doc->nodes[i].next = i + 1;
    return 0;
}

static int value(parser *p, int depth);

static int container(parser *p, int depth, int type, char close)
{
    size_t i = add_node(p, type);
    if (i == DE_JSON_NONE) return fail(p, "out of memory");
    if (depth >= MAX_DEPTH) return fail(p, "nesting too deep");
    p->pos++;
    skip_ws(p);
    size_t count = 0;
    if (peek(p) == close) {
        p->pos++;
    } else {
        for (;;) {
            if (type == DE_JSON_OBJECT) {
                if (peek(p) != '"') return fail(p, "expected a string key");
                if (string(p, DE_JSON_STRING)) return -1;
                skip_ws(p);
                if (peek(p) != ':') return fail(p, "expected ':'");
                p->pos++;
                skip_ws(p);
            }
            if (value(p, depth + 1)) return -1;
            count++;
            skip_ws(p);
            int c = peek(p);
            p->pos++;
            if (c == close) break;
            if (c != ',') { p->pos--; return fail(p, "expected ',' or a closing bracket"); }
            skip_ws(p);
        }
    }
    p->doc->nodes[i].count = count;
    p->doc->nodes[i].len = p->pos - p->doc->nodes[i].start;
    p->doc->nodes[i].next = p->doc->n_nodes;
    return 0;
}

static int value(parser *p, int depth)
{
    switch (peek(p)) {
    case '{': return container(p, depth, DE_JSON_OBJECT, '}');
    case '[': return container(p, depth, DE_JSON_ARRAY, ']');
    case '"': return string(p, DE_JSON_STRING);
    case 't': return literal(p, "true", DE_JSON_TRUE);
    case 'f': return literal(p, "false", DE_JSON_FALSE);
    case 'n': return literal(p, "null", DE_JSON_NULL);
    default:
        if (peek(p) == '-' || (peek(p) >= '0' && peek(p) <= '9')) return number(p);
        return fail(p, peek(p) < 0 ? "unexpected end" : "unexpected character");
    }
}

typedef struct { const char *s; size_t len; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* 0 if no object repeats a key; else -1 and the message. */
static int check_duplicates(parser *p)
{
    de_json *d = p->doc;
    span *keys = malloc((d->n_nodes + 1) * sizeof *keys);
    if (!keys) return fail(p, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < d->n_nodes && !rc; i++) {
        if (d->nodes[i].type != DE_JSON_OBJECT || d->nodes[i].count < 2) continue;
        size_t n = 0;
        for (size_t k = i + 1; k < d->nodes[i].next; k = d->nodes[k + 1].next)
            keys[n++] = (span){d->text + d->nodes[k].start, d->nodes[k].len};
        qsort(keys, n, sizeof *keys, span_cmp);
        for (size_t k = 1; k < n; k++)
            if (!span_cmp(&keys[k - 1], &keys[k])) {
                p->pos = d->nodes[i].start;
                rc = fail(p, "repeated key in the object");
                break;
            }
    }
    free(keys);
    return rc;
}

int de_json_parse(de_json *doc, const char *text, size_t size, char *err,
                  size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    doc->text = malloc(size + 1);
    if (!doc->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(doc->text, text, size);
    doc->text[size] = 0;
    parser p = {doc, doc->text, 0, size, err, errlen};
    skip_ws(&p);
    int rc = value(&p, 0);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != size) rc = fail(&p, "trailing characters after the JSON value");
    }
    if (!rc) rc = check_duplicates(&p);
    if (rc) de_json_free(doc);
    return rc;
}

void de_json_free(de_json *doc)
{
    free(doc->text);
    free(doc->nodes);
    memset(doc, 0, sizeof *doc);
}

size_t de_json_get(const de_json *d, size_t obj, const char *key)
{
    if (obj >= d->n_nodes || d->nodes[obj].type != DE_JSON_OBJECT) return DE_JSON_NONE;
    for (size_t k = obj + 1; k < d->nodes[obj].next; k = d->nodes[k + 1].next)
        if (de_json_streq(d, k, key)) return k + 1;
    return DE_JSON_NONE;
}

int de_json_streq(const de_json *d, size_t node, const char *s)
{
    if (node >= d->n_nodes || d->nodes[node].type != DE_JSON_STRING) return 0;
    size_t n = strlen(s);
    return d->nodes[node].len == n && memcmp(d->text + d->nodes[node].start, s, n) == 0;
}

int de_json_u64(const de_json *d, size_t node, uint64_t *out)
{
    if (node >= d->n_nodes || d->nodes[node].type != DE_JSON_NUMBER) return -1;
    const char *s = d->text + d->nodes[node].start;
    uint64_t v = 0;
    for (size_t k = 0; k < d->nodes[node].len; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        unsigned digit = (unsigned)(s[k] - '0');
        if (v > (UINT64_MAX - digit) / 10) return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

#ifdef __GLIBC__
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }
#endif

int de_json_double(const de_json *d, size_t node, double *out)
{
    char buf[128];
    if (node >= d->n_nodes || d->nodes[node].type != DE_JSON_NUMBER
        || d->nodes[node].len >= sizeof buf)
        return -1;
    memcpy(buf, d->text + d->nodes[node].start, d->nodes[node].len);
    buf[d->nodes[node].len] = 0;
    char *end;
    errno = 0;
#ifdef __GLIBC__
    /* The embedding program may have set a locale whose decimal point is
     * not '.'; the file's numbers are always C-locale. */
    pthread_once(&c_locale_once, make_c_locale);
    *out = c_locale ? strtod_l(buf, &end, c_locale) : strtod(buf, &end);
#else
    *out = strtod(buf, &end);
#endif
    return *end == 0 && errno != ERANGE ? 0 : -1;
}
