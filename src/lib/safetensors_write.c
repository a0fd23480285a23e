/* safetensors_write.c -- write a safetensors file: deterministic bytes,
 * atomically.
 *
 * Determinism.  The header is emitted here, not by cJSON's printer, so its
 * bytes cannot change with a library version: no whitespace; keys in the
 * order "__metadata__" (only when there is metadata; its keys sorted by
 * byte order), then the tensors; each tensor as
 * {"dtype":"X","shape":[..],"data_offsets":[b,e]}; integers in plain
 * decimal; strings escaped as serde_json (the Python library's serializer)
 * escapes them: \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00xx,
 * everything else raw UTF-8.  The header is padded with spaces to a
 * multiple of 8 bytes and the data follows, each tensor's bytes at the
 * offsets the header states.
 *
 * Order.  Tensors are sorted as the Python library sorts them: by dtype,
 * later in its Dtype enum first (which puts wider elements first, so each
 * tensor is aligned to its element size), ties by name in byte order.
 * Python's metadata order is that of a hash map, so its files equal ours
 * byte for byte when there is at most one metadata key.
 *
 * Atomicity.  The file is written through the safe writer (out.h): a
 * temporary file beside path, fsynced and renamed over it, then the
 * directory fsynced.  Every failure removes the temporary file.  A process
 * killed mid-write leaves the temporary file behind, never a partial
 * path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "out.h"
#include "safetensors.h"
#include "safetensors_int.h"

typedef struct {
    char *name;
    mxv_st_dtype dtype;
    int rank;
    uint64_t shape[MXV_ST_MAX_RANK];
    uint64_t nbytes;
    const void *data;
} wtensor;

struct mxv_st_writer {
    char *path;
    wtensor *t;
    size_t n, cap;
    char **mkey, **mval;
    size_t nmeta, capmeta;
    size_t *slots;   /* hash set of names: index + 1 into t, 0 = empty */
    size_t nslots;   /* a power of two, at least twice n */
    uint64_t total;  /* data bytes so far */
    int committed;
};

/* FNV-1a: the set only has to keep mxv_st_writer_add O(1), so that a file
 * of 10^5 tensors is not quadratic to build. */
static size_t hash_name(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t *find_slot(const mxv_st_writer *w, const char *name)
{
    size_t mask = w->nslots - 1, i = hash_name(name) & mask;
    while (w->slots[i] && strcmp(w->t[w->slots[i] - 1].name, name))
        i = (i + 1) & mask;
    return &w->slots[i];
}

/* Makes room for one more name; 0 or -1 when out of memory. */
static int grow_set(mxv_st_writer *w)
{
    if (2 * (w->n + 1) <= w->nslots)
        return 0;
    size_t n = w->nslots ? 2 * w->nslots : 64;
    size_t *old = w->slots, oldn = w->nslots;
    if (!(w->slots = calloc(n, sizeof *w->slots))) {
        w->slots = old;
        return -1;
    }
    w->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i])
            *find_slot(w, w->t[old[i] - 1].name) = old[i];
    free(old);
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

mxv_st_writer *mxv_st_writer_new(const char *path)
{
    mxv_st_writer *w = calloc(1, sizeof *w);
    if (!w || !path || !(w->path = dup_str(path))) {
        free(w);
        return NULL;
    }
    return w;
}

void mxv_st_writer_free(mxv_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->t);
    free(w->slots);
    free(w->mkey);
    free(w->mval);
    free(w->path);
    free(w);
}

static int utf8_str_ok(const char *s)
{
    return mxv_st__utf8_ok((const unsigned char *)s, strlen(s), NULL);
}

mxv_st_status mxv_st_writer_add(mxv_st_writer *w, const char *name,
                                mxv_st_dtype dtype, int rank,
                                const uint64_t *shape, const void *data,
                                mxv_st_err *err)
{
    if (!name)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "tensor name is NULL");
    if (w->committed)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "added after the file was written");
    if (!utf8_str_ok(name))
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "name is not valid UTF-8");
    if (!strcmp(name, "__metadata__"))
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "name is reserved for the metadata");
    if (grow_set(w) != 0)
        return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, name,
                            "out of memory");
    size_t *slot = find_slot(w, name);
    if (*slot)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "added twice");
    size_t esize = mxv_st_dtype_size(dtype);
    if (!esize)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "dtype %d is not an mxv_st_dtype", (int)dtype);
    if (rank < 0 || rank > MXV_ST_MAX_RANK || (rank > 0 && !shape))
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "rank %d is outside 0..%d (or shape is NULL)",
                            rank, MXV_ST_MAX_RANK);
    int zero = 0;
    for (int i = 0; i < rank; i++) {
        if (shape[i] > MXV_ST_MAX_INT)
            return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                                "shape[%d] is %llu, above 2^53 - 1", i,
                                (unsigned long long)shape[i]);
        zero |= shape[i] == 0;
    }
    uint64_t nbytes = zero ? 0 : esize;
    for (int i = 0; i < rank && !zero; i++) {
        if (nbytes > MXV_ST_MAX_INT / shape[i]) {
            char sh[256];
            mxv_st__fmt_shape(sh, sizeof sh, rank, shape);
            return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                                "shape %s of dtype %s holds more than "
                                "2^53 - 1 bytes",
                                sh, mxv_st_dtype_name(dtype));
        }
        nbytes *= shape[i];
    }
    if (nbytes > MXV_ST_MAX_INT - w->total)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "the data section would exceed 2^53 - 1 bytes");
    if (nbytes && !data)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, name,
                            "data is NULL for %llu bytes",
                            (unsigned long long)nbytes);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, name,
                                "out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = dup_str(name)))
        return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, name,
                            "out of memory");
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    t->data = data;
    w->total += nbytes;
    w->n++;
    *slot = w->n;
    if (err)
        err->msg[0] = '\0';
    return MXV_ST_OK;
}

mxv_st_status mxv_st_writer_meta(mxv_st_writer *w, const char *key,
                                 const char *value, mxv_st_err *err)
{
    char q[128];
    if (!key || !value)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "__metadata__: key or value is NULL");
    mxv_st__quote(q, sizeof q, key);
    if (w->committed)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "__metadata__ %s: added after the file was "
                            "written",
                            q);
    if (!utf8_str_ok(key) || !utf8_str_ok(value))
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "__metadata__ %s: key or value is not valid "
                            "UTF-8",
                            q);
    for (size_t i = 0; i < w->nmeta; i++)
        if (!strcmp(w->mkey[i], key))
            return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                                "__metadata__ %s: added twice", q);
    if (w->nmeta == w->capmeta) {
        size_t cap = w->capmeta ? 2 * w->capmeta : 8;
        char **k = realloc(w->mkey, cap * sizeof *k);
        if (!k)
            return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, NULL,
                                "out of memory");
        w->mkey = k;
        char **v = realloc(w->mval, cap * sizeof *v);
        if (!v)
            return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, NULL,
                                "out of memory");
        w->mval = v;
        w->capmeta = cap;
    }
    char *k = dup_str(key), *v = dup_str(value);
    if (!k || !v) {
        free(k);
        free(v);
        return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, NULL,
                            "out of memory");
    }
    w->mkey[w->nmeta] = k;
    w->mval[w->nmeta] = v;
    w->nmeta++;
    if (err)
        err->msg[0] = '\0';
    return MXV_ST_OK;
}

/* ---- the header ------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_u64(sbuf *b, uint64_t v)
{
    char num[24];
    int k = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    put(b, num, (size_t)k);
}

/* A JSON string, escaped as serde_json escapes it. */
static void put_json_string(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        char e[6] = {'\\', 0, '0', '0', 0, 0};
        switch (*u) {
        case '"': e[1] = '"'; put(b, e, 2); continue;
        case '\\': e[1] = '\\'; put(b, e, 2); continue;
        case '\b': e[1] = 'b'; put(b, e, 2); continue;
        case '\f': e[1] = 'f'; put(b, e, 2); continue;
        case '\n': e[1] = 'n'; put(b, e, 2); continue;
        case '\r': e[1] = 'r'; put(b, e, 2); continue;
        case '\t': e[1] = 't'; put(b, e, 2); continue;
        }
        if (*u < 0x20) {
            e[1] = 'u';
            e[4] = hex[*u >> 4];
            e[5] = hex[*u & 15];
            put(b, e, 6);
        } else {
            put(b, (const char *)u, 1);
        }
    }
    put(b, "\"", 1);
}

static int cmp_wtensor(const void *a, const void *b)
{
    const wtensor *x = *(const wtensor *const *)a;
    const wtensor *y = *(const wtensor *const *)b;
    int rx = mxv_st__dtype_rank(x->dtype), ry = mxv_st__dtype_rank(y->dtype);
    if (rx != ry)
        return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name); /* compares as unsigned char */
}

typedef struct {
    const char *key, *value;
} kv;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

/* Builds the padded header into b and the tensor order into order. */
static void build_header(const mxv_st_writer *w, sbuf *b,
                         const wtensor **order)
{
    put(b, "{", 1);
    if (w->nmeta) {
        kv *m = malloc(w->nmeta * sizeof *m);
        if (!m) {
            b->oom = 1;
            return;
        }
        for (size_t i = 0; i < w->nmeta; i++)
            m[i] = (kv){w->mkey[i], w->mval[i]};
        qsort(m, w->nmeta, sizeof *m, cmp_kv);
        puts_(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i)
                put(b, ",", 1);
            put_json_string(b, m[i].key);
            put(b, ":", 1);
            put_json_string(b, m[i].value);
        }
        put(b, "}", 1);
        free(m);
    }
    for (size_t i = 0; i < w->n; i++)
        order[i] = &w->t[i];
    qsort(order, w->n, sizeof *order, cmp_wtensor);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wtensor *t = order[i];
        if (i || w->nmeta)
            put(b, ",", 1);
        put_json_string(b, t->name);
        puts_(b, ":{\"dtype\":\"");
        puts_(b, mxv_st_dtype_name(t->dtype));
        puts_(b, "\",\"shape\":[");
        for (int d = 0; d < t->rank; d++) {
            if (d)
                put(b, ",", 1);
            put_u64(b, t->shape[d]);
        }
        puts_(b, "],\"data_offsets\":[");
        put_u64(b, off);
        put(b, ",", 1);
        off += t->nbytes;
        put_u64(b, off);
        puts_(b, "]}");
    }
    put(b, "}", 1);
    while (!b->oom && b->len % 8)
        put(b, " ", 1);
}

/* ---- the file --------------------------------------------------------- */

/* The safe writer's message without its leading "PATH: " (the status
 * message names the file itself). */
static const char *after_path(const char *msg, const char *path)
{
    size_t n = strlen(path);
    return strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2
                                                                            : msg;
}

static int write_all(FILE *f, const void *p, uint64_t n)
{
    const char *c = p;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        if (fwrite(c, 1, chunk, f) != chunk)
            return -1;
        c += chunk;
        n -= (uint64_t)chunk;
    }
    return 0;
}

mxv_st_status mxv_st_writer_commit(mxv_st_writer *w, mxv_st_err *err)
{
    if (w->committed)
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "the file was already written");
    w->committed = 1;

    sbuf hb = {0};
    const wtensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
    if (!order)
        return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, NULL,
                            "out of memory building the header");
    build_header(w, &hb, order);
    if (hb.oom) {
        free(order);
        free(hb.p);
        return mxv_st__fail(err, MXV_ST_ENOMEM, w->path, NULL,
                            "out of memory building the header");
    }
    if (hb.len > MXV_ST_MAX_HEADER) {
        free(order);
        free(hb.p);
        return mxv_st__fail(err, MXV_ST_EINVAL, w->path, NULL,
                            "header would be %zu bytes, above the limit of "
                            "%u",
                            hb.len, MXV_ST_MAX_HEADER);
    }

    mxv_st_status st = MXV_ST_OK;
    char msg[sizeof err->msg];
    mxv_out *o = mxv_out_open(w->path, msg, sizeof msg);
    if (!o) {
        st = mxv_st__fail(err, MXV_ST_EIO, w->path, NULL, "%s",
                          after_path(msg, w->path));
        goto out;
    }
    FILE *f = mxv_out_file(o);
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)((uint64_t)hb.len >> (8 * i));
    int fail = write_all(f, prefix, 8) || write_all(f, hb.p, hb.len);
    for (size_t i = 0; i < w->n && !fail; i++)
        if (order[i]->nbytes)
            fail = write_all(f, order[i]->data, order[i]->nbytes);
    if (fail) {
        int e = errno;
        mxv_out_abort(o);
        st = mxv_st__fail(err, MXV_ST_EIO, w->path, NULL, "cannot write it: %s",
                          strerror(e));
        goto out;
    }
    if (mxv_out_commit(o, msg, sizeof msg) != 0) {
        st = mxv_st__fail(err, MXV_ST_EIO, w->path, NULL, "%s",
                          after_path(msg, w->path));
        goto out;
    }
    if (err)
        err->msg[0] = '\0';
out:
    free(order);
    free(hb.p);
    return st;
}
