/* drift_kld.c -- drift's KLD at the logits: BASE's and TEST's
 * logprobs.safetensors, row by row over the generated tokens (drift.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include "cli.h"
#include "safetensors.h"
#include "model/drift.h"
#include "model/drift_kld.h"
#include "model/kld.h"

static long prompt_len(mxv_st_file *f, const char *rid, long n, char *err, size_t len, int *rc)
{
    char key[600];
    snprintf(key, sizeof key, "prompt_len/%s", rid);
    const char *v = mxv_st_meta_get(f, key);
    if (!v)
        return n;
    char *end;
    long p = strtol(v, &end, 10);
    if (!*v || *end || p < 0 || p > n) {
        *rc = mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: metadata \"%s\" is \"%s\"; expected 0..%ld",
                   mxv_st_path(f), key, v, n);
        return 0;
    }
    return p;
}

static int row_values(const mxv_st_tensor *t, size_t row, size_t V, double *out)
{
    for (size_t i = 0; i < V; i++) {
        size_t j = row * V + i;
        switch (t->dtype) {
        case MXV_ST_F32: out[i] = ((const float *)t->data)[j]; break;
        case MXV_ST_F64: out[i] = ((const double *)t->data)[j]; break;
        case MXV_ST_BF16: out[i] = mx_bf16_to_float(((const uint16_t *)t->data)[j]); break;
        default: return -1;
        }
    }
    return 0;
}

static int64_t target_at(const mxv_st_tensor *t, size_t i)
{
    return t->dtype == MXV_ST_I32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

int mxv_drift_kld(mxv_drift *d, const char *bpath, const char *tpath, char *err, size_t len)
{
    mxv_st_file *bf = NULL, *tf = NULL;
    mxv_st_err se;
    mxv_st_status s = mxv_st_open(bpath, &bf, &se);
    if (s == MXV_ST_OK)
        s = mxv_st_open(tpath, &tf, &se);
    if (s != MXV_ST_OK) {
        if (bf)
            mxv_st_close(bf);
        return mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
    }
    int rc = 0;
    size_t cap = 1024, n = 0, same = 0;
    double *kl = malloc(cap * sizeof *kl), *x = NULL, *y = NULL, *scratch = NULL;
    size_t Vmax = 0;
    /* every request of one file must be in the other */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        mxv_st_file *a = pass ? tf : bf, *b = pass ? bf : tf;
        for (size_t i = 0; i < mxv_st_count(a) && !rc; i++) {
            const mxv_st_tensor *t = mxv_st_tensor_at(a, i);
            if (strncmp(t->name, "logprobs/", 9) != 0 && strncmp(t->name, "logits/", 7) != 0)
                continue;
            if (!mxv_st_find(b, t->name))
                rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                          "%s: tensor \"%s\" has no counterpart in %s (the runs must hold "
                          "the same requests)", mxv_st_path(a), t->name, mxv_st_path(b));
        }
    }
    for (size_t i = 0; i < mxv_st_count(bf) && !rc && kl; i++) {
        const mxv_st_tensor *tb = mxv_st_tensor_at(bf, i);
        int is_lp = strncmp(tb->name, "logprobs/", 9) == 0;
        if (!is_lp && strncmp(tb->name, "logits/", 7) != 0)
            continue;
        const char *rid = tb->name + (is_lp ? 9 : 7);
        const mxv_st_tensor *tt = mxv_st_find(tf, tb->name);
        if (tb->rank != 2 || tt->rank != 2 || tb->shape[0] != tt->shape[0] ||
            tb->shape[1] != tt->shape[1] || tb->shape[1] == 0) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: tensor \"%s\": shape differs from %s's or is not [n, V]",
                      tpath, tb->name, bpath);
            break;
        }
        size_t rows = tb->shape[0], V = tb->shape[1];
        char tn[600];
        snprintf(tn, sizeof tn, "targets/%s", rid);
        const mxv_st_tensor *gb = mxv_st_find(bf, tn), *gt = mxv_st_find(tf, tn);
        long pb = prompt_len(bf, rid, (long)rows, err, len, &rc);
        long pt = rc ? 0 : prompt_len(tf, rid, (long)rows, err, len, &rc);
        if (rc)
            break;
        if (pb != pt) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: metadata \"prompt_len/%s\" is %ld but %ld in %s", tpath, rid, pt, pb,
                      bpath);
            break;
        }
        if ((gb == NULL) != (gt == NULL) ||
            (gb && (gb->numel != rows || gt->numel != rows ||
                    (gb->dtype != MXV_ST_I32 && gb->dtype != MXV_ST_I64) ||
                    (gt->dtype != MXV_ST_I32 && gt->dtype != MXV_ST_I64)))) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: tensor \"%s\": missing in one run, or not I32/I64 [%zu]", tpath, tn,
                      rows);
            break;
        }
        if (V > Vmax) {
            free(x);
            free(y);
            free(scratch);
            x = malloc(V * sizeof *x);
            y = malloc(V * sizeof *y);
            scratch = malloc(2 * V * sizeof *scratch);
            Vmax = V;
            if (!x || !y || !scratch) {
                rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
                break;
            }
        }
        d->kld_requests++;
        for (size_t r = 0; r < (size_t)pb && !rc; r++) {
            if (gb && target_at(gb, r) != target_at(gt, r)) {
                rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                          "%s: tensor \"%s\": prompt token %zu is %lld but %lld in %s (the "
                          "runs must see the same prompts)", tpath, tn, r,
                          (long long)target_at(gt, r), (long long)target_at(gb, r), bpath);
                break;
            }
            if (row_values(tb, r, V, x) || row_values(tt, r, V, y)) {
                rc = mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": dtype %s is not F32, "
                          "F64 or BF16", tpath, tb->name, mxv_st_dtype_name(tb->dtype));
                break;
            }
            double v = mxv_kld_logits(x, y, V, scratch);
            if (isnan(v)) {
                rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                          "%s: tensor \"%s\": row %zu cannot be normalized (NaN or +inf)",
                          tpath, tb->name, r);
                break;
            }
            size_t ax = 0, ay = 0;
            for (size_t q = 1; q < V; q++) {
                ax = x[q] > x[ax] ? q : ax;
                ay = y[q] > y[ay] ? q : ay;
            }
            same += ax == ay;
            if (n == cap) {
                double *nk = realloc(kl, 2 * cap * sizeof *nk);
                if (!nk) {
                    rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
                    break;
                }
                kl = nk;
                cap *= 2;
            }
            kl[n++] = v < 0 ? 0 : v;
        }
    }
    if (!kl && !rc)
        rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
    if (!rc && n) {
        d->has_kld = 1;
        d->kld_n = n;
        d->kld_mean = mxv_sum(kl, n) / (double)n;
        d->kld_se = n > 1 ? gsl_stats_sd(kl, 1, n) / sqrt((double)n) : 0;
        gsl_sort(kl, 1, n);
        d->kld_max = kl[n - 1];
        d->kld_p99 = gsl_stats_quantile_from_sorted_data(kl, 1, n, 0.99);
        d->same_top1 = (double)same / (double)n;
    }
    free(kl);
    free(x);
    free(y);
    free(scratch);
    mxv_st_close(bf);
    mxv_st_close(tf);
    return rc;
}

