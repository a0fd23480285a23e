/* mxref/casegen.h -- deterministic MoE layer cases from a seed.
 *
 * Same seed and parameters, same bytes, on any machine: every draw comes
 * from GSL's mt19937 and only IEEE-exact operations (no libm
 * transcendental) turn draws into values.  Normal variates are Irwin-Hall
 * sums of four 16-bit uniforms, rescaled to unit variance (a bell with
 * tails cut at 3.46 sigma); heavier tails come from explicit outliers.
 *
 * Streams are independent per purpose and per expert (seed, stream id), so
 * an expert's weights do not depend on which other experts are generated:
 * only experts that receive tokens are materialized.
 *
 * Families:
 *   real       Gaussian weights (one in 512 pruned to +0 or -0), a
 *              per-expert scale spread, activations with outlier channels
 *              and zero blocks, routes with hot experts;
 *   spread     activation blocks scaled by 2^U(-40, 40): huge scale spread;
 *   cancel     expert weight rows in +/- pairs and mirrored activation
 *              blocks: heavy cancellation in both GEMMs;
 *   tiny       activations near 1e-33: the 1e-30 amax clamp, subnormal
 *              FP8 codes and flushed elements;
 *   wide       expert weights 5x wider: g1 reaches the SwiGLU clamps at +-7
 *              even on small shapes.
 */
#ifndef MXREF_CASEGEN_H
#define MXREF_CASEGEN_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/moe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MX_FAMILY_REAL = 0,
    MX_FAMILY_SPREAD,
    MX_FAMILY_CANCEL,
    MX_FAMILY_TINY,
    MX_FAMILY_WIDE
} mx_case_family;

typedef struct {
    mx_moe_shape shape;
    size_t T;
    uint64_t seed;
    mx_case_family family;
    double weight_sigma;    /* expert weight std (0.02)                     */
    double expert_spread;   /* per-expert weight scale 2^U(-s/2, s/2) (2)   */
    double outlier_frac;    /* activation outlier channels (1/64)           */
    double outlier_scale;   /* their magnitude multiplier (24)              */
    double zero_block_frac; /* all-zero 32-blocks of x (1/50)               */
    double hot_bias;        /* router bias toward hot experts (0.4)         */
} mx_case_params;

mx_case_params mx_case_params_default(const mx_moe_shape *s, size_t T,
                                      uint64_t seed);
const char *mx_case_family_name(mx_case_family f);
int mx_case_family_by_name(const char *name, mx_case_family *out);

typedef struct {
    mx_moe_shape shape;
    size_t T;
    uint16_t *x;                 /* [T][H] BF16                               */
    float *router, *bias;        /* [E][H], [E]                               */
    uint8_t **w13, **w13_s;      /* [E_local]: NULL where not materialized    */
    uint8_t **w2, **w2_s;
    uint8_t *ws13, *ws13_s, *ws2, *ws2_s;
    mx_moe_weights weights;      /* a view of the above for mx_moe_run         */
    size_t n_materialized;
} mx_case;

/* Generates a case; experts are materialized for the routing that the
 * reference router computes on the generated x.  MX_EINVAL for a bad shape,
 * MX_ENOMEM. */
mx_status mx_case_generate(const mx_case_params *p, mx_case *out);
/* Materializes one more local expert (for captured routings that differ). */
mx_status mx_case_materialize(const mx_case_params *p, mx_case *c, size_t local);
void mx_case_free(mx_case *c);

#ifdef __cplusplus
}
#endif
#endif
