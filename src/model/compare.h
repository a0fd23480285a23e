/* compare.h -- compare two runs of a model position by position: KLD,
 * delta-p of the reference token, same top-1, log-PPL ratio, first greedy
 * divergence; per request group (docs/model-checks.md). */
#ifndef MXV_MODEL_COMPARE_H
#define MXV_MODEL_COMPARE_H

#include "model/run.h"
#include "model/stats.h"

typedef struct {
    char *name;             /* "all", or a request group's tag           */
    size_t requests;        /* requests in the group                     */
    size_t positions;       /* positions compared                        */
    mxv_summary kld;        /* per position KL(BASE || TEST), nats       */
    mxv_summary dp;         /* p_TEST(ref) - p_BASE(ref)                 */
    mxv_summary lppl;       /* log p_BASE(ref) - log p_TEST(ref): its mean
                               is ln(PPL(TEST) / PPL(BASE))              */
    double ppl_base;        /* exp(mean -log p_BASE(ref)), over the
                               positions with dp (as llama.cpp's PPL)     */
    double ppl_test;        /* exp(mean -log p_TEST(ref))                */
    double ln_corr;         /* Pearson correlation of log p_BASE(ref) and
                               log p_TEST(ref) (gsl_stats_correlation)    */
    mxv_share top1;         /* positions whose top-1 token agrees        */
    size_t ref_unknown;     /* positions without the reference token's
                               log-prob in both runs (no dp, lppl)       */
    size_t gen_requests;    /* requests with generated positions         */
    size_t diverged;        /* ... whose generated tokens differ         */
    mxv_summary div_at;     /* first differing generated token, index    */
    size_t not_compared;    /* positions after a divergence (contexts
                               differ; excluded)                          */
    /* top-k runs only */
    double mean_p_tail;     /* BASE mass outside the common support      */
    double mean_bound_obs;  /* mean of the estimator's bound_obs         */
    size_t empty_support;   /* positions with no token known in both     */
    /* full runs with a top-k check (mxv_compare_opts.topk_check = k): the
     * estimate each position's top-k lists would give, against the exact */
    mxv_summary tk_est;     /* the estimate                              */
    mxv_summary tk_bias;    /* exact - estimate                          */
    mxv_summary tk_bound;   /* the proven bias bound                     */
    size_t tk_violations;   /* positions with bias outside [0, bound]
                               beyond rounding: must be 0                 */
} mxv_cmp_group;

typedef struct {
    char *key, *group;
    size_t compared;
    long diverged_at;       /* generated-token index, or -1              */
} mxv_cmp_req;

typedef struct {
    int kind;               /* MXV_RUN_FULL (exact) or MXV_RUN_TOPK      */
    size_t k;               /* top-k, or the vocabulary size             */
    size_t topk_check;      /* the k of the top-k check (0: none)        */
    mxv_cmp_group *g;       /* g[0] is "all", then groups by name        */
    size_t ng;
    mxv_cmp_req *req;       /* in key order                              */
    size_t nreq;
} mxv_compare;

typedef struct {
    size_t topk_check;      /* full runs: also measure the top-k estimator
                               for this k (0: no)                         */
} mxv_compare_opts;

/* Compares; 0, or an exit code (3: the runs do not match -- different
 * request sets, k, vocabulary, tokenization, prompt tokens; a NaN row; 4:
 * memory) with one line in err naming the file, request and position. */
int mxv_compare_runs(const mxv_run *base, const mxv_run *test,
                     mxv_compare *out, char *err, size_t len);
/* The same with options (o may be NULL). */
int mxv_compare_runs_opt(const mxv_run *base, const mxv_run *test,
                         const mxv_compare_opts *o, mxv_compare *out,
                         char *err, size_t len);
void mxv_compare_free(mxv_compare *c);

#endif
