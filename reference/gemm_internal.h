/* gemm_internal.h -- operand access shared by the GEMM engine, the MPFR
 * oracle and the direct model (not installed). */
#ifndef MXREF_GEMM_INTERNAL_H
#define MXREF_GEMM_INTERNAL_H

#include <limits.h>
#include "mxref/gemm.h"

/* Marks a group whose scale decodes to 0.0 (production decode of byte 0). */
#define MXG_ZERO_SCALE INT_MIN

static inline size_t mxg_row(const mx_operand *o, size_t r)
{
    return o->row_idx ? (size_t)o->row_idx[r] : r;
}

static inline uint32_t mxg_code(const mx_operand *o, size_t r, size_t k)
{
    size_t i = mxg_row(o, r) * o->ld + k;
    return o->fmt->bits == 8 ? ((const uint8_t *)o->codes)[i]
                             : ((const uint16_t *)o->codes)[i];
}

static inline uint8_t mxg_scale_byte(const mx_operand *o, size_t r, size_t g)
{
    return o->scales[mxg_row(o, r) * o->srs + g * o->sgs];
}

/* Exponent of the scale of (r, g): value 2^e, MXG_ZERO_SCALE for 0.0, 0 for
 * unscaled operands.  Byte 255 is refused by mx_gemm_check. */
static inline int mxg_scale_exp(const mx_operand *o, mx_e8m0_decode d, size_t r,
                                size_t g)
{
    if (!o->scales)
        return 0;
    uint8_t s = mxg_scale_byte(o, r, g);
    if (s == 0 && d == MX_E8M0_PRODUCTION)
        return MXG_ZERO_SCALE;
    return (int)s - 127;
}

/* The scale as an FP32 value, as production computes it. */
static inline float mxg_scale_f32(const mx_operand *o, mx_e8m0_decode d,
                                  size_t r, size_t g)
{
    if (!o->scales)
        return 1.0f;
    return (float)mx_scale_value(d, mxg_scale_byte(o, r, g));
}

/* The dequant-fp32 model: operand value (r, k) dequantized to FP32
 * (f32(value * f32(dec scale))), and the whole-K FMA chain from c. */
float mxg_dequant_f32(const mx_operand *o, mx_e8m0_decode d, size_t r, size_t k);
float mxg_dequant_chain(const mx_operand *A, size_t m, const mx_operand *B,
                        size_t n, mx_e8m0_decode d, float c);

/* Rounds v * 2^e (v a signed 128-bit integer) to FP32, exactly once. */
float mxg_round_f32(__int128 v, int e);

/* One model partial for group g of output (m, n): what the accumulation
 * model computes for the unscaled 32-wide dot.  dot_exact is the exact
 * unscaled group dot (used by fp32-group). */
float mxg_model_partial(const mx_accum_model *md, const mx_operand *A, size_t m,
                        const mx_operand *B, size_t n, size_t k0, size_t len,
                        float c);

#endif
