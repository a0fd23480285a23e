/* drift_fp8.h -- per-tensor FP8 statistics of a moe_layer capture, as
 * Transformer Engine's FP8 debug tools give them: the share of values that
 * are zero, saturated (|value| is the format's largest finite), subnormal
 * or NaN; the share of nonzero sources that quantized to zero (underflow,
 * where the source is in the capture: xq from x); the histogram of the E8M0
 * scale bytes (a GSL histogram with one bin per byte). */
#ifndef MXV_MODEL_DRIFT_FP8_H
#define MXV_MODEL_DRIFT_FP8_H

#include "capture.h"
#include "model/drift.h"

/* Fills out[0 .. *n) (at most cap) for the FP8 tensors of c that are
 * present: xq, actq (the capture's element format) and the checkpoint
 * weights w13, w2 (E4M3FN).  Returns 0 or an mxverify exit code with err. */
int mxv_drift_fp8_stats(const mxv_capture *c, mxv_drift_fp8 *out, size_t *n, size_t cap,
                        char *err, size_t len);

#endif
