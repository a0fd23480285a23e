/* check_capture_internal.h -- what check_capture.c shares with
 * check_capture_moe.c; private to src/pipeline/check_capture*.c. */
#ifndef MXV_CHECK_CAPTURE_INTERNAL_H
#define MXV_CHECK_CAPTURE_INTERNAL_H

#include "check_capture.h"

/* st = x; on failure, to the function's label done */
#define TRY(x)                                                                 \
    do {                                                                       \
        if ((st = (x)) != MXV_ST_OK)                                           \
            goto done;                                                         \
    } while (0)

/* The next free judge of res, or NULL when all MXV_CHECK_MAX_TENSORS are
 * used. */
mxv_judge *mxv_check_next_judge(mxv_check_result *res);
/* A MoE layer capture, stage by stage (hook, when not NULL, sees each
 * judged stage). */
mxv_st_status mxv_check_moe(const mxv_capture *c, mxv_check_result *res,
                            mxv_check_stage_hook hook, void *hook_ctx, mxv_st_err *err);

#endif
