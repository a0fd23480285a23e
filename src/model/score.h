/* score.h -- task scores from lm-eval-harness --log_samples JSONL: accuracy
 * with a Wilson interval, and McNemar's exact test against a base run on
 * the paired per-question outcomes (docs/model-checks.md). */
#ifndef MXV_MODEL_SCORE_H
#define MXV_MODEL_SCORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t doc;      /* doc_id                                            */
    int ok;           /* the metric: 1 right, 0 wrong                      */
    size_t line;
} mxv_sample;

typedef struct {
    char *path, *metric, *filter;
    mxv_sample *s;    /* sorted by doc                                     */
    size_t n;
} mxv_samples;

/* Loads the samples of one filter.  metric: the per-sample field (e.g.
 * "exact_match"), values 0/1 (numbers or booleans).  filter: NULL picks
 * the file's only filter, or "strict-match" when there are several and it
 * is one of them; else an error lists them (exit 2).  Lines without a
 * "filter" field have filter "none".  Returns 0, or 3 (bad input, one line
 * naming file, line and field), 2 (filter choice) or 4 with err. */
int mxv_samples_load(const char *path, const char *metric, const char *filter,
                     mxv_samples *out, char *err, size_t len);
void mxv_samples_free(mxv_samples *s);

typedef struct {
    size_t k, n;
    double acc, lo95, hi95;   /* two-sided 95 % Wilson                      */
    double lower;             /* one-sided lower bound at level conf        */
    double conf;
    /* paired with a base run (have_base) */
    int have_base;
    size_t base_k;
    size_t b, c;              /* right->wrong, wrong->right                 */
    double p_two, p_worse;
} mxv_score;

/* Scores test (conf: the one-sided level, 0.95); with base (may be NULL)
 * pairs the outcomes by doc_id: different doc sets are an input error (3)
 * naming the first unpaired doc. */
int mxv_score_runs(const mxv_samples *test, const mxv_samples *base,
                   double conf, mxv_score *out, char *err, size_t len);

#endif
