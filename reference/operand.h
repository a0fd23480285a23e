/* operand.h -- reading one element, one scale and one group of an
 * mx_operand (mxref/gemm.h), shared by every GEMM path (not installed).
 *
 * The one place where a scale byte gets its meaning: mxg_scale_exp for the
 * exact paths, mxg_scale_f32 and mxg_scale_mul for production's FP32 scale
 * product (facts §4: f32(dec sa) * f32(dec sb), formed once per group and
 * output element by every model path).
 */
#ifndef MXREF_OPERAND_H
#define MXREF_OPERAND_H

#include <limits.h>
#include "mxref/gemm.h"

/* Marks a group whose scale decodes to 0.0 (production decode of byte 0). */
#define MXG_ZERO_SCALE INT_MIN

/* Number of 32-wide groups along K, and the length of group g (the last
 * one is short for unscaled operands whose K is not a multiple of 32). */
static inline size_t mxg_groups(size_t K)
{
    return (K + MX_BLOCK - 1) / MX_BLOCK;
}

static inline size_t mxg_group_len(size_t K, size_t g)
{
    size_t k0 = g * MX_BLOCK;
    return K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
}

static inline size_t mxg_row(const mx_operand *o, size_t r)
{
    return o->row_idx ? (size_t)o->row_idx[r] : r;
}

/* Logical rows [r0, r0 + n) of o as an operand of their own, reading the
 * same codes and scales in place (a block of a split call). */
static inline mx_operand mxg_rows_of(const mx_operand *o, size_t r0, size_t n)
{
    mx_operand s = *o;
    s.rows = n;
    if (o->row_idx) {
        s.row_idx = o->row_idx + r0;
    } else {
        s.codes = (const uint8_t *)o->codes + r0 * o->ld * (size_t)(o->fmt->bits / 8);
        if (o->scales)
            s.scales = o->scales + r0 * o->srs;
    }
    return s;
}

/* The spec of a call on logical rows [r0, ...) of A (mxg_rows_of): the
 * row weights from row r0 on. */
static inline mx_gemm_spec mxg_spec_rows_from(const mx_gemm_spec *s, size_t r0)
{
    mx_gemm_spec t = *s;
    if (t.row_weight)
        t.row_weight += r0;
    return t;
}

static inline uint32_t mxg_code(const mx_operand *o, size_t r, size_t k)
{
    size_t i = mxg_row(o, r) * o->ld + k;
    return o->fmt->bits == 8 ? ((const uint8_t *)o->codes)[i]
                             : ((const uint16_t *)o->codes)[i];
}

/* Address of the codes of (logical row r, column k): for the code-level
 * models (block FMA), which read codes as bytes. */
static inline const uint8_t *mxg_codes_at(const mx_operand *o, size_t r,
                                          size_t k)
{
    size_t esz = o->fmt->bits / 8;
    return (const uint8_t *)o->codes + (mxg_row(o, r) * o->ld + k) * esz;
}

static inline uint8_t mxg_scale_byte(const mx_operand *o, size_t r, size_t g)
{
    return o->scales[mxg_row(o, r) * o->srs + g * o->sgs];
}

/* Exponent of scale byte s under decode d: value 2^e, MXG_ZERO_SCALE for
 * 0.0 (production's byte 0).  Byte 255 is refused by mx_gemm_check. */
static inline int mxg_scale_exp_byte(mx_e8m0_decode d, uint8_t s)
{
    if (s == 0 && d == MX_E8M0_PRODUCTION)
        return MXG_ZERO_SCALE;
    return (int)s - 127;
}

/* Exponent of the scale of (r, g) (mxg_scale_exp_byte), 0 for unscaled
 * operands. */
static inline int mxg_scale_exp(const mx_operand *o, mx_e8m0_decode d, size_t r,
                                size_t g)
{
    if (!o->scales)
        return 0;
    return mxg_scale_exp_byte(d, mxg_scale_byte(o, r, g));
}

/* The scale as an FP32 value, as production computes it. */
static inline float mxg_scale_f32(const mx_operand *o, mx_e8m0_decode d,
                                  size_t r, size_t g)
{
    if (!o->scales)
        return 1.0f;
    return (float)mx_scale_value(d, mxg_scale_byte(o, r, g));
}

/* Production's scale product of one group: f32(sa) * f32(sb), one FP32
 * multiply.  Every model path multiplies its two FP32 scales here. */
static inline float mxg_scale_mul(float sa, float sb)
{
    return sa * sb;
}

#endif
