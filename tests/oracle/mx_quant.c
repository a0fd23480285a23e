/* mx_quant.c -- simple reference implementations of production's MX
 * scale decode and quantizer (see oracle.h).  Only the format table and
 * the decoder of the library are used (to search codes by value). */
#include <math.h>
#include "oracle.h"

float oracle_e8m0_production(uint8_t s)
{
    if (s == 0)
        return 0.0f;
    return ldexpf(1.0f, (int)s - 127);
}

void oracle_mx_quant_block(mx_format_id elem, const float *x, uint8_t *q,
                           uint8_t *s)
{
    const mx_format *f = mx_format_get(elem);
    double amax = 0;
    for (int i = 0; i < 32; i++)
        amax = fabs(x[i]) > amax ? fabs(x[i]) : amax;
    if (amax < 1e-30f)
        amax = 1e-30f;
    mpfr_t t;
    mpfr_init2(t, 64);
    mpfr_set_d(t, amax, MPFR_RNDN);
    long X = mpfr_get_exp(t) - 1; /* amax = 0.1xxx * 2^exp */
    mpfr_clear(t);
    int sb = (int)(X + 127 < 0 ? 0 : X + 127 > 254 ? 254 : X + 127);
    *s = (uint8_t)sb;
    double maxf = mx_decode_double(f, f->max_finite_code);
    for (int i = 0; i < 32; i++) {
        double v = oracle_round_d(ldexp(x[i], 127 - sb), f->mbits + 1, f->emin,
                                  f->emax + 1, MPFR_RNDN);
        /* find the code of v by search (no encoder involved) */
        int found = -1;
        for (int c = 0; c < 256 && found < 0; c++) {
            double d = mx_decode_double(f, (uint32_t)c);
            if (d == v && (v != 0 || signbit(d) == signbit(v) ||
                           f->special == MX_SPECIAL_FNUZ))
                found = c;
        }
        if (fabs(v) > maxf)
            found = (int)f->nan_code; /* overflow: NaN (no clamp) */
        q[i] = (uint8_t)found;
    }
}
