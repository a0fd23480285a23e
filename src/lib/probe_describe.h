/* probe_describe.h -- a block-FMA parameter set (mxref/blockfma.h) in words
 * and in JSON, as `mxverify probe` shows what it inferred. */
#ifndef MXV_PROBE_DESCRIBE_H
#define MXV_PROBE_DESCRIBE_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "mxref/blockfma.h"

/* One line per feature of q -- instruction size, block size, grouping,
 * accumulation tree, alignment bits, alignment rounding, sticky bit,
 * product exponent, accumulator timing, input conversion, subnormal
 * inputs/products/outputs, product overflow, sum kept, final rounding,
 * overflow, zero sign, NaN -- each after pad.  Features whose
 * mx_probe_feature bit is set in open are marked "not determined"; those
 * the inference does not search, "assumed". */
void mxv_params_print(FILE *out, const mx_blockfma_params *q, unsigned open,
                      const char *pad);

/* The same as a JSON object (keys k, block, deal, odd_even, accumulator
 * "early"|"late"|"fadd", frac_bits (a number, or "exact"),
 * extra_alignment_bits, align_round "trunc"|"rd"|"rne", sticky, prod_norm,
 * in_fmt (a format name or null), ftz_in, ftz_prod, ftz_out, prod_ovf_inf,
 * out_prec (24: every bit), final_round "rne"|"rtz"|"up"|"down", ovf_inf,
 * zero_pos, nan (8 hex digits)); NULL when out of memory. */
cJSON *mxv_params_json(const mx_blockfma_params *q);

#endif /* MXV_PROBE_DESCRIBE_H */
