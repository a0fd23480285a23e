/* gemm_bound.c -- the per-element bounds of mx_gemm (docs/bounds.md): the
 * statistics every bound uses, the tail shared by every model (weight
 * multiply, BF16 output rounding, overflow), the FP32 output's bound, and
 * the dispatch to each model's accumulator bound (gemm_bound_fp32.c,
 * gemm_bound_block.c, gemm_bound_dequant.c). */
#include <float.h>
#include <math.h>
#include "gemm_internal.h"

double mx_gamma32(size_t n)
{
    double nu = (double)n * 0x1p-24;
    return nu < 1 ? nu / (1 - nu) : INFINITY;
}

double mxg_bound_tail(double Bacc, double wS, double sabs, double w)
{
    const double u = 0x1p-24, eta = 0x1p-150;
    double aw = fabs(w);
    double ey = w != 1.0 ? aw * Bacc + u * (wS + aw * Bacc) + eta : Bacc;
    double y = wS + ey;
    /* every partial sum of a correct kernel is at most sabs + Bacc before
     * its rounding: below 2^128 (1 - 2^-25) none rounds to infinity.  Past
     * that the bound cannot speak (the judge's bound-inf class: the model
     * is the verdict).  An overflow of y or of its BF16 rounding keeps a
     * finite bound: the judge admits the infinity of exact's sign when
     * |exact| + B reaches the BF16 overflow threshold (ovf-edge class). */
    if (!(sabs + Bacc < 0x1p128 * (1 - 0x1p-25)))
        return INFINITY;
    /* evaluated in binary64 round-to-nearest: at most 16 operations on
     * nonnegative values, each within a factor (1 + 2^-53), so the true
     * value is below the computed one times (1 + 2^-48) (docs/bounds.md,
     * "How the numbers are computed") */
    return (ey + 0x1p-8 * y + 0x1p-134 + 0x1p-52 * wS) * (1 + 0x1p-48);
}

double mxg_bound_y(double Bacc, double wS, double sabs, double w)
{
    const double u = 0x1p-24, eta = 0x1p-150;
    double aw = fabs(w);
    if (!(sabs + Bacc < 0x1p128 * (1 - 0x1p-25)))
        return INFINITY;
    double ey = w != 1.0 ? aw * Bacc + u * (wS + aw * Bacc) + eta : Bacc;
    return (ey + 0x1p-52 * wS) * (1 + 0x1p-48);
}

void mxg_bound_elem(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, size_t m, size_t n, double S,
                    double amax_a, double amax_b, double exact, double *bound,
                    double *bound_acc, double *sabs_out)
{
    mxg_bound_elem_n(s, A, B, m, n, S, amax_a, amax_b, exact, bound, bound_acc,
                     sabs_out, 1);
}

void mxg_bound_elem_n(const mx_gemm_spec *s, const mx_operand *A,
                      const mx_operand *B, size_t m, size_t n, double S,
                      double amax_a, double amax_b, double exact, double *bound,
                      double *bound_acc, double *sabs_out, int may_underflow)
{
    size_t K = A->K, G = mxg_groups(K);
    /* S sums G group partials and at most 64 residual terms per group,
     * each exact, all nonnegative, rounded in binary64: the true sum is at
     * most S (1 + (G + 64 G + 2) 2^-52). */
    double infl = 1.0 + (double)(65 * G + 2) * 0x1p-52;
    size_t depth = A->scales ? (MX_BLOCK - 1) + (G - 1) : K - 1;
    if (s->model.kind == MX_ACC_DEQUANT_FP32)
        depth = K - 1;
    double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
    double sabs = S * infl;
    /* every |partial| of 32 products, with its FP32 rounding */
    double pmax = 32.0 * amax_a * amax_b * (1 + 0x1p-18);
    double wS = fabs(exact) * (1 + 0x1p-52);
    if (bound || bound_acc) {
        /* groups whose FP32 scale product is inexact (below 2^-149) */
        size_t ninexact = 0;
        for (size_t g = 0; may_underflow && A->scales && s->model.kind != MX_ACC_DEQUANT_FP32 &&
                           g < G; g++) {
            int ea = mxg_scale_exp(A, s->decode, m, g), eb = mxg_scale_exp(B, s->decode, n, g);
            if (ea != MXG_ZERO_SCALE && eb != MXG_ZERO_SCALE && ea + eb < -149)
                ninexact++;
        }
        double se = sabs;
        double Bacc = s->model.kind == MX_ACC_BLOCK
                          ? mxg_acc_block(s, A, B, m, n, pmax, &se)
                      : s->model.kind == MX_ACC_DEQUANT_FP32
                          ? mxg_acc_dequant(s, A, B, m, n, sabs, &se)
                          : mxg_acc_fp32(sabs, depth, K, G, ninexact, pmax);
        if (bound)
            *bound = mxg_bound_tail(Bacc, wS, se, w);
        if (bound_acc)
            *bound_acc = mxg_bound_y(Bacc, wS, se, w);
    }
    if (sabs_out)
        *sabs_out = sabs * fabs(w);
}

void mxg_bounds(const mx_gemm_spec *s, const mx_operand *A,
                const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                const double *exact, const double *S, double *sabs_out,
                double *bound, double *bound_acc)
{
    size_t M = A->rows, N = B->rows;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            mxg_bound_elem(s, A, B, m, n, S ? S[i] : 0.0, a->amax[m], b->amax[n], exact[i],
                           bound ? &bound[i] : NULL, bound_acc ? &bound_acc[i] : NULL,
                           sabs_out ? &sabs_out[i] : NULL);
        }
}
