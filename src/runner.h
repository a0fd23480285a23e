/* runner.h -- run the kernels of one backend on one generated case and
 * judge every output against the reference.
 *
 * Each kernel is fed the reference's own inputs for its stage (so a planted
 * bug in one kernel does not spill into the verdicts of the next) and its
 * output is judged against the reference stage computed from those inputs:
 * quantization and alignment kernels by bytes, GEMMs by bound and by
 * bit-exactness to the accumulation model the backend's path follows
 * (fp32-seq for the portable path, the block models of the matrix-unit
 * kernels; mxv_runner.model_*), moe_sum by equality.  On the GPU every
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
    /* Accumulation models the GEMM rows are judged by (mxref/accum.h
     * names), for MXFP8 and for BF16 GEMMs: by default the backend's own
     * (mxk_ops: fp32-seq on the portable path, the hopper-* / cdna3-*
     * block models for the matrix-unit kernels); see mxv_runner_set_model. */
    char model_mx[48];
    char model_bf16[48];
    /* Where the model is a measured device model (mx_blockfma_params
     * .measured: the hopper-* presets), an element within its bound but
     * not bit-exact to the model fails its row (mxv_row.not_device);
     * bound_only = 1 accepts such elements on their bound. */
    int bound_only;
} mxv_runner;

/* Sets r's models from a --model argument: NULL for the backend's device
 * models, "M" for M on every GEMM, or "M8,M16" for the MXFP8 and BF16 GEMMs
 * separately.  0, or -1 with a one-line message in err (unknown model). */
int mxv_runner_set_model(mxv_runner *r, const char *spec, char *err, size_t len);
/* r's models as one string: "M" when both are M, else "M8,M16". */
void mxv_runner_model_name(const mxv_runner *r, char *buf, size_t len);

/* Runs every kernel that applies to the case's policy and appends one row
 * per kernel output to rows.  0, or -1 with a one-line message in err when
 * the case itself cannot be built (bad definition, out of memory). */
int mxv_run_case(const mxv_case_def *c, const mxv_runner *r, mxv_rows *rows,
                 char *err, size_t len);

#endif
