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

/* Rounds v * 2^e (v a signed 128-bit integer) to FP32, exactly once. */
float mxg_round_f32(__int128 v, int e);

/* One model partial for group g of output (m, n): what the accumulation
 * model computes for the unscaled 32-wide dot.  dot_exact is the exact
 * unscaled group dot (used by fp32-group). */
float mxg_model_partial(const mx_accum_model *md, const mx_operand *A, size_t m,
                        const mx_operand *B, size_t n, size_t k0, size_t len,
                        float c);

/* The engine on whole operands that mx_gemm has checked, with the operand
 * windows (how the 48 exact bits of a group product are split between A
 * and B) fixed by the caller: the outputs of an element depend only on its
 * row of A, its row of B and the windows, so a block of B's rows run on its
 * own gives that block's columns bit for bit.  *irr_a (may be NULL) gets
 * the irregular groups of A alone. */
mx_status mxg_gemm_block(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb, size_t *irr_a);

/* mxg_gemm_block over blocks of B's rows (output columns) on the worker
 * pool (mxref/pool.h) when there is enough work; the same bits as one
 * call (gemm_split.c). */
mx_status mxg_gemm_split(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb);

/* The correctly rounded binary64 of w * acc * 2^base, acc a two's
 * complement fixed-point sum (or, when big is not NULL, the GMP integer
 * *big in its place): the single rounding of the exact engine. */
double mxg_exact_finish(unsigned __int128 acc, const mpz_t *big, long base, double w);

/* The bound and sum_abs outputs of element (m, n) (docs/bounds.md), from S
 * = sum over groups of sum |a b| * scales (each group's sum exact, summed in
 * binary64 in group order), the rows' largest unscaled |value| and the
 * exact value; bound or sabs_out may be NULL. */
void mxg_bound_elem(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, size_t m, size_t n, double S,
                    double amax_a, double amax_b, double exact, double *bound,
                    double *sabs_out);

/* The fused small-M kernel (gemm_fused.c): 8-bit operands whose values all
 * sit on one fixed grid (E4M3FN, E4M3FNUZ), with the fp32-group model, a
 * block model or no model.  Same bits as the engine of gemm.c. */
int mxg_fused_applies(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B);
/* 0 sends every call to the engine of gemm.c (tests and bench compare the
 * two); 1 (the default) lets the fused kernel take the calls it applies to. */
void mxg_fused_enable(int on);
/* Calls the fused kernels have taken so far (tests check they ran). */
unsigned long mxg_fused_count(void);
/* The fused pass for unscaled BF16/FP16 operands whose every group fits
 * its side's window (wa, wb of mx_gemm): 1 with *status when it took the
 * call, 0 when the engine must (a group needs residual bits, or another
 * format, scaled operands, the fp32-seq model). */
int mxg_gemm_fused16(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     mx_gemm_out *out, mx_gemm_stats *stats, int wa, int wb,
                     mx_status *status);
mx_status mxg_gemm_fused(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out, mx_gemm_stats *stats);

#endif
