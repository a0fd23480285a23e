/* check_model.c -- the model checks (src/model/) against independent
 * derivations:
 *   - KLD of truncated geometric distributions in closed form, (a-b) E_a[i]
 *     - log Z_a + log Z_b with Z and E from their sums' closed forms;
 *   - KLD of nearly equal random rows against MPFR at 256 bits;
 *   - the top-k estimate against the coarsened KLD written out directly,
 *     and the bias bound on random distributions;
 *   - summaries against hand-derived values;
 *   - Wilson bounds and McNemar p-values against scipy
 *     (tests/data/model_stats_ref.tsv, made by model_stats_ref.py);
 *   - `compare` end to end on safetensors and JSONL runs built here.
 */
#include <check.h>
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sort_double.h>
#include "model/compare.h"
#include "model/gatecheck.h"
#include "model/kld.h"
#include "model/run.h"
#include "model/score.h"
#include "model/stats.h"
#include "safetensors.h"
#include "testutil.h"

static int close_rel(double got, double want, double rel)
{
    if (want == 0)
        return fabs(got) <= rel;
    return fabs(got - want) <= rel * fabs(want);
}

/* ---- closed form: truncated geometric, p_i = e^{a i} / Z(a), i < n ---- */
static double logZ(double a, size_t n)
{
    /* Z = (e^{a n} - 1) / (e^a - 1) */
    return log(expm1(a * (double)n) / expm1(a));
}

static double meanI(double a, size_t n)
{
    /* d/da log Z = n e^{an} / (e^{an} - 1) - e^a / (e^a - 1) */
    double N = (double)n;
    return N * exp(a * N) / expm1(a * N) - exp(a) / expm1(a);
}

static double kl_geom(double a, double b, size_t n)
{
    return (a - b) * meanI(a, n) - logZ(a, n) + logZ(b, n);
}

static void geom_row(double a, size_t n, double *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = a * (double)i;
}

static const struct {
    double a, b;
    size_t n;
} geo[] = {
    {-0.01, -0.02, 1000},  {-0.02, -0.01, 1000},   {-1.0, -1.5, 64},
    {-0.5, -0.45, 32000},  {-1e-4, -2e-4, 200064}, {-3.0, -2.0, 200064},
    {0.01, 0.02, 500},     {-0.001, 0.001, 4096},
};

START_TEST(kld_closed_form)
{
    for (size_t c = 0; c < sizeof geo / sizeof geo[0]; c++) {
        size_t n = geo[c].n;
        double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        geom_row(geo[c].a, n, x);
        geom_row(geo[c].b, n, y);
        double want = kl_geom(geo[c].a, geo[c].b, n);
        double got = mxv_kld_logits(x, y, n, NULL);
        ck_assert_msg(close_rel(got, want, 1e-9),
                      "case %zu: KLD %.17g, closed form %.17g", c, got, want);
        /* logsumexp against the closed form of log Z */
        double l = mxv_logsumexp(x, n);
        ck_assert_msg(close_rel(l, logZ(geo[c].a, n), 1e-13),
                      "case %zu: lse %.17g, closed form %.17g", c, l,
                      logZ(geo[c].a, n));
        free(x);
        free(y);
    }
}
END_TEST

/* nearly equal rows: a naive sum loses the KLD to cancellation; MPFR at
 * 256 bits is the reference */
static double kl_mpfr(const double *x, const double *y, size_t n)
{
    mpfr_t lx, ly, t, s, px, d, kl;
    mpfr_inits2(256, lx, ly, t, s, px, d, kl, (mpfr_ptr)0);
    mpfr_set_zero(s, 1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(t, x[i], MPFR_RNDN);
        mpfr_exp(t, t, MPFR_RNDN);
        mpfr_add(s, s, t, MPFR_RNDN);
    }
    mpfr_log(lx, s, MPFR_RNDN);
    mpfr_set_zero(s, 1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(t, y[i], MPFR_RNDN);
        mpfr_exp(t, t, MPFR_RNDN);
        mpfr_add(s, s, t, MPFR_RNDN);
    }
    mpfr_log(ly, s, MPFR_RNDN);
    mpfr_set_zero(kl, 1);
    for (size_t i = 0; i < n; i++) {
        /* p_i (log p_i - log q_i) = e^{x_i - lx} ((x_i - y_i) - (lx - ly)) */
        mpfr_set_d(t, x[i], MPFR_RNDN);
        mpfr_sub(px, t, lx, MPFR_RNDN);
        mpfr_exp(px, px, MPFR_RNDN);
        mpfr_set_d(d, y[i], MPFR_RNDN);
        mpfr_sub(d, t, d, MPFR_RNDN);
        mpfr_sub(d, d, lx, MPFR_RNDN);
        mpfr_add(d, d, ly, MPFR_RNDN);
        mpfr_mul(d, d, px, MPFR_RNDN);
        mpfr_add(kl, kl, d, MPFR_RNDN);
    }
    double r = mpfr_get_d(kl, MPFR_RNDN);
    mpfr_clears(lx, ly, t, s, px, d, kl, (mpfr_ptr)0);
    return r;
}

START_TEST(kld_mpfr_tiny)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    size_t n = 4096;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    const double eps[] = {1e-2, 1e-4, 1e-6, 1e-8};
    for (int e = 0; e < 4; e++)
        for (int rep = 0; rep < 3; rep++) {
            for (size_t i = 0; i < n; i++) {
                x[i] = 8 * gsl_ran_gaussian(rng, 1.0) + 20;
                y[i] = x[i] + eps[e] * gsl_ran_gaussian(rng, 1.0);
            }
            double want = kl_mpfr(x, y, n), got = mxv_kld_logits(x, y, n, NULL);
            if (getenv("MXV_VERBOSE"))
                printf("eps %g: KLD %.6g, relative error vs MPFR %.3g\n",
                       eps[e], want, fabs(got - want) / want);
            ck_assert_msg(want > 0 && close_rel(got, want, 1e-9),
                          "eps %g: KLD %.17g, MPFR %.17g (rel %.3g)", eps[e], got,
                          want, fabs(got - want) / want);
        }
    free(x);
    free(y);
    gsl_rng_free(rng);
}
END_TEST

START_TEST(kld_edges)
{
    double x[3] = {0, -INFINITY, 1}, y[3] = {0, 5, 1}, z[3] = {0, 1, -INFINITY};
    /* P puts no mass on token 1: the KLD is finite */
    double lp[3], lq[3];
    mxv_log_softmax(x, 3, lp);
    mxv_log_softmax(y, 3, lq);
    double want = exp(lp[0]) * (lp[0] - lq[0]) + exp(lp[2]) * (lp[2] - lq[2]);
    ck_assert(close_rel(mxv_kld_logprobs(lp, lq, 3), want, 1e-13));
    /* Q has no mass where P has: +inf */
    ck_assert(mxv_kld_logits(y, z, 3, NULL) == INFINITY);
    double nanrow[2] = {0, NAN}, ok[2] = {0, 0}, allinf[2] = {-INFINITY, -INFINITY};
    ck_assert(isnan(mxv_kld_logits(nanrow, ok, 2, NULL)));
    ck_assert(isnan(mxv_kld_logits(ok, allinf, 2, NULL)));
    ck_assert(mxv_kld_logits(ok, ok, 2, NULL) == 0);
    /* phi: the series and expm1 branches agree with a long-double form */
    for (double d = -3; d <= 3; d += 0.0123) {
        long double ld = expl(-(long double)d) - 1 + (long double)d;
        ck_assert_msg(close_rel(mxv_kld_phi(d), (double)ld, 1e-14) ||
                          fabs(d) < 1e-3,
                      "phi(%g)", d);
    }
    ck_assert(close_rel(mxv_kld_phi(1e-5), 0.5e-10 - 1e-15 / 6 + 1e-20 / 24, 1e-15));
}
END_TEST

/* ---- top-k estimate -------------------------------------------------- */
static void random_dist(gsl_rng *r, size_t n, double spread, double *lp)
{
    for (size_t i = 0; i < n; i++)
        lp[i] = spread * gsl_ran_gaussian(r, 1.0);
    mxv_log_softmax(lp, n, lp);
}

/* the coarsened KLD written out: cells = tokens in both top-k sets, plus
 * one tail cell; plain sums (tails are not tiny here) */
static double coarse_direct(const double *lp, const double *lq, size_t n,
                            size_t k)
{
    char *inp = calloc(n, 1), *inq = calloc(n, 1);
    for (size_t j = 0; j < k; j++) {
        size_t bp = 0, bq = 0;
        while (inp[bp])
            bp++;
        while (inq[bq])
            bq++;
        for (size_t i = 0; i < n; i++) {
            if (!inp[i] && lp[i] > lp[bp])
                bp = i;
            if (!inq[i] && lq[i] > lq[bq])
                bq = i;
        }
        inp[bp] = inq[bq] = 1;
    }
    double kl = 0, pt = 0, qt = 0;
    for (size_t i = 0; i < n; i++) {
        double p = exp(lp[i]), q = exp(lq[i]);
        if (inp[i] && inq[i])
            kl += p * log(p / q);
        else {
            pt += p;
            qt += q;
        }
    }
    free(inp);
    free(inq);
    return kl + (pt > 0 ? pt * log(pt / qt) : 0);
}

START_TEST(topk_estimate)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    size_t n = 64;
    double lp[64], lq[64];
    size_t ks[] = {1, 2, 5, 20, 64};
    for (int rep = 0; rep < 400; rep++)
        for (size_t ki = 0; ki < 5; ki++) {
            random_dist(rng, n, 0.5 + rep % 4, lp);
            for (size_t i = 0; i < n; i++)
                lq[i] = lp[i] + (rep % 3 + 1) * 0.1 * gsl_ran_gaussian(rng, 1.0);
            mxv_log_softmax(lq, n, lq);
            mxv_kld_topk_check c;
            ck_assert(mxv_kld_topk_from_full(lp, lq, n, ks[ki], &c) == 0);
            double want = coarse_direct(lp, lq, n, ks[ki]);
            ck_assert_msg(fabs(c.estimate - want) <= 1e-12 * fabs(want) + 4e-15,
                          "rep %d k %zu: estimate %.17g, direct %.17g", rep,
                          ks[ki], c.estimate, want);
            double bias = c.exact - c.estimate;
            ck_assert_msg(bias >= -1e-14 && bias <= c.bias_bound * (1 + 1e-9) + 1e-15,
                          "rep %d k %zu: bias %.6g outside [0, %.6g]", rep,
                          ks[ki], bias, c.bias_bound);
            if (ks[ki] == n)
                ck_assert(close_rel(c.estimate, c.exact, 1e-12));
        }
    gsl_rng_free(rng);
}
END_TEST

START_TEST(topk_lists)
{
    /* P = (.5, .3, .2), Q = (.4, .4, .2); top-2 both: cells {0}, {1}, tail */
    mxv_tok_lp p[2] = {{10, log(.5)}, {11, log(.3)}};
    mxv_tok_lp q[2] = {{11, log(.4)}, {10, log(.4)}};
    mxv_kld_est e;
    ck_assert(mxv_kld_topk(p, 2, q, 2, 0, &e) == 0);
    double want = .5 * log(.5 / .4) + .3 * log(.3 / .4) + .2 * log(.2 / .2);
    ck_assert_msg(close_rel(e.kld, want, 1e-13), "%.17g vs %.17g", e.kld, want);
    ck_assert(e.support == 2 && close_rel(e.p_tail, .2, 1e-15));
    /* only token 10 in common: cells {10}, tail */
    mxv_tok_lp q2[2] = {{12, log(.45)}, {10, log(.4)}};
    ck_assert(mxv_kld_topk(p, 2, q2, 2, 0, &e) == 0);
    want = .5 * log(.5 / .4) + .5 * log(.5 / .6);
    ck_assert(close_rel(e.kld, want, 1e-13) && e.support == 1);
    /* duplicates, NaN, positive log-probs: refused */
    mxv_tok_lp dup[2] = {{1, -1}, {1, -2}}, bad[1] = {{1, NAN}}, pos[1] = {{1, 0.5}};
    ck_assert(mxv_kld_topk(dup, 2, q, 2, 0, &e) == -1);
    ck_assert(mxv_kld_topk(p, 2, bad, 1, 0, &e) == -1);
    ck_assert(mxv_kld_topk(pos, 1, q, 2, 0, &e) == -1);
}
END_TEST

/* ---- summaries --------------------------------------------------------- */
START_TEST(summary_values)
{
    double x[101];
    for (int i = 0; i < 101; i++)
        x[100 - i] = i; /* unsorted on purpose */
    mxv_summary s;
    ck_assert(mxv_summarize(x, 101, &s) == 0);
    ck_assert(s.n == 101 && s.mean == 50);
    /* sum (i - 50)^2 = 2 * 50*51*101/6 = 85850, sample variance / 100 */
    ck_assert(close_rel(s.se, sqrt(858.5) / sqrt(101.0), 1e-14));
    ck_assert(close_rel(s.rms, sqrt(338350.0 / 101), 1e-14)); /* sum i^2 = 338350 */
    const double want[MXV_NPCT] = {100, 99.9, 99, 95, 90, 50, 10, 5, 1, 0.1, 0};
    for (int i = 0; i < MXV_NPCT; i++)
        ck_assert_msg(close_rel(s.pct[i], want[i], 1e-13), "pct %g: %.17g",
                      mxv_pct_levels[i], s.pct[i]);
    double one = 3;
    ck_assert(mxv_summarize(&one, 1, &s) == 0 && s.se == 0 && s.pct[0] == 3);
    double nan[2] = {1, NAN};
    ck_assert(mxv_summarize(nan, 2, &s) == -1);
    mxv_share sh = mxv_share_of(3, 4);
    ck_assert(sh.share == 0.75 && close_rel(sh.se, sqrt(.75 * .25 / 4), 1e-15));
}
END_TEST

/* ---- Wilson and McNemar against scipy ----------------------------------- */
START_TEST(stats_vs_scipy)
{
    char path[4096];
    const char *sd = getenv("srcdir");
    snprintf(path, sizeof path, "%s/tests/data/model_stats_ref.tsv", sd ? sd : ".");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[512];
    int nw = 0, nm = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        unsigned long k, n;
        double a, b, c;
        if (sscanf(line, "wilson %lu %lu %lf %lf %lf", &k, &n, &a, &b, &c) == 5) {
            double lo, hi;
            mxv_wilson(k, n, 0.95, &lo, &hi);
            double l1 = mxv_wilson_lower(k, n, 0.95);
            ck_assert_msg(close_rel(lo, a, 1e-12) && close_rel(hi, b, 1e-12) &&
                              close_rel(l1, c, 1e-12),
                          "wilson %lu/%lu: [%.17g, %.17g] %.17g, scipy [%.17g, "
                          "%.17g] %.17g", k, n, lo, hi, l1, a, b, c);
            nw++;
        } else if (sscanf(line, "mcnemar %lu %lu %lf %lf", &k, &n, &a, &b) == 4) {
            double p2, pw;
            mxv_mcnemar(k, n, &p2, &pw);
            ck_assert_msg(close_rel(p2, a, 1e-12) && close_rel(pw, b, 1e-12),
                          "mcnemar %lu %lu: %.17g %.17g, scipy %.17g %.17g", k,
                          n, p2, pw, a, b);
            nm++;
        } else {
            ck_abort_msg("unparsed line in %s: %s", path, line);
        }
    }
    fclose(f);
    ck_assert(nw >= 10 && nm >= 10);
}
END_TEST

/* ---- compare end to end ------------------------------------------------- */
static char tmpdir[64];

/* a fresh temporary directory in tmpdir (tests may run without fork) */
static char *make_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_model_XXXXXX");
    return mkdtemp(tmpdir);
}

static void write_full(const char *path, const double *as, size_t rows,
                       size_t n, const long long *targets, int logits)
{
    mxv_st_writer *w = mxv_st_writer_new(path);
    double *data = malloc(rows * n * sizeof *data);
    for (size_t r = 0; r < rows; r++)
        geom_row(as[r], n, data + r * n);
    uint64_t sh[2] = {rows, n}, st[1] = {rows};
    mxv_st_err e;
    ck_assert(mxv_st_writer_add(w, logits ? "logits/req-a" : "logprobs/req-a",
                                MXV_ST_F64, 2, sh, data, &e) == MXV_ST_OK);
    ck_assert(mxv_st_writer_add(w, "targets/req-a", MXV_ST_I64, 1, st, targets,
                                &e) == MXV_ST_OK);
    ck_assert_msg(mxv_st_writer_commit(w, &e) == MXV_ST_OK, "%s", e.msg);
    mxv_st_writer_free(w);
    free(data);
}

START_TEST(compare_full_closed_form)
{
    ck_assert(make_tmp() != NULL);
    enum { R = 6, N = 3000 };
    double a[R] = {-0.01, -0.02, -0.005, -0.1, -0.003, -0.05};
    double b[R] = {-0.011, -0.018, -0.006, -0.12, -0.0031, -0.045};
    long long tg[R] = {0, 3, 17, 2, 100, 9};
    char pb[4200], pt[4200];
    snprintf(pb, sizeof pb, "%s/base.safetensors", tmpdir);
    snprintf(pt, sizeof pt, "%s/test.safetensors", tmpdir);
    write_full(pb, a, R, N, tg, 1);
    write_full(pt, b, R, N, tg, 0); /* logprobs tensor, unnormalized: renormalized */
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run rb, rt;
    mxv_compare c;
    char err[1024];
    ck_assert_msg(mxv_run_load(pb, toks, MXV_MATCH_ID, &rb, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mxv_run_load(pt, toks, MXV_MATCH_ID, &rt, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mxv_compare_runs(&rb, &rt, &c, err, sizeof err) == 0, "%s", err);
    double kl[R], mean = 0, dp = 0, lppl = 0, mx = 0;
    for (int r = 0; r < R; r++) {
        kl[r] = kl_geom(a[r], b[r], N);
        mean += kl[r] / R;
        mx = fmax(mx, kl[r]);
        double lpa = a[r] * (double)tg[r] - logZ(a[r], N);
        double lpb = b[r] * (double)tg[r] - logZ(b[r], N);
        dp += (exp(lpb) - exp(lpa)) / R;
        lppl += (lpa - lpb) / R;
    }
    const mxv_cmp_group *g = &c.g[0];
    ck_assert(c.kind == MXV_RUN_FULL && c.ng == 1 && g->positions == R);
    ck_assert_msg(close_rel(g->kld.mean, mean, 1e-9), "mean KLD %.17g, closed form %.17g",
                  g->kld.mean, mean);
    ck_assert(close_rel(g->kld.pct[0], mx, 1e-9));
    ck_assert_msg(close_rel(g->dp.mean, dp, 1e-9), "dp %.17g vs %.17g", g->dp.mean, dp);
    ck_assert_msg(close_rel(g->lppl.mean, lppl, 1e-9), "lppl %.17g vs %.17g",
                  g->lppl.mean, lppl);
    ck_assert(g->top1.k == R); /* argmax 0 in both */
    mxv_compare_free(&c);
    mxv_run_free(&rb);
    mxv_run_free(&rt);
    mxv_tokens_free(toks);
    unlink(pb);
    unlink(pt);
    rmdir(tmpdir);
}
END_TEST

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

/* chat format, token ids; request "a": two positions, the second differs;
 * request "b" diverges at its second generated token */
#define LP(t, v) "{\"token\":\"token_id:" #t "\",\"logprob\":" #v "}"
static const char *base_jsonl =
    "{\"id\":\"a\",\"group\":\"g1\",\"choices\":[{\"logprobs\":{\"content\":["
    "{\"token\":\"token_id:1\",\"logprob\":-0.5,\"top_logprobs\":[" LP(1, -0.5) "," LP(2, -1.5) "]},"
    "{\"token\":\"token_id:3\",\"logprob\":-0.25,\"top_logprobs\":[" LP(3, -0.25) "," LP(4, -2.0) "]}"
    "]}}]}\n"
    "{\"id\":\"b\",\"group\":\"g2\",\"choices\":[{\"logprobs\":{\"content\":["
    "{\"token\":\"token_id:5\",\"logprob\":-0.1,\"top_logprobs\":[" LP(5, -0.1) "," LP(6, -3.0) "]},"
    "{\"token\":\"token_id:7\",\"logprob\":-0.6,\"top_logprobs\":[" LP(7, -0.6) "," LP(8, -0.9) "]},"
    "{\"token\":\"token_id:9\",\"logprob\":-0.2,\"top_logprobs\":[" LP(9, -0.2) "," LP(1, -2.2) "]}"
    "]}}]}\n";
static const char *test_jsonl =
    "{\"id\":\"b\",\"group\":\"g2\",\"choices\":[{\"logprobs\":{\"content\":["
    "{\"token\":\"token_id:5\",\"logprob\":-0.1,\"top_logprobs\":[" LP(5, -0.1) "," LP(6, -3.0) "]},"
    "{\"token\":\"token_id:8\",\"logprob\":-0.7,\"top_logprobs\":[" LP(8, -0.7) "," LP(7, -0.8) "]},"
    "{\"token\":\"token_id:2\",\"logprob\":-0.3,\"top_logprobs\":[" LP(2, -0.3) "," LP(1, -2.2) "]}"
    "]}}]}\n"
    "{\"id\":\"a\",\"group\":\"g1\",\"choices\":[{\"logprobs\":{\"content\":["
    "{\"token\":\"token_id:1\",\"logprob\":-0.5,\"top_logprobs\":[" LP(1, -0.5) "," LP(2, -1.5) "]},"
    "{\"token\":\"token_id:3\",\"logprob\":-0.35,\"top_logprobs\":[" LP(3, -0.35) "," LP(4, -1.5) "]}"
    "]}}]}\n";

/* coarsened KL over two known cells and the tail, written out */
static double kl3(double p1, double p2, double q1, double q2)
{
    double pt = 1 - p1 - p2, qt = 1 - q1 - q2;
    return p1 * log(p1 / q1) + p2 * log(p2 / q2) + pt * log(pt / qt);
}

START_TEST(compare_jsonl)
{
    ck_assert(make_tmp() != NULL);
    char pb[4200], pt[4200], err[1024];
    snprintf(pb, sizeof pb, "%s/base.jsonl", tmpdir);
    snprintf(pt, sizeof pt, "%s/test.jsonl", tmpdir);
    write_text(pb, base_jsonl);
    write_text(pt, test_jsonl);
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run rb, rt;
    mxv_compare c;
    ck_assert_msg(mxv_run_load(pb, toks, MXV_MATCH_ID, &rb, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mxv_run_load(pt, toks, MXV_MATCH_ID, &rt, err, sizeof err) == 0, "%s", err);
    ck_assert(rb.k == 2 && rt.k == 2);
    ck_assert_msg(mxv_compare_runs(&rb, &rt, &c, err, sizeof err) == 0, "%s", err);
    /* positions compared: a0, a1, b0, b1 (b diverges at generated token 1,
     * which is still compared; b2 is not) */
    double k_a1 = kl3(exp(-0.25), exp(-2.0), exp(-0.35), exp(-1.5));
    double k_b1 = kl3(exp(-0.6), exp(-0.9), exp(-0.8), exp(-0.7));
    ck_assert(c.ng == 3 && !strcmp(c.g[1].name, "g1") && !strcmp(c.g[2].name, "g2"));
    const mxv_cmp_group *g = &c.g[0];
    ck_assert(g->positions == 4 && g->not_compared == 1 && g->diverged == 1);
    ck_assert_msg(close_rel(g->kld.mean, (k_a1 + k_b1) / 4, 1e-12), "%.17g vs %.17g",
                  g->kld.mean, (k_a1 + k_b1) / 4);
    ck_assert(close_rel(g->kld.pct[0], fmax(k_a1, k_b1), 1e-12));
    ck_assert(close_rel(c.g[1].kld.mean, k_a1 / 2, 1e-12));
    ck_assert(g->top1.k == 3); /* b1: 7 vs 8 */
    /* delta-p of the BASE token: a1: e^-.35 - e^-.25; b1 token 7: e^-.8 - e^-.6 */
    double dp = (exp(-0.35) - exp(-0.25) + exp(-0.8) - exp(-0.6)) / 4;
    ck_assert_msg(close_rel(g->dp.mean, dp, 1e-12), "dp %.17g vs %.17g", g->dp.mean, dp);
    ck_assert(close_rel(g->lppl.mean, (0.1 + 0.2) / 4, 1e-12));
    ck_assert(c.nreq == 2 && c.req[0].diverged_at == -1 && c.req[1].diverged_at == 1);
    ck_assert(g->div_at.n == 1 && g->div_at.pct[0] == 1);
    mxv_compare_free(&c);
    mxv_run_free(&rb);
    mxv_run_free(&rt);
    mxv_tokens_free(toks);
    unlink(pb);
    unlink(pt);
    rmdir(tmpdir);
}
END_TEST


/* ---- bad full-logit files ---------------------------------------------- */
typedef struct {
    const char *name;
    mxv_st_dtype dt;
    int rank;
    uint64_t shape[2];
    const void *data;
} tdesc;

static void write_st(const char *path, const tdesc *t, size_t n,
                     const char *mk, const char *mv)
{
    mxv_st_writer *w = mxv_st_writer_new(path);
    mxv_st_err e;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(mxv_st_writer_add(w, t[i].name, t[i].dt, t[i].rank,
                                        t[i].shape, t[i].data, &e) == MXV_ST_OK,
                      "%s", e.msg);
    if (mk)
        ck_assert(mxv_st_writer_meta(w, mk, mv, &e) == MXV_ST_OK);
    ck_assert_msg(mxv_st_writer_commit(w, &e) == MXV_ST_OK, "%s", e.msg);
    mxv_st_writer_free(w);
}

/* loads a and b and compares: the exit code, err in msg */
static int load_cmp(const char *a, const char *b, char *msg, size_t len,
                    mxv_compare *c)
{
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run ra = {0}, rb = {0};
    int rc = mxv_run_load(a, toks, MXV_MATCH_ID, &ra, msg, len);
    if (!rc)
        rc = mxv_run_load(b, toks, MXV_MATCH_ID, &rb, msg, len);
    mxv_compare cc;
    if (!rc)
        rc = mxv_compare_runs(&ra, &rb, c ? c : &cc, msg, len);
    if (!rc && !c)
        mxv_compare_free(&cc);
    mxv_run_free(&ra);
    mxv_run_free(&rb);
    mxv_tokens_free(toks);
    return rc;
}

START_TEST(bad_full)
{
    ck_assert(make_tmp() != NULL);
    char good[4200], bad[4200], msg[1024];
    snprintf(good, sizeof good, "%s/good.safetensors", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
    float lg[2][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}};
    int32_t tg[2] = {1, 2};
    tdesc g[2] = {{"logits/x", MXV_ST_F32, 2, {2, 4}, lg},
                  {"targets/x", MXV_ST_I32, 1, {2, 0}, tg}};
    write_st(good, g, 2, NULL, NULL);
    ck_assert_msg(load_cmp(good, good, msg, sizeof msg, NULL) == 0, "%s", msg);
    /* NaN, +inf in a row */
    float lb[2][4] = {{0, 1, 2, 3}, {3, 2, 1, NAN}};
    tdesc b[2] = {{"logits/x", MXV_ST_F32, 2, {2, 4}, lb},
                  {"targets/x", MXV_ST_I32, 1, {2, 0}, tg}};
    write_st(bad, b, 2, NULL, NULL);
    ck_assert(load_cmp(good, bad, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "bad.safetensors: tensor \"logits/x\": row 1, column 3: NaN"), "%s", msg);
    lb[1][3] = INFINITY;
    write_st(bad, b, 2, NULL, NULL);
    ck_assert(load_cmp(bad, good, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "row 1, column 3: +inf"), "%s", msg);
    /* a row of -inf only */
    float li[2][4] = {{0, 1, 2, 3}, {-INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    b[0].data = li;
    write_st(bad, b, 2, NULL, NULL);
    ck_assert(load_cmp(good, bad, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "row 1: every entry is -inf"), "%s", msg);
    /* target outside the vocabulary */
    int32_t tb[2] = {1, 4};
    b[0].data = lg;
    b[1].data = tb;
    write_st(bad, b, 2, NULL, NULL);
    ck_assert(load_cmp(bad, good, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "tensor \"targets/x\": row 1: token 4 is outside"), "%s", msg);
    /* another vocabulary */
    float l5[2][5] = {{0}, {0}};
    tdesc v5[2] = {{"logits/x", MXV_ST_F32, 2, {2, 5}, l5},
                   {"targets/x", MXV_ST_I32, 1, {2, 0}, tg}};
    write_st(bad, v5, 2, NULL, NULL);
    ck_assert(load_cmp(good, bad, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "vocabulary of 4") && strstr(msg, ": 5"), "%s", msg);
    /* targets missing; an unknown tensor; another request set */
    write_st(bad, g, 1, NULL, NULL);
    ck_assert(load_cmp(bad, good, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "tensor \"targets/x\": not in the file"), "%s", msg);
    tdesc u[3] = {g[0], g[1], {"extra", MXV_ST_F32, 1, {1, 0}, lg}};
    write_st(bad, u, 3, NULL, NULL);
    ck_assert(load_cmp(bad, good, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "tensor \"extra\": not logprobs/R"), "%s", msg);
    tdesc y[2] = {{"logits/y", MXV_ST_F32, 2, {2, 4}, lg},
                  {"targets/y", MXV_ST_I32, 1, {2, 0}, tg}};
    write_st(bad, y, 2, NULL, NULL);
    ck_assert(load_cmp(good, bad, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "request \"x\" (line 0) is not in"), "%s", msg);
    /* teacher-forced rows (prompt_len 2) whose targets differ: input error;
     * generated rows (prompt_len 1): a divergence at generated token 0 */
    b[1].data = (int32_t[2]){1, 3};
    write_st(bad, b, 2, "prompt_len/x", "2");
    write_st(good, g, 2, "prompt_len/x", "2");
    ck_assert(load_cmp(good, bad, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "request \"x\": prompt position 1: token 2 in"), "%s", msg);
    write_st(bad, b, 2, "prompt_len/x", "1");
    write_st(good, g, 2, "prompt_len/x", "1");
    mxv_compare c;
    ck_assert_msg(load_cmp(good, bad, msg, sizeof msg, &c) == 0, "%s", msg);
    ck_assert(c.req[0].diverged_at == 0 && c.g[0].positions == 2);
    mxv_compare_free(&c);
    write_st(bad, b, 2, "prompt_len/x", "3");
    ck_assert(load_cmp(bad, good, msg, sizeof msg, NULL) == 3);
    ck_assert_msg(strstr(msg, "__metadata__ \"prompt_len/x\""), "%s", msg);
    unlink(good);
    unlink(bad);
    rmdir(tmpdir);
}
END_TEST

/* the estimator through the whole pipeline: the same distributions as full
 * log-probs and as top-k JSONL; estimate <= exact <= estimate + the proven
 * bias bound, on average */
START_TEST(topk_vs_full_pipeline)
{
    ck_assert(make_tmp() != NULL);
    enum { R = 40, N = 256 };
    static double lp[R][N], lq[R][N];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    for (int r = 0; r < R; r++) {
        random_dist(rng, N, 2.5, lp[r]);
        for (int i = 0; i < N; i++)
            lq[r][i] = lp[r][i] + 0.05 * gsl_ran_gaussian(rng, 1.0);
        mxv_log_softmax(lq[r], N, lq[r]);
    }
    int64_t tg[R];
    for (int r = 0; r < R; r++) {
        size_t b = 0;
        for (int i = 1; i < N; i++)
            if (lp[r][i] > lp[r][b])
                b = (size_t)i;
        tg[r] = (int64_t)b; /* greedy: the BASE argmax */
    }
    char fb[4200], ft[4200], jb[4200], jt[4200], msg[1024];
    snprintf(fb, sizeof fb, "%s/b.safetensors", tmpdir);
    snprintf(ft, sizeof ft, "%s/t.safetensors", tmpdir);
    snprintf(jb, sizeof jb, "%s/b.jsonl", tmpdir);
    snprintf(jt, sizeof jt, "%s/t.jsonl", tmpdir);
    tdesc d[2] = {{"logprobs/q", MXV_ST_F64, 2, {R, N}, lp},
                  {"targets/q", MXV_ST_I64, 1, {R, 0}, tg}};
    write_st(fb, d, 2, "prompt_len/q", "40");
    d[0].data = lq;
    write_st(ft, d, 2, "prompt_len/q", "40");
    mxv_compare cf, ck;
    ck_assert_msg(load_cmp(fb, ft, msg, sizeof msg, &cf) == 0, "%s", msg);
    const size_t ks[] = {5, 20};
    for (int kk = 0; kk < 2; kk++) {
        size_t k = ks[kk];
        double bound = 0;
        for (int run = 0; run < 2; run++) {
            FILE *f = fopen(run ? jt : jb, "w");
            double (*L)[N] = run ? lq : lp;
            fprintf(f, "{\"id\":\"q\",\"choices\":[{\"logprobs\":{\"content\":[");
            for (int r = 0; r < R; r++) {
                size_t idx[N];
                gsl_sort_largest_index(idx, k, L[r], 1, N);
                fprintf(f, "%s{\"token\":\"token_id:%lld\",\"logprob\":%.17g,"
                           "\"top_logprobs\":[", r ? "," : "", (long long)tg[r],
                        L[r][tg[r]]);
                for (size_t j = 0; j < k; j++)
                    fprintf(f, "%s{\"token\":\"token_id:%zu\",\"logprob\":%.17g}",
                            j ? "," : "", idx[j], L[r][idx[j]]);
                fprintf(f, "]}");
            }
            fprintf(f, "]}}]}\n");
            fclose(f);
        }
        for (int r = 0; r < R; r++) {
            mxv_kld_topk_check c;
            mxv_kld_topk_from_full(lp[r], lq[r], N, k, &c);
            bound += c.bias_bound / R;
        }
        ck_assert_msg(load_cmp(jb, jt, msg, sizeof msg, &ck) == 0, "%s", msg);
        double ex = cf.g[0].kld.mean, est = ck.g[0].kld.mean;
        ck_assert_msg(est <= ex * (1 + 1e-12) && ex <= est + bound,
                      "k %zu: estimate %.6g, exact %.6g, bound %.6g", k, est, ex, bound);
        /* delta-p and same top-1 need no estimate: equal to the full run's
         * (the reference token's log-prob is in both JSONL files) */
        ck_assert(close_rel(ck.g[0].dp.mean, cf.g[0].dp.mean, 1e-12));
        ck_assert(close_rel(ck.g[0].lppl.mean, cf.g[0].lppl.mean, 1e-12));
        ck_assert(ck.g[0].top1.k == cf.g[0].top1.k);
        if (getenv("MXV_VERBOSE"))
            printf("k %zu: exact %.6g, estimate %.6g (bias %.3g), proven bound "
                   "%.3g, bound_obs %.3g\n", k, ex, est, ex - est, bound,
                   ck.g[0].mean_bound_obs);
        mxv_compare_free(&ck);
        /* the same measurement inside compare (--topk-check) */
        mxv_tokens *toks = mxv_tokens_new();
        mxv_run ra, rb2;
        mxv_compare co;
        mxv_compare_opts opt = {k};
        ck_assert(mxv_run_load(fb, toks, MXV_MATCH_ID, &ra, msg, sizeof msg) == 0);
        ck_assert(mxv_run_load(ft, toks, MXV_MATCH_ID, &rb2, msg, sizeof msg) == 0);
        ck_assert_msg(mxv_compare_runs_opt(&ra, &rb2, &opt, &co, msg, sizeof msg) == 0, "%s", msg);
        ck_assert(co.topk_check == k && co.g[0].tk_est.n == R && co.g[0].tk_violations == 0);
        ck_assert(close_rel(co.g[0].tk_bound.mean, bound, 1e-12));
        ck_assert(close_rel(co.g[0].tk_est.mean + co.g[0].tk_bias.mean, ex, 1e-12));
        mxv_compare_free(&co);
        mxv_run_free(&ra);
        mxv_run_free(&rb2);
        mxv_tokens_free(toks);
    }
    mxv_compare_free(&cf);
    gsl_rng_free(rng);
    unlink(fb);
    unlink(ft);
    unlink(jb);
    unlink(jt);
    rmdir(tmpdir);
}
END_TEST

/* model checks as gate verdicts: thresholds just above and just below the
 * figures derived by hand pass and fail */
START_TEST(gate_checks)
{
    ck_assert(make_tmp() != NULL);
    char pb[4200], pt[4200], tol[4200], sm[4200], err[1024];
    snprintf(pb, sizeof pb, "%s/base.jsonl", tmpdir);
    snprintf(pt, sizeof pt, "%s/test.jsonl", tmpdir);
    snprintf(tol, sizeof tol, "%s/tol.json", tmpdir);
    snprintf(sm, sizeof sm, "%s/samples.jsonl", tmpdir);
    write_text(pb, base_jsonl);
    write_text(pt, test_jsonl);
    double k_a1 = kl3(exp(-0.25), exp(-2.0), exp(-0.35), exp(-1.5));
    double k_b1 = kl3(exp(-0.6), exp(-0.9), exp(-0.8), exp(-0.7));
    double mean = (k_a1 + k_b1) / 4;
    /* judged on mean + mean bound_obs (top-k): here only the pass/fail
     * edge of the same-top-1 share (3 of 4) and of p99.9 is exact */
    char text[2048];
    double p999 = fmax(k_a1, k_b1) - 0.003 * (fmax(k_a1, k_b1) - fmin(k_a1, k_b1)); /* GSL: index 0.999 * 3 */
    for (int t = 0; t < 3; t++) {
        snprintf(text, sizeof text,
                 "{\"schema\":\"mxverify-model-golden/1\",\"history\":[],\"entries\":["
                 "{\"model\":\"m\",\"policy\":\"p\",\"device\":\"d\",\"source\":\"test\","
                 "\"max_mean_kld\":1,\"max_p999_kld\":%.17g,\"min_same_top1\":%.17g,"
                 "\"min_score\":0.5,\"task\":\"t\"},"
                 "{\"model\":\"m\",\"policy\":\"p\",\"device\":\"none\",\"source\":\"s\"}]}",
                 t == 1 ? p999 * (1 - 1e-9) : p999 * (1 + 1e-9),
                 t == 2 ? 0.75 + 1e-12 : 0.75);
        write_text(tol, text);
        mxv_model_check c;
        ck_assert_msg(mxv_model_check_compare(pb, pt, tol, "m/p/d", &c, err,
                                              sizeof err) == 0, "%s", err);
        ck_assert_msg(c.pass == (t == 0), "case %d: pass %d (%s)", t, c.pass, c.why);
        if (t == 1)
            ck_assert_msg(strstr(c.why, "99.9% KLD"), "%s", c.why);
        if (t == 2)
            ck_assert_msg(strstr(c.why, "same top-1 0.75 <"), "%s", c.why);
        ck_assert(c.json && strstr(c.json, "\"schema\":\t\"mxverify-model-compare/1\""));
        mxv_model_check_free(&c);
    }
    (void)mean;
    /* an entry without thresholds fails, naming them; a bad entry string */
    mxv_model_check c;
    ck_assert(mxv_model_check_compare(pb, pt, tol, "m/p/none", &c, err, sizeof err) == 0);
    ck_assert(!c.pass && strstr(c.why, "has no max_mean_kld"));
    mxv_model_check_free(&c);
    ck_assert(mxv_model_check_compare(pb, pt, tol, "m/p", &c, err, sizeof err) == 2);
    ck_assert(mxv_model_check_compare(pb, pt, tol, "m/p/x", &c, err, sizeof err) == 3);
    ck_assert_msg(strstr(err, "no entry for model m, policy p, device x"), "%s", err);
    /* score: 3 of 4 right; one-sided 95 % Wilson lower bound vs 0.5 */
    write_text(sm, "{\"doc_id\":0,\"exact_match\":1}\n{\"doc_id\":1,\"exact_match\":1}\n"
                   "{\"doc_id\":2,\"exact_match\":0}\n{\"doc_id\":3,\"exact_match\":true}\n");
    ck_assert_msg(mxv_model_check_score(sm, NULL, tol, "m/p/d", &c, err, sizeof err) == 0, "%s", err);
    double lo = mxv_wilson_lower(3, 4, 0.95);
    ck_assert_msg(c.pass == (lo >= 0.5) && !c.pass, "lower %.6f: %s", lo, c.why);
    mxv_model_check_free(&c);
    ck_assert(mxv_model_check_score(sm, NULL, tol, "m/p/none", &c, err, sizeof err) == 3);
    unlink(pb);
    unlink(pt);
    unlink(tol);
    unlink(sm);
    rmdir(tmpdir);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("kld");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, kld_closed_form);
    tcase_add_test(t, kld_mpfr_tiny);
    tcase_add_test(t, kld_edges);
    tcase_add_test(t, topk_estimate);
    tcase_add_test(t, topk_lists);
    suite_add_tcase(s, t);
    t = tcase_create("stats");
    tcase_add_test(t, summary_values);
    tcase_add_test(t, stats_vs_scipy);
    suite_add_tcase(s, t);
    t = tcase_create("compare");
    tcase_add_test(t, compare_full_closed_form);
    tcase_add_test(t, compare_jsonl);
    tcase_add_test(t, bad_full);
    tcase_add_test(t, topk_vs_full_pipeline);
    tcase_add_test(t, gate_checks);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
