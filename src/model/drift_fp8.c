/* drift_fp8.c -- FP8 statistics of a capture's FP8 tensors (drift_fp8.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <gsl/gsl_histogram.h>
#include "cli.h"
#include "model/drift_fp8.h"

static int one(const mxv_capture *c, const char *name, const char *sname, mx_format_id fid,
               const char *source, mxv_drift_fp8 *o, char *err, size_t len)
{
    const mxv_st_tensor *t = mxv_st_find(c->f, name), *s = mxv_st_find(c->f, sname);
    const mxv_st_tensor *src = source ? mxv_st_find(c->f, source) : NULL;
    const mx_format *f = mx_format_get(fid);
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->format, sizeof o->format, "%s", f->name);
    o->n = t->numel;
    o->underflow = NAN;
    size_t zero = 0, sat = 0, sub = 0, nan = 0, nzsrc = 0, under = 0;
    const uint8_t *q = t->data;
    int use_src = src && src->dtype == MXV_ST_BF16 && src->numel == t->numel;
    for (size_t i = 0; i < t->numel; i++) {
        mx_class k = mx_classify(f, q[i]);
        zero += k == MX_CLASS_ZERO;
        sub += k == MX_CLASS_SUBNORMAL;
        nan += k == MX_CLASS_NAN;
        sat += (q[i] & 0x7f) == (f->max_finite_code & 0x7f) && k == MX_CLASS_NORMAL;
        if (use_src && mx_bf16_to_float(((const uint16_t *)src->data)[i]) != 0) {
            nzsrc++;
            under += k == MX_CLASS_ZERO;
        }
    }
    double n = o->n ? (double)o->n : 1;
    o->zero = (double)zero / n;
    o->saturated = (double)sat / n;
    o->subnormal = (double)sub / n;
    o->nan = (double)nan / n;
    if (use_src)
        o->underflow = nzsrc ? (double)under / (double)nzsrc : 0;
    o->scale_min = o->scale_max = o->scale_mode = -1;
    if (s && s->numel) {
        gsl_histogram *h = gsl_histogram_alloc(256);
        if (!h) {
            snprintf(err, len, "out of memory");
            return MXV_EXIT_INTERNAL;
        }
        gsl_histogram_set_ranges_uniform(h, 0, 256);
        for (size_t i = 0; i < s->numel; i++)
            gsl_histogram_increment(h, ((const uint8_t *)s->data)[i] + 0.5);
        o->scales = s->numel;
        for (size_t b = 0; b < 256; b++)
            o->scale_hist[b] = (size_t)gsl_histogram_get(h, b);
        o->scale_mode = (int)gsl_histogram_max_bin(h);
        for (int b = 0; b < 256; b++)
            if (o->scale_hist[b]) {
                if (o->scale_min < 0)
                    o->scale_min = b;
                o->scale_max = b;
            }
        gsl_histogram_free(h);
    }
    return 0;
}

int mxv_drift_fp8_stats(const mxv_capture *c, mxv_drift_fp8 *out, size_t *n, size_t cap,
                        char *err, size_t len)
{
    static const struct {
        const char *name, *scale, *source;
        int weight;
    } tab[] = {{"xq", "xq_scale", "x", 0}, {"actq", "actq_scale", NULL, 0},
               {"w13", "w13_scale", NULL, 1}, {"w2", "w2_scale", NULL, 1}};
    *n = 0;
    for (size_t i = 0; i < sizeof tab / sizeof *tab && *n < cap; i++) {
        const mxv_st_tensor *t = mxv_st_find(c->f, tab[i].name);
        if (!t)
            continue;
        if (mxv_st_dtype_size(t->dtype) != 1) {
            snprintf(err, len, "%s: tensor \"%s\": dtype %s is not an FP8 dtype", mxv_st_path(c->f),
                     tab[i].name, mxv_st_dtype_name(t->dtype));
            return MXV_EXIT_BADINPUT;
        }
        int rc = one(c, tab[i].name, tab[i].scale, tab[i].weight ? MX_E4M3FN : c->elem,
                     tab[i].source, &out[*n], err, len);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}
