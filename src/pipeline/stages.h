/* stages.h -- the stage table: every judged output of an MXFP8 / BF16 MoE
 * layer, written once, for both the kernel runner (runner.c, generated
 * cases) and `mxverify check` (captures).
 *
 * One row per judged output:
 *   stage -> reference producer -> verdict kind -> accumulation-model rule
 *         -> report columns (row name, judge name, capture tensor, label,
 *            what "bit-exact" means, peer metrics on decoded MX values).
 * The runner runs a kernel and hands each of its outputs to
 * mxv_stage_judge() with the stage's id; check hands each captured tensor
 * to the same function.  Neither judges anything itself: adding a kernel
 * is one row here plus its producer (and its launch in the runner).
 *
 * Producers read the layer reference (mx_moe_result) or, for stages whose
 * reference the caller computes (weight normalization, alignment,
 * standalone captures), the reference bytes given in mxv_stage_src.
 */
#ifndef MXV_STAGES_H
#define MXV_STAGES_H

#include <stddef.h>
#include <stdint.h>
#include "capture.h"
#include "judge.h"
#include "mxref/moe.h"

/* The accumulation model the runner judges GEMMs against unless --model
 * says otherwise: the order of the kernels' portable path (CPU backend and
 * the GPU library's portable path).  AMD matrix cores do not follow it; the
 * block models (mxref/blockfma.h) judge them. */
#define MXV_RUN_DEFAULT_MODEL "fp32-seq"

typedef enum {
    MXV_STAGE_XQ_SCALE = 0, /* activation quantization: scale bytes       */
    MXV_STAGE_XQ,           /* activation quantization: FP8 codes         */
    MXV_STAGE_W13,          /* FN -> FNUZ weight normalization, w13       */
    MXV_STAGE_W2,           /* the same, w2                               */
    MXV_STAGE_ALIGN,        /* routing alignment (sorted ids, blocks)     */
    MXV_STAGE_G1,           /* GEMM1 (gate and up projections)            */
    MXV_STAGE_ACTQ_SCALE,   /* SwiGLU + quantization: scale bytes         */
    MXV_STAGE_ACTQ,         /* SwiGLU + quantization: FP8 codes           */
    MXV_STAGE_ACT,          /* SwiGLU: the FP32 activation                */
    MXV_STAGE_ACT16,        /* SwiGLU, BF16 policy: the BF16 activation   */
    MXV_STAGE_Y,            /* GEMM2 (down projection)                    */
    MXV_STAGE_ROUTED,       /* moe_sum in BF16 (the production order)     */
    MXV_STAGE_ROUTED_FP32,  /* moe_sum accumulated in FP32                */
    MXV_STAGE_SHARED,       /* the shared expert's output                 */
    MXV_STAGE_OUT,          /* the layer output                           */
    MXV_STAGE_E2E,          /* the kernels chained (information only)     */
    MXV_STAGE_QUANT_SCALE,  /* standalone mx_quant capture: scales        */
    MXV_STAGE_QUANT,        /* standalone mx_quant capture: codes         */
    MXV_STAGE_GEMM,         /* standalone group GEMM capture: out         */
    MXV_STAGE_COUNT
} mxv_stage_id;

typedef enum {
    MXV_VERDICT_BYTES,      /* bytes equal to the reference's, or to an
                               admissible alternative                     */
    MXV_VERDICT_BF16_CODES, /* BF16 codes equal to the model's or to the
                               alternative (a deterministic BF16 stage)   */
    MXV_VERDICT_BOUND,      /* |out - exact| <= bound; bit-exact when equal
                               to the accumulation model's output         */
    MXV_VERDICT_EQUAL,      /* BF16 equal to the model (deterministic)    */
    MXV_VERDICT_EQUAL_IF_GIVEN, /* EQUAL when the stage's inputs were
                               captured too, else BOUND                   */
    MXV_VERDICT_F32_BOUND,  /* FP32 |out - exact| <= bound                */
    MXV_VERDICT_INFO        /* peer metrics only; never fails             */
} mxv_verdict_kind;

typedef enum {
    MXV_ACCUM_NONE,         /* no accumulation order involved             */
    MXV_ACCUM_RUN,          /* the run's model: the runner's (default
                               MXV_RUN_DEFAULT_MODEL), a capture's
                               accum_model; --model overrides both        */
    MXV_ACCUM_INPUTS        /* deterministic, but its inputs come from
                               stages that follow the run's model         */
} mxv_accum_rule;

typedef enum {
    MXV_EXACT_ALL_RIGHT,    /* bit-exact: no wrong element               */
    MXV_EXACT_NO_ALT,       /* bit-exact: no wrong byte, no alternative   */
    MXV_EXACT_MODEL,        /* bit-exact: every element equals the model  */
    MXV_EXACT_NONE          /* no bit-exact rule (FP32, information)      */
} mxv_exact_rule;

#define MXV_POL_W8A8 1u     /* the stage exists under w8a8-mxfp8          */
#define MXV_POL_BF16 2u     /* ... under bf16                             */

/* What a producer reads.  Sizes are the layer's; the kernel's own scale
 * bytes feed the alternatives of its element bytes and the peer metrics. */
typedef struct {
    const mx_moe_result *ref;   /* the layer reference (NULL: given only) */
    const mx_moe_shape *shape;
    size_t T, k, H, I;
    const uint8_t *out_scale;   /* the kernel's scale bytes, or NULL      */
    int inputs_given;           /* OUT: routed and shared were captured   */
    /* a reference the caller computed (stages W13, W2, ALIGN, QUANT*,
     * GEMM): model bytes/codes, exact values, bounds, sizes */
    const void *given;
    const double *given_exact, *given_bound;
    size_t given_n, given_cols;
    /* peer metrics on decoded MX values of a given reference: the
     * reference's codes and scales over peer_n values, rows per expert
     * of packed [E, K/32, N] scales (0: one scale per 32 in a row) */
    const uint8_t *peer_out_q, *peer_ref_q, *peer_ref_s;
    size_t peer_n, peer_packed_rows;
} mxv_stage_src;

/* The reference of one stage as the judge consumes it. */
typedef struct {
    const void *model, *alt;
    const double *exact, *bound;
    size_t n, cols;
    const uint8_t *peer_out_q, *peer_ref_q, *peer_ref_s;
    size_t peer_n, peer_packed_rows;
    void *owned[3];             /* buffers the producer allocated         */
} mxv_stage_ref;

typedef struct {
    mxv_stage_id id;
    const char *kernel;         /* runner row name (w8a8 policy)          */
    const char *kernel_bf16;    /* runner row name under bf16, or NULL    */
    const char *run_name;       /* judge name in runner rows (NULL: kernel) */
    const char *tensor;         /* tensor of a capture, NULL if none      */
    const char *label;          /* check's row label (NULL: tensor)       */
    unsigned captures;          /* bit (1u << mxv_cap_kind) per capture
                                   kind that holds the tensor             */
    int scale_of;               /* the stage holding this one's scale
                                   bytes (the kernel's own), or -1        */
    const char *inputs[2];      /* EQUAL_IF_GIVEN: the tensors whose
                                   capture makes the stage deterministic  */
    unsigned policies;          /* MXV_POL_* where the stage exists       */
    mxv_verdict_kind verdict;
    mxv_accum_rule accum;
    mxv_exact_rule exact;
    int mx_peers;               /* peers on decoded MX values of outputs  */
    /* 0, or -1 when out of memory; fills r (owned buffers freed by the
     * judge). */
    int (*produce)(const mxv_stage_src *s, const void *out, mxv_stage_ref *r);
} mxv_stage;

/* The table, in pipeline order, and one row by id. */
const mxv_stage *mxv_stage_table(size_t *n);
const mxv_stage *mxv_stage_get(mxv_stage_id id);
/* The runner's row name for a policy (MXV_POL_*). */
const char *mxv_stage_kernel(const mxv_stage *st, unsigned policy);

/* Judges out (the stage's output: bytes, BF16 codes or FP32 values) into j
 * under the stage's verdict kind, with name as the tensor name (NULL: the
 * table's).  0, or -1 when out of memory (j then says nothing judged). */
int mxv_stage_judge(const mxv_stage *st, const mxv_stage_src *src, const void *out,
                    const char *name, mxv_judge *j);
/* The row's bit-exact column under the stage's rule. */
int mxv_stage_bit_exact(const mxv_stage *st, const mxv_judge *j);

#endif
