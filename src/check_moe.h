/* check_moe.h -- `mxverify check`'s judgement of one moe_layer capture,
 * for other commands (drift) that need the same verdicts.
 *
 * mxv_check_moe runs what `check` runs on a moe_layer capture: every
 * tensor validated, the layer reference recomputed stage by stage from the
 * capture's own input and intermediates, each captured stage judged
 * (bound, bytes or equality; see judge.h).  r->j[0 .. r->n) are the
 * stages in pipeline order.  When r->hook is set it is called once, after
 * the judges and before the reference is freed, with the reference result
 * and the captured intermediates, so a caller can attribute the verdicts
 * to experts and tokens (the per-element rule is the judge's). */
#ifndef MXV_CHECK_MOE_H
#define MXV_CHECK_MOE_H

#include "capture.h"
#include "judge.h"

#define MXV_CHECK_MAXJ 16

typedef void (*mxv_check_moe_hook)(void *ctx, const mxv_capture *c,
                                   const mx_moe_result *ref,
                                   const mx_moe_given *given,
                                   const uint16_t *out, size_t T);

typedef struct {
    mxv_judge j[MXV_CHECK_MAXJ];
    char *labels[MXV_CHECK_MAXJ];
    void *keep[64];   /* buffers the judges point into (names) */
    size_t n, nkeep;
    double e2e_rel_l2, e2e_max_ulp;
    int has_e2e;
    size_t route_mismatch, route_ambiguous;
    int has_route;
    char explain[200];
    mxv_check_moe_hook hook; /* optional, set by the caller */
    void *hook_ctx;
} mxv_check_results;

/* Judges the moe_layer capture c into *r (zeroed by the caller but for
 * hook and hook_ctx).  MXV_ST_OK, or a status with err naming file,
 * tensor and field.  Free r with mxv_check_results_free. */
mxv_st_status mxv_check_moe(const mxv_capture *c, mxv_check_results *r, mxv_st_err *err);
void mxv_check_results_free(mxv_check_results *r);

#endif
