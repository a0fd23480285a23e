/* suite.h -- kernel suites: the cases, and the per-(case, kernel) result
 * rows that the runner produces and the gate, golden files and reports
 * consume. */
#ifndef MXV_SUITE_H
#define MXV_SUITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "judge.h"

/* One case of a suite: a generated MoE layer. */
typedef struct {
    const char *name;     /* stable: "tp8-t64-w8a8", ...                  */
    const char *shape;    /* mx_moe_shape_by_name                         */
    size_t tokens;
    const char *policy;   /* w8a8-mxfp8, bf16, ...                        */
    const char *family;   /* real, spread, cancel, tiny, wide, or       */
                          /* zero-scale (real, with whole activation    */
                          /* rows at scale byte 0, to reach the decode) */
    uint64_t seed;
} mxv_case_def;

/* The cases of a named suite ("default", "full", "smoke", "mutants"); NULL when the
 * name is unknown.  *n gets the count. */
const mxv_case_def *mxv_suite_cases(const char *suite, size_t *n);
/* A comma-separated list of suite names. */
const char *mxv_suite_names(void);
/* Prints the suite's cases, one line each (name, shape, tokens, policy,
 * family, seed); 0, or the usage exit code after an error for an unknown
 * suite. */
int mxv_suite_list(const char *suite, FILE *f);

/* One result row: one kernel (or GEMM call) on one case. */
typedef struct {
    char case_name[48];
    char kernel[40];      /* "mx_quant", "mxfp8_group_gemm.gemm1", ...    */
    char shape[40];
    size_t tokens;
    char policy[16];
    char model[40];       /* accumulation model judged against            */
    char backend[8];      /* "cpu" or "gpu"                               */
    mxv_judge j;          /* the verdict and metrics of the output        */
    int bit_exact;        /* every element equal to the model             */
    int backends_agree;   /* gpu only: bit-identical to the CPU backend;  */
                          /* -1 when not compared                         */
    double ms;            /* kernel time                                  */
    int error;            /* the kernel refused or failed: message below  */
    int informational;    /* metrics only (the chained end-to-end row)    */
    /* GEMM rows judged by a measured device model (block:hopper-*): the
     * elements within their bound but not bit-exact to the model -- "within
     * bound, not the device's arithmetic", a failure unless the run accepts
     * bound-only passes (mxv_runner.bound_only, then 0). */
    size_t not_device;
    char message[160];
} mxv_row;

typedef struct {
    mxv_row *rows;
    size_t n, cap;
} mxv_rows;

mxv_row *mxv_rows_push(mxv_rows *r);
void mxv_rows_free(mxv_rows *r);
/* Does a row pass on its own (no golden file): no error, nothing outside
 * the bound or with wrong bytes, backends agree where compared. */
int mxv_row_pass(const mxv_row *r);

#endif
