/* case_write.h -- a generated MoE layer case and its reference, written as a
 * moe_layer capture (docs/capture-format.md) whose intermediates are the
 * reference model's outputs, plus the reference's exact values and bounds
 * under "ref." names (docs/reference.md lists them). */
#ifndef MXV_CASE_WRITE_H
#define MXV_CASE_WRITE_H

#include "mxref/casegen.h"
#include "safetensors.h"

/* Writes atomically (no partial file on failure).  MXV_ST_OK or the
 * writer's status with a one-line message in err. */
mxv_st_status mxv_case_write(const char *path, const mx_case_params *p,
                             const mx_case *c, const mx_moe_config *cfg,
                             const mx_moe_result *r, mxv_st_err *err);

#endif
