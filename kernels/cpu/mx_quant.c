/* mx_quant.c -- C emulation of kernels/mx_quant.hip: BF16 -> MXFP8 by the
 * production floor rule, one block of 32 at a time (mxk_quant_block_bf16,
 * the same code the GPU thread runs). */
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_mx_quant(const mxk_quant_args *a)
{
    int64_t nblocks = (int64_t)a->rows * (a->k / 32);
    int fnuz = a->fmt == MXK_FP8_E4M3FNUZ;
    for (int64_t b = 0; b < nblocks; b++)
        mxk_quant_block_bf16(a->x + b * 32, a->q + b * 32, a->scale + b, fnuz,
                             a->mutant);
    return MXK_OK;
}
