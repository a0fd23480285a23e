/* check_kernels_numerics.c -- the scalar arithmetic every kernel shares
 * (kernels/mxk_numerics.h), checked against independent derivations:
 *  - FP8 encode/decode, BF16 rounding and E8M0 decodes against mxref's
 *    format layer (its own table and round-and-pack routine): every BF16
 *    input at many scalings, random FP32 inputs, every FP8 midpoint and
 *    its neighbours;
 *  - the MX scale rule against floor(log2) from MPFR's exponent;
 *  - mxk_expf and mxk_sigmoidf against MPFR at 128 bits, on every FP32
 *    argument the SwiGLU can produce from a BF16 gate (t = 1.702f * gate,
 *    gate <= 7) and on random arguments over the whole finite range; the
 *    measured maxima are asserted (MXK_EXP_MAX_ULP, MXK_SIGMOID_MAX_ULP),
 *    and docs/kernels.md quotes them.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include <mpfr.h>
#include "testutil.h"
#include "mxref/format.h"
#include "mxk_numerics.h"

/* Bounds asserted below, from the exhaustive scan in docs/kernels.md. */
#define MXK_EXP_MAX_ULP 1.0
#define MXK_SIGMOID_MAX_ULP 2.5

static const mx_format *fp8fmt(int fnuz)
{
    return mx_format_get(fnuz ? MX_E4M3FNUZ : MX_E4M3FN);
}

/* mxref's RNE encoding of x * 2^sh (exact in binary64 for every input
 * used here), default overflow: NaN in FN and FNUZ. */
static uint8_t ref_encode(float x, int sh, int fnuz)
{
    mx_encode_opts o = mx_encode_defaults();
    uint32_t code = 0;
    double v = ldexp((double)x, sh);
    EXPECT1(mx_encode_double(fp8fmt(fnuz), v, &o, &code) == MX_OK);
    return (uint8_t)code;
}

START_TEST(test_fp8_decode_all)
{
    for (int fnuz = 0; fnuz < 2; fnuz++)
        for (int b = 0; b < 256; b++) {
            double want = mx_decode_double(fp8fmt(fnuz), (uint32_t)b);
            float got = mxk_fp8_decode((uint8_t)b, fnuz);
            if (isnan(want))
                EXPECT(isnan(got), "fnuz=%d 0x%02x: got %a, want NaN", fnuz, b,
                       got);
            else
                EXPECT((double)got == want && !signbit(got) == !signbit(want),
                       "fnuz=%d 0x%02x: got %a, want %a", fnuz, b, got, want);
        }
}
END_TEST

START_TEST(test_fp8_encode_bf16_scaled)
{
    static const int shs[] = {-140, -128, -127, -100, -20, -10, -5, -1, 0,
                              1,    5,    10,   20,   100, 127, 140};
    for (int fnuz = 0; fnuz < 2; fnuz++)
        for (size_t i = 0; i < sizeof shs / sizeof shs[0]; i++)
            for (uint32_t h = 0; h < 65536; h++) {
                float x = mx_bf16_to_float((uint16_t)h);
                uint8_t got = mxk_fp8_encode(x, shs[i], fnuz);
                uint8_t want = ref_encode(x, shs[i], fnuz);
                EXPECT(got == want, "fnuz=%d bf16 0x%04x * 2^%d: got 0x%02x, "
                       "want 0x%02x", fnuz, h, shs[i], got, want);
            }
}
END_TEST

START_TEST(test_fp8_encode_fp32_random)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    for (int i = 0; i < 1 << 20; i++) {
        uint32_t u = (uint32_t)gsl_rng_get(r);
        int sh = (int)gsl_rng_uniform_int(r, 61) - 30;
        int fnuz = i & 1;
        float x = mxk_u2f(u);
        /* keep x * 2^sh within binary64 exactness: always true here */
        uint8_t got = mxk_fp8_encode(x, sh, fnuz);
        uint8_t want = ref_encode(x, sh, fnuz);
        EXPECT(got == want, "fnuz=%d 0x%08x (%a) * 2^%d: got 0x%02x, want "
               "0x%02x", fnuz, u, x, sh, got, want);
    }
    gsl_rng_free(r);
}
END_TEST

/* Every midpoint between neighbouring positive FP8 values (and past the
 * largest), exactly and one FP32 ulp either side, both signs. */
START_TEST(test_fp8_encode_midpoints)
{
    for (int fnuz = 0; fnuz < 2; fnuz++) {
        int top = fnuz ? 0x7f : 0x7e;
        for (int c = 0; c <= top; c++) {
            double lo = mx_decode_double(fp8fmt(fnuz), (uint32_t)c);
            double hi = c < top ? mx_decode_double(fp8fmt(fnuz), (uint32_t)c + 1)
                                : 2 * lo - mx_decode_double(fp8fmt(fnuz),
                                                            (uint32_t)c - 1);
            float mid = (float)((lo + hi) / 2); /* exact: 5 bits */
            float xs[3] = {nextafterf(mid, 0.0f), mid, nextafterf(mid, 1e9f)};
            for (int j = 0; j < 3; j++)
                for (int sg = 0; sg < 2; sg++) {
                    float x = sg ? -xs[j] : xs[j];
                    uint8_t got = mxk_fp8_encode(x, 0, fnuz);
                    uint8_t want = ref_encode(x, 0, fnuz);
                    EXPECT(got == want, "fnuz=%d x=%a: got 0x%02x, want 0x%02x",
                           fnuz, x, got, want);
                }
        }
    }
}
END_TEST

START_TEST(test_bf16_rounding)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    for (int i = 0; i < 1 << 20; i++) {
        uint32_t u = i < 65536 ? ((uint32_t)i << 16) | 0x8000u /* ties */
                               : (uint32_t)gsl_rng_get(r);
        float x = mxk_u2f(u);
        uint16_t want = isnan(x) ? 0x7fc0 : mx_bf16_from_float(x);
        EXPECT(mxk_f32_to_bf16(x) == want, "0x%08x: got 0x%04x, want 0x%04x",
               u, mxk_f32_to_bf16(x), want);
        if (isnan(x))
            EXPECT(mxk_f32_to_bf16_trunc(x) == 0x7fc0, "trunc NaN 0x%08x", u);
        /* truncation: toward zero, from MPFR at BF16 precision */
        if (!isfinite(x) || fabsf(x) < 0x1p-126f)
            continue;
        mpfr_t m;
        mpfr_init2(m, 8);
        mpfr_set_flt(m, x, MPFR_RNDZ);
        float wantz = mpfr_get_flt(m, MPFR_RNDN);
        mpfr_clear(m);
        EXPECT(mxk_bf16_to_f32(mxk_f32_to_bf16_trunc(x)) == wantz,
               "trunc 0x%08x: got 0x%04x", u, mxk_f32_to_bf16_trunc(x));
    }
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_e8m0_decodes)
{
    for (int s = 0; s < 256; s++) {
        double p = mx_e8m0_decode_production((uint8_t)s);
        double sp = mx_e8m0_decode_spec((uint8_t)s);
        float gp = mxk_e8m0_decode((uint8_t)s, 0);
        float gs = mxk_e8m0_decode((uint8_t)s, 1);
        EXPECT((double)gp == p, "production %d: got %a want %a", s, gp, p);
        if (isnan(sp))
            EXPECT(isnan(gs), "spec %d: got %a want NaN", s, gs);
        else
            EXPECT((double)gs == sp, "spec %d: got %a want %a", s, gs, sp);
    }
}
END_TEST

/* s = clamp(floor(log2 max(amax, 1e-30f)) + 127, 0, 254) with floor(log2)
 * from MPFR's exponent; ceil likewise. */
START_TEST(test_mx_scale_rule)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 99);
    mpfr_t m;
    mpfr_init2(m, 64);
    for (int i = 0; i < 1 << 18; i++) {
        float a = i < 4 ? (float[]){0.0f, 1e-30f, INFINITY, 0x1p-149f}[i]
                        : mxk_u2f((uint32_t)gsl_rng_get(r) & 0x7fffffffu);
        if (isnan(a))
            continue;
        float c = a > 1e-30f ? a : 1e-30f;
        int fl, ce;
        if (isinf(c)) {
            fl = ce = 1000;
        } else {
            mpfr_set_flt(m, c, MPFR_RNDN);
            fl = (int)mpfr_get_exp(m) - 1; /* c = f * 2^exp, f in [1/2, 1) */
            ce = mpfr_cmp_si_2exp(m, 1, fl) == 0 ? fl : fl + 1;
        }
        int want = fl + 127 < 0 ? 0 : fl + 127 > 254 ? 254 : fl + 127;
        int wantc = ce + 127 < 0 ? 0 : ce + 127 > 254 ? 254 : ce + 127;
        EXPECT(mxk_mx_scale(a, 0) == want, "amax %a: s %d, want %d", a,
               mxk_mx_scale(a, 0), want);
        EXPECT(mxk_mx_scale(a, 1) == wantc, "amax %a: ceil s %d, want %d", a,
               mxk_mx_scale(a, 1), wantc);
    }
    mpfr_clear(m);
    gsl_rng_free(r);
}
END_TEST

/* |got - f(x)| in units of the last place of f(x) in FP32 (for normal
 * f(x); f computed by MPFR at 128 bits). */
static double ulp_err(float got, const mpfr_t exact)
{
    mpfr_t d;
    mpfr_init2(d, 128);
    mpfr_sub_d(d, exact, (double)got, MPFR_RNDN);
    mpfr_abs(d, d, MPFR_RNDN);
    mpfr_mul_2si(d, d, 24 - mpfr_get_exp(exact), MPFR_RNDN);
    double e = mpfr_get_d(d, MPFR_RNDN);
    mpfr_clear(d);
    return e;
}

typedef struct {
    double exp_max, sig_max;
    float exp_at, sig_at;
    long n;
} acc_stats;

static void measure(float x, acc_stats *st)
{
    mpfr_t e, s;
    mpfr_inits2(128, e, s, (mpfr_ptr)0);
    mpfr_set_flt(e, x, MPFR_RNDN);
    mpfr_exp(e, e, MPFR_RNDN);
    if (mpfr_cmp_d(e, 0x1p-126) >= 0 && mpfr_cmp_d(e, 0x1.fffffep127) <= 0) {
        double u = ulp_err(mxk_expf(x), e);
        if (u > st->exp_max)
            st->exp_max = u, st->exp_at = x;
    }
    /* sigmoid(x) = 1 / (1 + e^-x) */
    mpfr_set_flt(s, -x, MPFR_RNDN);
    mpfr_exp(s, s, MPFR_RNDN);
    mpfr_add_ui(s, s, 1, MPFR_RNDN);
    mpfr_ui_div(s, 1, s, MPFR_RNDN);
    if (mpfr_cmp_d(s, 0x1p-126) >= 0) {
        double u = ulp_err(mxk_sigmoidf(x), s);
        if (u > st->sig_max)
            st->sig_max = u, st->sig_at = x;
    }
    st->n++;
    mpfr_clears(e, s, (mpfr_ptr)0);
}

START_TEST(test_sigmoid_swiglu_arguments)
{
    acc_stats st = {0};
    for (uint32_t h = 0; h < 65536; h++) {
        float g = mx_bf16_to_float((uint16_t)h);
        if (!isfinite(g) || g > 7.0f)
            continue;
        measure(MXK_MUL(1.702f, g), &st);
    }
    printf("sigmoid over %ld SwiGLU arguments: max %.3f ulp at %a; exp max "
           "%.3f ulp at %a\n",
           st.n, st.sig_max, st.sig_at, st.exp_max, st.exp_at);
    ck_assert_msg(st.sig_max <= MXK_SIGMOID_MAX_ULP, "sigmoid %.3f ulp at %a",
                  st.sig_max, st.sig_at);
    ck_assert_msg(st.exp_max <= MXK_EXP_MAX_ULP, "exp %.3f ulp at %a",
                  st.exp_max, st.exp_at);
}
END_TEST

START_TEST(test_exp_random)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2718);
    acc_stats st = {0};
    for (int i = 0; i < 200000; i++) {
        float x = (float)(-104.0 + 193.0 * gsl_rng_uniform(r));
        if (i % 2) /* small arguments, where most of the exponent range is */
            x = mxk_u2f(((uint32_t)gsl_rng_get(r) & 0x807fffffu) |
                        ((uint32_t)(100 + gsl_rng_uniform_int(r, 34)) << 23));
        measure(x, &st);
    }
    printf("random arguments: exp max %.3f ulp at %a, sigmoid max %.3f ulp at "
           "%a\n",
           st.exp_max, st.exp_at, st.sig_max, st.sig_at);
    ck_assert_msg(st.exp_max <= MXK_EXP_MAX_ULP, "exp %.3f ulp at %a",
                  st.exp_max, st.exp_at);
    ck_assert_msg(st.sig_max <= MXK_SIGMOID_MAX_ULP, "sigmoid %.3f ulp at %a",
                  st.sig_max, st.sig_at);
    /* special values */
    ck_assert(isnan(mxk_expf(NAN)) && isnan(mxk_sigmoidf(NAN)));
    ck_assert(mxk_expf(INFINITY) == INFINITY && mxk_expf(-INFINITY) == 0.0f);
    ck_assert(mxk_expf(89.0f) == INFINITY && mxk_expf(-105.0f) == 0.0f);
    ck_assert(mxk_expf(0.0f) == 1.0f && mxk_sigmoidf(0.0f) == 0.5f);
    ck_assert(mxk_sigmoidf(-200.0f) == 0.0f && mxk_sigmoidf(200.0f) == 1.0f);
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_swiglu_clamps)
{
    /* gate clamps at 7, up at [-7, 7]; NaN stays NaN */
    float big = mxk_swiglu(100.0f, 100.0f, 0);
    float at7 = mxk_swiglu(7.0f, 7.0f, 0);
    ck_assert(big == at7);
    ck_assert(mxk_swiglu(1.0f, -100.0f, 0) == mxk_swiglu(1.0f, -7.0f, 0));
    ck_assert(mxk_swiglu(100.0f, 1.0f, MXK_MUT_NO_GATE_CLAMP) !=
              mxk_swiglu(100.0f, 1.0f, 0));
    ck_assert(mxk_swiglu(1.0f, 100.0f, MXK_MUT_NO_UP_CLAMP) !=
              mxk_swiglu(1.0f, 100.0f, 0));
    ck_assert(isnan(mxk_swiglu(NAN, 1.0f, 0)) && isnan(mxk_swiglu(1.0f, NAN, 0)));
    /* 7 * sigmoid(11.914) * 8, from MPFR */
    mpfr_t v;
    mpfr_init2(v, 128);
    mpfr_set_flt(v, -MXK_MUL(1.702f, 7.0f), MPFR_RNDN);
    mpfr_exp(v, v, MPFR_RNDN);
    mpfr_add_ui(v, v, 1, MPFR_RNDN);
    mpfr_ui_div(v, 56, v, MPFR_RNDN);
    ck_assert_msg(ulp_err(at7, v) <= MXK_SIGMOID_MAX_ULP + 1.5, "%a", at7);
    mpfr_clear(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernel numerics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fp8_decode_all);
    tcase_add_test(tc, test_fp8_encode_bf16_scaled);
    tcase_add_test(tc, test_fp8_encode_fp32_random);
    tcase_add_test(tc, test_fp8_encode_midpoints);
    tcase_add_test(tc, test_bf16_rounding);
    tcase_add_test(tc, test_e8m0_decodes);
    tcase_add_test(tc, test_mx_scale_rule);
    tcase_add_test(tc, test_sigmoid_swiglu_arguments);
    tcase_add_test(tc, test_exp_random);
    tcase_add_test(tc, test_swiglu_clamps);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
