/* stats.h -- the statistics of model checks, through GSL: summaries with
 * standard errors and percentiles, binomial shares, the Wilson score
 * interval and McNemar's exact test (docs/model-checks.md). */
#ifndef MXV_MODEL_STATS_H
#define MXV_MODEL_STATS_H

#include <stddef.h>

/* The percentiles reported, in this order (100 = max, 0 = min). */
#define MXV_NPCT 11
extern const double mxv_pct_levels[MXV_NPCT]; /* 100 99.9 99 95 90 50 10 5 1 0.1 0 */

typedef struct {
    size_t n;
    double mean;    /* compensated sum / n                               */
    double se;      /* sample sd / sqrt(n) (0 when n < 2)                */
    double rms;     /* sqrt(mean of squares)                             */
    double pct[MXV_NPCT]; /* GSL quantiles (linear interpolation)        */
} mxv_summary;

/* Summarizes x[0..n) (sorts x in place).  n == 0 gives n 0 and NaNs.
 * Returns 0, or -1 when some x is NaN. */
int mxv_summarize(double *x, size_t n, mxv_summary *s);

/* A share k/n with its binomial standard error sqrt(p(1-p)/n). */
typedef struct {
    size_t k, n;
    double share, se;
} mxv_share;
mxv_share mxv_share_of(size_t k, size_t n);

/* Wilson score interval for k successes in n trials (no continuity
 * correction): two-sided at level conf (e.g. 0.95) gives [lo, hi]; the
 * one-sided lower bound at level conf uses z = Phi^-1(conf).  k <= n,
 * n > 0. */
void mxv_wilson(size_t k, size_t n, double conf, double *lo, double *hi);
double mxv_wilson_lower(size_t k, size_t n, double conf);

/* McNemar's exact test on b (pairs right in BASE, wrong in TEST) and c
 * (wrong in BASE, right in TEST): X ~ Binomial(b + c, 1/2).
 *   two-sided: min(1, 2 P(X <= min(b, c)))
 *   worse:     P(X >= b), the one-sided p that TEST is worse than BASE.
 * Both 1 when b + c == 0. */
void mxv_mcnemar(size_t b, size_t c, double *p_two, double *p_worse);

#endif
