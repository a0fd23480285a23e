/* gatecheck.c -- model checks for the gate (gatecheck.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "model/compare.h"
#include "model/gatecheck.h"
#include "model/mreport.h"
#include "model/run.h"
#include "model/score.h"
#include "model/tolerance.h"

int mxv_model_entry_parse(const char *s, char *model, char *policy,
                          char *device, size_t n)
{
    const char *a = strchr(s, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || strchr(b + 1, '/') || a == s || b == a + 1 || !b[1] ||
        (size_t)(a - s) >= n || (size_t)(b - a - 1) >= n || strlen(b + 1) >= n)
        return -1;
    snprintf(model, n, "%.*s", (int)(a - s), s);
    snprintf(policy, n, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(device, n, "%s", b + 1);
    return 0;
}

static int load_entry(const char *golden, const char *entry, mxv_mtol *g,
                      const mxv_mtol_entry **e, char *err, size_t len)
{
    char m[48], p[48], d[48];
    if (mxv_model_entry_parse(entry, m, p, d, sizeof m))
        return snprintf(err, len, "model entry '%s' is not MODEL/POLICY/DEVICE",
                        entry), MXV_EXIT_USAGE;
    if (mxv_mtol_load(golden, g, err, len))
        return MXV_EXIT_BADINPUT;
    *e = mxv_mtol_find(g, m, p, d);
    if (!*e) {
        snprintf(err, len, "%s: no entry for model %s, policy %s, device %s",
                 golden, m, p, d);
        mxv_mtol_free(g);
        return MXV_EXIT_BADINPUT;
    }
    return 0;
}

void mxv_model_check_free(mxv_model_check *c)
{
    free(c->json);
    c->json = NULL;
}

int mxv_model_check_compare(const char *base, const char *test,
                            const char *golden, const char *entry,
                            mxv_model_check *c, char *err, size_t len)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "model compare %s %s", base, test);
    snprintf(c->entry, sizeof c->entry, "%s", entry);
    mxv_mtol g = {0};
    const mxv_mtol_entry *e;
    int rc = load_entry(golden, entry, &g, &e, err, len);
    if (rc)
        return rc;
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run rb = {0}, rt = {0};
    mxv_compare cmp = {0};
    if (!toks) {
        snprintf(err, len, "out of memory");
        rc = MXV_EXIT_INTERNAL;
        goto out;
    }
    if ((rc = mxv_run_load(base, toks, MXV_MATCH_ID, &rb, err, len)) ||
        (rc = mxv_run_load(test, toks, MXV_MATCH_ID, &rt, err, len)) ||
        (rc = mxv_compare_runs(&rb, &rt, &cmp, err, len)))
        goto out;
    mxv_mverdict v = {0};
    snprintf(v.golden, sizeof v.golden, "%s", golden);
    mxv_compare_judge(&cmp, e, &v);
    c->pass = v.pass;
    snprintf(c->why, sizeof c->why, "%s", v.why);
    const mxv_cmp_group *a = &cmp.g[0];
    snprintf(c->summary, sizeof c->summary,
             "%s KLD mean %.4g (99.9%% %.4g), same top-1 %.4f, %zu positions",
             cmp.kind == MXV_RUN_FULL ? "exact" : "top-k", a->kld.mean,
             a->kld.pct[1], a->top1.share, a->positions);
    if (!(c->json = mxv_compare_json(&cmp, base, test, &v))) {
        snprintf(err, len, "out of memory");
        rc = MXV_EXIT_INTERNAL;
    }
out:
    mxv_compare_free(&cmp);
    mxv_run_free(&rb);
    mxv_run_free(&rt);
    mxv_tokens_free(toks);
    mxv_mtol_free(&g);
    return rc;
}

int mxv_model_check_score(const char *run, const char *base,
                          const char *golden, const char *entry,
                          mxv_model_check *c, char *err, size_t len)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "model score %s", run);
    snprintf(c->entry, sizeof c->entry, "%s", entry);
    mxv_mtol g = {0};
    const mxv_mtol_entry *e;
    int rc = load_entry(golden, entry, &g, &e, err, len);
    if (rc)
        return rc;
    if (isnan(e->min_score)) {
        snprintf(err, len, "%s: entry %s has no min_score", golden, entry);
        mxv_mtol_free(&g);
        return MXV_EXIT_BADINPUT;
    }
    mxv_samples st = {0}, sb = {0};
    mxv_score s;
    const char *metric = e->metric[0] ? e->metric : "exact_match";
    const char *filter = e->filter[0] ? e->filter : NULL;
    if ((rc = mxv_samples_load(run, metric, filter, &st, err, len)) ||
        (base && (rc = mxv_samples_load(base, metric, st.filter, &sb, err, len))) ||
        (rc = mxv_score_runs(&st, base ? &sb : NULL, 0.95, &s, err, len)))
        goto out;
    mxv_mverdict v = {0};
    mxv_score_judge(&s, e->min_score, 0.05, &v);
    snprintf(v.entry, sizeof v.entry, "%s (%s)", entry, e->task);
    c->pass = v.pass;
    snprintf(c->why, sizeof c->why, "%s", v.why);
    snprintf(c->summary, sizeof c->summary,
             "%s accuracy %.4f (%zu/%zu), one-sided 95%% lower %.4f >= %.4g?%s",
             e->task, s.acc, s.k, s.n, s.lower, e->min_score,
             s.have_base ? " McNemar vs base" : "");
    if (!(c->json = mxv_score_json(&s, &st, base ? &sb : NULL, e->min_score,
                                   0.05, &v))) {
        snprintf(err, len, "out of memory");
        rc = MXV_EXIT_INTERNAL;
    }
out:
    mxv_samples_free(&st);
    mxv_samples_free(&sb);
    mxv_mtol_free(&g);
    return rc;
}
