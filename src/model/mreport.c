/* mreport.c -- model check reports (mreport.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "model/mreport.h"
#include "out.h"

/* ---- text buffer ------------------------------------------------------- */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int m = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (m < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && (size_t)m < room) {
            b->n += (size_t)m;
            return;
        }
        size_t c = (b->cap + (size_t)m + 1) * 2;
        char *p = realloc(b->s, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = c;
    }
}

static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    return b->s ? b->s : strdup("");
}

/* ---- judging ------------------------------------------------------------ */
static void add_why(mxv_mverdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_why(mxv_mverdict *v, const char *fmt, ...)
{
    size_t l = strlen(v->why);
    if (l && l + 2 < sizeof v->why) {
        strcat(v->why, "; ");
        l += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why + l, sizeof v->why - l, fmt, ap);
    va_end(ap);
    v->pass = 0;
}

void mxv_compare_judge(const mxv_compare *c, const mxv_mtol_entry *e,
                       mxv_mverdict *v)
{
    v->judged = e != NULL;
    v->pass = 1;
    v->why[0] = 0;
    if (!e)
        return;
    snprintf(v->entry, sizeof v->entry, "%s/%s/%s", e->model, e->policy,
             e->device);
    const mxv_cmp_group *g = &c->g[0];
    /* top-k runs: the estimate is a lower bound; judge estimate + bound */
    double mean = g->kld.mean +
                  (c->kind == MXV_RUN_TOPK ? g->mean_bound_obs : 0);
    if (isnan(e->max_mean_kld))
        add_why(v, "golden entry %s has no max_mean_kld", v->entry);
    else if (!(mean <= e->max_mean_kld))
        add_why(v, "mean KLD %.6g > %.6g", mean, e->max_mean_kld);
    if (isnan(e->max_p999_kld))
        add_why(v, "golden entry %s has no max_p999_kld", v->entry);
    else if (!(g->kld.pct[1] <= e->max_p999_kld))
        add_why(v, "99.9%% KLD %.6g > %.6g", g->kld.pct[1], e->max_p999_kld);
    if (isnan(e->min_same_top1))
        add_why(v, "golden entry %s has no min_same_top1", v->entry);
    else if (!(g->top1.share >= e->min_same_top1))
        add_why(v, "same top-1 %.6g < %.6g", g->top1.share, e->min_same_top1);
}

void mxv_score_judge(const mxv_score *s, double threshold, double alpha,
                     mxv_mverdict *v)
{
    v->judged = !isnan(threshold) || s->have_base;
    v->pass = 1;
    v->why[0] = 0;
    if (!isnan(threshold) && !(s->lower >= threshold))
        add_why(v, "one-sided %g%% Wilson lower bound %.6f < %.6g",
                100 * s->conf, s->lower, threshold);
    if (s->have_base && s->b > s->c && s->p_worse < alpha)
        add_why(v, "significant drop against the base: McNemar one-sided p = "
                "%.3g < %g (%zu right->wrong, %zu wrong->right)", s->p_worse,
                alpha, s->b, s->c);
}

/* ---- compare ------------------------------------------------------------ */
static const char *pct_name(int i)
{
    static const char *n[MXV_NPCT] = {"max", "99.9%", "99%", "95%", "90%",
                                      "median", "10%", "5%", "1%", "0.1%", "min"};
    return n[i];
}

static void text_group(FILE *f, const mxv_compare *c, const mxv_cmp_group *g)
{
    fprintf(f, "group %s: %zu requests, %zu positions compared\n", g->name,
            g->requests, g->positions);
    fprintf(f, "  mean KLD            %.6g ± %.6g%s\n", g->kld.mean, g->kld.se,
            c->kind == MXV_RUN_TOPK ? "  (top-k estimate: a lower bound)" : "");
    if (c->kind == MXV_RUN_TOPK)
        fprintf(f, "  tail mass (BASE)    %.6g mean; estimated bias bound %.6g "
                "mean (if the tail's log-ratios stay within the top-k's)\n",
                g->mean_p_tail, g->mean_bound_obs);
    fprintf(f, "  KLD percentiles    ");
    for (int i = 0; i < MXV_NPCT; i++)
        fprintf(f, " %s %.6g", pct_name(i), g->kld.pct[i]);
    fputc('\n', f);
    if (g->dp.n) {
        fprintf(f, "  delta-p             %.4f %% ± %.4f %%, RMS %.4f %%"
                "  (p_TEST - p_BASE of the reference token)\n",
                100 * g->dp.mean, 100 * g->dp.se, 100 * g->dp.rms);
        fprintf(f, "  delta-p percentiles");
        for (int i = 0; i < MXV_NPCT; i++)
            fprintf(f, " %s %.4f%%", pct_name(i), 100 * g->dp.pct[i]);
        fputc('\n', f);
        fprintf(f, "  ln(PPL(TEST)/PPL(BASE)) %.6g ± %.6g; PPL(BASE) %.6g, "
                "PPL(TEST) %.6g, ratio %.6g; Cor(ln p_BASE, ln p_TEST) %.6f\n",
                g->lppl.mean, g->lppl.se, g->ppl_base, g->ppl_test,
                exp(g->lppl.mean), g->ln_corr);
    }
    if (g->ref_unknown)
        fprintf(f, "  reference token unknown at %zu positions (no delta-p, "
                "no PPL there)\n", g->ref_unknown);
    fprintf(f, "  same top-1          %.4f %% ± %.4f %% (%zu of %zu)\n",
            100 * g->top1.share, 100 * g->top1.se, g->top1.k, g->top1.n);
    if (g->gen_requests) {
        fprintf(f, "  greedy divergence   %zu of %zu generating requests",
                g->diverged, g->gen_requests);
        if (g->diverged)
            fprintf(f, "; first differing token: min %.0f, median %.1f, max %.0f",
                    g->div_at.pct[10], g->div_at.pct[5], g->div_at.pct[0]);
        fprintf(f, "; %zu positions after divergence not compared\n",
                g->not_compared);
    }
    if (g->empty_support)
        fprintf(f, "  %zu positions share no token between the runs' top-k\n",
                g->empty_support);
    if (c->topk_check)
        fprintf(f, "  top-k check (k=%zu) estimate %.6g mean, bias %.6g mean "
                "(max %.6g), proven bound %.6g mean; %zu positions outside "
                "[0, bound]\n", c->topk_check, g->tk_est.mean, g->tk_bias.mean,
                g->tk_bias.pct[0], g->tk_bound.mean, g->tk_violations);
}

void mxv_compare_text(FILE *f, const mxv_compare *c, const char *base,
                      const char *test, const mxv_mverdict *v)
{
    fprintf(f, "mxverify model compare: BASE %s, TEST %s\n", base, test);
    if (c->kind == MXV_RUN_FULL)
        fprintf(f, "full log-probs, vocabulary %zu: exact KLD\n", c->k);
    else
        fprintf(f, "top-%zu log-probs: KLD estimated on the top-k support plus "
                "one tail bucket\n", c->k);
    for (size_t i = 0; i < c->ng; i++)
        text_group(f, c, &c->g[i]);
    size_t shown = 0, nd = 0;
    for (size_t i = 0; i < c->nreq; i++)
        nd += c->req[i].diverged_at >= 0;
    for (size_t i = 0; i < c->nreq && shown < 10; i++)
        if (c->req[i].diverged_at >= 0)
            fprintf(f, "%s \"%s\" at token %ld", shown++ ? "," : "diverged:",
                    c->req[i].key, c->req[i].diverged_at);
    if (shown)
        fprintf(f, "%s\n", nd > shown ? ", ... (all in --json)" : "");
    if (!v->judged)
        fprintf(f, "verdict: not judged (no golden tolerances given)\n");
    else
        fprintf(f, "verdict: %s against %s%s%s\n", v->pass ? "PASS" : "FAIL",
                v->entry, v->pass ? "" : ": ", v->why);
}

static void jnum(cJSON *o, const char *k, double x)
{
    if (isfinite(x))
        cJSON_AddNumberToObject(o, k, x);
    else if (isnan(x))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddStringToObject(o, k, x > 0 ? "inf" : "-inf");
}

static cJSON *jsummary(const mxv_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    jnum(o, "mean", s->mean);
    jnum(o, "se", s->se);
    jnum(o, "rms", s->rms);
    cJSON *p = cJSON_AddObjectToObject(o, "percentiles");
    for (int i = 0; i < MXV_NPCT; i++) {
        char k[16];
        snprintf(k, sizeof k, "%g", mxv_pct_levels[i]);
        jnum(p, k, s->pct[i]);
    }
    return o;
}

static cJSON *jverdict(const mxv_mverdict *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "judged", v->judged);
    if (v->judged) {
        cJSON_AddBoolToObject(o, "pass", v->pass);
        cJSON_AddStringToObject(o, "against", v->entry);
        if (v->golden[0])
            cJSON_AddStringToObject(o, "golden", v->golden);
        if (!v->pass)
            cJSON_AddStringToObject(o, "why", v->why);
    }
    return o;
}

char *mxv_compare_json(const mxv_compare *c, const char *base,
                       const char *test, const mxv_mverdict *v)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "tool", "mxverify model compare");
    cJSON_AddStringToObject(r, "schema", "mxverify-model-compare/1");
    cJSON_AddStringToObject(r, "base", base);
    cJSON_AddStringToObject(r, "test", test);
    cJSON_AddStringToObject(r, "kind", c->kind == MXV_RUN_FULL ? "full" : "topk");
    cJSON_AddNumberToObject(r, c->kind == MXV_RUN_FULL ? "vocab" : "k",
                            (double)c->k);
    cJSON *gs = cJSON_AddArrayToObject(r, "groups");
    for (size_t i = 0; i < c->ng; i++) {
        const mxv_cmp_group *g = &c->g[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", g->name);
        cJSON_AddNumberToObject(o, "requests", (double)g->requests);
        cJSON_AddNumberToObject(o, "positions", (double)g->positions);
        cJSON_AddItemToObject(o, "kld", jsummary(&g->kld));
        if (c->kind == MXV_RUN_TOPK) {
            jnum(o, "mean_tail_mass", g->mean_p_tail);
            jnum(o, "mean_bias_bound_obs", g->mean_bound_obs);
            cJSON_AddNumberToObject(o, "empty_support", (double)g->empty_support);
        }
        if (c->topk_check) {
            cJSON *t = cJSON_AddObjectToObject(o, "topk_check");
            cJSON_AddNumberToObject(t, "k", (double)c->topk_check);
            cJSON_AddItemToObject(t, "estimate", jsummary(&g->tk_est));
            cJSON_AddItemToObject(t, "bias", jsummary(&g->tk_bias));
            cJSON_AddItemToObject(t, "bound", jsummary(&g->tk_bound));
            cJSON_AddNumberToObject(t, "outside_bound", (double)g->tk_violations);
        }
        cJSON_AddItemToObject(o, "delta_p", jsummary(&g->dp));
        cJSON *lp = cJSON_AddObjectToObject(o, "log_ppl_ratio");
        jnum(lp, "mean", g->lppl.mean);
        jnum(lp, "se", g->lppl.se);
        jnum(o, "ppl_base", g->ppl_base);
        jnum(o, "ppl_test", g->ppl_test);
        jnum(o, "ln_p_correlation", g->ln_corr);
        cJSON_AddNumberToObject(o, "ref_unknown", (double)g->ref_unknown);
        cJSON *t1 = cJSON_AddObjectToObject(o, "same_top1");
        cJSON_AddNumberToObject(t1, "k", (double)g->top1.k);
        cJSON_AddNumberToObject(t1, "n", (double)g->top1.n);
        jnum(t1, "share", g->top1.share);
        jnum(t1, "se", g->top1.se);
        cJSON *dv = cJSON_AddObjectToObject(o, "divergence");
        cJSON_AddNumberToObject(dv, "generating_requests", (double)g->gen_requests);
        cJSON_AddNumberToObject(dv, "diverged", (double)g->diverged);
        cJSON_AddNumberToObject(dv, "positions_not_compared", (double)g->not_compared);
        cJSON_AddItemToObject(dv, "first_token", jsummary(&g->div_at));
        cJSON_AddItemToArray(gs, o);
    }
    cJSON *rq = cJSON_AddArrayToObject(r, "requests");
    for (size_t i = 0; i < c->nreq; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", c->req[i].key);
        if (c->req[i].group)
            cJSON_AddStringToObject(o, "group", c->req[i].group);
        cJSON_AddNumberToObject(o, "positions", (double)c->req[i].compared);
        if (c->req[i].diverged_at >= 0)
            cJSON_AddNumberToObject(o, "diverged_at", (double)c->req[i].diverged_at);
        else
            cJSON_AddNullToObject(o, "diverged_at");
        cJSON_AddItemToArray(rq, o);
    }
    cJSON_AddItemToObject(r, "verdict", jverdict(v));
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}

char *mxv_compare_md(const mxv_compare *c, const char *base, const char *test,
                     const mxv_mverdict *v)
{
    sbuf b = {0};
    sb(&b, "## mxverify model compare\n\nBASE `%s`, TEST `%s`: %s\n\n", base,
       test, c->kind == MXV_RUN_FULL ? "full log-probs (exact KLD)"
                                     : "top-k log-probs (KLD estimate, a lower bound)");
    sb(&b, "| group | requests | positions | mean KLD ± SE | 99.9%% KLD | max KLD "
           "| mean Δp ± SE | RMS Δp | same top-1 ± SE | ln PPL ratio ± SE | "
           "diverged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < c->ng; i++) {
        const mxv_cmp_group *g = &c->g[i];
        sb(&b, "| %s | %zu | %zu | %.4g ± %.2g | %.4g | %.4g | %.4f%% ± %.4f%% | "
               "%.4f%% | %.3f%% ± %.3f%% | %.4g ± %.2g | %zu/%zu |\n",
           g->name, g->requests, g->positions, g->kld.mean, g->kld.se,
           g->kld.pct[1], g->kld.pct[0], 100 * g->dp.mean, 100 * g->dp.se,
           100 * g->dp.rms, 100 * g->top1.share, 100 * g->top1.se,
           g->lppl.mean, g->lppl.se, g->diverged, g->gen_requests);
    }
    if (!v->judged)
        sb(&b, "\n**Verdict:** not judged (no golden tolerances given)\n");
    else
        sb(&b, "\n**Verdict:** %s against `%s`%s%s\n", v->pass ? "PASS" : "FAIL",
           v->entry, v->pass ? "" : ": ", v->why);
    return sb_take(&b);
}

/* ---- score ------------------------------------------------------------- */
void mxv_score_text(FILE *f, const mxv_score *s, const mxv_samples *test,
                    const mxv_samples *base, double threshold, double alpha,
                    const mxv_mverdict *v)
{
    fprintf(f, "mxverify model score: %s (metric %s, filter %s)\n", test->path,
            test->metric, test->filter);
    fprintf(f, "  accuracy            %.6f (%zu of %zu)\n", s->acc, s->k, s->n);
    fprintf(f, "  Wilson 95%%          [%.6f, %.6f]\n", s->lo95, s->hi95);
    fprintf(f, "  one-sided %g%% lower %.6f", 100 * s->conf, s->lower);
    if (!isnan(threshold))
        fprintf(f, "  (threshold %.6g)", threshold);
    fputc('\n', f);
    if (s->have_base) {
        fprintf(f, "  base %s: accuracy %.6f (%zu of %zu)\n", base->path,
                (double)s->base_k / (double)s->n, s->base_k, s->n);
        fprintf(f, "  McNemar exact       %zu right->wrong, %zu wrong->right; "
                "p two-sided %.6g, p (TEST worse) %.6g, alpha %g\n", s->b, s->c,
                s->p_two, s->p_worse, alpha);
    }
    if (!v->judged)
        fprintf(f, "verdict: not judged (no threshold and no base)\n");
    else
        fprintf(f, "verdict: %s%s%s%s%s\n", v->pass ? "PASS" : "FAIL",
                v->entry[0] ? " against " : "", v->entry, v->pass ? "" : ": ",
                v->why);
}

char *mxv_score_json(const mxv_score *s, const mxv_samples *test,
                     const mxv_samples *base, double threshold, double alpha,
                     const mxv_mverdict *v)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "tool", "mxverify model score");
    cJSON_AddStringToObject(r, "schema", "mxverify-model-score/1");
    cJSON_AddStringToObject(r, "run", test->path);
    cJSON_AddStringToObject(r, "metric", test->metric);
    cJSON_AddStringToObject(r, "filter", test->filter);
    cJSON_AddNumberToObject(r, "k", (double)s->k);
    cJSON_AddNumberToObject(r, "n", (double)s->n);
    jnum(r, "accuracy", s->acc);
    cJSON *w = cJSON_AddObjectToObject(r, "wilson95");
    jnum(w, "lo", s->lo95);
    jnum(w, "hi", s->hi95);
    jnum(r, "lower_bound", s->lower);
    jnum(r, "lower_bound_level", s->conf);
    jnum(r, "threshold", threshold);
    if (s->have_base) {
        cJSON *m = cJSON_AddObjectToObject(r, "mcnemar");
        cJSON_AddStringToObject(m, "base", base->path);
        cJSON_AddNumberToObject(m, "base_k", (double)s->base_k);
        cJSON_AddNumberToObject(m, "right_to_wrong", (double)s->b);
        cJSON_AddNumberToObject(m, "wrong_to_right", (double)s->c);
        jnum(m, "p_two_sided", s->p_two);
        jnum(m, "p_worse", s->p_worse);
        jnum(m, "alpha", alpha);
    }
    cJSON_AddItemToObject(r, "verdict", jverdict(v));
    char *t = cJSON_Print(r);
    cJSON_Delete(r);
    return t;
}

char *mxv_score_md(const mxv_score *s, const mxv_samples *test,
                   const mxv_samples *base, double threshold, double alpha,
                   const mxv_mverdict *v)
{
    sbuf b = {0};
    char thr[32] = "-";
    if (!isnan(threshold))
        snprintf(thr, sizeof thr, "%.4g", threshold);
    sb(&b, "## mxverify model score\n\n`%s` (metric `%s`, filter `%s`)\n\n"
           "| accuracy | n | Wilson 95%% | one-sided %g%% lower | threshold |\n"
           "|---:|---:|---:|---:|---:|\n| %.4f | %zu | [%.4f, %.4f] | %.4f | %s |\n",
       test->path, test->metric, test->filter, 100 * s->conf, s->acc, s->n,
       s->lo95, s->hi95, s->lower, thr);
    if (s->have_base)
        sb(&b, "\nBase `%s`: accuracy %.4f. McNemar exact: %zu right→wrong, "
               "%zu wrong→right, p two-sided %.4g, p (TEST worse) %.4g (alpha "
               "%g)\n", base->path, (double)s->base_k / (double)s->n, s->b,
           s->c, s->p_two, s->p_worse, alpha);
    if (!v->judged)
        sb(&b, "\n**Verdict:** not judged (no threshold and no base)\n");
    else
        sb(&b, "\n**Verdict:** %s%s%s\n", v->pass ? "PASS" : "FAIL",
           v->entry[0] ? " against " : "", v->entry);
    if (v->judged && !v->pass)
        sb(&b, "\n%s\n", v->why);
    return sb_take(&b);
}

int mxv_write_file_atomic(const char *path, const char *text, char *err,
                          size_t len)
{
    return mxv_out_write_text(path, text, err, len) ? -1 : 0;
}
