/* drift.h -- drift localization over the per-layer captures of two runs
 * (docs/drift.md).
 *
 * BASE and TEST are two runs of the same model on the same prompts, each a
 * directory of moe_layer captures (tools/capture, one per MoE layer, the
 * layer index in the `layer` metadata key; in DIR/layers/ when that
 * exists, else in DIR) and optionally DIR/logprobs.safetensors (the
 * full-log-prob run file of `mxverify model compare`).  For every layer:
 *
 *   local error      the TEST layer judged as `mxverify check` judges it:
 *                    the reference recomputed from the TEST layer's own
 *                    input and intermediates, every element of every
 *                    captured stage against its bound (or its bytes).  An
 *                    element outside is a bug in that layer.  Attributed to
 *                    stages, experts (routed rows r = t*k + j belong to
 *                    expert topk_ids[t, j]) and tokens.
 *   inherited drift  TEST against BASE on the layer's input x, its router
 *                    logits and its output: SQNR, cosine, relative L2, max
 *                    |difference|; routing agreement.  Differences that
 *                    the arithmetic allows and that earlier layers passed
 *                    on.
 *
 * and, from the log-prob files, the KL divergence KL(BASE || TEST) at the
 * logits over the teacher-forced (prompt) positions.
 */
#ifndef MXV_MODEL_DRIFT_H
#define MXV_MODEL_DRIFT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MXV_DRIFT_STAGES 16
#define MXV_DRIFT_FP8 6
#define MXV_DRIFT_EXPERT_NONE (-1)   /* a stage before routing or after moe_sum */
#define MXV_DRIFT_EXPERT_SHARED (-2) /* the shared expert                       */

/* TEST against BASE on one tensor (binary64 sums). */
typedef struct {
    size_t n;
    double sqnr_db;   /* 10 log10(sum b^2 / sum (t - b)^2); +inf when equal */
    double cosine;    /* <t, b> / (|t| |b|)                                  */
    double rel_l2;    /* |t - b| / (|b| + 1e-30)                             */
    double max_abs;   /* max |t - b|                                         */
} mxv_drift_cmp;

/* One judged stage of a TEST layer (check's verdict). */
typedef struct {
    char name[24];
    int by_bytes;           /* judged by bytes (1) or by bound (0)           */
    size_t n, outside;
    double max_ratio;       /* max |err| / bound (bound-judged)              */
    double bit_exact;       /* share equal to the accumulation model         */
    long first_row, first_col;  /* first element outside (-1: none)          */
    long first_token, first_expert;
    long top_expert;        /* the expert with most elements outside, or    */
    size_t top_expert_outside; /* MXV_DRIFT_EXPERT_NONE / _SHARED           */
} mxv_drift_stage;

/* Transformer-Engine-style statistics of one FP8 tensor of a capture. */
typedef struct {
    char name[16];
    char format[12];          /* e4m3fn, e4m3fnuz                             */
    size_t n;
    double zero, saturated, subnormal, nan;  /* shares of n                  */
    double underflow;         /* share of nonzero sources that became 0      */
                              /* (NaN when the source is not in the capture) */
    size_t scales;            /* scale bytes                                  */
    size_t scale_hist[256];   /* GSL histogram of the scale bytes             */
    int scale_min, scale_max, scale_mode;
} mxv_drift_fp8;

typedef struct {
    int layer;
    char base_path[1024], test_path[1024];
    size_t T, H, E, k;
    char policy[16];          /* the TEST layer's resolved dataflow           */
    char base_policy[16];
    /* local error (TEST) */
    mxv_drift_stage st[MXV_DRIFT_STAGES];
    size_t nst;
    size_t outside;           /* over all stages                              */
    size_t route_mismatch, route_ambiguous;
    int local_pass;
    int first_stage;          /* index into st of the first failing stage, -1 */
    size_t *expert_outside;   /* [E + 1]: routed experts, then the shared one */
    size_t *token_outside;    /* [T]                                          */
    double local_rel_l2;      /* check's end to end: out vs the exact stages, */
                              /* each fed the captured stage before it        */
    double local_max_ulp;
    size_t base_outside;      /* BASE judged the same way                     */
    int base_pass;
    /* inherited drift (TEST vs BASE) */
    mxv_drift_cmp in, out, logits;
    int has_logits;
    double route_agree;       /* share of tokens with the same expert set     */
    double growth;            /* out.rel_l2 / in.rel_l2 (NaN when in is 0)   */
    /* FP8 statistics of the TEST capture */
    mxv_drift_fp8 fp8[MXV_DRIFT_FP8];
    size_t nfp8;
} mxv_drift_layer;

typedef struct {
    const char *base_dir, *test_dir;
    mxv_drift_layer *layers;
    size_t nlayers;
    int first_bug;            /* index into layers, -1 when none              */
    /* KLD at the logits */
    int has_kld;
    size_t kld_n, kld_requests;
    double kld_mean, kld_se, kld_max, kld_p99;
    double same_top1;
} mxv_drift;

/* Runs the analysis.  Returns 0 (MXV_EXIT_OK) and fills *d, or an mxverify
 * exit code (3 bad input, 4 internal) with a one-line message in err that
 * names the file, tensor and field.  Free d with mxv_drift_free (also after
 * a failure). */
int mxv_drift_run(const char *base_dir, const char *test_dir, mxv_drift *d,
                  char *err, size_t errlen);
void mxv_drift_free(mxv_drift *d);

/* Reports.  Text to f; JSON, Markdown and SVG written atomically to path
 * (0 or -1 with err set). */
void mxv_drift_print(FILE *f, const mxv_drift *d, int top);
int mxv_drift_write_json(const char *path, const mxv_drift *d, char *err, size_t len);
int mxv_drift_write_md(const char *path, const mxv_drift *d, int top, char *err, size_t len);
int mxv_drift_write_svg(const char *path, const mxv_drift *d, char *err, size_t len);

#endif
