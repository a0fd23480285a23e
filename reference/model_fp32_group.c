/* model_fp32_group.c -- the fp32-group accumulation model (mxref/accum.h):
 * p = RN32(exact 32-wide dot), one rounding per group, then production's
 * scale multiply and FP32 add.  mx_gemm evaluates it on the exact engine's
 * partials (gemm_engine.c, gemm_residual.c call the functions below);
 * mxg_group_dot_rn32 is the slow, simple way through MPFR that
 * mx_gemm_model_direct uses. */
#include <string.h>
#include <mpfr.h>
#include "gemm_internal.h"

float mxg_group_dot_rn32(const mx_operand *A, size_t m, const mx_operand *B,
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

float mxg_group_partial(__int128 v, int e)
{
    return mxg_round_f32_fast(v, e);
}

float mxg_group_partial_terms(double P, int ua, const int64_t *tv,
                              const int *te, size_t cnt)
{
    int e0 = ua, emax = ua + 53;
    for (size_t j = 0; j < cnt; j++) {
        e0 = te[j] < e0 ? te[j] : e0;
        emax = te[j] + 63 > emax ? te[j] + 63 : emax;
    }
    if (emax - e0 + 6 <= 126) {
        __int128 v = mxg_shl128((int64_t)P, ua - e0);
        for (size_t j = 0; j < cnt; j++)
            v += mxg_shl128(tv[j], te[j] - e0);
        return mxg_group_partial(v, e0);
    }
    /* too wide for 128 bits: GMP, then MPFR's one rounding */
    mpz_t z, t;
    mpz_init_set_d(z, P);
    mpz_mul_2exp(z, z, (mp_bitcnt_t)(ua - e0));
    mpz_init(t);
    for (size_t j = 0; j < cnt; j++) {
        mpz_set_si(t, (long)tv[j]);
        mpz_mul_2exp(t, t, (mp_bitcnt_t)(te[j] - e0));
        mpz_add(z, z, t);
    }
    mpfr_t f;
    mpfr_init2(f, (mpfr_prec_t)mpz_sizeinbase(z, 2) + 2);
    mpfr_set_z(f, z, MPFR_RNDN);
    mpfr_mul_2si(f, f, e0, MPFR_RNDN);
    mx_encode_opts o = mx_encode_defaults();
    uint32_t code;
    float p;
    mx_encode_mpfr(mx_format_get(MX_FP32), f, &o, &code);
    memcpy(&p, &code, sizeof p);
    mpfr_clear(f);
    mpz_clears(z, t, NULL);
    return p;
}

void mxg_group_row(float *gm, const double *Pm, double pa, const double *pwB,
                   float scA, const float *scB, int scaled, int b_irr,
                   const unsigned char *irr, size_t irr_stride, size_t N)
{
    /* the binary64 product P * 2^uA * 2^uB is exact; the conversion rounds
     * once */
    if (b_irr)
        for (size_t n = 0; n < N; n++) {
            if (irr[n * irr_stride])
                continue;
            float p = (float)(Pm[n] * pa * pwB[n]);
            mxg_group_step(&gm[n], p, mxg_scale_mul(scA, scB[n]), scaled);
        }
    else if (scaled)
        for (size_t n = 0; n < N; n++) {
            float p = (float)(Pm[n] * pa * pwB[n]);
            float sc = mxg_scale_mul(scA, scB[n]);
            float t = p * sc;
            gm[n] = gm[n] + t;
        }
    else
        for (size_t n = 0; n < N; n++)
            gm[n] = gm[n] + (float)(Pm[n] * pa * pwB[n]);
}
