/* safetensors.c -- the dtype table, statuses, one-line messages and the
 * "require" helpers shared by the safetensors reader and writer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "safetensors.h"
#include "safetensors_int.h"

/* ---- dtypes ----------------------------------------------------------- */

typedef struct {
    const char *name;
    unsigned char size;
    unsigned char rank;   /* position in the Rust Dtype enum (0.8) */
    signed char format;   /* mx_format_id, or -1 */
} dtype_row;

static const dtype_row dtypes[MXV_ST_DTYPE_COUNT] = {
    [MXV_ST_F64] = {"F64", 8, 19, -1},
    [MXV_ST_F32] = {"F32", 4, 17, MX_FP32},
    [MXV_ST_F16] = {"F16", 2, 13, MX_FP16},
    [MXV_ST_BF16] = {"BF16", 2, 14, MX_BF16},
    [MXV_ST_I64] = {"I64", 8, 20, -1},
    [MXV_ST_I32] = {"I32", 4, 15, -1},
    [MXV_ST_I8] = {"I8", 1, 5, -1},
    [MXV_ST_U8] = {"U8", 1, 4, -1},
    [MXV_ST_F8_E4M3] = {"F8_E4M3", 1, 7, MX_E4M3FN},
    [MXV_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1, 9, MX_E4M3FNUZ},
    [MXV_ST_F8_E5M2] = {"F8_E5M2", 1, 6, MX_E5M2},
    [MXV_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 1, 10, MX_E5M2FNUZ},
    [MXV_ST_F8_E8M0] = {"F8_E8M0", 1, 8, MX_E8M0},
};

static int dtype_ok(mxv_st_dtype d)
{
    return (int)d >= 0 && d < MXV_ST_DTYPE_COUNT;
}

const char *mxv_st_dtype_name(mxv_st_dtype d)
{
    return dtype_ok(d) ? dtypes[d].name : NULL;
}

size_t mxv_st_dtype_size(mxv_st_dtype d)
{
    return dtype_ok(d) ? dtypes[d].size : 0;
}

int mxv_st_dtype_by_name(const char *name, mxv_st_dtype *out)
{
    if (!name)
        return -1;
    for (int d = 0; d < MXV_ST_DTYPE_COUNT; d++)
        if (!strcmp(name, dtypes[d].name)) {
            *out = (mxv_st_dtype)d;
            return 0;
        }
    return -1;
}

int mxv_st_dtype_to_format(mxv_st_dtype d, mx_format_id *out)
{
    if (!dtype_ok(d) || dtypes[d].format < 0)
        return -1;
    *out = (mx_format_id)dtypes[d].format;
    return 0;
}

int mxv_st_dtype_from_format(mx_format_id f, mxv_st_dtype *out)
{
    for (int d = 0; d < MXV_ST_DTYPE_COUNT; d++)
        if (dtypes[d].format >= 0 && dtypes[d].format == (int)f) {
            *out = (mxv_st_dtype)d;
            return 0;
        }
    return -1;
}

int mxv_st__dtype_rank(mxv_st_dtype d)
{
    return dtypes[d].rank;
}

/* ---- statuses --------------------------------------------------------- */

const char *mxv_st_status_name(mxv_st_status st)
{
    switch (st) {
    case MXV_ST_OK: return "OK";
    case MXV_ST_EFORMAT: return "EFORMAT";
    case MXV_ST_EMISMATCH: return "EMISMATCH";
    case MXV_ST_EOPEN: return "EOPEN";
    case MXV_ST_EIO: return "EIO";
    case MXV_ST_ENOMEM: return "ENOMEM";
    case MXV_ST_EINVAL: return "EINVAL";
    }
    return "unknown status";
}

int mxv_st_exit_code(mxv_st_status st)
{
    switch (st) {
    case MXV_ST_OK:
        return MXV_EXIT_OK;
    case MXV_ST_EFORMAT:
    case MXV_ST_EMISMATCH:
    case MXV_ST_EOPEN:
        return MXV_EXIT_BADINPUT;
    default:
        return MXV_EXIT_INTERNAL;
    }
}

/* ---- UTF-8 and quoting ------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int mxv_st__utf8_ok(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* fast path for ASCII */
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (!k) {
            if (bad)
                *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

/* Appends s into dst[*len..cap) with control bytes and invalid UTF-8 as
 * \xHH (and " and \ escaped when quote), stopping after max source bytes.
 * Keeps room for "..." and a closing quote. */
static void put_escaped(char *dst, size_t cap, size_t *len, const char *s,
                        size_t max, int quote)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    size_t room = cap - 6; /* "..." + quote + NUL */
    while (i < n && i < max) {
        char tmp[8];
        size_t k = 1, tl;
        if (u[i] < 0x20 || u[i] == 0x7F) {
            tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02X", u[i]);
        } else if (quote && (u[i] == '"' || u[i] == '\\')) {
            tmp[0] = '\\';
            tmp[1] = (char)u[i];
            tl = 2;
        } else if (u[i] < 0x80) {
            tmp[0] = (char)u[i];
            tl = 1;
        } else if ((k = utf8_seq(u + i, n - i)) != 0) {
            memcpy(tmp, u + i, k);
            tl = k;
        } else {
            k = 1;
            tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02X", u[i]);
        }
        if (*len + tl > room)
            break;
        memcpy(dst + *len, tmp, tl);
        *len += tl;
        i += k;
    }
    if (i < n) {
        memcpy(dst + *len, "...", 3);
        *len += 3;
    }
}

void mxv_st__quote(char *dst, size_t cap, const char *s)
{
    size_t len = 0;
    dst[len++] = '"';
    put_escaped(dst, cap, &len, s ? s : "", 80, 1);
    dst[len++] = '"';
    dst[len] = '\0';
}

void mxv_st__fmt_shape(char *dst, size_t cap, int rank,
                       const uint64_t *shape)
{
    size_t len = 0;
    dst[len++] = '[';
    for (int i = 0; i < rank; i++) {
        char num[32];
        int k = snprintf(num, sizeof num, "%s%llu", i ? ", " : "",
                         (unsigned long long)shape[i]);
        if (len + (size_t)k + 5 > cap) {
            memcpy(dst + len, "...", 3);
            len += 3;
            break;
        }
        memcpy(dst + len, num, (size_t)k);
        len += (size_t)k;
    }
    dst[len++] = ']';
    dst[len] = '\0';
}

/* ---- messages --------------------------------------------------------- */

mxv_st_status mxv_st__vfail(mxv_st_err *err, mxv_st_status st,
                            const char *label, const char *tensor,
                            const char *fmt, va_list ap)
{
    if (!err)
        return st;
    char *m = err->msg;
    size_t len = 0, cap = sizeof err->msg;
    if (label) {
        /* Paths are the user's, but may still hold control bytes; a long
         * one keeps its tail, which names the file. */
        size_t n = strlen(label);
        const char *tail = label;
        if (n > 200) {
            memcpy(m, "...", 3);
            len = 3;
            tail = label + n - 200;
            while ((unsigned char)*tail >= 0x80 &&
                   (unsigned char)*tail < 0xC0)
                tail++;
        }
        put_escaped(m, 260, &len, tail, 200, 0);
        m[len++] = ':';
        m[len++] = ' ';
    }
    if (tensor) {
        char q[128];
        mxv_st__quote(q, sizeof q, tensor);
        len += (size_t)snprintf(m + len, cap - len, "tensor %s: ", q);
    }
    vsnprintf(m + len, cap - len, fmt, ap);
    /* Whatever the caller's arguments held, the message stays one line. */
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return st;
}

mxv_st_status mxv_st__fail(mxv_st_err *err, mxv_st_status st,
                           const char *label, const char *tensor,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mxv_st__vfail(err, st, label, tensor, fmt, ap);
    va_end(ap);
    return st;
}

mxv_st_status mxv_st_errorf(mxv_st_err *err, mxv_st_status st,
                            const mxv_st_file *f, const char *tensor,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mxv_st__vfail(err, st, f ? mxv_st_path(f) : NULL, tensor, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- requiring tensors ------------------------------------------------ */

mxv_st_status mxv_st_require(const mxv_st_file *f, const char *name,
                             unsigned dtypeset, int rank,
                             const uint64_t *shape,
                             const mxv_st_tensor **out, mxv_st_err *err)
{
    const char *path = mxv_st_path(f);
    const mxv_st_tensor *t = mxv_st_find(f, name);
    if (!t)
        return mxv_st__fail(err, MXV_ST_EMISMATCH, path, name,
                            "not in the file");
    if (dtypeset != MXV_ST_ANY_DTYPE && !(dtypeset & MXV_ST_BIT(t->dtype))) {
        char want[256];
        size_t len = 0;
        want[0] = '\0';
        for (int d = 0; d < MXV_ST_DTYPE_COUNT; d++)
            if (dtypeset & MXV_ST_BIT(d))
                len += (size_t)snprintf(want + len, sizeof want - len,
                                        "%s%s", len ? " or " : "",
                                        dtypes[d].name);
        return mxv_st__fail(err, MXV_ST_EMISMATCH, path, name,
                            "dtype %s, expected %s", dtypes[t->dtype].name,
                            want);
    }
    int mismatch = rank >= 0 && t->rank != rank;
    if (!mismatch && rank >= 0 && shape)
        for (int i = 0; i < rank; i++)
            if (shape[i] != MXV_ST_ANY_DIM && shape[i] != t->shape[i])
                mismatch = 1;
    if (mismatch) {
        char got[256], want[256] = "[";
        mxv_st__fmt_shape(got, sizeof got, t->rank, t->shape);
        if (shape) {
            size_t len = 1;
            for (int i = 0; i < rank && len < sizeof want - 32; i++) {
                if (shape[i] == MXV_ST_ANY_DIM)
                    len += (size_t)snprintf(want + len, sizeof want - len,
                                            "%s*", i ? ", " : "");
                else
                    len += (size_t)snprintf(want + len, sizeof want - len,
                                            "%s%llu", i ? ", " : "",
                                            (unsigned long long)shape[i]);
            }
            snprintf(want + len, sizeof want - len, "]");
            return mxv_st__fail(err, MXV_ST_EMISMATCH, path, name,
                                "shape %s does not match the expected %s",
                                got, want);
        }
        return mxv_st__fail(err, MXV_ST_EMISMATCH, path, name,
                            "shape %s has rank %d, expected rank %d", got,
                            t->rank, rank);
    }
    if (out)
        *out = t;
    if (err)
        err->msg[0] = '\0';
    return MXV_ST_OK;
}

mxv_st_status mxv_st_require_meta(const mxv_st_file *f, const char *key,
                                  const char **value, mxv_st_err *err)
{
    const char *v = mxv_st_meta_get(f, key);
    if (!v) {
        char q[128];
        mxv_st__quote(q, sizeof q, key);
        return mxv_st__fail(err, MXV_ST_EMISMATCH, mxv_st_path(f), NULL,
                            "__metadata__ %s: not in the file", q);
    }
    if (value)
        *value = v;
    if (err)
        err->msg[0] = '\0';
    return MXV_ST_OK;
}
