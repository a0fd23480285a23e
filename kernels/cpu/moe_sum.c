/* moe_sum.c -- C emulation of kernels/moe_sum.hip: out[t, i] is the top-k
 * sum of x[t, 0..topk-1, i] in BF16 arithmetic, sequentially (production),
 * or accumulated in FP32 and rounded once (mxk_sum_elem). */
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_moe_sum(const mxk_sum_args *a)
{
    const int64_t N = a->n, K = a->topk;
    for (int64_t t = 0; t < a->tokens; t++)
        for (int64_t i = 0; i < N; i++)
            a->out[t * N + i] = mxk_sum_elem(a->x + t * K * N + i, N, a->topk,
                                             a->fp32_acc, a->mutant);
    return MXK_OK;
}
