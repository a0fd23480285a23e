/* gemm_bound_fp32.c -- the bound of the FP32 models, fp32-group and
 * fp32-seq (docs/bounds.md, "FP32 models"): a sum of the K terms in which no
 * term passes through more than depth roundings (any order within a
 * 32-group then any tree across groups: 31 + G - 1 for MX operands; any
 * order at all for unscaled ones: K - 1), then the tail (gemm_bound.c).
 * wS = |w * S| (from the exact value), sabs = |w|-free sum of |terms|,
 * pmax bounds every |partial|. */
#include "gemm_internal.h"

double mxg_bound_fp32(double wS, double sabs, double w, size_t depth,
                      size_t K, size_t G, double pmax)
{
    const double eta = 0x1p-150;
    double Bacc = mx_gamma32(depth) * sabs +
                  eta * ((double)K + 2.0 * (double)G * (1.0 + pmax));
    return mxg_bound_tail(Bacc, wS, sabs, w);
}
