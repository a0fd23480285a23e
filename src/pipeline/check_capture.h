/* check_capture.h -- judging one capture file (docs/capture-format.md)
 * against the exact reference: the pipeline half of `mxverify check`.
 *
 * Every tensor goes through the stage table (stages.h), as the kernel
 * runner's outputs do.  A group GEMM capture whose output the declared
 * accumulation model does not explain also gets an explanation: which other
 * model (FP32 orders, block presets) explains it, or that none does.
 */
#ifndef MXV_CHECK_CAPTURE_H
#define MXV_CHECK_CAPTURE_H

#include "capture.h"
#include "judge.h"
#include "stages.h"

#define MXV_CHECK_MAX_TENSORS 16

typedef struct {
    mxv_judge j[MXV_CHECK_MAX_TENSORS]; /* one per judged tensor, in order */
    size_t n;
    double e2e_rel_l2, e2e_max_ulp; /* moe_layer: out vs the reference chain */
    int has_e2e;
    size_t route_mismatch;      /* tokens routed to another expert set       */
    size_t route_ambiguous;     /* ... where the reference marks a near tie  */
    int has_route;
    char explain[300];          /* the model explanation, or empty           */
    /* GEMM output judged by a measured device model (block:hopper-*):
     * elements within their bound but not bit-exact to the model ("within
     * bound, not the device's arithmetic"); they fail the capture unless
     * bound_only (set by the caller before mxv_check_capture) */
    size_t not_device;
    int bound_only;
} mxv_check_result;

/* Validates the capture's tensors, computes the reference under c->model
 * and judges every output.  MXV_ST_OK (verdicts in res), or a status with
 * a one-line message in err naming file, tensor and field. */
mxv_st_status mxv_check_capture(const mxv_capture *c, mxv_check_result *res,
                                mxv_st_err *err);

/* The same, calling hook (when not NULL) for every judged stage of a
 * moe_layer capture, right after its verdict j: the stage's table row, its
 * source (src->ref is the layer reference), the captured output and the
 * top-k expert ids the reference used (captured or its own).  Everything
 * passed is valid only during the call.  `mxverify drift` attributes the
 * elements outside to experts and tokens this way. */
typedef void (*mxv_check_stage_hook)(void *ctx, const mxv_stage *st,
                                     const mxv_stage_src *src, const void *out,
                                     const mxv_judge *j, const int32_t *topk_ids);
mxv_st_status mxv_check_capture_hooked(const mxv_capture *c, mxv_check_result *res,
                                       mxv_check_stage_hook hook, void *hook_ctx,
                                       mxv_st_err *err);

#endif
