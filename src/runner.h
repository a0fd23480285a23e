/* runner.h -- run the kernels of one backend on one generated case and
 * judge every output against the reference.
 *
 * Each kernel is fed the reference's own inputs for its stage (so a planted
 * bug in one kernel does not spill into the verdicts of the next) and its
 * output is judged against the reference stage computed from those inputs:
 * quantization and alignment kernels by bytes, GEMMs by bound and by
 * bit-exactness to the accumulation model the backend's path follows
 * (fp32-seq for the portable path), moe_sum by equality.  On the GPU every
 * output is also compared bit for bit with the CPU backend.
 */
#ifndef MXV_RUNNER_H
#define MXV_RUNNER_H

#include "mxk.h"
#include "suite.h"

typedef struct {
    const mxk_ops *ops;   /* the backend under test                         */
    const mxk_ops *cpu;   /* the CPU backend, compared with a GPU backend   */
    int mutant;           /* planted bug id, 0 for the correct kernels      */
    uint64_t seed_offset; /* added to every case's seed (robustness runs)   */
    int chain;            /* also run the kernels chained, each on the      */
                          /* previous kernel's output, and add a row        */
                          /* "moe.e2e": the routed output against the exact */
                          /* reference chain (peer metrics only; it never   */
                          /* fails the run: drift is not a verdict)         */
} mxv_runner;

/* Runs every kernel that applies to the case's policy and appends one row
 * per kernel output to rows.  0, or -1 with a one-line message in err when
 * the case itself cannot be built (bad definition, out of memory). */
int mxv_run_case(const mxv_case_def *c, const mxv_runner *r, mxv_rows *rows,
                 char *err, size_t len);

#endif
