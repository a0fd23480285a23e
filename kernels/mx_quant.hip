/* mx_quant.hip -- BF16 -> MXFP8 (E4M3FNUZ or E4M3FN) + E8M0 scales by the
 * production floor rule (facts §3).
 *
 * One thread per block of 32 consecutive values of a row: it reads the 32
 * BF16 values, takes amax in FP32, s = min(exponent bits of
 * max(amax, 1e-30), 254), and encodes x * 2^(127-s) with RNE and no clamp
 * (mxk_quant_block_bf16 in mxk_numerics.h; the C emulation runs the same
 * function, so the bytes are identical by construction, and the tests
 * check both against an MPFR recomputation).  Pure integer/bit work after
 * the amax, so it is the same on every device.
 */
#include "mxk_gpu.h"

__global__ void mxk_mx_quant_kernel(const uint16_t *x, uint8_t *q,
                                    uint8_t *scale, int64_t nblocks, int fnuz,
                                    int mutant)
{
    int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nblocks)
        return;
    mxk_quant_block_bf16(x + b * 32, q + b * 32, scale + b, fnuz, mutant);
}

extern "C" mxk_status mxk_launch_mx_quant(const mxk_quant_args *a,
                                          void *stream)
{
    mxk_status st = mxk_check_quant(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    int64_t nblocks = (int64_t)a->rows * (a->k / 32);
    hipLaunchKernelGGL(mxk_mx_quant_kernel, dim3(mxk_cdiv(nblocks, 256)),
                       dim3(256), 0, (hipStream_t)stream, a->x, a->q,
                       a->scale, nblocks, a->fmt == MXK_FP8_E4M3FNUZ,
                       a->mutant);
    return mxk_gpu_launched("mx_quant");
}
