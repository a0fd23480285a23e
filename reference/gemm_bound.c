/* gemm_bound.c -- the per-element bounds of mx_gemm (docs/bounds.md): the
 * statistics every bound uses, the tail shared by every model (weight
 * multiply, BF16 output rounding, overflow), and the dispatch to each
 * model's accumulator bound (gemm_bound_fp32.c, gemm_bound_block.c). */
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
    if (!(y < 0x1p128 * (1 - 0x1p-25)) || !(sabs * 2 < FLT_MAX))
        return INFINITY; /* an FP32 or BF16 overflow is possible */
    return ey + 0x1p-8 * y + 0x1p-134 + 0x1p-52 * wS;
}

void mxg_bounds(const mx_gemm_spec *s, const mx_operand *A,
                const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                const double *exact, const double *S, double *sabs_out,
                double *bound)
{
    size_t M = A->rows, N = B->rows, K = A->K, G = a->G;
    /* S sums G group partials and at most 64 residual terms per group,
     * each exact, all nonnegative, rounded in binary64: the true sum is at
     * most S (1 + (G + 64 G + 2) 2^-52). */
    double infl = 1.0 + (double)(65 * G + 2) * 0x1p-52;
    size_t depth = A->scales ? (MX_BLOCK - 1) + (G - 1) : K - 1;
    for (size_t m = 0; m < M; m++) {
        double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            double sabs = S[i] * infl;
            double pmax = 32.0 * a->amax[m] * b->amax[n];
            double wS = fabs(exact[i]) * (1 + 0x1p-52);
            if (bound)
                bound[i] = s->model.kind == MX_ACC_BLOCK
                               ? mxg_bound_block(s, A, B, m, n, wS, w, pmax)
                               : mxg_bound_fp32(wS, sabs, w, depth, K, G, pmax);
            if (sabs_out)
                sabs_out[i] = sabs * fabs(w);
        }
    }
}
