/* capture.h -- opening and validating capture files
 * (docs/capture-format.md).  Every accessor validates what it returns and
 * reports a refusal as one line naming the file, the tensor and the field;
 * nothing is trusted from the header beyond what safetensors.c checked. */
#ifndef MXV_CAPTURE_H
#define MXV_CAPTURE_H

#include "mxref/moe.h"
#include "safetensors.h"

typedef enum {
    MXV_CAP_MXFP8_GEMM = 0,
    MXV_CAP_BF16_GEMM,
    MXV_CAP_MX_QUANT,
    MXV_CAP_MOE_LAYER,
    MXV_CAP_MXFP8_PLAIN,      /* mxfp8_gemm: one GEMM, no experts or top-k  */
    MXV_CAP_BF16_PLAIN        /* bf16_gemm                                  */
} mxv_cap_kind;

typedef struct {
    mxv_st_file *f;
    mxv_cap_kind kind;
    mx_format_id elem;        /* element_format (default e4m3fnuz)          */
    mx_e8m0_decode decode;    /* e8m0_decode (default production)           */
    int packed;               /* scale_layout packed                        */
    mx_scale_rule rule;       /* scale_rule                                 */
    double rceil_max;
    mx_accum_model model;     /* accum_model                                */
    int a_per_route, mul_weight, finite;
    mx_moe_policy policy;     /* moe_layer                                  */
    mx_moe_shape shape;       /* moe_layer                                  */
    size_t experts;           /* group GEMMs: metadata "experts", 0 absent  */
} mxv_capture;

/* Opens and reads the metadata.  MXV_ST_OK, or a status with err set. */
mxv_st_status mxv_capture_open(const char *path, mxv_capture *c, mxv_st_err *err);
void mxv_capture_close(mxv_capture *c);

/* A required tensor of the given dtypes and shape (MXV_ST_ANY_DIM
 * wildcards); rank 0 shape pointer may be NULL.  Every dimension must be
 * at least 1 (the format has no empty tensors; only the per-expert weights
 * of a moe_layer may hold no expert), else MXV_ST_EMISMATCH:
 *     cap.safetensors: tensor "topk_ids": shape [0, 4] has an empty
 *     dimension (sizes must be >= 1) */
mxv_st_status mxv_capture_tensor(const mxv_capture *c, const char *name,
                                 unsigned dtypes, int rank, const uint64_t *shape,
                                 const mxv_st_tensor **t, mxv_st_err *err);
/* An optional tensor: NULL when absent, else validated like the above. */
mxv_st_status mxv_capture_optional(const mxv_capture *c, const char *name,
                                   unsigned dtypes, int rank,
                                   const uint64_t *shape,
                                   const mxv_st_tensor **t, mxv_st_err *err);

/* Dtype sets: FP8 codes of the element format (or U8), E8M0 scales (or U8). */
unsigned mxv_capture_fp8_dtypes(mx_format_id elem);
#define MXV_CAP_E8M0 (MXV_ST_BIT(MXV_ST_F8_E8M0) | MXV_ST_BIT(MXV_ST_U8))
#define MXV_CAP_IDS (MXV_ST_BIT(MXV_ST_I32) | MXV_ST_BIT(MXV_ST_I64))

/* Content checks, each naming the first offending element:
 * codes that are NaN or inf in fmt (when the capture says finite); scale
 * bytes equal to 255; non-finite FP32 values.  mxv_capture_require_finite
 * refuses NaN and inf codes whatever the capture says, for inputs the
 * reference cannot take otherwise. */
mxv_st_status mxv_capture_check_codes(const mxv_capture *c, const mxv_st_tensor *t,
                                      const mx_format *fmt, mxv_st_err *err);
mxv_st_status mxv_capture_require_finite(const mxv_capture *c,
                                         const mxv_st_tensor *t,
                                         const mx_format *fmt, mxv_st_err *err);
mxv_st_status mxv_capture_check_scales(const mxv_capture *c, const mxv_st_tensor *t,
                                       mxv_st_err *err);
mxv_st_status mxv_capture_check_f32(const mxv_capture *c, const mxv_st_tensor *t,
                                    mxv_st_err *err);
/* Top-k expert ids [T, k] (I32 or I64) as a new int32 array: every id in
 * [0, n_experts), no duplicate within a token.  *out must be freed. */
mxv_st_status mxv_capture_topk(const mxv_capture *c, const mxv_st_tensor *t,
                               size_t n_experts, int32_t **out, mxv_st_err *err);
/* Any integer vector (I32/I64) as int32 (values must fit). */
mxv_st_status mxv_capture_ints(const mxv_capture *c, const mxv_st_tensor *t,
                               int32_t **out, mxv_st_err *err);

#endif
