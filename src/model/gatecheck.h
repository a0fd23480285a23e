/* gatecheck.h -- model checks as verdicts of `mxverify gate`: a comparison
 * of two runs judged against a golden model tolerance entry, and a task
 * score judged against the entry's min_score (docs/model-checks.md). */
#ifndef MXV_MODEL_GATECHECK_H
#define MXV_MODEL_GATECHECK_H

#include <stddef.h>

typedef struct {
    char name[300];     /* "model compare BASE TEST", "model score RUN"  */
    char entry[160];    /* "model/policy/device"                          */
    int pass;
    char why[400];      /* the failed thresholds, "; "-separated          */
    char summary[300];  /* the judged figures, one line                   */
    char *json;         /* the check's own JSON report (malloc'd)         */
} mxv_model_check;

/* Parses "MODEL/POLICY/DEVICE" into the three parts (each < 48 bytes).
 * 0, or -1. */
int mxv_model_entry_parse(const char *s, char *model, char *policy,
                          char *device, size_t n);

/* Compares base and test and judges the "all" group against entry of the
 * tolerance file golden.  0 (c filled; c->pass says the verdict), or an
 * exit code (3 bad input or tolerance file, 4 internal) with one line in
 * err. */
int mxv_model_check_compare(const char *base, const char *test,
                            const char *golden, const char *entry,
                            mxv_model_check *c, char *err, size_t len);
/* Scores run (lm-eval samples; with base: McNemar) against the entry's
 * min_score.  Same returns. */
int mxv_model_check_score(const char *run, const char *base,
                          const char *golden, const char *entry,
                          mxv_model_check *c, char *err, size_t len);
void mxv_model_check_free(mxv_model_check *c);

#endif
