/* kld.c -- log-softmax and KL divergence in binary64 (see kld.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_sort_double.h>
#include "model/kld.h"

void mxv_ksum_add(mxv_ksum *k, double x)
{
    double t = k->s + x;
    if (!isfinite(t) || !isfinite(k->s)) { /* inf/NaN: no compensation */
        k->s = t;
        return;
    }
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

double mxv_ksum_get(const mxv_ksum *k)
{
    return isfinite(k->s) ? k->s + k->c : k->s;
}

double mxv_sum(const double *x, size_t n)
{
    mxv_ksum k = MXV_KSUM_INIT;
    for (size_t i = 0; i < n; i++)
        mxv_ksum_add(&k, x[i]);
    return mxv_ksum_get(&k);
}

double mxv_logsumexp(const double *x, size_t n)
{
    size_t im = 0;
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || x[i] == INFINITY)
            return NAN;
        if (x[i] > m) {
            m = x[i];
            im = i;
        }
    }
    if (m == -INFINITY)
        return -INFINITY;
    /* lse = m + log1p(sum_{i != im} exp(x_i - m)): the largest term is
     * exactly 1 and stays out of the sum, so a sharply peaked row keeps
     * its accuracy */
    mxv_ksum k = MXV_KSUM_INIT;
    for (size_t i = 0; i < n; i++)
        if (i != im)
            mxv_ksum_add(&k, exp(x[i] - m));
    return m + log1p(mxv_ksum_get(&k));
}

int mxv_log_softmax(const double *x, size_t n, double *out)
{
    double l = mxv_logsumexp(x, n);
    if (!isfinite(l))
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] - l;
    return 0;
}

double mxv_log1mexp(double a)
{
    if (isnan(a) || a > 0)
        return NAN;
    return a > -0.69314718055994530942 ? log(-expm1(a)) : log1p(-exp(a));
}

double mxv_kld_phi(double d)
{
    if (isnan(d))
        return NAN;
    if (fabs(d) < 0.25) {
        /* sum_{n>=2} (-d)^n / n!: alternating, |term ratio| < 1/12 */
        double term = 0.5 * d * d, s = term;
        for (int n = 3; n <= 24 && term != 0; n++) {
            term *= -d / n;
            s += term;
            if (fabs(term) < 0x1p-60 * s)
                break;
        }
        return s;
    }
    if (d == INFINITY)
        return INFINITY;
    return expm1(-d) + d;
}

/* One cell's term p * phi(log p - log q), from the logs. */
static double cell_term(double lp, double lq)
{
    if (lp == -INFINITY)
        return exp(lq);          /* p = 0: the term is q                   */
    if (lq == -INFINITY)
        return INFINITY;         /* p > 0, q = 0                           */
    double d = lp - lq;
    double p = exp(lp);
    if (d < -700) /* q >> p: exp(-d) overflows; p*exp(-d) is q */
        return exp(lq) - p + p * d;
    return p * mxv_kld_phi(d);
}

double mxv_kld_logprobs(const double *lp, const double *lq, size_t n)
{
    mxv_ksum k = MXV_KSUM_INIT;
    for (size_t i = 0; i < n; i++) {
        if (isnan(lp[i]) || isnan(lq[i]) || lp[i] == INFINITY ||
            lq[i] == INFINITY)
            return NAN;
        mxv_ksum_add(&k, cell_term(lp[i], lq[i]));
    }
    return mxv_ksum_get(&k);
}

double mxv_kld_logits(const double *x, const double *y, size_t n,
                      double *scratch)
{
    double *buf = scratch ? scratch : malloc(2 * (n ? n : 1) * sizeof *buf);
    if (!buf)
        return NAN;
    double r = NAN;
    if (mxv_log_softmax(x, n, buf) == 0 && mxv_log_softmax(y, n, buf + n) == 0)
        r = mxv_kld_logprobs(buf, buf + n, n);
    if (!scratch)
        free(buf);
    return r;
}

static int valid_lp(double *lp)
{
    if (isnan(*lp) || *lp == INFINITY || *lp > 1e-6)
        return 0;
    if (*lp > 0)
        *lp = 0;
    return 1;
}

/* Tail mass 1 - exp(lse) of a support whose log-mass is lse. */
static double tail_of(double lse)
{
    if (lse >= 0)
        return 0;
    return -expm1(lse);
}

static int tok_cmp(const void *x, const void *y)
{
    int64_t a = ((const mxv_tok_lp *)x)->tok, b = ((const mxv_tok_lp *)y)->tok;
    return (a > b) - (a < b);
}

int mxv_kld_topk(const mxv_tok_lp *p, size_t np, const mxv_tok_lp *q,
                 size_t nq, double tail_floor, mxv_kld_est *out)
{
    /* sorted copies by token: duplicates are adjacent, the support is a
     * merge (O(k log k), so long prompt_logprobs lists stay cheap) */
    mxv_tok_lp local[128], *buf = local;
    if (np + nq > 128 && !(buf = malloc((np + nq) * sizeof *buf)))
        return -1;
    mxv_tok_lp *sp_ = buf, *sq_ = buf + np;
    memcpy(sp_, p, np * sizeof *p);
    memcpy(sq_, q, nq * sizeof *q);
    qsort(sp_, np, sizeof *sp_, tok_cmp);
    qsort(sq_, nq, sizeof *sq_, tok_cmp);
    int bad = 0;
    for (size_t i = 0; i < np; i++)
        bad |= !valid_lp(&sp_[i].lp) || (i && sp_[i].tok == sp_[i - 1].tok);
    for (size_t i = 0; i < nq; i++)
        bad |= !valid_lp(&sq_[i].lp) || (i && sq_[i].tok == sq_[i - 1].tok);
    if (bad) {
        if (buf != local)
            free(buf);
        return -1;
    }
    /* the common support: pairs (a, b) written over sp_ (a in .lp of sp_,
     * b in .lp of sq_, both compacted to the first ns entries) */
    size_t ns = 0;
    for (size_t i = 0, j = 0; i < np && j < nq;) {
        if (sp_[i].tok < sq_[j].tok)
            i++;
        else if (sp_[i].tok > sq_[j].tok)
            j++;
        else {
            sp_[ns] = sp_[i++];
            sq_[ns] = sq_[j++];
            ns++;
        }
    }
    mxv_ksum terms = MXV_KSUM_INIT;
    double maxd = -INFINITY, mp = -INFINITY, mq = -INFINITY;
    for (size_t i = 0; i < ns; i++) {
        mp = sp_[i].lp > mp ? sp_[i].lp : mp;
        mq = sq_[i].lp > mq ? sq_[i].lp : mq;
    }
    /* log-masses of the support, max-shifted and compensated */
    mxv_ksum sp = MXV_KSUM_INIT, sq = MXV_KSUM_INIT;
    for (size_t i = 0; i < ns; i++) {
        double a = sp_[i].lp, b = sq_[i].lp;
        if (mp > -INFINITY)
            mxv_ksum_add(&sp, exp(a - mp));
        if (mq > -INFINITY)
            mxv_ksum_add(&sq, exp(b - mq));
        mxv_ksum_add(&terms, cell_term(a, b));
        if (a > -INFINITY && a - b > maxd)
            maxd = a - b;
    }
    if (buf != local)
        free(buf);
    double pt = 1, qt = 1;
    if (ns && mp > -INFINITY)
        pt = tail_of(mp + log(mxv_ksum_get(&sp)));
    if (ns && mq > -INFINITY)
        qt = tail_of(mq + log(mxv_ksum_get(&sq)));
    /* a tail below the rounding of the support's log-mass is zero */
    double noise = 4 * (double)ns * 0x1p-52;
    if (pt < noise)
        pt = 0;
    if (qt < noise)
        qt = 0;
    if (pt < tail_floor)
        pt = tail_floor;
    if (qt < tail_floor)
        qt = tail_floor;
    double lpt = pt > 0 ? log(pt) : -INFINITY;
    double lqt = qt > 0 ? log(qt) : -INFINITY;
    mxv_ksum_add(&terms, pt == 0 && qt == 0 ? 0 : cell_term(lpt, lqt));
    out->kld = mxv_ksum_get(&terms);
    out->p_tail = pt;
    out->q_tail = qt;
    out->support = ns;
    out->bound_obs = 0;
    if (pt > 0 && ns) {
        double b = pt * (maxd - (lpt - lqt));
        out->bound_obs = b > 0 && isfinite(b) ? b : (isfinite(b) ? 0 : b);
    }
    return 0;
}

int mxv_kld_topk_from_full(const double *lp, const double *lq, size_t n,
                           size_t k, mxv_kld_topk_check *out)
{
    if (k == 0 || k > n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (isnan(lp[i]) || isnan(lq[i]) || lp[i] == INFINITY ||
            lq[i] == INFINITY)
            return -1;
    size_t *ip = malloc(k * sizeof *ip), *iq = malloc(k * sizeof *iq);
    mxv_tok_lp *tp = malloc(k * sizeof *tp), *tq = malloc(k * sizeof *tq);
    unsigned char *in_s = calloc(n, 1);
    int rc = -1;
    if (!ip || !iq || !tp || !tq || !in_s)
        goto done;
    gsl_sort_largest_index(ip, k, lp, 1, n);
    gsl_sort_largest_index(iq, k, lq, 1, n);
    for (size_t i = 0; i < k; i++) {
        tp[i] = (mxv_tok_lp){(int64_t)ip[i], lp[ip[i]]};
        tq[i] = (mxv_tok_lp){(int64_t)iq[i], lq[iq[i]]};
        in_s[ip[i]] |= 1;
        in_s[iq[i]] |= 2;
    }
    mxv_kld_est e;
    if (mxv_kld_topk(tp, k, tq, k, 0, &e) != 0)
        goto done;
    out->exact = mxv_kld_logprobs(lp, lq, n);
    out->estimate = e.kld;
    out->bound_obs = e.bound_obs;
    out->p_tail = e.p_tail;
    /* over the tail: the largest log-ratio, and log sum p^2/q (Jensen:
     * KL(a||b) = E_a log(a/b) <= log E_a (a/b) <= max log(a/b)) */
    double maxd = -INFINITY, m2 = -INFINITY;
    mxv_ksum s2 = MXV_KSUM_INIT;
    for (size_t j = 0; j < n; j++)
        if (in_s[j] != 3 && lp[j] > -INFINITY) {
            if (lp[j] - lq[j] > maxd)
                maxd = lp[j] - lq[j];
            if (2 * lp[j] - lq[j] > m2)
                m2 = 2 * lp[j] - lq[j];
        }
    for (size_t j = 0; j < n; j++)
        if (in_s[j] != 3 && lp[j] > -INFINITY)
            mxv_ksum_add(&s2, exp(2 * lp[j] - lq[j] - m2));
    out->bias_bound = 0;
    if (e.p_tail > 0 && maxd > -INFINITY) {
        double lpt = log(e.p_tail), lqt = log(e.q_tail);
        double bmax = e.p_tail * (maxd - (lpt - lqt));
        double bchi = e.p_tail * (m2 + log(mxv_ksum_get(&s2)) - 2 * lpt + lqt);
        out->bias_bound = bchi < bmax ? bchi : bmax;
        if (out->bias_bound < 0)
            out->bias_bound = 0;
    }
    rc = 0;
done:
    free(ip);
    free(iq);
    free(tp);
    free(tq);
    free(in_s);
    return rc;
}
