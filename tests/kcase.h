/* kcase.h -- seeded test cases for the kernels of kernels/mxk.h, shared by
 * check_kernels_cpu (CPU backend against simple implementations and the
 * planted bugs) and check_kernels_gpu (GPU backend against the CPU one).
 *
 * A case owns its inputs (generated from a seed and a shape) and outputs.
 * kc_run() resets the outputs to a fixed fill pattern and runs the kernel
 * on a backend; kc_outputs() lists the output buffers to compare.
 */
#ifndef MXV_KCASE_H
#define MXV_KCASE_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "mxk.h"

/* Shape and options of a case; fields a kernel does not use are ignored. */
typedef struct {
    unsigned kernel;   /* one MXK_K_* bit                                  */
    int rows, k;       /* mx_quant: [rows, k]; swiglu: rows, inter = k     */
    int experts, n;    /* fn_to_fnuz [experts, n, k]; GEMM: global experts */
    int tokens, topk, block_m;
    int ep;            /* GEMM / align: odd experts live on another rank   */
    int gemm2;         /* GEMM: A rows are routed rows (id), not tokens    */
    int fmt;           /* mxk_fp8                                          */
    int e8m0;          /* mxk_e8m0                                         */
    int packed;        /* mxfp8 GEMM: B scales [E, K/32, N]; fn_to_fnuz pack */
    int weights;       /* GEMM: top-k weights on the accumulator           */
    int fp32_acc;      /* moe_sum variant                                  */
    int path;          /* mxk_path                                         */
    int skew;          /* routing: every token picks experts 0..topk-1     */
    int bad_scale;     /* fn_to_fnuz: plant bytes >= 254 (refusal case)    */
} kc_shape;

typedef struct kc_case kc_case;

/* Makes a case (inputs from seed).  Routing for the GEMMs comes from the
 * CPU backend's moe_align.  NULL when out of memory. */
kc_case *kc_new(const kc_shape *s, uint64_t seed);
void kc_free(kc_case *c);
const kc_shape *kc_shape_of(const kc_case *c);

/* Resets the outputs and runs the case's kernel on ops with the given
 * planted bug; returns the backend's status (ms as in mxk_ops). */
mxk_status kc_run(const mxk_ops *ops, kc_case *c, int mutant, double *ms);

/* The output buffers, in a fixed order: up to 4 (pointer, bytes). */
typedef struct {
    int n;
    const void *p[4];
    size_t len[4];
    const char *name[4];
} kc_out;
kc_out kc_outputs(const kc_case *c);

/* Copies of all outputs in one buffer; *len gets its size. */
uint8_t *kc_snapshot(const kc_case *c, size_t *len);
/* Index of the first differing output byte as "name[i]" text, or "" when
 * snapshot equals the current outputs. */
const char *kc_first_diff(const kc_case *c, const uint8_t *snap);

/* Access to the argument structs (inputs and outputs) for the simple
 * reference implementations of the tests. */
const mxk_quant_args *kc_quant(const kc_case *c);
const mxk_fnuz_args *kc_fnuz(const kc_case *c);
const mxk_align_args *kc_align(const kc_case *c);
const mxk_mxfp8_gemm_args *kc_mxfp8(const kc_case *c);
const mxk_bf16_gemm_args *kc_bf16_args(const kc_case *c);
const mxk_swiglu_args *kc_swiglu(const kc_case *c);
const mxk_sum_args *kc_sum(const kc_case *c);
/* GEMM cases: the routing inputs behind r (topk_ids [tokens, topk] global
 * experts, expert_map [experts] or NULL). */
const int32_t *kc_topk_ids(const kc_case *c);
const int32_t *kc_expert_map(const kc_case *c);

/* Random values. */
uint16_t kc_rand_bf16(gsl_rng *r, int emin, int emax); /* |x| in [2^emin, 2^(emax+1)) */
uint8_t kc_rand_fp8(gsl_rng *r, int fmt);              /* a non-NaN code          */

/* A one-line description ("mxfp8_group_gemm T=9 topk=4 ...") for messages. */
const char *kc_describe(const kc_shape *s, char *buf, size_t len);

/* The standard shapes of each kernel (small, with tails and padding);
 * *n gets their number. */
const kc_shape *kc_standard_shapes(int *n);

#endif
