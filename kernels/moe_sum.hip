/* moe_sum.hip -- the top-k combine of the routed expert outputs.
 *
 * One thread per output element (t, i): the production variant adds the
 * topk BF16 rows in order with a BF16 rounding after every addition (facts
 * §5; vLLM issue 15045), the FP32 variant accumulates in FP32 and rounds
 * once (mxk_sum_elem, shared with the C emulation).
 */
#include "mxk_gpu.h"

__global__ void mxk_moe_sum_kernel(const uint16_t *x, uint16_t *out,
                                   int64_t tokens, int topk, int64_t n,
                                   int fp32_acc, int mutant)
{
    int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= tokens * n)
        return;
    int64_t t = o / n, i = o % n;
    out[o] = mxk_sum_elem(x + t * topk * n + i, n, topk, fp32_acc, mutant);
}

extern "C" mxk_status mxk_launch_moe_sum(const mxk_sum_args *a, void *stream)
{
    mxk_status st = mxk_check_sum(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    int64_t total = (int64_t)a->tokens * a->n;
    hipLaunchKernelGGL(mxk_moe_sum_kernel, dim3(mxk_cdiv(total, 256)),
                       dim3(256), 0, (hipStream_t)stream, a->x, a->out,
                       a->tokens, a->topk, a->n, a->fp32_acc, a->mutant);
    return mxk_gpu_launched("moe_sum");
}
