/* gemm_check.c -- the operand checks shared by every GEMM entry point
 * (mx_gemm_check in mxref/gemm.h). */
#include <string.h>
#include <math.h>
#include "gemm_internal.h"

mx_status mxg_check(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, int codes)
{
    if (!s || !A || !B || !A->fmt || !B->fmt || !A->codes || !B->codes)
        return MX_EINVAL;
    if (A->fmt->bits > 16 || B->fmt->bits > 16 || A->K != B->K || A->K == 0 ||
        A->ld < A->K || B->ld < B->K)
        return MX_EINVAL;
    if ((A->scales == NULL) != (B->scales == NULL))
        return MX_EINVAL;
    if (A->scales && A->K % MX_BLOCK)
        return MX_EINVAL;
    if (s->model.kind == MX_ACC_BLOCK && !s->model.block)
        return MX_EINVAL;
    const mx_operand *ops[2] = {A, B};
    for (int i = 0; i < 2; i++) {
        const mx_operand *o = ops[i];
        const mxg_code_table *ct = NULL;
        if (codes && !(ct = mxg_code_table_get(o->fmt)))
            return MX_ENOMEM;
        for (size_t r = 0; r < o->rows; r++) {
            if (o->row_idx && o->row_idx[r] < 0)
                return MX_ERANGE;
            for (size_t k = 0; codes && k < o->K; k++)
                if (ct->bad[mxg_code(o, r, k)])
                    return MX_ERANGE;
            if (o->scales && o->sgs == 1) { /* a row's scale bytes side by side */
                if (memchr(o->scales + mxg_row(o, r) * o->srs, 255, o->K / MX_BLOCK))
                    return MX_ERANGE;
            } else if (o->scales) {
                for (size_t g = 0; g < o->K / MX_BLOCK; g++)
                    if (mxg_scale_byte(o, r, g) == 255)
                        return MX_ERANGE;
            }
        }
    }
    if (s->row_weight)
        for (size_t r = 0; r < A->rows; r++)
            if (!isfinite(s->row_weight[r]))
                return MX_ERANGE;
    return MX_OK;
}

mx_status mx_gemm_check(const mx_gemm_spec *s, const mx_operand *A,
                        const mx_operand *B)
{
    return mxg_check(s, A, B, 1);
}
