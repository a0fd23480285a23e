/* gemm_bound_dequant.c -- the accumulator bound of the dequant-fp32 model
 * (docs/bounds.md, "Dequantize, then FP32 GEMM"): each dequantized value is
 * exact unless it falls below FLT_MIN (error <= eta each); the K products
 * of dequantized values are summed in any order (depth K - 1). */
#include <math.h>
#include "gemm_internal.h"

double mxg_acc_dequant(const mx_gemm_spec *s, const mx_operand *A,
                       const mx_operand *B, size_t m, size_t n, double sabs,
                       double *sabs_eff)
{
    const double eta = 0x1p-150;
    size_t K = A->K;
    double edeq = 0;
    if (A->scales) {
        /* max |dequantized value| of each side, and whether any rounds */
        double ma = 0, mb = 0;
        int inexact = 0;
        for (size_t k = 0; k < K; k++) {
            double va = fabs(mx_decode_double(A->fmt, mxg_code(A, m, k))) *
                        mx_scale_value(s->decode, mxg_scale_byte(A, m, k / MX_BLOCK));
            double vb = fabs(mx_decode_double(B->fmt, mxg_code(B, n, k))) *
                        mx_scale_value(s->decode, mxg_scale_byte(B, n, k / MX_BLOCK));
            ma = va > ma ? va : ma;
            mb = vb > mb ? vb : mb;
            inexact |= (va != 0 && (double)(float)va != va) ||
                       (vb != 0 && (double)(float)vb != vb);
        }
        if (inexact) /* |a'b' - ab| <= |a| eta + |b| eta + eta^2 per product */
            edeq = (double)K * eta * (ma + mb + eta) * (1 + 0x1p-48);
    }
    *sabs_eff = sabs + edeq;
    return (mx_gamma32(K - 1) * (sabs + edeq) + edeq + eta * (double)K) * (1 + 0x1p-48);
}
