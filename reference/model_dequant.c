/* model_dequant.c -- the dequant-fp32 accumulation model (mxref/accum.h):
 * both operands dequantized to FP32 first (a'_k = f32(a_k * f32(dec s_g))),
 * then one FP32 FMA chain over all K in k order (the sequential
 * representative of dequantize-then-SGEMM; docs/bounds.md bounds any order).
 *   mxg_dequant_f32    one dequantized operand value;
 *   mxg_dequant_chain  one element, straight from the codes (direct model);
 *   mxg_dequant_gemm   every element, vectorized over output columns. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "gemm_internal.h"

float mxg_dequant_f32(const mx_operand *o, mx_e8m0_decode d, size_t r, size_t k)
{
    float v = (float)mx_decode_double(o->fmt, mxg_code(o, r, k));
    if (!o->scales)
        return v;
    return v * mxg_scale_f32(o, d, r, k / MX_BLOCK);
}

/* c + a*b rounded once: a product of two dequantized 8-bit values has at
 * most 8 significant bits, exact unless it underflows or overflows */
static inline float fma_exact(float a, float b, float c)
{
    float p = a * b;
    if (a == 0 || b == 0 || (fabsf(p) >= FLT_MIN && isfinite(p)))
        return c + p;
    return fmaf(a, b, c);
}

float mxg_dequant_chain(const mx_operand *A, size_t m, const mx_operand *B,
                        size_t n, mx_e8m0_decode d, float c)
{
    for (size_t k = 0; k < A->K; k++)
        c = fma_exact(mxg_dequant_f32(A, d, m, k), mxg_dequant_f32(B, d, n, k), c);
    return c;
}

mx_status mxg_dequant_gemm(const mx_gemm_spec *s, const mx_operand *A,
                           const mx_operand *B, float *out)
{
    size_t M = A->rows, N = B->rows, K = A->K;
    float *bt = malloc(K * N * sizeof *bt), *a = malloc(K * sizeof *a);
    if (!bt || !a) {
        free(bt);
        free(a);
        return MX_ENOMEM;
    }
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            bt[k * N + n] = mxg_dequant_f32(B, s->decode, n, k);
    for (size_t m = 0; m < M; m++) {
        float *o = out + m * N;
        for (size_t k = 0; k < K; k++)
            a[k] = mxg_dequant_f32(A, s->decode, m, k);
        for (size_t n = 0; n < N; n++)
            o[n] = 0.0f;
        for (size_t k = 0; k < K; k++) {
            const float *b = bt + k * N;
            for (size_t n = 0; n < N; n++)
                o[n] = o[n] + a[k] * b[n];
        }
        /* elements with a product that is not exact in FP32: the direct
         * chain with true fma */
        for (size_t n = 0; n < N; n++) {
            int redo = 0;
            for (size_t k = 0; k < K && !redo; k++) {
                float pr = a[k] * bt[k * N + n];
                redo = a[k] != 0 && bt[k * N + n] != 0 &&
                       !(fabsf(pr) >= FLT_MIN && isfinite(pr));
            }
            if (redo)
                o[n] = mxg_dequant_chain(A, m, B, n, s->decode, 0.0f);
        }
        if (s->row_weight)
            for (size_t n = 0; n < N; n++)
                o[n] = o[n] * s->row_weight[m];
    }
    free(bt);
    free(a);
    return MX_OK;
}
