/* kld.h -- log-softmax and the Kullback-Leibler divergence between two
 * next-token distributions, in binary64, stable (docs/model-checks.md).
 *
 * Direction: KL(P || Q) = sum_i p_i log(p_i / q_i), P the BASE run, Q the
 * TEST run (as llama.cpp's --kl-divergence).
 *
 * Full distributions are summed in the Bregman form
 *     KL = sum_i p_i * phi(d_i),  d_i = log p_i - log q_i,
 *     phi(d) = exp(-d) - 1 + d  >= 0,
 * which equals the usual sum because sum p = sum q = 1.  Every term is
 * non-negative (no cancellation, KL >= 0 by construction), and an error
 * delta in either log-normalizer changes the result only by
 * exp(-delta) - 1 + delta = O(delta^2), not O(delta).  phi is evaluated by
 * its Taylor series for |d| < 1/4 and by expm1 beyond; sums are compensated
 * (Neumaier).
 *
 * Top-k estimate: when each run returns only its top-k log-probs, the KLD
 * is computed on the coarsened distributions: the tokens known in both
 * runs, each its own cell, plus ONE tail cell holding the rest of the mass.
 * By the data-processing inequality this is a lower bound of the full KLD;
 * the bias (full - estimate) is P_tail * KL(P|tail || Q|tail) and lies in
 * [0, B], B = P_tail * min(log((Q_tail/P_tail^2) sum_tail p_j^2/q_j),
 * max_{j in tail} d_j - log(P_tail / Q_tail)) (Jensen).
 *
 * Nothing here prints or allocates (except mxv_kld_topk_from_full, which
 * allocates scratch).  Not thread-unsafe: no global state.
 */
#ifndef MXV_MODEL_KLD_H
#define MXV_MODEL_KLD_H

#include <stddef.h>
#include <stdint.h>

/* ---- compensated sum (Neumaier) --------------------------------------- */
typedef struct {
    double s, c;
} mxv_ksum;
#define MXV_KSUM_INIT {0.0, 0.0}
void mxv_ksum_add(mxv_ksum *k, double x);
double mxv_ksum_get(const mxv_ksum *k);
/* Compensated sum of n values. */
double mxv_sum(const double *x, size_t n);

/* ---- log-sum-exp, log-softmax ----------------------------------------- */
/* log(sum_i exp(x[i])), max-shifted, compensated.  -inf when n == 0 or every
 * x[i] is -inf; NaN when any x[i] is NaN or +inf. */
double mxv_logsumexp(const double *x, size_t n);
/* out[i] = x[i] - logsumexp(x) (out may equal x).  Returns 0, or -1 when
 * the row cannot be normalized (NaN, +inf, all -inf, n == 0); out is then
 * unspecified. */
int mxv_log_softmax(const double *x, size_t n, double *out);
/* log(1 - exp(a)) for a <= 0, stable (-inf at a == 0; NaN for a > 0). */
double mxv_log1mexp(double a);

/* ---- exact KLD on full distributions ---------------------------------- */
/* phi(d) = exp(-d) - 1 + d, accurate to a few ulps for every finite d. */
double mxv_kld_phi(double d);
/* KL(P || Q) from normalized log-probs lp, lq (n entries each; -inf allowed
 * for zero probability).  +inf when some p_i > 0 has q_i == 0; NaN when an
 * input is NaN or +inf. */
double mxv_kld_logprobs(const double *lp, const double *lq, size_t n);
/* KL(softmax(x) || softmax(y)) from unnormalized logits (or log-probs: they
 * are renormalized, which changes nothing for normalized ones).  scratch:
 * NULL, or 2*n doubles.  NaN when either row cannot be normalized. */
double mxv_kld_logits(const double *x, const double *y, size_t n,
                      double *scratch);

/* ---- top-k estimate ------------------------------------------------------ */
/* One token's log-prob as a run returned it.  tok: a token id (>= 0), or
 * any other int64 the caller uses as a token key; equal keys mean the same
 * token in both runs. */
typedef struct {
    int64_t tok;
    double lp;
} mxv_tok_lp;

typedef struct {
    double kld;        /* the estimate (a lower bound of the full KLD)     */
    double p_tail;     /* BASE mass outside the common support            */
    double q_tail;     /* TEST mass outside the common support            */
    double bound_obs;  /* p_tail * (max_{support} d - log(p_tail/q_tail))^+:
                          the bias bound if the tail's log-ratios stay
                          within the support's (an assumption; 0 when
                          p_tail == 0)                                     */
    size_t support;    /* tokens known in both runs                       */
} mxv_kld_est;

/* The estimate from BASE entries p[0..np) and TEST entries q[0..nq)
 * (top-k lists, optionally with the chosen token added; any order).  The
 * support is the set of tokens present in both lists.  A computed tail
 * mass below 4 * support * 2^-52 (the rounding of the support's log-mass)
 * is taken as 0; then each tail mass is floored at tail_floor (pass 0 for none; the CLI passes
 * support * 2^-24, the float32 rounding of returned log-probs) so that
 * rounding cannot make it zero or negative.  Returns 0, or -1 when a list
 * holds a token twice or a log-prob is NaN, +inf or above 1e-6 (values in
 * (0, 1e-6] are read as 0).  An empty support gives kld 0 with both tails
 * 1 (nothing is known: the caller should count such positions). */
int mxv_kld_topk(const mxv_tok_lp *p, size_t np, const mxv_tok_lp *q,
                 size_t nq, double tail_floor, mxv_kld_est *out);

/* For measuring the estimator against full distributions: from normalized
 * full log-probs lp, lq (n entries) builds the top-k lists each run would
 * return (k largest of each, token ids = indices), and gives the exact KLD,
 * the estimate (tail_floor 0), the proven bias bound B above (0 when
 * p_tail == 0) and the estimator's bound_obs.  Returns 0, or -1 on
 * bad input or out of memory. */
typedef struct {
    double exact, estimate, bias_bound, bound_obs, p_tail;
} mxv_kld_topk_check;
int mxv_kld_topk_from_full(const double *lp, const double *lq, size_t n,
                           size_t k, mxv_kld_topk_check *out);

#endif
