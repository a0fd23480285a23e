/* model_block.c -- the block:NAME accumulation models (mxref/accum.h): one
 * group's partial is the matrix unit's chain of block FMAs
 * (mxref/blockfma.h) over the group's codes from c.  mx_gemm evaluates these
 * models element by element through mx_gemm_model_direct; their bound is
 * in gemm_bound_block.c. */
#include "gemm_internal.h"

float mxg_block_partial(const mx_blockfma_params *bp, const mx_operand *A,
                        size_t m, const mx_operand *B, size_t n, size_t k0,
                        size_t len, float c)
{
    return mx_blockfma_dot(bp, A->fmt, mxg_codes_at(A, m, k0), B->fmt,
                           mxg_codes_at(B, n, k0), len, c);
}
