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

#define MXV_CHECK_MAX_TENSORS 16

typedef struct {
    mxv_judge j[MXV_CHECK_MAX_TENSORS]; /* one per judged tensor, in order */
    size_t n;
    double e2e_rel_l2, e2e_max_ulp; /* moe_layer: out vs the reference chain */
    int has_e2e;
    size_t route_mismatch;      /* tokens routed to another expert set       */
    size_t route_ambiguous;     /* ... where the reference marks a near tie  */
    int has_route;
    char explain[200];          /* the model explanation, or empty           */
} mxv_check_result;

/* Validates the capture's tensors, computes the reference under c->model
 * and judges every output.  MXV_ST_OK (verdicts in res), or a status with
 * a one-line message in err naming file, tensor and field. */
mxv_st_status mxv_check_capture(const mxv_capture *c, mxv_check_result *res,
                                mxv_st_err *err);

#endif
