/* swiglu_quant.hip -- clamp-SwiGLU (facts §5) in FP32 on the BF16 GEMM1
 * output, fused with the MXFP8 quantization of act by the floor rule.
 *
 * One thread per block of 32 outputs of a row: gate values are columns
 * [32j, 32j+32) of the row, up values the same columns + inter; it computes
 * act = (gate * sigmoid(1.702 gate)) * (up + 1) with the clamps, in FP32
 * with the deterministic exp of mxk_numerics.h, then s and the 32 codes
 * (mxk_swiglu_block, the code the C emulation runs).
 */
#include "mxk_gpu.h"

__global__ void mxk_swiglu_kernel(const uint16_t *g1, uint8_t *q,
                                  uint8_t *scale, float *act, int64_t rows,
                                  int64_t inter, int fnuz, int mutant)
{
    int64_t G = inter / 32;
    int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= rows * G)
        return;
    int64_t row = b / G, g = b % G;
    const uint16_t *gate = g1 + row * 2 * inter + g * 32;
    mxk_swiglu_block(gate, gate + inter, q + row * inter + g * 32, scale + b,
                     act ? act + row * inter + g * 32 : NULL, fnuz, mutant);
}

extern "C" mxk_status mxk_launch_swiglu_quant(const mxk_swiglu_args *a,
                                              void *stream)
{
    mxk_status st = mxk_check_swiglu(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    int64_t nblocks = (int64_t)a->rows * (a->inter / 32);
    hipLaunchKernelGGL(mxk_swiglu_kernel, dim3(mxk_cdiv(nblocks, 128)),
                       dim3(128), 0, (hipStream_t)stream, a->g1, a->q,
                       a->scale, a->act, a->rows, a->inter,
                       a->fmt == MXK_FP8_E4M3FNUZ, a->mutant);
    return mxk_gpu_launched("swiglu_quant");
}
