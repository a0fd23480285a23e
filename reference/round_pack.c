/* round_pack.c -- the one rounding routine of mxref.
 *
 * Input: a magnitude sig * 2^(exp-63) with sig normalized (bit 63 set), a
 * sticky flag for anything below sig, and a sign.  The routine
 *   1. picks the quantum q = 2^(max(exp, emin) - mbits) of the result (the
 *      subnormal range shares the quantum of the smallest binade);
 *   2. splits the magnitude into M = floor(|x|/q) and a discarded fraction,
 *      and increments M per the rounding mode;
 *   3. detects overflow (M*q above the largest finite value) and applies
 *      IEEE 754 first (a mode rounding toward zero for this sign gives the
 *      largest finite value), then the overflow policy;
 *   4. packs M*q into sign, exponent and fraction fields.
 * Everything is integer arithmetic, so the result is exact by construction.
 * Formats without a zero (E8M0) saturate underflow to their smallest value.
 */
#include "mxref/format.h"

static uint32_t sign_bit(const mx_format *f, int sign)
{
    return (f->is_signed && sign) ? 1u << (f->bits - 1) : 0;
}

static uint32_t nan_of(const mx_format *f, int sign)
{
    /* FNUZ has a single NaN pattern, which is the sign bit itself. */
    if (f->special == MX_SPECIAL_FNUZ || f->special == MX_SPECIAL_E8M0)
        return f->nan_code;
    return f->nan_code | sign_bit(f, sign);
}

static uint32_t zero_of(const mx_format *f, int sign)
{
    if (f->special == MX_SPECIAL_E8M0)
        return 0; /* no zero: smallest value 2^-127 */
    return f->has_negzero ? sign_bit(f, sign) : 0;
}

/* Does mode m round magnitudes of this sign toward zero? */
static int toward_zero(mx_round m, int sign)
{
    return m == MX_RTZ || (m == MX_RUP && sign) || (m == MX_RDOWN && !sign);
}

static mx_status overflow_code(const mx_format *f, int sign,
                               const mx_encode_opts *o, uint32_t *code)
{
    mx_overflow p = mx_overflow_resolve(f, o->overflow);

    if (toward_zero(o->round, sign) || p == MX_OVF_SATURATE) {
        *code = f->max_finite_code | sign_bit(f, sign);
        return MX_OK;
    }
    if (p == MX_OVF_NAN) {
        *code = nan_of(f, sign);
        return MX_OK;
    }
    *code = f->inf_code | sign_bit(f, sign); /* p == MX_OVF_INF, checked */
    return MX_OK;
}

static int opts_ok(const mx_format *f, const mx_encode_opts *o)
{
    if ((unsigned)o->round > MX_RSTOCH || (unsigned)o->overflow > MX_OVF_INF)
        return 0;
    if (o->overflow == MX_OVF_INF && !f->has_inf)
        return 0;
    if (o->round == MX_RSTOCH) {
        if (o->rbits_n < 1 || o->rbits_n > 32)
            return 0;
        if (o->rbits_n < 32 && o->rbits >> o->rbits_n)
            return 0;
    }
    return 1;
}

mx_status mx_round_pack(const mx_format *f, int sign, uint64_t sig, int exp,
                        int sticky, const mx_encode_opts *o, uint32_t *code)
{
    if (!f || !o || !code || !opts_ok(f, o))
        return MX_EINVAL;
    if (sig == 0) {
        *code = f->special == MX_SPECIAL_E8M0 ? f->nan_code : zero_of(f, sign);
        return MX_OK;
    }
    if (sign && !f->is_signed) {
        *code = f->nan_code;
        return MX_OK;
    }

    int qe = (exp > f->emin ? exp : f->emin) - f->mbits;
    /* |x|/q = sig * 2^(exp - 63 - qe); drop = bits of sig below the point. */
    long drop = 63L - exp + qe; /* >= 63 - mbits >= 40 */
    uint64_t M = drop >= 64 ? 0 : sig >> drop;
    int half, rest, inc = 0;
    if (drop > 64) {
        half = 0;
        rest = 1;
    } else {
        half = (int)((sig >> (drop - 1)) & 1);
        rest = (drop == 1 ? 0 : (sig & ((UINT64_C(1) << (drop - 1)) - 1)) != 0);
    }
    rest = rest || sticky;

    switch (o->round) {
    case MX_RNE:
        inc = half && (rest || (M & 1));
        break;
    case MX_RNA:
        inc = half;
        break;
    case MX_RTZ:
        break;
    case MX_RUP:
    case MX_RDOWN:
        inc = !toward_zero(o->round, sign) && (half || rest);
        break;
    case MX_RSTOCH: {
        int n = o->rbits_n;
        long sh = drop - n; /* >= 8: drop >= 40, n <= 32 */
        uint64_t t = sh >= 64 ? 0 : (sig >> sh) & ((UINT64_C(1) << n) - 1);
        inc = t + o->rbits >= (UINT64_C(1) << n);
        break;
    }
    }
    M += (uint64_t)inc;

    if (M == 0) {
        *code = zero_of(f, sign);
        return MX_OK;
    }
    uint64_t one = UINT64_C(1) << f->mbits;
    if (M == 2 * one) { /* carry into the next binade */
        M = one;
        qe++;
    }
    uint64_t max_m = f->special == MX_SPECIAL_FN ? 2 * one - 2 : 2 * one - 1;
    int qmax = f->emax - f->mbits;
    if (qe > qmax || (qe == qmax && M > max_m))
        return overflow_code(f, sign, o, code);

    uint32_t ef = M >= one ? (uint32_t)(qe + f->mbits + f->bias) : 0;
    uint32_t mf = (uint32_t)(M & (one - 1));
    *code = sign_bit(f, sign) | (ef << f->mbits) | mf;
    return MX_OK;
}
