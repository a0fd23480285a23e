/* golden.h -- golden tolerance files (docs/golden.md) and the manifest of
 * golden data files.
 *
 * A golden file (JSON, schema "mxverify-golden/1") holds one entry per
 * (suite case, kernel): thresholds that a gate run must meet, and a history
 * of every update, with the reason for any loosening.  Loading is strict:
 * an unknown schema, a missing or mistyped field, a duplicate entry or an
 * out-of-range threshold is refused with one line naming the file and the
 * field.
 */
#ifndef MXV_GOLDEN_H
#define MXV_GOLDEN_H

#include <stddef.h>
#include "suite.h"

#define MXV_GOLDEN_SCHEMA "mxverify-golden/1"

typedef struct {
    char case_name[48];
    char kernel[40];
    char shape[40];
    size_t tokens;
    char policy[16];
    char model[40];
    double max_err_over_bound;  /* <= 1: a fraction of the bound          */
    size_t max_outside;         /* elements allowed outside (default 0)   */
    double max_ulp;             /* BF16 ulps from the exact value         */
    int bit_exact;              /* 1: every element equal to the model    */
} mxv_golden_entry;

typedef struct {
    char suite[32];
    char backend[8];
    /* The device architecture ("cpu", "sm_90", "gfx942", ...) and the
     * accumulation model(s) the GEMM rows were judged by ("fp32-seq", or
     * "MXFP8_MODEL,BF16_MODEL" when they differ) of the run that made the
     * file; "" in files written before they were recorded (a gate refuses
     * those unless told otherwise). */
    char arch[32];
    char model[96];
    mxv_golden_entry *e;
    size_t n;
    void *history;              /* cJSON array, owned                     */
} mxv_golden;

/* 0, or -1 with a one-line message in err (file, entry, field). */
int mxv_golden_load(const char *path, mxv_golden *g, char *err, size_t len);
/* Atomic write; 0 or -1 with err. */
int mxv_golden_save(const char *path, const mxv_golden *g, char *err, size_t len);
void mxv_golden_free(mxv_golden *g);

const mxv_golden_entry *mxv_golden_find(const mxv_golden *g, const char *case_name,
                                        const char *kernel);
/* Judges a row: 1 pass, 0 fail with the first violated threshold in why. */
int mxv_golden_judge(const mxv_golden_entry *e, const mxv_row *r, char *why,
                     size_t len);
/* Thresholds derived from a run: measured values with 10 % headroom,
 * rounded up (err/bound to 0.01, capped at 1; ulps to 0.5). */
mxv_golden_entry mxv_golden_from_row(const mxv_row *r);
/* 1 when `now` relaxes any threshold of `was`; what names the first. */
int mxv_golden_looser(const mxv_golden_entry *was, const mxv_golden_entry *now,
                      char *what, size_t len);
/* Appends a history record {date, action, reason}. */
void mxv_golden_note(mxv_golden *g, const char *action, const char *reason);

/* The manifest: lines "SHA256  PATH" (paths relative to its directory).
 * verify: 0 when every listed file matches and no golden data file is
 * missing from it; else prints one line per problem to f and returns the
 * number of problems (-1 when the manifest cannot be read). */
int mxv_manifest_verify(const char *manifest, FILE *f);
/* Rewrites the manifest over the given files (relative to its directory). */
int mxv_manifest_write(const char *manifest, const char *const *files, size_t n,
                       char *err, size_t len);
/* Records (or refreshes) one file's line in the manifest (path relative to
 * the manifest's directory); other lines are kept as they are.  0 or -1. */
int mxv_manifest_update(const char *manifest, const char *relpath, char *err,
                        size_t len);
/* The golden directory: $MXVERIFY_GOLDEN_DIR, else ./golden when it holds
 * a MANIFEST (a source tree), else the source tree mxverify was built
 * from. */
const char *mxv_golden_dir(void);
/* <golden dir>/gate-SUITE-BACKEND.json (backend NULL: cpu). */
void mxv_golden_default_path(const char *suite, const char *backend, char *buf,
                             size_t len);
/* sha256 of a file as 64 hex digits; 0 or -1. */
int mxv_sha256_file(const char *path, char out[65]);

#endif
