/* round_int.c -- rounding an exact integer times a power of two (a signed
 * 128-bit integer, or a GMP integer for the wide elements) to FP32 or
 * binary64, once (see gemm_internal.h).  Both are RNE on the top 64 bits
 * with a sticky bit: FP32 when the result is a normal number (else
 * mx_round_pack, the library's one rounding routine); binary64 with MPFR
 * for GMP integers and large weighted values, and one exact binary64
 * multiply for integers below 2^53. */
#include <math.h>
#include <string.h>
#include <mpfr.h>
#include "gemm_internal.h"

/* For v != 0: its sign in *neg, the top 64 bits of |v| (leading bit at bit
 * 63), the position of the leading bit of |v| in *lead, and whether any bit
 * below the 64 kept is set in *sticky. */
static inline uint64_t i128_top64(__int128 v, int *neg, int *lead, int *sticky)
{
    *neg = v < 0;
    unsigned __int128 a = *neg ? -(unsigned __int128)v : (unsigned __int128)v;
    int hi = a >> 64 ? 127 - __builtin_clzll((uint64_t)(a >> 64))
                     : 63 - __builtin_clzll((uint64_t)a);
    *lead = hi;
    if (hi <= 63) {
        *sticky = 0;
        return (uint64_t)a << (63 - hi);
    }
    int sh = hi - 63;
    *sticky = (a & (((unsigned __int128)1 << sh) - 1)) != 0;
    return (uint64_t)(a >> sh);
}

/* 2^e for a normal binary64 exponent, from its bits */
static double pow2_normal(int e)
{
    uint64_t b = (uint64_t)(e + 1023) << 52;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

float mxg_round_f32(__int128 v, int e)
{
    if (v == 0)
        return 0.0f;
    int neg, lead, sticky;
    uint64_t sig = i128_top64(v, &neg, &lead, &sticky);
    int x = lead + e; /* the exponent of the leading bit */
    if (x >= -126 && x <= 126) {
        /* a normal FP32 result: RNE of the 64-bit significand to 24 bits
         * (a carry to 2^24 stays below 2^128), then exact conversions */
        uint64_t keep = sig >> 40, rem = sig & (((uint64_t)1 << 40) - 1);
        uint64_t half = (uint64_t)1 << 39;
        if (rem > half || (rem == half && (sticky || (keep & 1))))
            keep++;
        float r = (float)((double)keep * pow2_normal(x - 23));
        return neg ? -r : r;
    }
    mx_encode_opts o = mx_encode_defaults();
    uint32_t code;
    mx_round_pack(mx_format_get(MX_FP32), neg, sig, lead + e, sticky, &o, &code);
    float f;
    memcpy(&f, &code, sizeof f);
    return f;
}

double mxg_round_f64(__int128 v, int e)
{
    if (v == 0)
        return 0.0;
    int neg, lead, sticky;
    uint64_t sig = i128_top64(v, &neg, &lead, &sticky);
    /* RNE of the 64-bit significand to 53 bits, sticky included */
    uint64_t keep = sig >> 11, rem = sig & 0x7FF;
    if (rem > 0x400 || (rem == 0x400 && (sticky || (keep & 1))))
        keep++;
    /* keep < 2^54 times 2^x: by table when the product is normal (keep >=
     * 2^52 makes x >= -1074 enough), else ldexp */
    int x = lead - 52 + e;
    double r = x >= -1074 && x <= 960 ? (double)keep * mxg_pow2(x) : ldexp((double)keep, x);
    return neg ? -r : r;
}

double mxg_round_mpz_f64(const mpz_t z, long e, double w)
{
    mpfr_t t;
    mpfr_init2(t, (mpfr_prec_t)(mpz_sizeinbase(z, 2) + 2));
    mpfr_set_z(t, z, MPFR_RNDN); /* exact */
    mpfr_mul_2si(t, t, e, MPFR_RNDN);
    mpfr_t r;
    mpfr_init2(r, 53);
    if (w != 1.0) {
        mpfr_t wt;
        mpfr_init2(wt, 53);
        mpfr_set_d(wt, w, MPFR_RNDN);
        mpfr_mul(r, t, wt, MPFR_RNDN);
        mpfr_clear(wt);
    } else {
        mpfr_set(r, t, MPFR_RNDN);
    }
    double d = mpfr_get_d(r, MPFR_RNDN);
    mpfr_clears(t, r, (mpfr_ptr)0);
    return d;
}

double mxg_round_weighted_f64(__int128 v, int e, double w)
{
    unsigned __int128 av = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    /* an exact zero: +0 times w, as the oracle rounds it (and as the GMP
     * path and an all-zero row give it): -0 under a negative weight */
    if (av == 0)
        return 0.0 * w;
    /* The common case by one exact multiply: |v| < 2^53 is a binary64, v 2^e
     * too (e normal, no overflow), and the IEEE product with w is the
     * correctly rounded v 2^e w.  Kept to results well inside the normal
     * range, where the general code below (53-bit rounding, then ldexp)
     * gives the same bits. */
    if (av < ((unsigned __int128)1 << 53) && e >= -1022 && e <= 960) {
        double r = (double)(int64_t)v * pow2_normal(e) * w;
        if (fabs(r) >= 0x1p-1020 && fabs(r) <= 0x1p1020)
            return r;
    }
    if (w == 1.0)
        return mxg_round_f64(v, e);
    if (av < ((unsigned __int128)1 << 100)) {
        int we;
        double wm = frexp(w, &we); /* w = wm 2^we, |wm| in [.5,1) */
        int64_t W = (int64_t)ldexp(wm, 24); /* exact: w is FP32 */
        return mxg_round_f64(v * W, e + we - 24);
    }
    mpz_t z;
    uint64_t limbs[2] = {(uint64_t)av, (uint64_t)(av >> 64)};
    mpz_init(z);
    mpz_import(z, 2, -1, sizeof limbs[0], 0, 0, limbs);
    if (v < 0)
        mpz_neg(z, z);
    double d = mxg_round_mpz_f64(z, e, w);
    mpz_clear(z);
    return d;
}
