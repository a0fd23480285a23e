/* case_pool.h -- the cases of a suite run on the worker pool
 * (mxref/pool.h), their rows joined in case order.
 *
 * Every case runs on its own (own reference, own kernel outputs, own rows),
 * so the joined rows are those of the plain loop over the cases whatever
 * the thread count; only the kernel times (mxv_row.ms) differ from run to
 * run, as they always do.  A GPU backend drives one device: its cases'
 * kernels run one after another, in a two-stage stream (case_pool.c):
 * the host references of the next cases are computed, in case order,
 * while the kernels of case i run and are judged, and case i+1's kernels
 * start as soon as its reference is ready; both stages on the one pool
 * (at most --jobs busy threads, the one finishing a case included).
 */
#ifndef MXV_CASE_POOL_H
#define MXV_CASE_POOL_H

#include "runner.h"

/* Runs cases[i] for every i < n (NULL entries are skipped) and appends
 * their rows to rows in index order; with progress, a line on stderr as
 * each case finishes ("mxverify: NAME done in S s", in finishing order).
 * 0, or -1 with the first failing case's message (in case order) in err. */
int mxv_run_cases(const mxv_case_def *const *cases, size_t n, const mxv_runner *r,
                  mxv_rows *rows, int progress, char *err, size_t len);

/* Parses a --jobs value (NULL: the processors available; "0" likewise) and
 * sizes the pool; MXV_EXIT_USAGE with a message for a bad value, else 0. */
int mxv_jobs_apply(const char *value);

#endif
