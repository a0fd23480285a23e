/* capture.c -- open and validate capture files (see capture.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "capture.h"

static const char *kind_names[] = {"mxfp8_group_gemm", "bf16_group_gemm",
                                   "mx_quant", "moe_layer", "mxfp8_gemm",
                                   "bf16_gemm"};

/* metadata value or default; a present value outside its list is refused */
static const char *meta(const mxv_capture *c, const char *key, const char *def)
{
    const char *v = mxv_st_meta_get(c->f, key);
    return v ? v : def;
}

static mxv_st_status bad_meta(const mxv_capture *c, mxv_st_err *err,
                              const char *key, const char *val, const char *allowed)
{
    return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL,
                         "metadata \"%s\" is \"%s\"; expected %s", key, val,
                         allowed);
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* a plain decimal literal: digits only (no sign, no space), at most 2^40 */
static int parse_size(const char *v, size_t *out)
{
    char *end;
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 13)
        return -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x > (1ull << 40))
        return -1;
    *out = (size_t)x;
    return 0;
}

mxv_st_status mxv_capture_open(const char *path, mxv_capture *c, mxv_st_err *err)
{
    memset(c, 0, sizeof *c);
    mxv_st_status st = mxv_st_open(path, &c->f, err);
    if (st != MXV_ST_OK)
        return st;
    const char *v = mxv_st_meta_get(c->f, "mxverify.capture");
    if (!v)
        st = mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL,
                           "metadata \"mxverify.capture\" is missing (not a "
                           "capture file)");
    else if (strcmp(v, "1"))
        st = bad_meta(c, err, "mxverify.capture", v, "1");
    if (st != MXV_ST_OK)
        goto fail;
    const char *k = meta(c, "kind", NULL);
    int found = 0;
    for (int i = 0; k && i < 6; i++)
        if (!strcmp(k, kind_names[i])) {
            c->kind = (mxv_cap_kind)i;
            found = 1;
        }
    if (!found) {
        st = k ? bad_meta(c, err, "kind", k,
                          "mxfp8_group_gemm, bf16_group_gemm, mxfp8_gemm, bf16_gemm, "
                          "mx_quant or moe_layer")
               : mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL,
                               "metadata \"kind\" is missing");
        goto fail;
    }
    const char *ef = meta(c, "element_format", "e4m3fnuz");
    const mx_format *f = mx_format_by_name(ef);
    if (!f || f->bits != 8 || f->special == MX_SPECIAL_E8M0) {
        st = bad_meta(c, err, "element_format", ef, "e4m3fnuz, e4m3fn, e5m2 or e5m2fnuz");
        goto fail;
    }
    c->elem = f->id;
    const char *d = meta(c, "e8m0_decode", "production");
    if (!strcmp(d, "production"))
        c->decode = MX_E8M0_PRODUCTION;
    else if (!strcmp(d, "spec"))
        c->decode = MX_E8M0_SPEC;
    else {
        st = bad_meta(c, err, "e8m0_decode", d, "production or spec");
        goto fail;
    }
    const char *l = meta(c, "scale_layout", "rows");
    if (!strcmp(l, "rows") || !strcmp(l, "packed"))
        c->packed = !strcmp(l, "packed");
    else {
        st = bad_meta(c, err, "scale_layout", l, "rows or packed");
        goto fail;
    }
    const char *r = meta(c, "scale_rule", "production");
    if (mx_scale_rule_by_name(r, &c->rule) != 0) {
        st = bad_meta(c, err, "scale_rule", r, "production, ocp or rceil");
        goto fail;
    }
    const char *rm = meta(c, "rceil_max", "448");
    char *end;
    c->rceil_max = strtod(rm, &end);
    if (*end || !(c->rceil_max > 0) || !isfinite(c->rceil_max)) {
        st = bad_meta(c, err, "rceil_max", rm, "a positive number");
        goto fail;
    }
    const char *am = meta(c, "accum_model", "fp32-group");
    if (mx_accum_parse(am, &c->model) != 0) {
        st = bad_meta(c, err, "accum_model", am, mx_accum_names());
        goto fail;
    }
    struct { const char *key, *def; int *dst; } bools[] = {
        {"a_per_route", "false", &c->a_per_route},
        {"mul_routed_weight", "false", &c->mul_weight},
        {"finite", "true", &c->finite}};
    for (int i = 0; i < 3; i++) {
        const char *bv = meta(c, bools[i].key, bools[i].def);
        if (parse_bool(bv, bools[i].dst) != 0) {
            st = bad_meta(c, err, bools[i].key, bv, "true or false");
            goto fail;
        }
    }
    if (c->kind == MXV_CAP_MXFP8_GEMM || c->kind == MXV_CAP_BF16_GEMM) {
        const char *xv = mxv_st_meta_get(c->f, "experts");
        if (xv && (parse_size(xv, &c->experts) != 0 || c->experts < 1 ||
                   c->experts > INT32_MAX)) {
            st = bad_meta(c, err, "experts", xv, "a positive integer below 2^31");
            goto fail;
        }
    }
    if (c->kind == MXV_CAP_MOE_LAYER) {
        const char *pv = meta(c, "policy", "w8a8-mxfp8");
        if (mx_moe_policy_by_name(pv, &c->policy) != 0) {
            st = bad_meta(c, err, "policy", pv, "w8a8-mxfp8, bf16, w8a16 or hybrid");
            goto fail;
        }
        const char *sv = meta(c, "shape", "custom");
        if (mx_moe_shape_by_name(!strcmp(sv, "custom") ? "custom:32,32,1,1" : sv,
                                 &c->shape) != 0) {
            st = bad_meta(c, err, "shape", sv, "m3-full, m3-tp8, m3-ep8 or custom");
            goto fail;
        }
        struct { const char *key; size_t *dst; } dims[] = {
            {"hidden", &c->shape.H}, {"intermediate", &c->shape.inter},
            {"intermediate_shared", &c->shape.inter_shared},
            {"experts", &c->shape.E}, {"experts_local", &c->shape.E_local},
            {"expert0", &c->shape.expert0}, {"max_model_len", &c->shape.max_model_len}};
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            const char *dv = mxv_st_meta_get(c->f, dims[i].key);
            if (dv && parse_size(dv, dims[i].dst) != 0) {
                st = bad_meta(c, err, dims[i].key, dv, "a non-negative integer");
                goto fail;
            }
        }
        struct { const char *key; int *dst; } idims[] = {
            {"topk", &c->shape.topk}, {"tp", &c->shape.tp}, {"ep", &c->shape.ep},
            {"layer", &c->shape.layer}};
        for (size_t i = 0; i < sizeof idims / sizeof idims[0]; i++) {
            const char *dv = mxv_st_meta_get(c->f, idims[i].key);
            size_t x;
            if (dv && (parse_size(dv, &x) != 0 || x > 1000000)) {
                st = bad_meta(c, err, idims[i].key, dv, "a small non-negative integer");
                goto fail;
            }
            if (dv)
                *idims[i].dst = (int)x;
        }
        if (!mxv_st_meta_get(c->f, "experts_local"))
            c->shape.E_local = c->shape.E;
        if (!mxv_st_meta_get(c->f, "intermediate_shared"))
            c->shape.inter_shared = c->shape.inter;
        const mx_moe_shape *s = &c->shape;
        const char *why = NULL;
        if (!s->H || s->H % 32)
            why = "\"hidden\" must be a positive multiple of 32";
        else if (!s->inter || s->inter % 32 || !s->inter_shared || s->inter_shared % 32)
            why = "\"intermediate\" sizes must be positive multiples of 32";
        else if (s->topk < 1 || s->topk > 64 || (size_t)s->topk > s->E)
            why = "\"topk\" must be in 1..min(64, experts)";
        else if (!s->E_local || s->expert0 + s->E_local > s->E)
            why = "\"expert0\" + \"experts_local\" exceeds \"experts\"";
        if (why) {
            st = mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL, "metadata: %s", why);
            goto fail;
        }
    }
    return MXV_ST_OK;
fail:
    mxv_st_close(c->f);
    c->f = NULL;
    return st;
}

void mxv_capture_close(mxv_capture *c)
{
    if (c->f)
        mxv_st_close(c->f);
    c->f = NULL;
}

/* the per-expert weights of a layer: an EP rank may hold no routed expert */
static int may_be_empty(const mxv_capture *c, const char *name)
{
    static const char *const names[] = {"experts_present", "w13", "w13_scale",
                                        "w2", "w2_scale"};
    if (c->kind != MXV_CAP_MOE_LAYER)
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return 1;
    return 0;
}

static mxv_st_status require_nonempty(const mxv_capture *c, const mxv_st_tensor *t,
                                      mxv_st_err *err)
{
    for (int d = 0; d < t->rank; d++)
        if (t->shape[d] == 0 && !may_be_empty(c, t->name)) {
            char sh[200];
            size_t o = 0;
            for (int i = 0; i < t->rank && o < sizeof sh; i++)
                o += (size_t)snprintf(sh + o, sizeof sh - o, "%s%llu", i ? ", " : "",
                                      (unsigned long long)t->shape[i]);
            return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                 "shape [%s] has an empty dimension (sizes must "
                                 "be >= 1)", sh);
        }
    return MXV_ST_OK;
}

mxv_st_status mxv_capture_tensor(const mxv_capture *c, const char *name,
                                 unsigned dtypes, int rank, const uint64_t *shape,
                                 const mxv_st_tensor **t, mxv_st_err *err)
{
    const mxv_st_tensor *x;
    mxv_st_status st = mxv_st_require(c->f, name, dtypes, rank, shape, &x, err);
    if (st == MXV_ST_OK)
        st = require_nonempty(c, x, err);
    if (st == MXV_ST_OK && t)
        *t = x;
    return st;
}

mxv_st_status mxv_capture_optional(const mxv_capture *c, const char *name,
                                   unsigned dtypes, int rank,
                                   const uint64_t *shape,
                                   const mxv_st_tensor **t, mxv_st_err *err)
{
    *t = NULL;
    if (!mxv_st_find(c->f, name))
        return MXV_ST_OK;
    return mxv_capture_tensor(c, name, dtypes, rank, shape, t, err);
}

unsigned mxv_capture_fp8_dtypes(mx_format_id elem)
{
    mxv_st_dtype d;
    unsigned set = MXV_ST_BIT(MXV_ST_U8);
    if (mxv_st_dtype_from_format(elem, &d) == 0)
        set |= MXV_ST_BIT(d);
    return set;
}

/* "[i, j]" of a flat index in a tensor */
static void index_str(const mxv_st_tensor *t, uint64_t flat, char *buf, size_t len)
{
    uint64_t idx[MXV_ST_MAX_RANK] = {0};
    for (int d = t->rank - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? flat % t->shape[d] : 0;
        flat = t->shape[d] ? flat / t->shape[d] : 0;
    }
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int d = 0; d < t->rank && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)idx[d]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

#if defined(__GNUC__) && !defined(__clang__)
#define SCAN_HOT __attribute__((optimize("O3")))
#else
#define SCAN_HOT
#endif

/* Whether any of the n codes from p (8- or 16-bit) has (code & mask) ==
 * value: branch-free over blocks (vector code), stopping at the first
 * block with one. */
static SCAN_HOT int any_masked(const void *p, int bits, uint64_t n, uint32_t mask,
                               uint32_t value)
{
    const uint64_t blk = 4096;
    for (uint64_t i0 = 0; i0 < n; i0 += blk) {
        uint64_t e = n - i0 < blk ? n - i0 : blk;
        unsigned hit = 0;
        if (bits == 8) {
            const uint8_t *q = (const uint8_t *)p + i0;
            uint8_t m = (uint8_t)mask, v = (uint8_t)value;
            for (uint64_t i = 0; i < e; i++)
                hit |= (q[i] & m) == v;
        } else {
            const uint16_t *q = (const uint16_t *)p + i0;
            uint16_t m = (uint16_t)mask, v = (uint16_t)value;
            for (uint64_t i = 0; i < e; i++)
                hit |= (q[i] & m) == v;
        }
        if (hit)
            return 1;
    }
    return 0;
}

static mxv_st_status check_codes(const mxv_capture *c, const mxv_st_tensor *t,
                                 const mx_format *fmt, mxv_st_err *err)
{
    unsigned char bad[65536] = {0};
    uint32_t ncodes = (uint32_t)1 << fmt->bits, full = ncodes - 1;
    uint32_t or_all = 0, and_all = full;
    int nbad = 0;
    for (uint32_t k = 0; k < ncodes; k++) {
        mx_class cl = mx_classify(fmt, k);
        bad[k] = cl == MX_CLASS_NAN || cl == MX_CLASS_INF;
        if (bad[k]) {
            or_all |= k;
            and_all &= k;
            nbad++;
        }
    }
    /* the NaN and inf codes of the formats here are the codes with some
     * bits set as one pattern (an all-ones exponent, or 0x80 alone): then
     * the bits every one of them has alike decide, and a first pass tests
     * only those; the table is the test otherwise, and finds the element */
    uint32_t same = ~(or_all ^ and_all) & full, value = and_all & same;
    int pattern = nbad > 0;
    for (uint32_t k = 0; k < ncodes && pattern; k++)
        pattern = bad[k] == ((k & same) == value);
    if (!nbad || (pattern && !any_masked(t->data, fmt->bits, t->numel, same, value)))
        return MXV_ST_OK;
    for (uint64_t i = 0; i < t->numel; i++) {
        uint32_t code = fmt->bits == 8 ? ((const uint8_t *)t->data)[i]
                                       : ((const uint16_t *)t->data)[i];
        if (bad[code]) {
            char ix[128];
            index_str(t, i, ix, sizeof ix);
            return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                 "element %s is %s (code 0x%X in %s)%s",
                                 ix, mx_class_name(mx_classify(fmt, code)), code,
                                 fmt->name,
                                 c->finite ? " but the capture says finite"
                                           : ": the reference takes finite "
                                             "inputs only");
        }
    }
    return MXV_ST_OK;
}

mxv_st_status mxv_capture_check_codes(const mxv_capture *c, const mxv_st_tensor *t,
                                      const mx_format *fmt, mxv_st_err *err)
{
    return c->finite ? check_codes(c, t, fmt, err) : MXV_ST_OK;
}

mxv_st_status mxv_capture_require_finite(const mxv_capture *c,
                                         const mxv_st_tensor *t,
                                         const mx_format *fmt, mxv_st_err *err)
{
    return check_codes(c, t, fmt, err);
}

mxv_st_status mxv_capture_check_scales(const mxv_capture *c, const mxv_st_tensor *t,
                                       mxv_st_err *err)
{
    const uint8_t *s = t->data;
    for (uint64_t i = 0; i < t->numel; i++)
        if (s[i] == 255) {
            char ix[128];
            index_str(t, i, ix, sizeof ix);
            return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                 "scale byte %s is 255 (the E8M0 NaN)", ix);
        }
    return MXV_ST_OK;
}

mxv_st_status mxv_capture_check_f32(const mxv_capture *c, const mxv_st_tensor *t,
                                    mxv_st_err *err)
{
    const float *v = t->data;
    for (uint64_t i = 0; i < t->numel && c->finite; i++)
        if (!isfinite(v[i])) {
            char ix[128];
            index_str(t, i, ix, sizeof ix);
            return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                 "element %s is %s but the capture says finite",
                                 ix, isnan(v[i]) ? "NaN" : "inf");
        }
    return MXV_ST_OK;
}

mxv_st_status mxv_capture_ints(const mxv_capture *c, const mxv_st_tensor *t,
                               int32_t **out, mxv_st_err *err)
{
    int32_t *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
    if (!v)
        return mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, t->name, "out of memory");
    for (uint64_t i = 0; i < t->numel; i++) {
        int64_t x = t->dtype == MXV_ST_I64 ? ((const int64_t *)t->data)[i]
                                           : ((const int32_t *)t->data)[i];
        if (x < INT32_MIN || x > INT32_MAX) {
            free(v);
            char ix[128];
            index_str(t, i, ix, sizeof ix);
            return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                 "element %s = %lld does not fit 32 bits", ix,
                                 (long long)x);
        }
        v[i] = (int32_t)x;
    }
    *out = v;
    return MXV_ST_OK;
}

mxv_st_status mxv_capture_topk(const mxv_capture *c, const mxv_st_tensor *t,
                               size_t n_experts, int32_t **out, mxv_st_err *err)
{
    int32_t *v;
    mxv_st_status st = mxv_capture_ints(c, t, &v, err);
    if (st != MXV_ST_OK)
        return st;
    uint64_t T = t->shape[0], k = t->shape[1];
    for (uint64_t i = 0; i < T; i++)
        for (uint64_t j = 0; j < k; j++) {
            int32_t e = v[i * k + j];
            if (e < 0 || (size_t)e >= n_experts) {
                free(v);
                return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                     "element [%llu, %llu] = %d is not an expert "
                                     "id in 0..%zu",
                                     (unsigned long long)i, (unsigned long long)j, e,
                                     n_experts - 1);
            }
            for (uint64_t q = 0; q < j; q++)
                if (v[i * k + q] == e) {
                    free(v);
                    return mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, t->name,
                                         "token %llu lists expert %d twice (ranks "
                                         "%llu and %llu)",
                                         (unsigned long long)i, e,
                                         (unsigned long long)q, (unsigned long long)j);
                }
        }
    *out = v;
    return MXV_ST_OK;
}
