/* tolerance.h -- golden model tolerances (docs/model-checks.md): per model,
 * policy and device, the largest mean KLD, the largest 99.9th-percentile
 * KLD, the smallest same-top-1 share and the smallest task score allowed.
 * Same rules as kernel tolerances (docs/golden.md): versioned in golden/
 * MANIFEST, a history of every change, never loosened without a recorded
 * reason. */
#ifndef MXV_MODEL_TOLERANCE_H
#define MXV_MODEL_TOLERANCE_H

#include <stddef.h>

#define MXV_MTOL_SCHEMA "mxverify-model-golden/1"

typedef struct {
    char model[48], policy[32], device[32];
    double max_mean_kld;   /* NaN: not set (a compare judged against the
                              entry fails: "no threshold")               */
    double max_p999_kld;
    double min_same_top1;
    double min_score;      /* one-sided 95 % Wilson lower bound must clear */
    char task[32], metric[32], filter[32]; /* what min_score is about    */
    char source[160];      /* where the numbers come from                 */
} mxv_mtol_entry;

typedef struct {
    mxv_mtol_entry *e;
    size_t n;
    void *history;         /* cJSON array, owned                          */
} mxv_mtol;

/* Strict load: unknown schema, unknown or mistyped field, out-of-range
 * threshold, duplicate (model, policy, device): -1 with one line in err
 * naming file, entry and field. */
int mxv_mtol_load(const char *path, mxv_mtol *g, char *err, size_t len);
/* Atomic write (temporary file + rename); 0 or -1 with err. */
int mxv_mtol_save(const char *path, const mxv_mtol *g, char *err, size_t len);
void mxv_mtol_free(mxv_mtol *g);
const mxv_mtol_entry *mxv_mtol_find(const mxv_mtol *g, const char *model,
                                    const char *policy, const char *device);
/* 1 when now relaxes a threshold of was (a larger max, a smaller min, or a
 * set threshold unset); what names the first. */
int mxv_mtol_looser(const mxv_mtol_entry *was, const mxv_mtol_entry *now,
                    char *what, size_t len);
/* Appends {date, action, reason} to the history. */
void mxv_mtol_note(mxv_mtol *g, const char *action, const char *reason);

#endif
