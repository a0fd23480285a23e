/* gemm_bound_block.c -- the bound of the block:NAME models (docs/bounds.md,
 * "Block-FMA models" and "FP32 models"): each group's partial is within
 * B_g = min(mx_blockfma_bound(S_g), mx_blockfma_bound_dot(group)) of its
 * exact dot (S_g the model's own sum |ab| statistic; the second bound
 * charges each block's alignment to its largest term), scaled exactly,
 * then summed in FP32 in any tree (gamma_{G-1}); unscaled operands are one
 * chain of the unit.  Returns the accumulator bound; the tail is
 * gemm_bound.c's.  When mxg_gemm_block has run the one walk of
 * blockfma_gemm.c for this call, the per-group sums come from it. */
#include <math.h>
#include "gemm_internal.h"

static _Thread_local const mxg_block_sums *cur_sums;

void mxg_block_sums_set(const mxg_block_sums *b) { cur_sums = b; }

double mxg_acc_block(const mx_gemm_spec *s, const mx_operand *A,
                     const mx_operand *B, size_t m, size_t n, double pmax,
                     double *sabs_eff)
{
    const mx_blockfma_params *bp = s->model.block;
    size_t K = A->K, G = mxg_groups(K);
    const mxg_block_sums *pre = cur_sums;
    int walked = pre && pre->s == s && pre->A == A && pre->B == B;
    if (!A->scales && walked) { /* the walk's bound and sum |ab| */
        *sabs_eff = pre->sum_p[m * B->rows + n];
        return pre->sum_b[m * B->rows + n];
    }
    if (!A->scales) {
        double S = mx_blockfma_sum_abs(bp, A->fmt, mxg_codes_at(A, m, 0),
                                       B->fmt, mxg_codes_at(B, n, 0), K);
        *sabs_eff = S;
        return fmin(mx_blockfma_bound(bp, K, S, 0),
                    mx_blockfma_bound_dot(bp, A->fmt, mxg_codes_at(A, m, 0),
                                          B->fmt, mxg_codes_at(B, n, 0), K, 0));
    }
    double sum_b = 0, sum_p = 0;
    if (walked) { /* the one walk of blockfma_gemm.c formed them (same bits) */
        sum_b = pre->sum_b[m * B->rows + n];
        sum_p = pre->sum_p[m * B->rows + n];
    }
    for (size_t g = 0; g < G && !walked; g++) {
        size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
        double S = mx_blockfma_sum_abs(bp, A->fmt, mxg_codes_at(A, m, k0),
                                       B->fmt, mxg_codes_at(B, n, k0), len);
        /* both are proofs; the per-block one (largest term) is the tighter */
        double Bg = fmin(mx_blockfma_bound(bp, len, S, 0),
                         mx_blockfma_bound_dot(bp, A->fmt, mxg_codes_at(A, m, k0),
                                               B->fmt, mxg_codes_at(B, n, k0), len, 0));
        double sc = mx_scale_value(s->decode, mxg_scale_byte(A, m, g)) *
                    mx_scale_value(s->decode, mxg_scale_byte(B, n, g));
        sum_b += sc * Bg;
        sum_p += sc * (S + Bg);
    }
    /* binary64 rounding of these sums: a relative 2^-40 covers it */
    sum_b *= 1 + 0x1p-40;
    sum_p *= 1 + 0x1p-40;
    *sabs_eff = sum_p;
    return sum_b + mx_gamma32(G > 0 ? G - 1 : 0) * sum_p +
           0x1p-150 * 2.0 * (double)G * (1.0 + pmax);
}
