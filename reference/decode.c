/* decode.c -- exact value and class of a code, for every format row. */
#include <math.h>
#include "mxref/format.h"

/* Splits a code into its fields and classifies it; for finite nonzero codes
 * *m and *e give the value m * 2^e exactly. */
static mx_class decode_fields(const mx_format *f, uint32_t code, int *sign,
                              uint32_t *m, int *e)
{
    uint32_t eall = (1u << f->ebits) - 1, mall = (1u << f->mbits) - 1;
    uint32_t sbit = f->is_signed ? 1u << (f->bits - 1) : 0;
    uint32_t ef = (code >> f->mbits) & eall, mf = code & mall;

    *sign = sbit && (code & sbit);
    *m = 0;
    *e = 0;
    switch (f->special) {
    case MX_SPECIAL_FNUZ:
        if (code == sbit)
            return MX_CLASS_NAN;
        break;
    case MX_SPECIAL_FN:
        if (ef == eall && mf == mall)
            return MX_CLASS_NAN;
        break;
    case MX_SPECIAL_IEEE:
        if (ef == eall)
            return mf ? MX_CLASS_NAN : MX_CLASS_INF;
        break;
    case MX_SPECIAL_E8M0:
        if (code == eall)
            return MX_CLASS_NAN;
        *m = 1;
        *e = (int)code - f->bias;
        return MX_CLASS_NORMAL;
    }
    if (ef == 0) {
        if (mf == 0)
            return MX_CLASS_ZERO;
        *m = mf;
        *e = f->emin - f->mbits;
        return MX_CLASS_SUBNORMAL;
    }
    *m = (1u << f->mbits) | mf;
    *e = (int)ef - f->bias - f->mbits;
    return MX_CLASS_NORMAL;
}

mx_class mx_decode_int(const mx_format *f, uint32_t code, int32_t *m, int *e)
{
    int s;
    uint32_t um;
    mx_class c = decode_fields(f, code, &s, &um, e);
    *m = (c == MX_CLASS_NORMAL || c == MX_CLASS_SUBNORMAL)
             ? (s ? -(int32_t)um : (int32_t)um)
             : 0;
    if (!*m)
        *e = 0;
    return c;
}

mx_class mx_classify(const mx_format *f, uint32_t code)
{
    int s, e;
    uint32_t m;
    return decode_fields(f, code, &s, &m, &e);
}

mx_class mx_decode_fields(const mx_format *f, uint32_t code, int *sign,
                          uint32_t *m, int *e)
{
    return decode_fields(f, code, sign, m, e);
}

mx_class mx_decode_mpfr(const mx_format *f, uint32_t code, mpfr_t out)
{
    int s, e;
    uint32_t m;
    mx_class c = decode_fields(f, code, &s, &m, &e);

    switch (c) {
    case MX_CLASS_NAN:
        mpfr_set_nan(out);
        break;
    case MX_CLASS_INF:
        mpfr_set_inf(out, s ? -1 : 1);
        break;
    case MX_CLASS_ZERO:
        mpfr_set_zero(out, s ? -1 : 1);
        break;
    default:
        mpfr_set_ui_2exp(out, m, e, MPFR_RNDN); /* exact: m < 2^24 */
        if (s)
            mpfr_neg(out, out, MPFR_RNDN);
    }
    return c;
}

double mx_decode_double(const mx_format *f, uint32_t code)
{
    int s, e;
    uint32_t m;
    double v;

    switch (decode_fields(f, code, &s, &m, &e)) {
    case MX_CLASS_NAN:
        return NAN;
    case MX_CLASS_INF:
        v = INFINITY;
        break;
    case MX_CLASS_ZERO:
        v = 0.0;
        break;
    default:
        v = ldexp((double)m, e);
    }
    return s ? -v : v;
}

double mx_e8m0_decode_production(uint8_t s)
{
    /* s << 7 is a BF16 with exponent field s and zero mantissa. */
    return mx_bf16_to_float((uint16_t)((uint16_t)s << 7));
}

double mx_e8m0_decode_spec(uint8_t s)
{
    return mx_decode_double(mx_format_get(MX_E8M0), s);
}
