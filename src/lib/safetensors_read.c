/* safetensors_read.c -- open a safetensors file and validate all of it.
 *
 * (Over 600 lines on purpose: it is one parser, and every rule below has its
 * own check and its own one-line message; splitting it would scatter the
 * order of the checks, which is part of its contract.)
 *
 * Order of the checks (the first broken rule is the one reported):
 *  1. the length prefix: 8 bytes present, N <= MXV_ST_MAX_HEADER, N bytes
 *     present;
 *  2. the header text: starts with '{', parses as JSON (cJSON, bounded by N)
 *     with nothing but whitespace after the object, is UTF-8, has no raw
 *     control byte inside a string and no \u0000 escape;
 *  3. each entry, in header order: __metadata__ is an object of strings;
 *     a tensor is an object of exactly dtype, shape, data_offsets; dtype is
 *     known; shape and offsets are integer literals < 2^53 (read from the
 *     literal's text, see below); the byte size is computed without
 *     overflow and equals end - begin; end is inside the data section;
 *  4. names and metadata keys are unique;
 *  5. sorted by (begin, end), the tensors tile the data section: each
 *     begins where the previous ended (else overlap or gap), the last ends
 *     at the end of the file.
 *
 * Integers.  cJSON stores a number as a double (rounded: 2^53 + 1 reads as
 * 2^53) and an int (saturated), and accepts forms JSON does not ("01",
 * "1."), so neither is trusted.  After parsing, a second pass over the text
 * finds every number literal in document order (outside strings, a '-' or
 * digit starts one and it runs over [0-9+-eE.], as in cJSON), and a walk of
 * the tree in document order pairs the i-th number node with the i-th
 * literal (the node's valueint is replaced by the literal's index).  A
 * shape entry or offset is then accepted only when its literal is 0 or
 * [1-9][0-9]* with a value below 2^53.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "safetensors.h"
#include "safetensors_int.h"

struct mxv_st_file {
    char *path;
    const unsigned char *bytes; /* whole file */
    size_t size;
    void *map;                  /* mmap'ed region, or NULL */
    size_t ntensors;
    mxv_st_tensor *tensors;     /* by (offset, end, name) */
    const mxv_st_tensor **byname; /* the tensors, by name */
    size_t nmeta;
    char **mkey, **mval;        /* by key */
    size_t ncopies;
    void **copies;              /* aligned copies of misaligned tensors */
};

typedef struct {
    const char *label;
    mxv_st_err *err;
    const unsigned char *hdr;
    size_t hlen;
    uint64_t datasize;
    size_t ntok, captok;
    size_t *tokoff;             /* number literals: offset into hdr */
    size_t *toklen;             /*                  and length */
} ctx;

/* One tensor entry while validating. */
typedef struct {
    mxv_st_tensor t;
    const char *name;           /* the tree's string */
    uint64_t end;
} entry;

/* ---- header text ------------------------------------------------------ */

static int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static const char *jtype(const cJSON *x)
{
    if (cJSON_IsString(x))
        return "a string";
    if (cJSON_IsNumber(x))
        return "a number";
    if (cJSON_IsArray(x))
        return "an array";
    if (cJSON_IsObject(x))
        return "an object";
    if (cJSON_IsBool(x))
        return "a boolean";
    if (cJSON_IsNull(x))
        return "null";
    return "not a JSON value";
}

static mxv_st_status push_token(ctx *c, size_t off, size_t len)
{
    if (c->ntok == c->captok) {
        size_t cap = c->captok ? 2 * c->captok : 64;
        size_t *o = realloc(c->tokoff, cap * sizeof *o);
        if (!o)
            return MXV_ST_ENOMEM;
        c->tokoff = o;
        size_t *l = realloc(c->toklen, cap * sizeof *l);
        if (!l)
            return MXV_ST_ENOMEM;
        c->toklen = l;
        c->captok = cap;
    }
    c->tokoff[c->ntok] = off;
    c->toklen[c->ntok] = len;
    c->ntok++;
    return MXV_ST_OK;
}

/* Reports a bad string found by scan_text at header byte pos: inside the
 * key of top-level entry k (in_key) or elsewhere in that entry. */
static mxv_st_status bad_string(ctx *c, const cJSON *root, size_t k,
                                int in_key, size_t pos, const char *what)
{
    const cJSON *x = root->child;
    for (size_t i = 0; x && i < k; i++)
        x = x->next;
    if (!x)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                            "header byte %zu: %s", pos, what);
    if (!strcmp(x->string, "__metadata__") && !in_key)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                            "__metadata__: a key or value %s (header byte "
                            "%zu)",
                            what, pos);
    return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, x->string,
                        "%s %s (header byte %zu)",
                        in_key ? "name" : "a string in the entry", what, pos);
}

/* Pass 2 over a header cJSON accepted: the checks cJSON does not make on
 * strings (UTF-8, raw control bytes, \u0000, which would cut a C string
 * short), and the number literals.  Strings are blamed on the top-level
 * entry they sit in: a key at depth 1 starts entry k, the k-th child of
 * root, as both follow document order. */
static mxv_st_status scan_text(ctx *c, const cJSON *root)
{
    const unsigned char *h = c->hdr;
    size_t n = c->hlen, depth = 0, entry = 0, nkeys = 0;
    int expect_key = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = h[i];
        if (ch == '{' || ch == '[') {
            depth++;
            expect_key = depth == 1 && ch == '{';
            i++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            i++;
        } else if (ch == ',') {
            expect_key = depth == 1;
            i++;
        } else if (ch == '"') {
            int is_key = expect_key;
            expect_key = 0;
            if (is_key)
                entry = nkeys++;
            size_t j = i + 1, bad;
            for (; j < n && h[j] != '"'; j++) {
                if (h[j] < 0x20)
                    return bad_string(c, root, entry, is_key, j,
                                      "holds a raw control character");
                if (h[j] == '\\') {
                    if (j + 5 < n && h[j + 1] == 'u' &&
                        !memcmp(h + j + 2, "0000", 4))
                        return bad_string(c, root, entry, is_key, j,
                                          "holds \\u0000 (NUL), which "
                                          "mxverify cannot represent");
                    j++;
                }
            }
            if (!mxv_st__utf8_ok(h + i + 1, j - i - 1, &bad))
                return bad_string(c, root, entry, is_key, i + 1 + bad,
                                  "is not valid UTF-8");
            i = j + 1;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            /* The literal is the whole run of number characters: had
             * strtod stopped inside it, the rest would follow the value
             * and cJSON would have refused the header. */
            size_t k = 1;
            while (i + k < n && h[i + k] &&
                   strchr("0123456789+-eE.", h[i + k]))
                k++;
            if (push_token(c, i, k) != MXV_ST_OK)
                return MXV_ST_ENOMEM;
            i += k;
        } else {
            i++;
        }
    }
    return MXV_ST_OK;
}

/* Numbers the number nodes in document order; returns the next index. */
static size_t number_nodes(cJSON *x, size_t k)
{
    for (; x; x = x->next) {
        if (cJSON_IsNumber(x))
            x->valueint = (int)k++;
        else if (x->child)
            k = number_nodes(x->child, k);
    }
    return k;
}

/* Reads an integer field ("shape[1]", "data_offsets[0]") of tensor. */
static mxv_st_status read_int(ctx *c, const cJSON *x, const char *tensor,
                              const char *field, uint64_t *out)
{
    if (!cJSON_IsNumber(x))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, tensor,
                            "%s is %s, not an integer", field, jtype(x));
    size_t k = (size_t)x->valueint;
    const char *s = (const char *)c->hdr + c->tokoff[k];
    size_t len = c->toklen[k];
    int plain = len >= 1 && (len == 1 || s[0] != '0');
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            plain = 0;
    int shown = len > 40 ? 40 : (int)len; /* of a literal in a message */
    const char *more = len > 40 ? "..." : "";
    if (!plain)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, tensor,
                            "%s is %.*s%s, not a non-negative integer", field,
                            shown, s, more);
    uint64_t v = 0;
    for (size_t i = 0; i < len && v <= MXV_ST_MAX_INT; i++)
        v = 10 * v + (uint64_t)(s[i] - '0');
    if (len > 16 || v > MXV_ST_MAX_INT)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, tensor,
                            "%s is %.*s%s, above the limit 2^53 - 1", field,
                            shown, s, more);
    *out = v;
    return MXV_ST_OK;
}

/* ---- entries ---------------------------------------------------------- */

static mxv_st_status read_tensor(ctx *c, const cJSON *x, entry *e)
{
    const char *name = x->string;
    const cJSON *fd = NULL, *fs = NULL, *fo = NULL;
    mxv_st_status st;
    char field[48];

    if (!cJSON_IsObject(x))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "entry is %s, not an object with dtype, shape "
                            "and data_offsets",
                            jtype(x));
    for (const cJSON *f = x->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &fd
                             : !strcmp(f->string, "shape")        ? &fs
                             : !strcmp(f->string, "data_offsets") ? &fo
                                                                  : NULL;
        if (!slot) {
            char q[128];
            mxv_st__quote(q, sizeof q, f->string);
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                                "unknown field %s (a tensor has dtype, "
                                "shape and data_offsets)",
                                q);
        }
        if (*slot)
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                                "field %s appears twice", f->string);
        *slot = f;
    }
    if (!fd || !fs || !fo)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "missing field %s",
                            !fd ? "dtype" : !fs ? "shape" : "data_offsets");

    mxv_st_tensor *t = &e->t;
    memset(e, 0, sizeof *e);
    e->name = name;
    if (!cJSON_IsString(fd))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "dtype is %s, not a string", jtype(fd));
    if (mxv_st_dtype_by_name(fd->valuestring, &t->dtype) != 0) {
        char q[128];
        mxv_st__quote(q, sizeof q, fd->valuestring);
        return mxv_st__fail(
            c->err, MXV_ST_EFORMAT, c->label, name,
            "dtype %s is not supported (mxverify reads F64 F32 F16 BF16 I64 "
            "I32 I8 U8 F8_E4M3 F8_E4M3FNUZ F8_E5M2 F8_E5M2FNUZ F8_E8M0)",
            q);
    }

    if (!cJSON_IsArray(fs))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "shape is %s, not an array", jtype(fs));
    int rank = cJSON_GetArraySize(fs);
    if (rank > MXV_ST_MAX_RANK)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "shape has rank %d, above the limit %d", rank,
                            MXV_ST_MAX_RANK);
    t->rank = rank;
    int i = 0, zero = 0;
    for (const cJSON *d = fs->child; d; d = d->next, i++) {
        snprintf(field, sizeof field, "shape[%d]", i);
        if ((st = read_int(c, d, name, field, &t->shape[i])) != MXV_ST_OK)
            return st;
        zero |= t->shape[i] == 0;
    }
    /* The element and byte counts, refusing anything at or above 2^53;
     * a zero anywhere makes the product 0 whatever the other sizes. */
    size_t esize = mxv_st_dtype_size(t->dtype);
    uint64_t numel = zero ? 0 : 1, limit = MXV_ST_MAX_INT / esize;
    for (i = 0; i < rank && !zero; i++) {
        if (numel > limit / t->shape[i]) {
            char sh[256];
            mxv_st__fmt_shape(sh, sizeof sh, rank, t->shape);
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                                "shape %s of dtype %s holds more than "
                                "2^53 - 1 bytes",
                                sh, mxv_st_dtype_name(t->dtype));
        }
        numel *= t->shape[i];
    }
    t->numel = numel;
    t->nbytes = numel * esize;

    if (!cJSON_IsArray(fo))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "data_offsets is %s, not an array [begin, end]",
                            jtype(fo));
    int no = cJSON_GetArraySize(fo);
    if (no != 2)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "data_offsets has %d element%s, expected "
                            "[begin, end]",
                            no, no == 1 ? "" : "s");
    uint64_t b, en;
    if ((st = read_int(c, fo->child, name, "data_offsets[0]", &b)) != 0 ||
        (st = read_int(c, fo->child->next, name, "data_offsets[1]", &en)) !=
            0)
        return st;
    if (b > en)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "data_offsets [%llu, %llu] end before they begin",
                            (unsigned long long)b, (unsigned long long)en);
    if (en > c->datasize)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "data_offsets [%llu, %llu] run past the end of "
                            "the data section (%llu bytes)",
                            (unsigned long long)b, (unsigned long long)en,
                            (unsigned long long)c->datasize);
    if (en - b != t->nbytes) {
        char sh[256];
        mxv_st__fmt_shape(sh, sizeof sh, rank, t->shape);
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, name,
                            "data_offsets [%llu, %llu] do not match shape %s "
                            "of dtype %s (%llu bytes)",
                            (unsigned long long)b, (unsigned long long)en, sh,
                            mxv_st_dtype_name(t->dtype),
                            (unsigned long long)t->nbytes);
    }
    t->offset = b;
    e->end = en;
    return MXV_ST_OK;
}

typedef struct {
    const char *key, *value;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const pair *)a)->key, ((const pair *)b)->key);
}

static mxv_st_status read_metadata(ctx *c, const cJSON *x, pair **out,
                                   size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (cJSON_IsNull(x)) /* the Python library writes and reads it so */
        return MXV_ST_OK;
    if (!cJSON_IsObject(x))
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                            "__metadata__ is %s, not an object of strings",
                            jtype(x));
    size_t n = (size_t)cJSON_GetArraySize(x), i = 0;
    pair *p = calloc(n ? n : 1, sizeof *p);
    if (!p)
        return MXV_ST_ENOMEM;
    for (const cJSON *m = x->child; m; m = m->next, i++) {
        if (!cJSON_IsString(m)) {
            char q[128];
            mxv_st__quote(q, sizeof q, m->string);
            free(p);
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                                "__metadata__ %s: value is %s, not a string",
                                q, jtype(m));
        }
        p[i].key = m->string;
        p[i].value = m->valuestring;
    }
    qsort(p, n, sizeof *p, cmp_pair);
    for (i = 1; i < n; i++)
        if (!strcmp(p[i].key, p[i - 1].key)) {
            char q[128];
            mxv_st__quote(q, sizeof q, p[i].key);
            free(p);
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                                "__metadata__ %s: key appears twice", q);
        }
    *out = p;
    *nout = n;
    return MXV_ST_OK;
}

static int cmp_by_name(const void *a, const void *b)
{
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    if (x->t.offset != y->t.offset)
        return x->t.offset < y->t.offset ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Names unique, then the tiling of the data section. */
static mxv_st_status check_layout(ctx *c, entry **v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_by_name);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(v[i]->name, v[i - 1]->name))
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, v[i]->name,
                                "name appears twice in the header");
    qsort(v, n, sizeof *v, cmp_by_offset);
    uint64_t covered = 0;
    const entry *last = NULL; /* the non-empty tensor ending at covered */
    for (size_t i = 0; i < n; i++) {
        const entry *e = v[i];
        uint64_t b = e->t.offset;
        if (b < covered) {
            char q[128];
            mxv_st__quote(q, sizeof q, last->name);
            return mxv_st__fail(
                c->err, MXV_ST_EFORMAT, c->label, e->name,
                "data_offsets [%llu, %llu] %s tensor %s [%llu, %llu]",
                (unsigned long long)b, (unsigned long long)e->end,
                e->t.nbytes ? "overlap" : "lie inside", q,
                (unsigned long long)last->t.offset,
                (unsigned long long)last->end);
        }
        if (b > covered)
            return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, e->name,
                                "data_offsets [%llu, %llu] leave bytes "
                                "[%llu, %llu) of the data section to no "
                                "tensor (tensors must tile it)",
                                (unsigned long long)b,
                                (unsigned long long)e->end,
                                (unsigned long long)covered,
                                (unsigned long long)b);
        if (e->t.nbytes) {
            covered = e->end;
            last = e;
        }
    }
    if (covered != c->datasize)
        return mxv_st__fail(c->err, MXV_ST_EFORMAT, c->label, NULL,
                            "the tensors cover bytes [0, %llu) of the data "
                            "section, but it holds %llu bytes (the rest "
                            "belongs to no tensor)",
                            (unsigned long long)covered,
                            (unsigned long long)c->datasize);
    return MXV_ST_OK;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int cmp_tensor_ptr(const void *a, const void *b)
{
    const mxv_st_tensor *x = *(const mxv_st_tensor *const *)a;
    const mxv_st_tensor *y = *(const mxv_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Copies the validated entries and metadata into f. */
static mxv_st_status build(ctx *c, mxv_st_file *f, entry **v, size_t n,
                           pair *meta, size_t nmeta)
{
    const unsigned char *data = f->bytes + 8 + c->hlen;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->byname = calloc(n ? n : 1, sizeof *f->byname);
    f->copies = calloc(n ? n : 1, sizeof *f->copies);
    f->mkey = calloc(nmeta ? nmeta : 1, sizeof *f->mkey);
    f->mval = calloc(nmeta ? nmeta : 1, sizeof *f->mval);
    if (!f->tensors || !f->byname || !f->copies || !f->mkey || !f->mval)
        return MXV_ST_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        mxv_st_tensor *t = &f->tensors[i];
        *t = v[i]->t;
        t->name = dup_str(v[i]->name);
        f->ntensors = i + 1;
        if (!t->name)
            return MXV_ST_ENOMEM;
        const unsigned char *p = data + t->offset;
        size_t esize = mxv_st_dtype_size(t->dtype);
        if (t->nbytes && (uintptr_t)p % esize != 0) {
            void *copy = malloc(t->nbytes); /* malloc aligns for 8 bytes */
            if (!copy)
                return MXV_ST_ENOMEM;
            memcpy(copy, p, t->nbytes);
            f->copies[f->ncopies++] = copy;
            p = copy;
        }
        t->data = p;
        f->byname[i] = t;
    }
    qsort(f->byname, n, sizeof *f->byname, cmp_tensor_ptr);
    for (size_t i = 0; i < nmeta; i++) {
        f->mkey[i] = dup_str(meta[i].key);
        f->mval[i] = dup_str(meta[i].value);
        f->nmeta = i + 1;
        if (!f->mkey[i] || !f->mval[i])
            return MXV_ST_ENOMEM;
    }
    return MXV_ST_OK;
}

static mxv_st_status parse(mxv_st_file *f, mxv_st_err *err)
{
    ctx c = {.label = f->path, .err = err};
    const unsigned char *b = f->bytes;
    if (f->size == 0)
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "file is empty (a safetensors file starts with "
                            "an 8-byte header length)");
    if (f->size < 8)
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "file is %zu bytes, too short for the 8-byte "
                            "header length",
                            f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n > MXV_ST_MAX_HEADER)
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "header length %llu is above the limit of %u "
                            "bytes (not a safetensors file?)",
                            (unsigned long long)n, MXV_ST_MAX_HEADER);
    if (n > f->size - 8)
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "header length %llu runs past the end of the "
                            "file (%zu bytes; truncated?)",
                            (unsigned long long)n, f->size);
    c.hdr = b + 8;
    c.hlen = (size_t)n;
    c.datasize = f->size - 8 - n;

    size_t first = 0;
    while (first < c.hlen && is_ws(c.hdr[first]))
        first++;
    if (first == c.hlen)
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "header is empty (%zu bytes of whitespace), not "
                            "a JSON object",
                            c.hlen);
    if (c.hdr[first] != '{')
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "header starts with byte 0x%02X, not a JSON "
                            "object",
                            c.hdr[first]);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)c.hdr, c.hlen, &end,
                                            0);
    if (!root) {
        size_t at = end ? (size_t)(end - (const char *)c.hdr) : 0;
        return mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                            "header is not valid JSON (error near header "
                            "byte %zu of %zu)",
                            at, c.hlen);
    }
    mxv_st_status st = MXV_ST_OK;
    entry *ents = NULL, **v = NULL;
    pair *meta = NULL;
    size_t nmeta = 0, nt = 0;
    for (size_t i = (size_t)(end - (const char *)c.hdr); i < c.hlen; i++)
        if (!is_ws(c.hdr[i])) {
            st = mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                              "header has bytes after the JSON object "
                              "(header byte %zu)",
                              i);
            goto out;
        }
    if (!cJSON_IsObject(root)) { /* cannot happen after the '{' check */
        st = mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                          "header is %s, not an object", jtype(root));
        goto out;
    }
    if ((st = scan_text(&c, root)) != MXV_ST_OK)
        goto out;
    if (number_nodes(root->child, 0) != c.ntok) {
        st = mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                          "header: number literals could not be matched to "
                          "the parsed values");
        goto out;
    }

    size_t count = (size_t)cJSON_GetArraySize(root);
    ents = calloc(count ? count : 1, sizeof *ents);
    v = calloc(count ? count : 1, sizeof *v);
    if (!ents || !v) {
        st = MXV_ST_ENOMEM;
        goto out;
    }
    int seen_meta = 0;
    for (const cJSON *x = root->child; x; x = x->next) {
        if (!strcmp(x->string, "__metadata__")) {
            if (seen_meta++) {
                st = mxv_st__fail(err, MXV_ST_EFORMAT, f->path, NULL,
                                  "__metadata__ appears twice");
                goto out;
            }
            if ((st = read_metadata(&c, x, &meta, &nmeta)) != MXV_ST_OK)
                goto out;
            continue;
        }
        if ((st = read_tensor(&c, x, &ents[nt])) != MXV_ST_OK)
            goto out;
        v[nt] = &ents[nt];
        nt++;
    }
    if ((st = check_layout(&c, v, nt)) != MXV_ST_OK)
        goto out;
    st = build(&c, f, v, nt, meta, nmeta);
out:
    if (st == MXV_ST_ENOMEM)
        mxv_st__fail(err, st, f->path, NULL, "out of memory reading header");
    free(meta);
    free(v);
    free(ents);
    free(c.tokoff);
    free(c.toklen);
    cJSON_Delete(root);
    return st;
}

/* ---- public ----------------------------------------------------------- */

static mxv_st_file *new_file(const char *path)
{
    mxv_st_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = dup_str(path ? path : "(buffer)");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

static mxv_st_status finish(mxv_st_file *f, mxv_st_file **out,
                            mxv_st_err *err)
{
    mxv_st_status st = parse(f, err);
    if (st != MXV_ST_OK) {
        mxv_st_close(f);
        *out = NULL;
        return st;
    }
    if (err)
        err->msg[0] = '\0';
    *out = f;
    return MXV_ST_OK;
}

mxv_st_status mxv_st_open_buffer(const void *buf, size_t len,
                                 const char *label, mxv_st_file **out,
                                 mxv_st_err *err)
{
    mxv_st_file *f = new_file(label);
    *out = NULL;
    if (!f)
        return mxv_st__fail(err, MXV_ST_ENOMEM, label, NULL,
                            "out of memory");
    f->bytes = buf;
    f->size = len;
    return finish(f, out, err);
}

mxv_st_status mxv_st_open(const char *path, mxv_st_file **out,
                          mxv_st_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
    if (fd < 0)
        return mxv_st__fail(err, MXV_ST_EOPEN, path, NULL,
                            "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return mxv_st__fail(err, MXV_ST_EOPEN, path, NULL, "cannot stat: %s",
                            strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mxv_st__fail(err, MXV_ST_EOPEN, path, NULL,
                            "%s, not a regular file",
                            S_ISDIR(sb.st_mode) ? "is a directory"
                                                : "is a device or pipe");
    }
    mxv_st_file *f = new_file(path);
    if (!f) {
        close(fd);
        return mxv_st__fail(err, MXV_ST_ENOMEM, path, NULL, "out of memory");
    }
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            mxv_st_close(f);
            return mxv_st__fail(err, MXV_ST_EIO, path, NULL,
                                "cannot map %llu bytes: %s",
                                (unsigned long long)sb.st_size, strerror(e));
        }
        f->map = m;
        f->bytes = m;
    } else {
        f->bytes = (const unsigned char *)"";
    }
    close(fd);
    return finish(f, out, err);
}

void mxv_st_close(mxv_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ntensors; i++)
        free((char *)f->tensors[i].name);
    for (size_t i = 0; i < f->ncopies; i++)
        free(f->copies[i]);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->mkey[i]);
        free(f->mval[i]);
    }
    free(f->tensors);
    free(f->byname);
    free(f->copies);
    free(f->mkey);
    free(f->mval);
    if (f->map)
        munmap(f->map, f->size);
    free(f->path);
    free(f);
}

const char *mxv_st_path(const mxv_st_file *f)
{
    return f->path;
}

size_t mxv_st_count(const mxv_st_file *f)
{
    return f->ntensors;
}

const mxv_st_tensor *mxv_st_tensor_at(const mxv_st_file *f, size_t i)
{
    return i < f->ntensors ? &f->tensors[i] : NULL;
}

const mxv_st_tensor *mxv_st_find(const mxv_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->ntensors;
    if (!name)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mxv_st_tensor *t = f->byname[mid];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t mxv_st_meta_count(const mxv_st_file *f)
{
    return f->nmeta;
}

int mxv_st_meta_at(const mxv_st_file *f, size_t i, const char **key,
                   const char **value)
{
    if (i >= f->nmeta)
        return -1;
    if (key)
        *key = f->mkey[i];
    if (value)
        *value = f->mval[i];
    return 0;
}

const char *mxv_st_meta_get(const mxv_st_file *f, const char *key)
{
    size_t lo = 0, hi = f->nmeta;
    if (!key)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->mkey[mid]);
        if (c == 0)
            return f->mval[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
