/* compare.c -- position-by-position comparison of two runs (compare.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include <gsl/gsl_statistics_double.h>
#include "model/compare.h"

typedef struct {
    double *v;
    size_t n, cap;
} vec;

static int vpush(vec *v, double x)
{
    if (v->n == v->cap) {
        size_t c = v->cap ? 2 * v->cap : 256;
        double *p = realloc(v->v, c * sizeof *p);
        if (!p)
            return -1;
        v->v = p;
        v->cap = c;
    }
    v->v[v->n++] = x;
    return 0;
}

typedef struct {
    vec kld, dp, lppl, div, tk_est, tk_bias, tk_bound, lb, lt;
    size_t tk_violations;
    size_t top1, requests, positions, ref_unknown, gen_requests, diverged,
        not_compared, empty_support;
    double p_tail, bound_obs;
} acc;

static int fail(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return code;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* top-1 of a list: largest log-prob, ties to the smaller key */
static int64_t top1_of(const mxv_tok_lp *t, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (t[i].lp > t[b].lp || (t[i].lp == t[b].lp && t[i].tok < t[b].tok))
            b = i;
    return n ? t[b].tok : MXV_TOK_NONE;
}

static size_t argmax(const double *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* a run's log-prob for token tok at position p (top list or ref), NaN */
static double lp_of(const mxv_run *r, const mxv_pos *p, int64_t tok)
{
    if (tok == MXV_TOK_NONE)
        return NAN;
    if (p->ref == tok && !isnan(p->ref_lp))
        return p->ref_lp;
    for (uint32_t i = 0; i < p->k; i++)
        if (r->tops[p->top + i].tok == tok)
            return r->tops[p->top + i].lp;
    return NAN;
}

/* list of a position: its top entries plus the reference token if absent */
static size_t list_of(const mxv_run *r, const mxv_pos *p, mxv_tok_lp *buf)
{
    size_t n = p->k;
    memcpy(buf, r->tops + p->top, n * sizeof *buf);
    if (p->ref != MXV_TOK_NONE && !isnan(p->ref_lp)) {
        int have = 0;
        for (size_t i = 0; i < n; i++)
            have |= buf[i].tok == p->ref;
        if (!have)
            buf[n++] = (mxv_tok_lp){p->ref, p->ref_lp};
    }
    return n;
}

void mxv_compare_free(mxv_compare *c)
{
    for (size_t i = 0; i < c->ng; i++)
        free(c->g[i].name);
    free(c->g);
    for (size_t i = 0; i < c->nreq; i++) {
        free(c->req[i].key);
        free(c->req[i].group);
    }
    free(c->req);
    memset(c, 0, sizeof *c);
}

int mxv_compare_runs(const mxv_run *base, const mxv_run *test,
                     mxv_compare *out, char *err, size_t len)
{
    return mxv_compare_runs_opt(base, test, NULL, out, err, len);
}

int mxv_compare_runs_opt(const mxv_run *base, const mxv_run *test,
                         const mxv_compare_opts *o, mxv_compare *out,
                         char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    size_t tk = o ? o->topk_check : 0;
    if (tk && base->kind != MXV_RUN_FULL)
        return fail(err, len, MXV_EXIT_USAGE, "the top-k check needs full "
                    "log-probs (safetensors runs), %s has top-k lists", base->path);
    if (tk && base->kind == MXV_RUN_FULL && tk > base->k)
        return fail(err, len, MXV_EXIT_USAGE, "the top-k check's k = %zu exceeds "
                    "the vocabulary (%zu)", tk, base->k);
    const char *bp = base->path, *tp = test->path;
    if (base->kind != test->kind)
        return fail(err, len, MXV_EXIT_BADINPUT,
                    "%s: %s, but %s: %s: give both runs as the same kind",
                    bp, base->kind == MXV_RUN_FULL ? "full log-probs" : "top-k log-probs",
                    tp, test->kind == MXV_RUN_FULL ? "full log-probs" : "top-k log-probs");
    if (base->kind == MXV_RUN_TOPK && base->k != test->k)
        return fail(err, len, MXV_EXIT_BADINPUT,
                    "%s: top-k lists of k = %zu, %s: k = %zu (top-k lists of "
                    "different k)", bp, base->k, tp, test->k);
    if (base->kind == MXV_RUN_FULL && base->k != test->k)
        return fail(err, len, MXV_EXIT_BADINPUT,
                    "%s: vocabulary of %zu, %s: %zu", bp, base->k, tp, test->k);
    if (base->kind == MXV_RUN_TOPK &&
        (base->tok_ids != test->tok_ids || base->tok_text != test->tok_text))
        return fail(err, len, MXV_EXIT_BADINPUT,
                    "%s: tokens as %s, %s: tokens as %s (different "
                    "tokenization: use return_tokens_as_token_ids in both)",
                    bp, base->tok_ids ? "token ids" : "text", tp,
                    test->tok_ids ? "token ids" : "text");
    /* the same request sets */
    for (size_t i = 0; i < base->nreq; i++)
        if (!mxv_run_find(test, base->req[i].key))
            return fail(err, len, MXV_EXIT_BADINPUT,
                        "%s: request \"%.200s\" (line %zu) is not in %s",
                        bp, base->req[i].key, base->req[i].line, tp);
    for (size_t i = 0; i < test->nreq; i++)
        if (!mxv_run_find(base, test->req[i].key))
            return fail(err, len, MXV_EXIT_BADINPUT,
                        "%s: request \"%.200s\" (line %zu) is not in %s",
                        tp, test->req[i].key, test->req[i].line, bp);
    /* groups: "all", then the distinct tags in byte order */
    char **names = malloc((base->nreq + 1) * sizeof *names);
    size_t nn = 0;
    int untagged = 0;
    if (!names)
        return fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
    for (size_t i = 0; i < base->nreq; i++) {
        const mxv_req *b = &base->req[i], *t = mxv_run_find(test, b->key);
        const char *gb = b->group ? b->group : "", *gt = t->group ? t->group : "";
        if (strcmp(gb, gt)) {
            free(names);
            return fail(err, len, MXV_EXIT_BADINPUT,
                        "request \"%.200s\": group \"%.60s\" in %s, \"%.60s\" "
                        "in %s", b->key, gb, bp, gt, tp);
        }
        if (b->group)
            names[nn++] = b->group;
        else
            untagged = 1;
    }
    qsort(names, nn, sizeof *names, str_cmp);
    size_t nd = 0;
    for (size_t i = 0; i < nn; i++)
        if (!nd || strcmp(names[nd - 1], names[i]))
            names[nd++] = names[i];
    if (nd && untagged)
        names[nd++] = "untagged";
    size_t ng = 1 + nd;
    acc *a = calloc(ng, sizeof *a);
    out->g = calloc(ng, sizeof *out->g);
    out->req = calloc(base->nreq, sizeof *out->req);
    size_t vocab = base->kind == MXV_RUN_FULL ? base->k : 0;
    double *rows = vocab ? malloc(2 * vocab * sizeof *rows) : NULL;
    size_t kmax = base->k + 2 > test->k + 2 ? base->k + 2 : test->k + 2;
    mxv_tok_lp *lb = base->kind == MXV_RUN_TOPK ? malloc(kmax * sizeof *lb) : NULL;
    mxv_tok_lp *lt = base->kind == MXV_RUN_TOPK ? malloc(kmax * sizeof *lt) : NULL;
    int rc = 0;
    if (!a || !out->g || !out->req || (vocab && !rows) ||
        (base->kind == MXV_RUN_TOPK && (!lb || !lt))) {
        rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
        goto done;
    }
    out->ng = ng;
    out->kind = base->kind;
    out->k = base->k;
    out->topk_check = tk;
    for (size_t gi = 0; gi < ng; gi++)
        if (!(out->g[gi].name = strdup(gi ? names[gi - 1] : "all"))) {
            rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
            goto done;
        }
    for (size_t ri = 0; ri < base->nreq; ri++) {
        const mxv_req *b = &base->req[ri], *t = mxv_run_find(test, b->key);
        size_t gsel[2] = {0, 0};
        if (nd) {
            const char *gn = b->group ? b->group : "untagged";
            for (size_t gi = 0; gi < nd; gi++)
                if (!strcmp(names[gi], gn))
                    gsel[1] = gi + 1;
        }
        mxv_cmp_req *cr = &out->req[out->nreq++];
        cr->diverged_at = -1;
        if (!(cr->key = strdup(b->key)) ||
            (b->group && !(cr->group = strdup(b->group)))) {
            rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
            goto done;
        }
        /* prompt token ids, when both runs give them */
        if (b->prompt_ids && t->prompt_ids) {
            size_t n = b->nprompt < t->nprompt ? b->nprompt : t->nprompt;
            for (size_t i = 0; i < n; i++)
                if (b->prompt_ids[i] != t->prompt_ids[i]) {
                    rc = fail(err, len, MXV_EXIT_BADINPUT,
                              "request \"%.200s\": prompt position %zu: token "
                              "%lld in %s (line %zu), %lld in %s (line %zu) "
                              "(different prompt tokens)", b->key, i,
                              (long long)b->prompt_ids[i], bp, b->line,
                              (long long)t->prompt_ids[i], tp, t->line);
                    goto done;
                }
            if (b->nprompt != t->nprompt) {
                rc = fail(err, len, MXV_EXIT_BADINPUT,
                          "request \"%.200s\": %zu prompt tokens in %s, %zu in "
                          "%s (different prompt tokens)", b->key, b->nprompt,
                          bp, t->nprompt, tp);
                goto done;
            }
        }
        size_t npb = 0, npt = 0;
        for (size_t i = 0; i < b->npos; i++)
            npb += b->pos[i].prompt;
        for (size_t i = 0; i < t->npos; i++)
            npt += t->pos[i].prompt;
        if (npb != npt) {
            rc = fail(err, len, MXV_EXIT_BADINPUT,
                      "request \"%.200s\": %zu prompt positions in %s, %zu in "
                      "%s (different tokenization)", b->key, npb, bp, npt, tp);
            goto done;
        }
        int gen = b->npos > npb || t->npos > npt;
        size_t n = b->npos < t->npos ? b->npos : t->npos;
        long div = -1;
        size_t i;
        for (i = 0; i < n; i++) {
            const mxv_pos *pb = &b->pos[i], *pt = &t->pos[i];
            if (pb->prompt && pb->ref != MXV_TOK_NONE &&
                pt->ref != MXV_TOK_NONE && pb->ref != pt->ref) {
                rc = fail(err, len, MXV_EXIT_BADINPUT,
                          "request \"%.200s\": prompt position %zu: token %lld "
                          "in %s (line %zu), %lld in %s (line %zu) (different "
                          "prompt tokens)", b->key, pb->index,
                          (long long)pb->ref, bp, b->line, (long long)pt->ref,
                          tp, t->line);
                goto done;
            }
            double kld, lpb, lpt;
            int same1;
            int64_t ref = pb->ref;
            if (base->kind == MXV_RUN_FULL) {
                if ((rc = mxv_run_row(base, b, i, rows, err, len)) ||
                    (rc = mxv_run_row(test, t, i, rows + vocab, err, len)))
                    goto done;
                kld = mxv_kld_logprobs(rows, rows + vocab, vocab);
                same1 = argmax(rows, vocab) == argmax(rows + vocab, vocab);
                mxv_kld_topk_check tc;
                if (tk && mxv_kld_topk_from_full(rows, rows + vocab, vocab, tk,
                                                 &tc) != 0) {
                    rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                    goto done;
                }
                for (size_t s = 0; tk && s < 2; s++) {
                    acc *x = &a[gsel[s]];
                    double bias = tc.exact - tc.estimate;
                    /* rounding: a few ulps of the exact KLD's terms */
                    double slack = 1e-12 * tc.exact + 1e-15;
                    x->tk_violations += !(bias >= -slack &&
                                          bias <= tc.bias_bound + slack);
                    if (vpush(&x->tk_est, tc.estimate) ||
                        vpush(&x->tk_bias, bias) ||
                        vpush(&x->tk_bound, tc.bias_bound)) {
                        rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                        goto done;
                    }
                    if (!nd)
                        break;
                }
                lpb = rows[ref];
                lpt = rows[vocab + ref];
            } else {
                size_t nb = list_of(base, pb, lb), nt = list_of(test, pt, lt);
                mxv_kld_est e;
                if (mxv_kld_topk(lb, nb, lt, nt, 0x1p-24 * (double)(nb < nt ? nb : nt),
                                 &e) != 0) {
                    rc = fail(err, len, MXV_EXIT_BADINPUT,
                              "request \"%.200s\": position %zu: invalid top "
                              "log-prob list", b->key, pb->index);
                    goto done;
                }
                kld = e.kld;
                for (size_t s = 0; s < 2; s++) {
                    acc *x = &a[gsel[s]];
                    x->p_tail += e.p_tail;
                    x->bound_obs += e.bound_obs;
                    x->empty_support += e.support == 0;
                    if (!nd)
                        break;
                }
                same1 = top1_of(base->tops + pb->top, pb->k) ==
                        top1_of(test->tops + pt->top, pt->k);
                lpb = lp_of(base, pb, ref);
                lpt = lp_of(test, pt, ref);
            }
            for (size_t s = 0; s < 2; s++) {
                acc *x = &a[gsel[s]];
                x->positions++;
                x->top1 += same1;
                if (vpush(&x->kld, kld)) {
                    rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                    goto done;
                }
                if (isnan(lpb) || isnan(lpt)) {
                    x->ref_unknown++;
                } else if (vpush(&x->dp, exp(lpt) - exp(lpb)) ||
                           vpush(&x->lppl, lpb - lpt) || vpush(&x->lb, lpb) ||
                           vpush(&x->lt, lpt)) {
                    rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                    goto done;
                }
                if (!nd)
                    break;
            }
            cr->compared++;
            if (!pb->prompt && pb->ref != MXV_TOK_NONE &&
                pt->ref != MXV_TOK_NONE && pb->ref != pt->ref) {
                div = (long)(i - npb);
                i++;
                break;
            }
        }
        if (gen && div < 0 && b->npos != t->npos)
            div = (long)(n - npb); /* one run stopped, the other went on */
        cr->diverged_at = div;
        for (size_t s = 0; s < 2; s++) {
            acc *x = &a[gsel[s]];
            x->requests++;
            x->gen_requests += gen;
            x->not_compared += n - i;
            if (div >= 0) {
                x->diverged++;
                if (vpush(&x->div, (double)div)) {
                    rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                    goto done;
                }
            }
            if (!nd)
                break;
        }
    }
    for (size_t gi = 0; gi < ng; gi++) {
        mxv_cmp_group *g = &out->g[gi];
        acc *x = &a[gi];
        g->requests = x->requests;
        g->positions = x->positions;
        g->ppl_base = g->ppl_test = g->ln_corr = NAN;
        if (x->lb.n) {
            g->ppl_base = exp(-mxv_sum(x->lb.v, x->lb.n) / (double)x->lb.n);
            g->ppl_test = exp(-mxv_sum(x->lt.v, x->lt.n) / (double)x->lt.n);
        }
        if (x->lb.n > 1)
            g->ln_corr = gsl_stats_correlation(x->lb.v, 1, x->lt.v, 1, x->lb.n);
        if (mxv_summarize(x->kld.v, x->kld.n, &g->kld) ||
            mxv_summarize(x->dp.v, x->dp.n, &g->dp) ||
            mxv_summarize(x->lppl.v, x->lppl.n, &g->lppl) ||
            mxv_summarize(x->div.v, x->div.n, &g->div_at) ||
            mxv_summarize(x->tk_est.v, x->tk_est.n, &g->tk_est) ||
            mxv_summarize(x->tk_bias.v, x->tk_bias.n, &g->tk_bias) ||
            mxv_summarize(x->tk_bound.v, x->tk_bound.n, &g->tk_bound)) {
            rc = fail(err, len, MXV_EXIT_INTERNAL, "NaN in a statistic of "
                      "group \"%s\" (an input row NaN slipped through)", g->name);
            goto done;
        }
        g->top1 = mxv_share_of(x->top1, x->positions);
        g->ref_unknown = x->ref_unknown;
        g->gen_requests = x->gen_requests;
        g->diverged = x->diverged;
        g->not_compared = x->not_compared;
        g->empty_support = x->empty_support;
        g->tk_violations = x->tk_violations;
        g->mean_p_tail = x->positions ? x->p_tail / (double)x->positions : NAN;
        g->mean_bound_obs = x->positions ? x->bound_obs / (double)x->positions : NAN;
    }
    if (a[0].positions == 0)
        rc = fail(err, len, MXV_EXIT_BADINPUT, "%s, %s: no position to compare",
                  bp, tp);
done:
    if (a)
        for (size_t gi = 0; gi < ng; gi++) {
            free(a[gi].kld.v);
            free(a[gi].dp.v);
            free(a[gi].lppl.v);
            free(a[gi].div.v);
            free(a[gi].tk_est.v);
            free(a[gi].tk_bias.v);
            free(a[gi].tk_bound.v);
            free(a[gi].lb.v);
            free(a[gi].lt.v);
        }
    free(a);
    free(names);
    free(rows);
    free(lb);
    free(lt);
    if (rc)
        mxv_compare_free(out);
    return rc;
}
