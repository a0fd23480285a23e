/* mxref/accum.h -- accumulation models: how a kernel's arithmetic forms one
 * output element of a group GEMM, chosen by name.
 *
 * For MX operands (one E8M0 scale per 32 along K) every model has the
 * production structure of facts §4:
 *     acc = 0
 *     for each 32-wide group g:  p = partial(g)           (model-specific)
 *                                sc = f32(dec sa) * f32(dec sb)
 *                                acc = f32(acc + f32(p * sc))
 *     if weighted: acc = f32(acc * w);  out = bf16_rne(acc)
 * For BF16 operands (no scales) the group loop is acc = f32(acc + p) with
 * the sequential model carrying acc through the products (below).
 *
 * Models (names as on the command line):
 *   fp32-group   p = RN32(exact 32-wide dot): one rounding per group.
 *   fp32-seq     p = sequential FP32 FMA chain from 0 over the group's
 *                products in k order (the portable kernel path).  For BF16
 *                operands: acc = fma(a_k, b_k, acc) over all k in order.
 *   dequant-fp32 no per-group scale step: each operand is dequantized to
 *                FP32 first (a'_k = f32(a_k * f32(dec s_g)), the way torch
 *                references and some Triton paths do it), then
 *                acc = fma(a'_k, b'_k, acc) over all k in order (the
 *                sequential representative of dequantize-then-SGEMM; the
 *                bound covers any order, depth K - 1).
 *   block:NAME   p = a chain of matrix-unit block FMAs of the named preset
 *                (mxref/blockfma.h: hopper-fp8, hopper-bf16, cdna3-fp8,
 *                cdna3-bf16, exact-rne, ...), from 0 per group; for BF16
 *                operands the chain carries acc.  Exact integer models,
 *                about a microsecond per 32-wide group: for captures and
 *                small shapes.
 */
#ifndef MXREF_ACCUM_H
#define MXREF_ACCUM_H

#include <stddef.h>
#include "mxref/blockfma.h"
#include "mxref/format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MX_ACC_FP32_GROUP = 0,
    MX_ACC_FP32_SEQ,
    MX_ACC_BLOCK,
    MX_ACC_DEQUANT_FP32
} mx_accum_kind;

typedef struct {
    mx_accum_kind kind;
    const mx_blockfma_params *block; /* MX_ACC_BLOCK only */
    char name[40];
} mx_accum_model;

/* Parses a model name; 0 on success, -1 for an unknown name. */
int mx_accum_parse(const char *name, mx_accum_model *out);
/* The default model: fp32-group. */
mx_accum_model mx_accum_default(void);
/* A comma-separated list of the names mx_accum_parse accepts. */
const char *mx_accum_names(void);

#ifdef __cplusplus
}
#endif
#endif
