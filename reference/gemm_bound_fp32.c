/* gemm_bound_fp32.c -- the accumulator bound of the FP32 models, fp32-group
 * and fp32-seq (docs/bounds.md, "FP32 models", (1)): a sum of the K terms in
 * which no term passes through more than depth roundings (any order within
 * a 32-group then any tree across groups: 31 + G - 1 for MX operands; any
 * order at all for unscaled ones: K - 1), eta per product (K) and per
 * scaled partial (G), and |p| eta for each of the ninexact groups whose
 * FP32 scale product fl(dec sa) fl(dec sb) underflowed below 2^-149 (a
 * power of two is exact otherwise); sabs = sum of |terms|, pmax bounds
 * every |partial|.  Evaluated outward (the factor 1 + 2^-48). */
#include "gemm_internal.h"

double mxg_acc_fp32(double sabs, size_t depth, size_t K, size_t G,
                    size_t ninexact, double pmax)
{
    return MXG_ACC_FP32(mx_gamma32(depth), sabs, (double)K, (double)G, (double)ninexact, pmax);
}
