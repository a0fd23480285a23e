/* mpfr_round.c -- MPFR rounding to a binary format (see oracle.h). */
#include "oracle.h"

double oracle_round(mpfr_srcptr x, int p, int emin, int emax, mpfr_rnd_t rnd)
{
    mpfr_t t;
    mpfr_init2(t, p);
    /* round to p bits in the full exponent range, then narrow the range:
     * mpfr_check_range and mpfr_subnormalize take the ternary value, so
     * the result is rounded once */
    int inex = mpfr_set(t, x, rnd);
    mpfr_exp_t oemin = mpfr_get_emin(), oemax = mpfr_get_emax();
    /* MPFR exponents: value = 0.1xxx * 2^e */
    mpfr_set_emin(emin - (p - 1) + 1);
    mpfr_set_emax(emax + 1);
    inex = mpfr_check_range(t, inex, rnd);
    mpfr_subnormalize(t, inex, rnd);
    double r = mpfr_get_d(t, MPFR_RNDN);
    mpfr_set_emin(oemin);
    mpfr_set_emax(oemax);
    mpfr_clear(t);
    return r;
}

double oracle_round_d(double x, int p, int emin, int emax, mpfr_rnd_t rnd)
{
    mpfr_t t;
    mpfr_init2(t, 53);
    mpfr_set_d(t, x, MPFR_RNDN); /* exact */
    double r = oracle_round(t, p, emin, emax, rnd);
    mpfr_clear(t);
    return r;
}

float oracle_rn32(mpfr_srcptr x)
{
    return (float)oracle_round(x, 24, -126, 127, MPFR_RNDN);
}

float oracle_rn32_sum(const double *t, size_t n)
{
    mpfr_t acc, x;
    mpfr_init2(acc, 2400); /* binary64 terms span < 2200 bits: exact */
    mpfr_init2(x, 53);
    mpfr_set_zero(acc, 1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(x, t[i], MPFR_RNDN);
        mpfr_add(acc, acc, x, MPFR_RNDN);
    }
    float v = oracle_rn32(acc);
    mpfr_clears(acc, x, (mpfr_ptr)0);
    return v;
}
