/* check_formats.c -- the format layer, checked exhaustively.
 *
 * Expected values never come from mxref itself:
 *  - a decoder written here from the facts table, with integer arithmetic
 *    only (spec_decode), gives every code's class and value;
 *  - rounding is checked on every midpoint between neighbouring values of
 *    each small format (and just above and below it), with the expected
 *    result derived from the two neighbours and the mode;
 *  - BF16 and FP16 rounding of FP32 inputs is checked against MPFR
 *    (mpfr_subnormalize at the format's exponent range);
 *  - FN -> FNUZ is checked on every (code, scale byte) pair by value.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "oracle/oracle.h"
#include "testutil.h"
#include "mxref/format.h"
#include "mxref/fnuz.h"

/* ---- an independent description of the formats (facts table §1) ------- */

typedef struct {
    mx_format_id id;
    int bits, ebits, mbits, bias;
    char kind; /* 'I' IEEE-like, 'F' FN, 'U' FNUZ, 'S' E8M0 */
} spec;

static const spec specs[] = {
    {MX_E4M3FN, 8, 4, 3, 7, 'F'},    {MX_E4M3FNUZ, 8, 4, 3, 8, 'U'},
    {MX_E5M2, 8, 5, 2, 15, 'I'},     {MX_E5M2FNUZ, 8, 5, 2, 16, 'U'},
    {MX_E8M0, 8, 8, 0, 127, 'S'},    {MX_BF16, 16, 8, 7, 127, 'I'},
    {MX_FP16, 16, 5, 10, 15, 'I'},   {MX_FP32, 32, 8, 23, 127, 'I'},
};
#define NSPECS (int)(sizeof specs / sizeof specs[0])

/* Class and value of a code, from the bit fields and the facts table alone.
 * Returns the class as a letter: z s n i q (zero, subnormal, normal, inf,
 * nan). */
static char spec_decode(const spec *s, uint32_t c, double *v)
{
    uint32_t sign = 0, e, m;
    if (s->kind != 'S') {
        sign = c >> (s->bits - 1);
        c &= (1u << (s->bits - 1)) - 1;
    }
    e = c >> s->mbits;
    m = c & ((1u << s->mbits) - 1);
    uint32_t emask = (1u << s->ebits) - 1, mmask = (1u << s->mbits) - 1;
    double mag;
    char cls;
    if (s->kind == 'S') {
        if (c == 255) {
            *v = NAN;
            return 'q';
        }
        *v = ldexp(1.0, (int)c - 127);
        return 'n';
    }
    if (s->kind == 'U' && sign && c == 0) {
        *v = NAN;
        return 'q';
    }
    if (s->kind == 'F' && e == emask && m == mmask) {
        *v = NAN;
        return 'q';
    }
    if (s->kind == 'I' && e == emask) {
        if (m) {
            *v = NAN;
            return 'q';
        }
        *v = sign ? -INFINITY : INFINITY;
        return 'i';
    }
    if (e == 0) {
        /* integer significand m times 2^(1 - bias - mbits) */
        mag = ldexp((double)m, 1 - s->bias - s->mbits);
        cls = m ? 's' : 'z';
    } else {
        mag = ldexp((double)(m + (1u << s->mbits)), (int)e - s->bias - s->mbits);
        cls = 'n';
    }
    *v = sign ? -mag : mag;
    return cls;
}

static char class_letter(mx_class c) { return "zsniq"[c]; }

static const mx_format *F(mx_format_id id) { return mx_format_get(id); }

static uint64_t ncodes(const spec *s) { return (uint64_t)1 << s->bits; }

/* ---- decode ------------------------------------------------------------ */

START_TEST(test_decode_matches_independent_decoder)
{
    mpfr_t x;
    mpfr_init2(x, 64);
    for (int i = 0; i < NSPECS; i++) {
        const spec *s = &specs[i];
        const mx_format *f = F(s->id);
        uint64_t n = s->bits == 32 ? 1u << 20 : ncodes(s);
        for (uint64_t k = 0; k < n; k++) {
            /* FP32: every exponent, a stride of mantissas */
            uint32_t c = s->bits == 32 ? (uint32_t)(k * 4099u) : (uint32_t)k;
            double want, got = mx_decode_double(f, c);
            char cls = spec_decode(s, c, &want);
            EXPECT(class_letter(mx_classify(f, c)) == cls,
                          "%s code 0x%X: class", f->name, c);
            if (cls == 'q') {
                EXPECT(isnan(got), "%s 0x%X: NaN", f->name, c);
                continue;
            }
            EXPECT(got == want && signbit(got) == signbit(want),
                          "%s code 0x%X: got %a want %a", f->name, c, got, want);
            mx_decode_mpfr(f, c, x);
            EXPECT(mpfr_get_d(x, MPFR_RNDN) == want &&
                              (mpfr_signbit(x) != 0) == (signbit(want) != 0),
                          "%s code 0x%X: mpfr decode", f->name, c);
        }
    }
    mpfr_clear(x);
}
END_TEST

/* Facts quoted in the issue and the facts table. */
START_TEST(test_decode_known_values)
{
    const mx_format *uz = F(MX_E4M3FNUZ), *fn = F(MX_E4M3FN);
    int nans = 0;
    for (uint32_t c = 0; c < 256; c++)
        nans += mx_classify(uz, c) == MX_CLASS_NAN;
    ck_assert_int_eq(nans, 1);
    EXPECT1(mx_classify(uz, 0x80) == MX_CLASS_NAN);
    EXPECT1(mx_decode_double(uz, 0x7F) == 240.0);
    EXPECT1(mx_decode_double(uz, 0x01) == ldexp(1, -10));
    EXPECT1(mx_decode_double(fn, 0x7E) == 448.0);
    EXPECT1(mx_decode_double(fn, 0x01) == ldexp(1, -9));
    EXPECT1(mx_decode_double(F(MX_E5M2), 0x7B) == 57344.0);
    EXPECT1(mx_decode_double(F(MX_E5M2FNUZ), 0x7F) == 57344.0);
    EXPECT1(mx_decode_double(F(MX_E5M2FNUZ), 0x01) == ldexp(1, -17));
    EXPECT1(mx_decode_double(F(MX_E8M0), 0) == ldexp(1, -127));
    EXPECT1(isnan(mx_decode_double(F(MX_E8M0), 255)));
    /* same byte, FN vs FNUZ: FNUZ is half, subnormals included */
    for (uint32_t c = 0; c < 256; c++) {
        if (c == 0x7F || c == 0xFF || c == 0x80)
            continue;
        EXPECT1(mx_decode_double(uz, c) * 2 == mx_decode_double(fn, c));
    }
    EXPECT1(mx_decode_double(uz, 0xFF) == -240.0);
}
END_TEST

START_TEST(test_e8m0_production_decode)
{
    EXPECT1(mx_e8m0_decode_production(0) == 0.0);
    EXPECT1(!signbit(mx_e8m0_decode_production(0)));
    EXPECT1(isinf(mx_e8m0_decode_production(255)) &&
              mx_e8m0_decode_production(255) > 0);
    EXPECT1(mx_e8m0_decode_spec(0) == ldexp(1, -127));
    EXPECT1(isnan(mx_e8m0_decode_spec(255)));
    for (int s = 1; s < 255; s++) {
        EXPECT1(mx_e8m0_decode_production((uint8_t)s) == ldexp(1, s - 127));
        EXPECT1(mx_e8m0_decode_spec((uint8_t)s) == ldexp(1, s - 127));
    }
}
END_TEST

/* ---- round trip -------------------------------------------------------- */

START_TEST(test_round_trip_every_code)
{
    const spec *s = &specs[_i];
    const mx_format *f = F(s->id);
    mpfr_t x;
    mpq_t q;
    mpfr_init2(x, 80);
    mpq_init(q);
    /* FP32: every exponent, a stride of mantissas */
    uint64_t n = s->bits == 32 ? UINT64_C(1) << 20 : ncodes(s);
    for (int r = MX_RNE; r <= MX_RDOWN; r++) {
        mx_encode_opts o = mx_encode_defaults();
        o.round = (mx_round)r;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t c = s->bits == 32 ? (k * 4099u) & 0xFFFFFFFFu : k;
            double v;
            char cls = spec_decode(s, (uint32_t)c, &v);
            if (cls == 'q')
                continue;
            uint32_t a = 0xDEAD, b = 0xDEAD, d = 0xDEAD;
            EXPECT1(mx_encode_double(f, v, &o, &a) == MX_OK);
            mpfr_set_d(x, v, MPFR_RNDN);
            EXPECT1(mx_encode_mpfr(f, x, &o, &b) == MX_OK);
            if (cls == 'i') {
                d = a;
            } else {
                mpq_set_d(q, v);
                EXPECT1(mx_encode_mpq(f, q, signbit(v) != 0, &o, &d) == MX_OK);
            }
            /* FNUZ has no -0: code 0 is the only zero */
            EXPECT(a == c && b == c && d == c,
                          "%s %s: code 0x%llX -> %a -> 0x%X/0x%X/0x%X", f->name,
                          mx_round_name(o.round), (unsigned long long)c, v, a, b, d);
        }
    }
    mpfr_clear(x);
    mpq_clear(q);
}
END_TEST

/* ---- every midpoint ---------------------------------------------------- */

/* The finite values of an 8- or 16-bit format, sorted, one per value (-0
 * dropped), with each one's code. */
typedef struct {
    double v;
    uint32_t code;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    double x = ((const entry *)a)->v, y = ((const entry *)b)->v;
    return x < y ? -1 : x > y;
}

static size_t sorted_values(const spec *s, entry *out)
{
    size_t n = 0;
    for (uint64_t c = 0; c < ncodes(s); c++) {
        double v;
        char cls = spec_decode(s, (uint32_t)c, &v);
        if (cls == 'q' || cls == 'i' || (cls == 'z' && signbit(v)))
            continue;
        out[n].v = v;
        out[n++].code = (uint32_t)c;
    }
    qsort(out, n, sizeof *out, cmp_entry);
    return n;
}

/* Significand parity of a finite value: the significand integer in units
 * of the value's quantum.  For E8M0 (one-bit significand) the larger of two
 * neighbours has significand 2 (even) relative to the smaller's quantum. */
static int is_even(const spec *s, const entry *e, const entry *other)
{
    if (s->kind == 'S')
        return e->v > other->v;
    return (e->code & 1) == 0;
}

/* Expected code for a value strictly between neighbours lo < hi, at
 * distance rel from lo in units of (hi - lo): rel in (0, 1). */
static uint32_t expect_between(const spec *s, const entry *lo, const entry *hi,
                               double rel, mx_round r)
{
    int neg = hi->v <= 0; /* both <= 0 */
    const entry *toward0 = neg ? hi : lo, *away = neg ? lo : hi;
    double relaway = neg ? 1 - rel : rel; /* distance from toward0 */
    switch (r) {
    case MX_RTZ:
        return toward0->code;
    case MX_RUP:
        return hi->code;
    case MX_RDOWN:
        return lo->code;
    case MX_RNA:
        return relaway >= 0.5 ? away->code : toward0->code;
    default:
        if (rel != 0.5)
            return rel < 0.5 ? lo->code : hi->code;
        return is_even(s, lo, hi) ? lo->code : hi->code;
    }
}

static void check_between(const spec *s, const entry *lo, const entry *hi,
                          double rel, mx_round r)
{
    const mx_format *f = F(s->id);
    mx_encode_opts o = mx_encode_defaults();
    o.round = r;
    double x = lo->v + (hi->v - lo->v) * rel; /* exact: few significant bits */
    uint32_t got, want = expect_between(s, lo, hi, rel, r);
    if (x == 0)
        return;
    if (x < 0 && s->kind != 'U' && want == 0)
        want = 1u << (s->bits - 1); /* rounds to zero: -0 where it exists */
    EXPECT1(mx_encode_double(f, x, &o, &got) == MX_OK);
    EXPECT(got == want, "%s %s: %a between %a and %a -> 0x%X, want 0x%X",
                  f->name, mx_round_name(r), x, lo->v, hi->v, got, want);
    /* the same through the exact front ends */
    mpq_t q;
    mpq_init(q);
    mpq_set_d(q, x);
    EXPECT1(mx_encode_mpq(f, q, 0, &o, &got) == MX_OK);
    EXPECT(got == want, "%s mpq %a", f->name, x);
    mpq_clear(q);
}

START_TEST(test_every_midpoint)
{
    const spec *s = &specs[_i];
    if (s->bits > 16)
        return;
    entry *vals = malloc(sizeof *vals * (size_t)ncodes(s));
    size_t n = sorted_values(s, vals);
    static const double rels[] = {0.5, 0.5 - 1.0 / (1 << 20),
                                  0.5 + 1.0 / (1 << 20), 1.0 / (1 << 20),
                                  1 - 1.0 / (1 << 20), 0.25, 0.75};
    for (size_t k = 0; k + 1 < n; k++)
        for (int r = MX_RNE; r <= MX_RDOWN; r++)
            for (size_t j = 0; j < sizeof rels / sizeof rels[0]; j++)
                check_between(s, &vals[k], &vals[k + 1], rels[j], (mx_round)r);
    free(vals);
}
END_TEST

/* Values beyond the largest finite value follow IEEE first (modes toward
 * zero give the largest finite value), then the overflow policy. */
START_TEST(test_overflow_policy)
{
    const spec *s = &specs[_i];
    const mx_format *f = F(s->id);
    if (s->bits > 16)
        return;
    entry *vals = malloc(sizeof *vals * (size_t)ncodes(s));
    size_t n = sorted_values(s, vals);
    const entry *mx = &vals[n - 1];
    /* the next point of the unbounded grid above max, and its parity */
    int e;
    frexp(mx->v, &e);
    double ulp = s->kind == 'S' ? mx->v : ldexp(1.0, e - 1 - s->mbits);
    double next = mx->v + ulp;
    int next_even = s->kind == 'S' ? 1 : (mx->code & 1); /* max odd -> next even */
    double probes[] = {mx->v + ulp / 2, mx->v + ulp / 4, mx->v + ulp * 0.75,
                       next, next * 4, ldexp(next, 100), INFINITY};
    for (int sg = 0; sg < 2; sg++)
        for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++)
            for (int r = MX_RNE; r <= MX_RDOWN; r++)
                for (int pol = MX_OVF_DEFAULT; pol <= MX_OVF_INF; pol++) {
                    if (sg && s->kind == 'S')
                        continue;
                    double x = sg ? -probes[p] : probes[p];
                    double mag = probes[p];
                    mx_encode_opts o = mx_encode_defaults();
                    o.round = (mx_round)r;
                    o.overflow = (mx_overflow)pol;
                    uint32_t got;
                    mx_status st = mx_encode_double(f, x, &o, &got);
                    int has_inf = s->kind == 'I';
                    if (pol == MX_OVF_INF && !has_inf) {
                        EXPECT1(st == MX_EINVAL);
                        continue;
                    }
                    EXPECT1(st == MX_OK);
                    uint32_t sbit = sg ? 1u << (s->bits - 1) : 0;
                    /* does it round above max? */
                    int up;
                    int tz = r == MX_RTZ || (r == MX_RUP && sg) ||
                             (r == MX_RDOWN && !sg);
                    if (isinf(mag))
                        up = 1, tz = 0; /* inf is not rounded */
                    else if (tz)
                        up = 0;
                    else if (r == MX_RUP || r == MX_RDOWN)
                        up = 1;
                    else if (mag == mx->v + ulp / 2)
                        up = r == MX_RNA || next_even;
                    else
                        up = mag > mx->v + ulp / 2;
                    double dv;
                    char cls = spec_decode(s, got, &dv);
                    if (!up) {
                        EXPECT(got == (mx->code | sbit),
                                      "%s %s %s %a -> 0x%X", f->name,
                                      mx_round_name(r), mx_overflow_name(pol), x,
                                      got);
                        continue;
                    }
                    int effective = pol == MX_OVF_DEFAULT
                                        ? (has_inf ? MX_OVF_INF : MX_OVF_NAN)
                                        : pol;
                    if (effective == MX_OVF_SATURATE)
                        EXPECT(got == (mx->code | sbit), "%s sat %a -> 0x%X",
                                      f->name, x, got);
                    else if (effective == MX_OVF_NAN)
                        EXPECT(cls == 'q', "%s nan %a -> 0x%X", f->name, x,
                                      got);
                    else
                        EXPECT(cls == 'i' && (dv < 0) == sg,
                                      "%s inf %a -> 0x%X", f->name, x, got);
                }
    free(vals);
}
END_TEST

START_TEST(test_zero_nan_and_sign)
{
    mx_encode_opts o = mx_encode_defaults();
    uint32_t c;
    mx_encode_double(F(MX_E4M3FNUZ), -0.0, &o, &c);
    ck_assert_uint_eq(c, 0x00);
    mx_encode_double(F(MX_E5M2FNUZ), -0.0, &o, &c);
    ck_assert_uint_eq(c, 0x00);
    mx_encode_double(F(MX_E4M3FN), -0.0, &o, &c);
    ck_assert_uint_eq(c, 0x80);
    mx_encode_double(F(MX_BF16), -0.0, &o, &c);
    ck_assert_uint_eq(c, 0x8000);
    /* a negative value that rounds to zero keeps its sign where -0 exists */
    mx_encode_double(F(MX_E4M3FN), -ldexp(1, -12), &o, &c);
    ck_assert_uint_eq(c, 0x80);
    mx_encode_double(F(MX_E4M3FNUZ), -ldexp(1, -12), &o, &c);
    ck_assert_uint_eq(c, 0x00);
    /* E8M0 is unsigned and has no zero */
    mx_encode_double(F(MX_E8M0), 0.0, &o, &c);
    ck_assert_uint_eq(c, 0xFF);
    mx_encode_double(F(MX_E8M0), -4.0, &o, &c);
    ck_assert_uint_eq(c, 0xFF);
    mx_encode_double(F(MX_E8M0), ldexp(1, -140), &o, &c);
    ck_assert_uint_eq(c, 0x00); /* underflow saturates to 2^-127 */
    for (int i = 0; i < NSPECS; i++) {
        const mx_format *f = F(specs[i].id);
        double v;
        mx_encode_double(f, NAN, &o, &c);
        EXPECT(spec_decode(&specs[i], c, &v) == 'q', "%s NaN", f->name);
        mx_encode_double(f, -NAN, &o, &c);
        EXPECT(spec_decode(&specs[i], c, &v) == 'q', "%s -NaN", f->name);
    }
}
END_TEST

/* The examples of the acceptance list. */
START_TEST(test_acceptance_examples)
{
    const mx_format *fn = F(MX_E4M3FN);
    mx_encode_opts o = mx_encode_defaults();
    uint32_t c;
    o.overflow = MX_OVF_SATURATE;
    mx_encode_double(fn, 1000, &o, &c);
    ck_assert_uint_eq(c, 0x7E);
    o.overflow = MX_OVF_NAN;
    mx_encode_double(fn, 1000, &o, &c);
    ck_assert_uint_eq(c, 0x7F);
    o = mx_encode_defaults();
    mx_encode_double(fn, 464, &o, &c);
    ck_assert_uint_eq(c, 0x7E);
    mx_encode_double(fn, 465, &o, &c);
    ck_assert_uint_eq(c, 0x7F);
}
END_TEST

START_TEST(test_stochastic_rounding)
{
    /* a value k/16 of the way from 1.0 to 1.125 in E4M3FN rounds up for
     * exactly k of the 16 random draws with 4 random bits */
    const mx_format *fn = F(MX_E4M3FN);
    for (int k = 0; k < 16; k++) {
        double x = 1.0 + 0.125 * k / 16.0;
        int ups = 0;
        for (uint32_t r = 0; r < 16; r++) {
            mx_encode_opts o = mx_encode_defaults();
            o.round = MX_RSTOCH;
            o.rbits = r;
            o.rbits_n = 4;
            uint32_t c;
            EXPECT1(mx_encode_double(fn, x, &o, &c) == MX_OK);
            EXPECT1(c == 0x38 || c == 0x39);
            ups += c == 0x39;
            uint32_t cn;
            mx_encode_double(fn, -x, &o, &cn);
            ck_assert_uint_eq(cn, c | 0x80); /* symmetric in magnitude */
        }
        ck_assert_int_eq(ups, k);
    }
    /* deep subnormal: fraction bits beyond the significand still count */
    mx_encode_opts o = mx_encode_defaults();
    o.round = MX_RSTOCH;
    o.rbits_n = 8;
    o.rbits = 0xFF;
    uint32_t c;
    mx_encode_double(fn, ldexp(1, -9 - 3), &o, &c); /* 1/8 of min subnormal */
    ck_assert_uint_eq(c, 0x01);
    o.rbits = 0xDF; /* 0x20 + 0xDF < 0x100: stays down */
    mx_encode_double(fn, ldexp(1, -9 - 3), &o, &c);
    ck_assert_uint_eq(c, 0x00);
}
END_TEST

/* Trap tests: every validator refuses what it must. */
START_TEST(test_invalid_options_refused)
{
    uint32_t c;
    mx_encode_opts o = mx_encode_defaults();
    o.overflow = MX_OVF_INF;
    EXPECT1(mx_encode_double(F(MX_E4M3FN), 1.0, &o, &c) == MX_EINVAL);
    EXPECT1(mx_encode_double(F(MX_E4M3FNUZ), INFINITY, &o, &c) == MX_EINVAL);
    EXPECT1(mx_encode_double(F(MX_E5M2), 1.0, &o, &c) == MX_OK);
    o = mx_encode_defaults();
    o.round = MX_RSTOCH;
    o.rbits_n = 0;
    EXPECT1(mx_encode_double(F(MX_BF16), 1.0, &o, &c) == MX_EINVAL);
    o.rbits_n = 33;
    EXPECT1(mx_encode_double(F(MX_BF16), 1.0, &o, &c) == MX_EINVAL);
    o.rbits_n = 4;
    o.rbits = 16;
    EXPECT1(mx_encode_double(F(MX_BF16), 1.0, &o, &c) == MX_EINVAL);
    o = mx_encode_defaults();
    o.round = (mx_round)17;
    EXPECT1(mx_encode_double(F(MX_BF16), 1.0, &o, &c) == MX_EINVAL);
    EXPECT1(mx_format_get((mx_format_id)99) == NULL);
    EXPECT1(mx_format_by_name("e4m3") == NULL);
    EXPECT1(mx_format_by_name("float8_e4m3fnuz") == F(MX_E4M3FNUZ));
}
END_TEST

/* ---- BF16 / FP16 from FP32 against MPFR --------------------------------- */

static void check_vs_mpfr(const spec *s, float xf)
{
    static const struct { mx_round r; mpfr_rnd_t m; } modes[] = {
        {MX_RNE, MPFR_RNDN}, {MX_RTZ, MPFR_RNDZ}, {MX_RUP, MPFR_RNDU},
        {MX_RDOWN, MPFR_RNDD}};
    const mx_format *f = F(s->id);
    double x = xf;
    for (size_t m = 0; m < 4; m++) {
        mx_encode_opts o = mx_encode_defaults();
        o.round = modes[m].r;
        uint32_t c;
        mx_encode_double(f, x, &o, &c);
        double got;
        spec_decode(s, c, &got);
        double want = oracle_round_d(x, s->mbits + 1, 1 - s->bias,
                                  (1 << s->ebits) - 2 - s->bias, modes[m].m);
        EXPECT(got == want && signbit(got) == signbit(want),
                      "%s %s: %a -> %a, MPFR %a", f->name, mx_round_name(o.round),
                      x, got, want);
        if (s->id == MX_BF16 && modes[m].r == MX_RNE)
            EXPECT(mx_bf16_from_float(xf) == c, "bf16 fast path %a", x);
    }
}

START_TEST(test_bf16_fp16_from_fp32_vs_mpfr)
{
    static const uint32_t lows[] = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001,
                                    0xFFFF, 0x4000, 0xC000, 0x1234};
    const spec *bf = &specs[5], *hf = &specs[6];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20261125);
    for (uint32_t e = 0; e < 255; e++)
        for (uint32_t hi = 0; hi < 128; hi++)
            for (size_t l = 0; l < sizeof lows / sizeof lows[0] + 2; l++)
                for (uint32_t sg = 0; sg < 2; sg++) {
                    uint32_t low = l < sizeof lows / sizeof lows[0]
                                       ? lows[l]
                                       : (uint32_t)gsl_rng_uniform_int(rng, 65536);
                    uint32_t u = sg << 31 | e << 23 | hi << 16 | low;
                    float xf;
                    memcpy(&xf, &u, 4);
                    check_vs_mpfr(bf, xf);
                    /* FP16: the same patterns read as ties at bit 13 */
                    uint32_t u16 = sg << 31 | e << 23 | hi << 16 |
                                   ((low & 1) ? 0x1000 : 0) | (low >> 4);
                    memcpy(&xf, &u16, 4);
                    check_vs_mpfr(hf, xf);
                }
    gsl_rng_free(rng);
}
END_TEST

/* Every 8-bit format on random FP32 inputs of every exponent, against MPFR
 * (values beyond the largest finite are covered by test_overflow_policy). */
START_TEST(test_fp8_random_vs_mpfr)
{
    const spec *s = &specs[_i];
    if (s->kind == 'S' || s->bits != 8)
        return;
    const mx_format *f = F(s->id);
    double maxf = mx_decode_double(f, f->max_finite_code);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7 + (unsigned long)_i);
    for (int k = 0; k < 200000; k++) {
        uint32_t u = (uint32_t)gsl_rng_get(rng);
        /* exponents concentrated in and around the format's range */
        uint32_t e = (uint32_t)(127 - s->bias - 12 + gsl_rng_uniform_int(rng, 36));
        u = (u & 0x807FFFFFu) | e << 23;
        float xf;
        memcpy(&xf, &u, 4);
        if (fabs(xf) >= maxf)
            continue;
        static const struct { mx_round r; mpfr_rnd_t m; } modes[] = {
            {MX_RNE, MPFR_RNDN}, {MX_RTZ, MPFR_RNDZ}, {MX_RUP, MPFR_RNDU},
            {MX_RDOWN, MPFR_RNDD}};
        for (size_t m = 0; m < 4; m++) {
            mx_encode_opts o = mx_encode_defaults();
            o.round = modes[m].r;
            o.overflow = MX_OVF_SATURATE;
            uint32_t c;
            mx_encode_double(f, xf, &o, &c);
            double got, want;
            spec_decode(s, c, &got);
            /* FN: the grid above max is cut by saturation, below it is IEEE */
            want = oracle_round_d(xf, s->mbits + 1, 1 - s->bias, 30, modes[m].m);
            if (fabs(want) > maxf)
                want = copysign(maxf, want);
            if (want == 0 && s->kind == 'U')
                want = 0.0; /* no -0 */
            EXPECT(got == want && signbit(got) == signbit(want),
                          "%s %s: %a -> %a, MPFR %a", f->name,
                          mx_round_name(o.round), (double)xf, got, want);
        }
    }
    gsl_rng_free(rng);
}
END_TEST

/* ---- FN -> FNUZ --------------------------------------------------------- */

START_TEST(test_fn_to_fnuz_every_pair)
{
    const spec *fn = &specs[0], *uz = &specs[1];
    for (unsigned s = 0; s < 254; s++)
        for (unsigned b = 0; b < 256; b++) {
            uint8_t v = (uint8_t)b, sc = (uint8_t)s, ov = 0xAA, os = 0xAA;
            size_t bad = 999;
            EXPECT1(mx_fn_to_fnuz_mx(&v, 1, &sc, 1, 1, &ov, &os, &bad) == MX_OK);
            double a, c;
            char ca = spec_decode(fn, b, &a), cc = spec_decode(uz, ov, &c);
            ck_assert_uint_eq(os, s + 1);
            ck_assert_uint_eq(ov, b == 0x80 ? 0 : b);
            long first = mx_fnuz_check_preserved(&v, &sc, &ov, &os, 1, 1);
            if (ca == 'q') { /* FN NaN reads as +-240 in FNUZ: not preserved */
                EXPECT1(cc == 'n' && first == 0);
                continue;
            }
            EXPECT(cc != 'q', "byte 0x%02X became the FNUZ NaN", b);
            EXPECT(ldexp(a, (int)s - 127) == ldexp(c, (int)os - 127),
                          "byte 0x%02X scale %u: value changed", b, s);
            ck_assert_int_eq(first, -1);
        }
}
END_TEST

/* The value bytes of long tensors (the 64-byte vector blocks and the byte
 * tail shared by mx_fn_to_fnuz_mx and mx_fn_to_fnuz_pertensor): lengths 32
 * to 608, every byte value, 0x80 at the edges of the first block's 16-byte
 * parts and last, out of place and in place, against the byte rule applied
 * one element at a time. */
START_TEST(test_fn_to_fnuz_long_buffers)
{
    enum { G = 32, NMAX = 64 * 9 + G };
    static uint8_t v[NMAX], ov[NMAX], ip[NMAX], pt[NMAX], sc[NMAX / G], os[NMAX / G];
    for (size_t n = G; n <= NMAX; n += G) {
        /* 37 odd: all 256 bytes in any 256 positions, 0x80 at a position
         * that moves with n across the 16-byte parts of a block */
        for (size_t i = 0; i < n; i++)
            v[i] = (uint8_t)(i * 37 + n / G * 11 + 3);
        v[n - 1] = 0x80;
        for (size_t i = 15; i < n && i < 66; i += 16) /* the parts' edges */
            v[i] = v[i + 1 < n ? i + 1 : i] = 0x80;
        for (size_t g = 0; g < n / G; g++)
            sc[g] = (uint8_t)(100 + g);
        memcpy(ip, v, n);
        size_t bad;
        EXPECT1(mx_fn_to_fnuz_mx(v, n, sc, n / G, G, ov, os, &bad) == MX_OK);
        EXPECT1(mx_fn_to_fnuz_mx(ip, n, sc, n / G, G, ip, os, &bad) == MX_OK);
        float s2;
        EXPECT1(mx_fn_to_fnuz_pertensor(v, n, 0.5f, pt, &s2) == MX_OK && s2 == 1.0f);
        for (size_t i = 0; i < n; i++) {
            uint8_t want = v[i] == 0x80 ? 0x00 : v[i];
            EXPECT(ov[i] == want && ip[i] == want && pt[i] == want,
                   "n %zu byte %zu: 0x%02X -> 0x%02X (in place 0x%02X, per tensor 0x%02X), "
                   "want 0x%02X", n, i, v[i], ov[i], ip[i], pt[i], want);
        }
    }
}
END_TEST

START_TEST(test_fn_to_fnuz_refusals)
{
    uint8_t vals[96], sc[3] = {10, 254, 255}, ov[96], os[3] = {7, 7, 7};
    memset(vals, 0x38, sizeof vals);
    memset(ov, 0x11, sizeof ov);
    size_t bad = 999;
    EXPECT1(mx_fn_to_fnuz_mx(vals, 96, sc, 3, 32, ov, os, &bad) == MX_ERANGE);
    ck_assert_uint_eq(bad, 1);
    EXPECT1(ov[0] == 0x11 && os[0] == 7); /* nothing written */
    sc[1] = 253;
    EXPECT1(mx_fn_to_fnuz_mx(vals, 96, sc, 3, 32, ov, os, &bad) == MX_ERANGE);
    ck_assert_uint_eq(bad, 2);
    sc[2] = 254; /* 254 alone (254 + 1 is the NaN byte) */
    EXPECT1(mx_fn_to_fnuz_mx(vals, 96, sc, 3, 32, ov, os, &bad) == MX_ERANGE);
    ck_assert_uint_eq(bad, 2);
    EXPECT1(ov[0] == 0x11 && os[2] == 7);
    EXPECT1(mx_fn_to_fnuz_mx(vals, 96, sc, 2, 32, ov, os, &bad) == MX_EINVAL);
    EXPECT1(mx_fn_to_fnuz_mx(vals, 95, sc, 3, 32, ov, os, &bad) == MX_EINVAL);
    EXPECT1(mx_fn_to_fnuz_mx(vals, 96, sc, 3, 0, ov, os, &bad) == MX_EINVAL);
    float s2;
    EXPECT1(mx_fn_to_fnuz_pertensor(vals, 96, 0.75f, ov, &s2) == MX_OK);
    EXPECT1(s2 == 1.5f);
    EXPECT1(mx_fn_to_fnuz_pertensor(vals, 96, 3e38f, ov, &s2) == MX_ERANGE);
}
END_TEST

START_TEST(test_fnuz_preservation_finds_first_difference)
{
    uint8_t fv[64], fs[2] = {120, 130}, uv[64], us[2];
    for (int i = 0; i < 64; i++)
        fv[i] = (uint8_t)((i * 7 + 1) % 0x7F); /* no NaN bytes */
    fv[5] = 0x80; /* -0: preserved as +0 */
    size_t bad;
    EXPECT1(mx_fn_to_fnuz_mx(fv, 64, fs, 2, 32, uv, us, &bad) == MX_OK);
    ck_assert_int_eq(mx_fnuz_check_preserved(fv, fs, uv, us, 64, 32), -1);
    uv[40] ^= 1; /* a value byte changed */
    ck_assert_int_eq(mx_fnuz_check_preserved(fv, fs, uv, us, 64, 32), 40);
    uv[40] ^= 1;
    us[0] -= 1; /* a scale not incremented: the whole first group differs */
    ck_assert_int_eq(mx_fnuz_check_preserved(fv, fs, uv, us, 64, 32), 0);
    us[0] += 1;
    fv[50] = 0x7F; /* FN NaN */
    uv[50] = 0x7F;
    ck_assert_int_eq(mx_fnuz_check_preserved(fv, fs, uv, us, 64, 32), 50);
}
END_TEST

static Suite *formats_suite(void)
{
    Suite *s = suite_create("formats");
    TCase *t = tcase_create("decode");
    tcase_add_test(t, test_decode_matches_independent_decoder);
    tcase_add_test(t, test_decode_known_values);
    tcase_add_test(t, test_e8m0_production_decode);
    suite_add_tcase(s, t);
    t = tcase_create("encode");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, test_round_trip_every_code, 0, NSPECS);
    tcase_add_loop_test(t, test_every_midpoint, 0, NSPECS);
    tcase_add_loop_test(t, test_overflow_policy, 0, NSPECS);
    tcase_add_loop_test(t, test_fp8_random_vs_mpfr, 0, NSPECS);
    tcase_add_test(t, test_zero_nan_and_sign);
    tcase_add_test(t, test_acceptance_examples);
    tcase_add_test(t, test_stochastic_rounding);
    tcase_add_test(t, test_invalid_options_refused);
    tcase_add_test(t, test_bf16_fp16_from_fp32_vs_mpfr);
    suite_add_tcase(s, t);
    t = tcase_create("fnuz");
    tcase_add_test(t, test_fn_to_fnuz_every_pair);
    tcase_add_test(t, test_fn_to_fnuz_long_buffers);
    tcase_add_test(t, test_fn_to_fnuz_refusals);
    tcase_add_test(t, test_fnuz_preservation_finds_first_difference);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(formats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
