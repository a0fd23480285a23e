/* drift_kld.h -- drift's KLD at the logits (drift_kld.c), private to
 * src/model/drift*.c. */
#ifndef MXV_MODEL_DRIFT_KLD_H
#define MXV_MODEL_DRIFT_KLD_H

#include <stddef.h>
#include "model/drift.h"

/* Fills d's kld_* and same_top1 fields from the runs' log-prob files
 * bpath and tpath.  0, or an exit code with one line in err. */
int mxv_drift_kld(mxv_drift *d, const char *bpath, const char *tpath, char *err,
                  size_t len);

#endif
