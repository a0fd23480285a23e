/* encode.c -- front ends of the rounding routine: reduce a binary64, an MPFR
 * number or an exact rational to (sign, 64-bit significand, exponent, sticky)
 * without error, then call mx_round_pack. */
#include <math.h>
#include <string.h>
#include "mxref/format.h"

mx_encode_opts mx_encode_defaults(void)
{
    mx_encode_opts o = {MX_RNE, MX_OVF_DEFAULT, 0, 0};
    return o;
}

static mx_status encode_nan(const mx_format *f, int sign, uint32_t *code)
{
    if (f->special == MX_SPECIAL_IEEE || f->special == MX_SPECIAL_FN)
        *code = f->nan_code | (sign ? 1u << (f->bits - 1) : 0);
    else
        *code = f->nan_code;
    return MX_OK;
}

/* An infinity is exact where the format has one, whatever the rounding mode;
 * elsewhere the overflow policy decides (default NaN, or saturate). */
static mx_status encode_inf(const mx_format *f, int sign,
                            const mx_encode_opts *o, uint32_t *code)
{
    uint32_t sbit = (f->is_signed && sign) ? 1u << (f->bits - 1) : 0;
    mx_overflow p = mx_overflow_resolve(f, o->overflow);

    if (p == MX_OVF_INF && !f->has_inf)
        return MX_EINVAL;
    if (sign && !f->is_signed)
        *code = f->nan_code;
    else if (p == MX_OVF_SATURATE)
        *code = f->max_finite_code | sbit;
    else if (p == MX_OVF_INF)
        *code = f->inf_code | sbit;
    else
        return encode_nan(f, sign, code);
    return MX_OK;
}

mx_status mx_encode_double(const mx_format *f, double x,
                           const mx_encode_opts *o, uint32_t *code)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    int sign = (int)(u >> 63);
    int ef = (int)((u >> 52) & 0x7ff);
    uint64_t mf = u & ((UINT64_C(1) << 52) - 1);

    if (!f || !o || !code)
        return MX_EINVAL;
    if (ef == 0x7ff)
        return mf ? encode_nan(f, sign, code) : encode_inf(f, sign, o, code);
    if (ef == 0 && mf == 0)
        return mx_round_pack(f, sign, 0, 0, 0, o, code);
    int exp;
    uint64_t sig;
    if (ef == 0) { /* subnormal binary64: normalize */
        int lz = __builtin_clzll(mf);
        sig = mf << lz;
        exp = -1074 + 63 - lz;
    } else {
        sig = ((UINT64_C(1) << 52) | mf) << 11;
        exp = ef - 1023;
    }
    return mx_round_pack(f, sign, sig, exp, 0, o, code);
}

/* Top 64 bits of a positive integer z, the exponent of its leading bit, and
 * whether anything below those 64 bits is nonzero. */
static void top64(const mpz_t z, uint64_t *sig, long *lead, int *sticky)
{
    size_t nb = mpz_sizeinbase(z, 2);
    mpz_t t;
    mpz_init(t);
    if (nb > 64) {
        mp_bitcnt_t shift = nb - 64;
        *sticky = mpz_scan1(z, 0) < shift;
        mpz_tdiv_q_2exp(t, z, shift);
    } else {
        *sticky = 0;
        mpz_mul_2exp(t, z, 64 - nb);
    }
    *sig = 0;
    mpz_export(sig, NULL, -1, sizeof *sig, 0, 0, t); /* t < 2^64 */
    *lead = (long)nb - 1;
    mpz_clear(t);
}

/* Clamp an exponent that is far outside every format's range (MPFR and GMP
 * allow much larger ones) to a value that still overflows or underflows. */
static int clamp_exp(long e)
{
    return e > (1 << 20) ? (1 << 20) : e < -(1 << 20) ? -(1 << 20) : (int)e;
}

mx_status mx_encode_mpfr(const mx_format *f, const mpfr_t x,
                         const mx_encode_opts *o, uint32_t *code)
{
    if (!f || !o || !code)
        return MX_EINVAL;
    int sign = mpfr_signbit(x) != 0;
    if (mpfr_nan_p(x))
        return encode_nan(f, sign, code);
    if (mpfr_inf_p(x))
        return encode_inf(f, sign, o, code);
    if (mpfr_zero_p(x))
        return mx_round_pack(f, sign, 0, 0, 0, o, code);

    mpz_t z;
    mpz_init(z);
    mpfr_exp_t e2 = mpfr_get_z_2exp(z, x); /* x = z * 2^e2 exactly */
    mpz_abs(z, z);
    uint64_t sig;
    long lead;
    int sticky;
    top64(z, &sig, &lead, &sticky);
    mpz_clear(z);
    return mx_round_pack(f, sign, sig, clamp_exp((long)e2 + lead), sticky, o,
                         code);
}

mx_status mx_encode_mpq(const mx_format *f, const mpq_t x, int neg_zero,
                        const mx_encode_opts *o, uint32_t *code)
{
    if (!f || !o || !code)
        return MX_EINVAL;
    int s = mpq_sgn(x);
    if (s == 0)
        return mx_round_pack(f, neg_zero, 0, 0, 0, o, code);

    mpz_t n, q, r;
    mpz_inits(n, q, r, NULL);
    mpz_abs(n, mpq_numref(x));
    const mpz_srcptr d = mpq_denref(x);
    /* e = floor(log2(n/d)): start from the bit lengths, correct by one. */
    long e = (long)mpz_sizeinbase(n, 2) - (long)mpz_sizeinbase(d, 2);
    /* sig = floor(n * 2^(63-e) / d) lies in [2^63, 2^65); fix e until it is
     * in [2^63, 2^64). */
    for (;;) {
        long sh = 63 - e;
        if (sh >= 0) {
            mpz_mul_2exp(q, n, (mp_bitcnt_t)sh);
            mpz_tdiv_qr(q, r, q, d);
        } else {
            mpz_mul_2exp(r, d, (mp_bitcnt_t)-sh);
            mpz_tdiv_qr(q, r, n, r);
        }
        size_t nb = mpz_sizeinbase(q, 2);
        if (nb == 64)
            break;
        e += nb > 64 ? 1 : -1;
    }
    uint64_t sig = 0;
    mpz_export(&sig, NULL, -1, sizeof sig, 0, 0, q);
    int sticky = mpz_sgn(r) != 0;
    mpz_clears(n, q, r, NULL);
    return mx_round_pack(f, s < 0, sig, clamp_exp(e), sticky, o, code);
}

uint32_t mx_encode_rne(const mx_format *f, double x)
{
    mx_encode_opts o = mx_encode_defaults();
    uint32_t c = 0;
    mx_encode_double(f, x, &o, &c);
    return c;
}

float mx_fp32_round(double x)
{
    return (float)x; /* IEEE binary64 -> binary32 conversion: RNE */
}

mx_status mx_enc8_table_init(mx_enc8_table *t, const mx_format *f,
                             const mx_encode_opts *o)
{
    if (!f || f->bits != 8 || !o || o->round == MX_RSTOCH)
        return MX_EINVAL;
    t->f = f;
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (int sticky = 0; sticky < 2; sticky++) {
            uint32_t u = hi << 16 | (uint32_t)sticky;
            float x;
            memcpy(&x, &u, sizeof x);
            uint32_t c;
            mx_status st = mx_encode_double(f, (double)x, o, &c);
            if (st != MX_OK)
                return st;
            (sticky ? t->t1 : t->t0)[hi] = (uint8_t)c;
        }
    return MX_OK;
}
