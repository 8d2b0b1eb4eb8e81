/*
 * json.h -- internal: a small, strict JSON reader for the model file's
 * header (no dependencies).  The document is parsed into a flat array of
 * nodes in document order; a container's children follow it, and each
 * node records the index just past its subtree, so lookups walk the array
 * without recursion.  Strings are decoded in place in the document's own
 * copy of the text (decoding never lengthens a string), so a string node
 * is a (start, len) span of UTF-8 bytes that may hold NULs: compare by
 * length, never by NUL termination.
 */
#ifndef DE_JSON_H
#define DE_JSON_H

#include <stddef.h>
#include <stdint.h>

enum { DE_JSON_NULL, DE_JSON_FALSE, DE_JSON_TRUE, DE_JSON_NUMBER,
       DE_JSON_STRING, DE_JSON_ARRAY, DE_JSON_OBJECT };

/* Objects hold their members as key node, value subtree, key, value, ... */
typedef struct {
    int type;
    size_t start, len;  /* string: decoded bytes; number: the token */
    size_t count;       /* array: elements; object: members */
    size_t next;        /* the node after this subtree */
} de_json_node;

typedef struct {
    char *text;
    de_json_node *nodes;
    size_t n_nodes, cap;
} de_json;

#define DE_JSON_NONE ((size_t)-1)

/* Parse text[0, size) (RFC 8259: one value, whitespace around it; no NaN,
 * no trailing commas, UTF-8 only, no lone surrogates, no duplicate keys in
 * any object, nesting at most 64 deep).  Returns 0, or -1 with a message
 * in err ("out of memory" included) and doc left empty.  The root is
 * node 0. */
int de_json_parse(de_json *doc, const char *text, size_t size, char *err,
                  size_t errlen);
void de_json_free(de_json *doc);

/* The value of member `key` of object node `obj`, or DE_JSON_NONE. */
size_t de_json_get(const de_json *d, size_t obj, const char *key);
/* 1 if node is a string equal to s. */
int de_json_streq(const de_json *d, size_t node, const char *s);
/* A non-negative integer token (no sign, fraction or exponent) that fits
 * in uint64_t: 0 and *out set; else -1. */
int de_json_u64(const de_json *d, size_t node, uint64_t *out);
/* Any number token as a double (correctly rounded, locale-independent). */
int de_json_double(const de_json *d, size_t node, double *out);

#endif
