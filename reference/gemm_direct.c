/* gemm_direct.c -- the two slow, simple paths that the tests hold the fast
 * engine to:
 *   mx_gemm_exact_mpfr    every element's exact value with mpfr_sum (exact
 *                         at 1200 bits: every term lies within 2^-600 ..
 *                         2^600), times the row weight rounded once to 53
 *                         bits;
 *   mx_gemm_model_direct  the accumulation model evaluated element by
 *                         element, group by group, straight from the codes
 *                         (each model's group partial is in its model_*.c;
 *                         mx_gemm uses this path for the block models).
 */
#include <math.h>
#include <stdlib.h>
#include "gemm_internal.h"

float mxg_model_partial(const mx_accum_model *md, const mx_operand *A, size_t m,
                        const mx_operand *B, size_t n, size_t k0, size_t len,
                        float c)
{
    switch (md->kind) {
    case MX_ACC_FP32_GROUP:
        return c + mxg_group_dot_rn32(A, m, B, n, k0, len);
    case MX_ACC_FP32_SEQ:
    case MX_ACC_DEQUANT_FP32: /* unscaled operands: the same chain */
        return mxg_seq_chain(A, m, B, n, k0, len, c);
    case MX_ACC_BLOCK:
        return mxg_block_partial(md->block, A, m, B, n, k0, len, c);
    }
    return NAN;
}

mx_status mx_gemm_exact_mpfr(const mx_gemm_spec *s, const mx_operand *A,
                             const mx_operand *B, double *exact)
{
    mx_status st = mx_gemm_check(s, A, B);
    if (st != MX_OK)
        return st;
    size_t M = A->rows, N = B->rows, K = A->K, G = mxg_groups(K);
    mpfr_t *terms = malloc(K * sizeof *terms);
    mpfr_ptr *ptrs = malloc(K * sizeof *ptrs);
    mpfr_t sum, b;
    if (!terms || !ptrs) {
        free(terms);
        free(ptrs);
        return MX_ENOMEM;
    }
    for (size_t k = 0; k < K; k++) {
        mpfr_init2(terms[k], 64);
        ptrs[k] = terms[k];
    }
    mpfr_inits2(1200, sum, (mpfr_ptr)0);
    mpfr_init2(b, 64);
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            for (size_t g = 0; g < G; g++) {
                int ea = mxg_scale_exp(A, s->decode, m, g);
                int eb = mxg_scale_exp(B, s->decode, n, g);
                for (size_t k = g * MX_BLOCK; k < K && k < (g + 1) * MX_BLOCK; k++) {
                    if (ea == MXG_ZERO_SCALE || eb == MXG_ZERO_SCALE) {
                        mpfr_set_zero(terms[k], 1);
                        continue;
                    }
                    mx_decode_mpfr(A->fmt, mxg_code(A, m, k), terms[k]);
                    mx_decode_mpfr(B->fmt, mxg_code(B, n, k), b);
                    mpfr_mul(terms[k], terms[k], b, MPFR_RNDN); /* 48 bits */
                    mpfr_mul_2si(terms[k], terms[k], ea + eb, MPFR_RNDN);
                }
            }
            mpfr_sum(sum, ptrs, K, MPFR_RNDN); /* exact at 1200 bits */
            if (s->row_weight)
                mpfr_mul_d(sum, sum, (double)s->row_weight[m], MPFR_RNDN);
            exact[m * N + n] = mpfr_get_d(sum, MPFR_RNDN); /* one rounding */
        }
    for (size_t k = 0; k < K; k++)
        mpfr_clear(terms[k]);
    mpfr_clears(sum, b, (mpfr_ptr)0);
    free(terms);
    free(ptrs);
    return MX_OK;
}

mx_status mx_gemm_model_direct(const mx_gemm_spec *s, const mx_operand *A,
                               const mx_operand *B, float *model_acc)
{
    mx_status st = mx_gemm_check(s, A, B);
    if (st != MX_OK)
        return st;
    size_t M = A->rows, N = B->rows, K = A->K, G = mxg_groups(K);
    int scaled = A->scales != NULL;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            float acc = 0.0f;
            int deq = s->model.kind == MX_ACC_DEQUANT_FP32;
            if (deq) /* no group structure: one chain over dequantized values */
                acc = mxg_dequant_chain(A, m, B, n, s->decode, 0.0f);
            for (size_t g = 0; g < G && !deq; g++) {
                size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
                if (!scaled) {
                    acc = mxg_model_partial(&s->model, A, m, B, n, k0, len, acc);
                    continue;
                }
                float p = mxg_model_partial(&s->model, A, m, B, n, k0, len, 0.0f);
                float sc = mxg_scale_mul(mxg_scale_f32(A, s->decode, m, g),
                                         mxg_scale_f32(B, s->decode, n, g));
                float t = p * sc;
                acc = acc + t;
            }
            if (s->row_weight)
                acc = acc * s->row_weight[m];
            model_acc[m * N + n] = acc;
        }
    return MX_OK;
}
