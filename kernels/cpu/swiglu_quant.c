/* swiglu_quant.c -- C emulation of kernels/swiglu_quant.hip: per row, per
 * block of 32 outputs, the clamp-SwiGLU of facts §5 in FP32
 * (mxk_swiglu) and the MX quantization of the 32 results by the floor rule
 * (mxk_swiglu_block, the code each GPU thread runs). */
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_swiglu_quant(const mxk_swiglu_args *a)
{
    const int64_t I = a->inter, G = I / 32;
    const int fnuz = a->fmt == MXK_FP8_E4M3FNUZ;
    for (int64_t row = 0; row < a->rows; row++)
        for (int64_t g = 0; g < G; g++) {
            const uint16_t *gate = a->g1 + row * 2 * I + g * 32;
            mxk_swiglu_block(gate, gate + I, a->q + row * I + g * 32,
                             a->scale + row * G + g,
                             a->act ? a->act + row * I + g * 32 : NULL, fnuz,
                             a->mutant);
        }
    return MXK_OK;
}
