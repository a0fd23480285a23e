/* runner.h -- run the kernels of one backend on one generated case and
 * judge every output against the reference.
 *
 * Each kernel is fed the reference's own inputs for its stage (so a planted
 * bug in one kernel does not spill into the verdicts of the next) and each
 * of its outputs is handed to the stage table (stages.h), which names the
 * row, produces the reference and judges it -- the same path `check` takes
 * for captures.  GEMM rows are judged against the accumulation model of
 * the backend's path (mxv_runner.model_*: fp32-seq for the portable path,
 * the block models of the matrix-unit kernels), with bit-exactness as the
 * verdict under a measured device model.  The runner itself only launches
 * kernels.  On the GPU every output (but the GEMMs of matrix-unit paths)
 * is also compared bit for bit with the CPU backend.
 */
#ifndef MXV_RUNNER_H
#define MXV_RUNNER_H

#include <stdio.h>
#include "mxk.h"
#include "mxref/moe.h"
#include "suite.h"
#include "report.h"
#include "shard.h"

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
/* mxv_run_case in two halves, so that a suite on one GPU can compute the
 * next case's reference on the host while this case's kernels run
 * (case_pool.c): mxv_case_prepare does the host half (the case and its
 * layer reference: the heavy part), NULL with a one-line message in err
 * when the case cannot be built; mxv_case_finish launches every kernel,
 * judges it, appends the rows and frees p (0, or -1 with err).  r must
 * outlive p.  The rows are those of mxv_run_case, whatever runs between
 * the halves. */
typedef struct mxv_case_ref mxv_case_ref;
mxv_case_ref *mxv_case_prepare(const mxv_case_def *c, const mxv_runner *r, char *err,
                               size_t len);
int mxv_case_finish(mxv_case_ref *p, mxv_rows *rows, char *err, size_t len);
/* mxv_case_finish, also storing in *judge_s (when not NULL) the seconds
 * spent judging (the stage table's verdicts and metrics, on this thread);
 * the rest of its time is the kernels' (launches, copies, waits). */
int mxv_case_finish_timed(mxv_case_ref *p, mxv_rows *rows, double *judge_s, char *err,
                          size_t len);
/* Frees a prepared case that is not finished (NULL: nothing). */
void mxv_case_ref_free(mxv_case_ref *p);
/* Where mxv_case_prepare's seconds went (wall clock): generating the case
 * (inputs and weights), its layer reference(s), and the kernels' weights
 * (compacted, converted to FNUZ or dequantized to BF16); and the stages of
 * the layer reference's first run (mx_moe_result's seconds, indexed by
 * MX_MOE_T_*: the shared expert runs beside the routed stages, so they do
 * not add up to layer_s). */
typedef struct {
    double gen_s, layer_s, weights_s;
    double stage_s[MX_MOE_NT];
} mxv_case_times;
void mxv_case_ref_times(const mxv_case_ref *p, mxv_case_times *t);

/* The backend by name: "cpu" (also for NULL) or "gpu" (then r->cpu is the
 * CPU backend, compared bit for bit); *device names what runs it.  r is
 * reset first.  0, or the exit code after printing the error (a GPU
 * request without a GPU is an error, not a skip). */
int mxv_runner_backend(const char *name, mxv_runner *r, const char **device);
/* --reference cpu|gpu|auto: where the exact reference's heavy arithmetic
 * runs (docs/reference.md, "The exact reference on the GPU"); every
 * choice gives the same bits.  cpu: the CPU engine alone.  gpu: the GPU
 * library's group partials for every call and its whole sum for exact-only
 * calls (an error, exit 4, without a usable GPU library).  auto (the
 * default, NULL): on the GPU backend, the device's whole sum for
 * exact-only calls (the rest stays on the CPU's fused kernels); on the CPU
 * backend, or with a library without the sum, cpu. */
typedef enum { MXV_REF_AUTO = 0, MXV_REF_CPU, MXV_REF_GPU } mxv_ref_mode;
/* 0, or MXV_EXIT_USAGE after the error line (a bad value). */
int mxv_reference_parse(const char *value, mxv_ref_mode *mode);
/* Sets the engine for a run whose backend is ops (gpu_backend: ops is not
 * the CPU backend); *used (may be NULL) gets "cpu", "gpu" or "gpu-sum"
 * (auto's choice on the GPU).  0, or the exit code after the error line. */
int mxv_reference_apply(mxv_ref_mode mode, int gpu_backend, const char **used);
/* check's --reference: cpu and auto, all on the CPU; gpu, the GPU library's
 * walk provider (block models) and sum provider (exact-only GEMMs), the
 * fused CPU kernels for the rest (mxv_gpu_reference_enable_sum): 0, or an
 * error printed (exit 4 without a usable GPU or those entry points). */
int mxv_check_reference_apply(mxv_ref_mode mode, const char **used);
/* The help line(s) of --reference. */
void mxv_print_reference_help(FILE *f);
/* Runs every case of the suite, or only the case named only (NULL: all),
 * appending rows; progress lines on stderr when asked.  0 or an exit code
 * (unknown suite or case: usage; a case that cannot be built: internal). */
int mxv_run_suite(const char *suite, const char *only, const mxv_runner *r,
                  mxv_rows *rows, int progress);
/* The cases a (possibly sharded) suite run covers: the whole run's count
 * and this shard's cases with their positions in the whole run. */
typedef struct {
    size_t total;
    const char **names;
    size_t *positions;
    size_t n;
} mxv_run_items;
void mxv_run_items_free(mxv_run_items *it);
/* mxv_run_suite on the worker pool (case_pool.h), for this shard's share
 * of the cases only (sh NULL or off: all); items (may be NULL) gets what
 * ran. */
int mxv_run_suite_shard(const char *suite, const char *only, const mxv_shard *sh,
                        const mxv_runner *r, mxv_rows *rows, int progress,
                        mxv_run_items *items);
/* mxv_report_emit, except that under --shard the JSON file is the partial
 * report (shard.h) of `command` with its configuration string. */
int mxv_report_emit_shard(FILE *f, const mxv_report *rep, const char *command,
                          const mxv_shard *sh, const char *config,
                          const mxv_run_items *it, const char *json, const char *md,
                          const char *junit);
/* A monotonic clock in seconds. */
double mxv_now(void);
/* The architecture a backend reports ("cpu" for the C emulation, "sm_90",
 * "gfx942", ...). */
const char *mxv_runner_arch(const mxk_ops *ops);
/* The help lines of --model and --bound-only for kernels, gate, mutants
 * and golden update. */
void mxv_print_device_model_help(FILE *f);

#endif
