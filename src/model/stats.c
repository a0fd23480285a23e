/* stats.c -- summaries, shares, Wilson, McNemar through GSL (stats.h). */
#include <math.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include "model/kld.h"
#include "model/stats.h"

const double mxv_pct_levels[MXV_NPCT] = {100, 99.9, 99, 95, 90, 50,
                                         10,  5,    1,  0.1, 0};

int mxv_summarize(double *x, size_t n, mxv_summary *s)
{
    s->n = n;
    s->mean = s->se = s->rms = NAN;
    for (int i = 0; i < MXV_NPCT; i++)
        s->pct[i] = NAN;
    if (n == 0)
        return 0;
    mxv_ksum sum = MXV_KSUM_INIT, sq = MXV_KSUM_INIT;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return -1;
        mxv_ksum_add(&sum, x[i]);
        mxv_ksum_add(&sq, x[i] * x[i]);
    }
    s->mean = mxv_ksum_get(&sum) / (double)n;
    s->rms = sqrt(mxv_ksum_get(&sq) / (double)n);
    s->se = n > 1 ? gsl_stats_sd_m(x, 1, n, s->mean) / sqrt((double)n) : 0;
    gsl_sort(x, 1, n);
    for (int i = 0; i < MXV_NPCT; i++)
        s->pct[i] = gsl_stats_quantile_from_sorted_data(x, 1, n,
                                                        mxv_pct_levels[i] / 100);
    return 0;
}

mxv_share mxv_share_of(size_t k, size_t n)
{
    mxv_share s = {k, n, NAN, NAN};
    if (n) {
        s.share = (double)k / (double)n;
        s.se = sqrt(s.share * (1 - s.share) / (double)n);
    }
    return s;
}

/* center and half-width of the Wilson interval for z */
static void wilson_z(size_t k, size_t n, double z, double *lo, double *hi)
{
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 2 * (nn + z2);
    double center = (2 * nn * p + z2) / denom;
    double half = z * sqrt(z2 + 4 * nn * p * (1 - p)) / denom;
    *lo = k == 0 ? 0 : fmax(0, center - half);
    *hi = k == n ? 1 : fmin(1, center + half);
}

void mxv_wilson(size_t k, size_t n, double conf, double *lo, double *hi)
{
    wilson_z(k, n, gsl_cdf_ugaussian_Pinv(0.5 + conf / 2), lo, hi);
}

double mxv_wilson_lower(size_t k, size_t n, double conf)
{
    double lo, hi;
    wilson_z(k, n, gsl_cdf_ugaussian_Pinv(conf), &lo, &hi);
    return lo;
}

void mxv_mcnemar(size_t b, size_t c, double *p_two, double *p_worse)
{
    unsigned n = (unsigned)(b + c);
    if (n == 0) {
        *p_two = *p_worse = 1;
        return;
    }
    unsigned m = (unsigned)(b < c ? b : c);
    double t = 2 * gsl_cdf_binomial_P(m, 0.5, n);
    *p_two = t > 1 ? 1 : t;
    *p_worse = b == 0 ? 1 : gsl_cdf_binomial_Q((unsigned)b - 1, 0.5, n);
}
