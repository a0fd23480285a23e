/* accum.c -- accumulation models by name, and one model step computed
 * directly from the codes (see mxref/accum.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "mxref/accum.h"
#include "gemm_internal.h"

int mx_accum_parse(const char *name, mx_accum_model *out)
{
    memset(out, 0, sizeof *out);
    if (!name || strlen(name) >= sizeof out->name)
        return -1;
    if (strcmp(name, "fp32-group") == 0)
        out->kind = MX_ACC_FP32_GROUP;
    else if (strcmp(name, "fp32-seq") == 0)
        out->kind = MX_ACC_FP32_SEQ;
    else if (strcmp(name, "dequant-fp32") == 0)
        out->kind = MX_ACC_DEQUANT_FP32;
    else if (strncmp(name, "block:", 6) == 0 && mx_blockfma_preset(name + 6)) {
        out->kind = MX_ACC_BLOCK;
        out->block = mx_blockfma_preset(name + 6);
    } else
        return -1;
    strcpy(out->name, name);
    return 0;
}

mx_accum_model mx_accum_default(void)
{
    mx_accum_model m;
    mx_accum_parse("fp32-group", &m);
    return m;
}

const char *mx_accum_names(void)
{
    static char buf[512];
    static int done;
    if (!done) {
        size_t o = (size_t)snprintf(buf, sizeof buf, "fp32-group, fp32-seq, dequant-fp32");
        const mx_blockfma_params *p;
        for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && o < sizeof buf; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, ", block:%s", p->name);
        done = 1;
    }
    return buf;
}

/* fma(a, b, c) in FP32 for a product that is exact in FP32 whenever it is
 * not below FLT_MIN (8- and 16-bit formats): then c + a*b rounds once. */
static inline float fma_exact_product(float a, float b, float c)
{
    float p = a * b;
    /* a zero operand gives an exact zero product; an underflowed nonzero
     * product (p may even be 0) or an overflowed one needs the true fma */
    if (a == 0 || b == 0 || (fabsf(p) >= FLT_MIN && isfinite(p)))
        return c + p;
    return fmaf(a, b, c);
}

float mxg_seq_chain(const mx_operand *A, size_t m, const mx_operand *B,
                    size_t n, size_t k0, size_t len, float c)
{
    for (size_t k = k0; k < k0 + len; k++)
        c = fma_exact_product((float)mx_decode_double(A->fmt, mxg_code(A, m, k)),
                              (float)mx_decode_double(B->fmt, mxg_code(B, n, k)), c);
    return c;
}

float mxg_dequant_f32(const mx_operand *o, mx_e8m0_decode d, size_t r, size_t k)
{
    float v = (float)mx_decode_double(o->fmt, mxg_code(o, r, k));
    if (!o->scales)
        return v;
    return v * mxg_scale_f32(o, d, r, k / MX_BLOCK);
}

float mxg_dequant_chain(const mx_operand *A, size_t m, const mx_operand *B,
                        size_t n, mx_e8m0_decode d, float c)
{
    for (size_t k = 0; k < A->K; k++) {
        float a = mxg_dequant_f32(A, d, m, k), b = mxg_dequant_f32(B, d, n, k);
        float p = a * b;
        /* a product of two dequantized 8-bit values has at most 8
         * significant bits: exact unless it underflows or overflows */
        c = (a == 0 || b == 0 || (fabsf(p) >= FLT_MIN && isfinite(p))) ? c + p
                                                                       : fmaf(a, b, c);
    }
    return c;
}

/* RN32 of the exact dot of a group, through MPFR (the slow, simple way). */
static float group_dot_rn32(const mx_operand *A, size_t m, const mx_operand *B,
                            size_t n, size_t k0, size_t len)
{
    mpfr_t acc, a, b;
    mpfr_inits2(600, acc, a, b, (mpfr_ptr)0); /* exact: span < 600 bits */
    mpfr_set_zero(acc, 1);
    for (size_t k = k0; k < k0 + len; k++) {
        mx_decode_mpfr(A->fmt, mxg_code(A, m, k), a);
        mx_decode_mpfr(B->fmt, mxg_code(B, n, k), b);
        mpfr_mul(a, a, b, MPFR_RNDN);
        mpfr_add(acc, acc, a, MPFR_RNDN);
    }
    mx_encode_opts o = mx_encode_defaults();
    uint32_t code;
    mx_encode_mpfr(mx_format_get(MX_FP32), acc, &o, &code);
    mpfr_clears(acc, a, b, (mpfr_ptr)0);
    float f;
    memcpy(&f, &code, sizeof f);
    return f;
}

float mxg_model_partial(const mx_accum_model *md, const mx_operand *A, size_t m,
                        const mx_operand *B, size_t n, size_t k0, size_t len,
                        float c)
{
    switch (md->kind) {
    case MX_ACC_FP32_GROUP:
        return c + group_dot_rn32(A, m, B, n, k0, len);
    case MX_ACC_FP32_SEQ:
    case MX_ACC_DEQUANT_FP32: /* unscaled operands: the same chain */
        return mxg_seq_chain(A, m, B, n, k0, len, c);
    case MX_ACC_BLOCK: {
        size_t ea = A->fmt->bits / 8, eb = B->fmt->bits / 8;
        const uint8_t *pa = (const uint8_t *)A->codes + (mxg_row(A, m) * A->ld + k0) * ea;
        const uint8_t *pb = (const uint8_t *)B->codes + (mxg_row(B, n) * B->ld + k0) * eb;
        return mx_blockfma_dot(md->block, A->fmt, pa, B->fmt, pb, len, c);
    }
    }
    return NAN;
}
