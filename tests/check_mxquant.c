/* check_mxquant.c -- MX quantization rules, dequantization and layouts.
 *
 * Expected bytes come from hand derivations (each vector says how) and from
 * a second quantizer written here on MPFR: the scale exponent from
 * mpfr_get_exp, the element rounded by MPFR at the element format's
 * precision with mpfr_subnormalize.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "mxref/mxquant.h"
#include "oracle/oracle.h"
#include "testutil.h"

static void quant1(const mx_quant_params *p, const float *x, uint8_t *q,
                   uint8_t *s)
{
    size_t bad;
    ck_assert_int_eq(mx_quantize_f32(p, x, 1, 32, 32, q, s, &bad), MX_OK);
}

START_TEST(test_zero_block)
{
    float x[32] = {0};
    uint8_t q[32], s;
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    quant1(&p, x, q, &s);
    /* amax clamped to 1e-30: 2^-100 <= 1e-30 < 2^-99, so s = -100 + 127 */
    ck_assert_uint_eq(s, 27);
    for (int i = 0; i < 32; i++)
        ck_assert_uint_eq(q[i], 0);
    mx_quant_params o = mx_quant_ocp(MX_E4M3FN);
    quant1(&o, x, q, &s);
    ck_assert_uint_eq(s, 0);
}
END_TEST

START_TEST(test_power_of_two_amax)
{
    float x[32] = {0};
    uint8_t q[32], s;
    x[3] = 4.0f;
    x[4] = -1.0f;
    x[5] = 0x1p-12f; /* 2^-12 / 4 = 2^-14 is below half of 2^-10: flushes */
    x[6] = 0x1.8p-9f; /* 1.5*2^-11 after scaling: above half of 2^-10: 0x01 */
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    quant1(&p, x, q, &s);
    ck_assert_uint_eq(s, 129); /* floor(log2 4) + 127 */
    ck_assert_uint_eq(q[3], 0x40); /* 4/4 = 1.0: FNUZ exponent field 8 */
    ck_assert_uint_eq(q[4], 0xB0); /* -1/4 = -2^-2: sign, field 6 */
    ck_assert_uint_eq(q[5], 0x00);
    ck_assert_uint_eq(q[6], 0x01);
}
END_TEST

START_TEST(test_amax_at_clamp_and_log2_models)
{
    float x[32] = {0};
    uint8_t q[32], s;
    x[0] = 1e-31f;
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    quant1(&p, x, q, &s);
    ck_assert_uint_eq(s, 27); /* amax clamped up to 1e-30 */
    /* 1e-31 * 2^100 = 0.12676...: between 0.125 (0x28) and 0.140625 (0x29),
     * nearer 0.125 */
    ck_assert_uint_eq(q[0], 0x28);
    /* amax just below 2^16: the exact exponent is 15; log2 = 16 - 8.6e-8
     * rounds to 16.0 in FP32 (the float below 16 is 16 - 2^-20) */
    memset(x, 0, sizeof x);
    x[7] = 0x1.fffffep+15f;
    quant1(&p, x, q, &s);
    ck_assert_uint_eq(s, 142);
    /* 0x1.fffffep+0 rounds up to 2.0: exponent field 9 in FNUZ -> 0x48 */
    ck_assert_uint_eq(q[7], 0x48);
    p.log2 = MX_LOG2_FP32;
    quant1(&p, x, q, &s);
    ck_assert_uint_eq(s, 143);
    ck_assert_uint_eq(q[7], 0x40); /* 0x1.fffffep-1 rounds to 1.0 */
}
END_TEST

START_TEST(test_ocp_and_rceil_rules)
{
    float x[32] = {0};
    uint8_t q[32], s;
    x[0] = 1.0f;
    x[1] = 1.9f;
    mx_quant_params o = mx_quant_ocp(MX_E4M3FN);
    quant1(&o, x, q, &s);
    ck_assert_uint_eq(s, 127 - 8); /* floor(log2 1.9) - emax(E4M3FN)=8 */
    ck_assert_uint_eq(q[0], 0x78); /* 256 = 2^8: exponent field 15 */
    ck_assert_uint_eq(q[1], 0x7E); /* 486.4 saturates to 448 */
    /* rceil with 448 on FNUZ elements: amax 448 -> X = 0, 448 > 240 */
    memset(x, 0, sizeof x);
    x[2] = 448.0f;
    x[3] = 100.0f;
    mx_quant_params r = mx_quant_rceil(MX_E4M3FNUZ, 448.0);
    quant1(&r, x, q, &s);
    ck_assert_uint_eq(s, 127);
    ck_assert_uint_eq(q[2], 0x80); /* overflow -> NaN: the hazard */
    /* 100 is the midpoint of 96 (1.100 * 2^6) and 104 (1.101 * 2^6): ties
     * to the even significand, 96 = field 14, mantissa 4 */
    ck_assert_uint_eq(q[3], 0x74);
}
END_TEST

START_TEST(test_random_blocks_vs_mpfr_quantizer)
{
    static const mx_format_id elems[] = {MX_E4M3FNUZ, MX_E4M3FN, MX_E5M2,
                                         MX_E5M2FNUZ};
    mx_format_id elem = elems[_i];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 100 + (unsigned long)_i);
    mx_quant_params p = mx_quant_production(elem);
    for (int blk = 0; blk < 4000; blk++) {
        float x[32];
        int e0 = (int)gsl_rng_uniform_int(rng, 200) - 100;
        for (int i = 0; i < 32; i++) {
            double v = (gsl_rng_uniform(rng) * 2 - 1) *
                       ldexp(1.0, e0 - (int)gsl_rng_uniform_int(rng, 16));
            x[i] = (float)v;
            if (gsl_rng_uniform(rng) < 0.05)
                x[i] = 0;
        }
        uint8_t q[32], s, q2[32], s2;
        quant1(&p, x, q, &s);
        oracle_mx_quant_block(elem, x, q2, &s2);
        EXPECT(s == s2, "%s block %d: scale %u, MPFR quantizer %u",
               mx_format_get(elem)->name, blk, s, s2);
        for (int i = 0; i < 32; i++)
            EXPECT(q[i] == q2[i], "%s block %d elem %d (%a): 0x%02X, MPFR 0x%02X",
                   mx_format_get(elem)->name, blk, i, (double)x[i], q[i], q2[i]);
    }
    gsl_rng_free(rng);
}
END_TEST

START_TEST(test_dequant_and_requant)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    enum { R = 4, K = 128 };
    float x[R * K];
    for (int i = 0; i < R * K; i++)
        x[i] = (float)gsl_ran_gaussian(rng, 1.0);
    uint8_t q[R * K], s[R * K / 32], q2[R * K], s2[R * K / 32];
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    ck_assert_int_eq(mx_quantize_f32(&p, x, R, K, K, q, s, NULL), MX_OK);
    double d[R * K];
    mx_dequant_exact(MX_E4M3FNUZ, MX_E8M0_SPEC, q, s, R, K, d);
    for (int i = 0; i < R * K; i++) {
        double want = mx_decode_double(mx_format_get(MX_E4M3FNUZ), q[i]) *
                      ldexp(1.0, s[i / 32] - 127);
        EXPECT(d[i] == want, "dequant %d", i);
        EXPECT(fabs(d[i] - x[i]) <= ldexp(1.0, s[i / 32] - 127 - 3) * 1.0001 + 1e-300,
               "dequant error too large at %d", i);
        x[i] = (float)d[i];
    }
    /* quantizing the dequantized tensor gives the same bytes */
    ck_assert_int_eq(mx_quantize_f32(&p, x, R, K, K, q2, s2, NULL), MX_OK);
    ck_assert(memcmp(q, q2, sizeof q) == 0 && memcmp(s, s2, sizeof s) == 0);
    /* BF16 fallback weights are exact (E4M3 has 3 mantissa bits) */
    uint16_t b[R * K];
    ck_assert_uint_eq(mx_dequant_bf16(MX_E4M3FNUZ, q, s, R, K, b), 0);
    for (int i = 0; i < R * K; i++)
        EXPECT(mx_bf16_to_float(b[i]) == (float)d[i], "bf16 %d", i);
    gsl_rng_free(rng);
}
END_TEST

/* mx_dequant_bf16 on every (scale byte, code) pair of every 8-bit
 * format, against BF16 RNE of the exact product by mx_encode_rne (no
 * float shortcut; the scale byte 0xFF is NaN), one row of 32 codes per
 * (scale, eighth of the codes);
 * the count of inexact results against the direct count.  Exhaustive: a
 * table entry wrong for one pair fails. */
START_TEST(test_dequant_bf16_exhaustive)
{
    const mx_format *bf = mx_format_get(MX_BF16);
    uint8_t *q = malloc(65536), *s = malloc(2048);
    uint16_t *b = malloc(65536 * sizeof *b);
    ck_assert(q && s && b);
    for (int i = 0; i < 65536; i++)
        q[i] = (uint8_t)(i & 0xFF);
    for (int r = 0; r < 2048; r++)
        s[r] = (uint8_t)(r >> 3); /* rows 8 sc .. 8 sc + 7: scale byte sc */
    int nfmt = 0;
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (f->bits != 8 || !f->is_signed)
            continue;
        nfmt++;
        size_t got = mx_dequant_bf16((mx_format_id)id, q, s, 2048, 32, b), want = 0, bad = 0;
        for (int i = 0; i < 65536; i++) {
            /* E8M0: 2^(s - 127), and 0xFF is NaN (OCP MX) */
            double v = mx_decode_double(f, q[i]) *
                       (s[i / 32] == 0xFF ? NAN : ldexp(1.0, (int)s[i / 32] - 127));
            uint16_t w = (uint16_t)mx_encode_rne(bf, v);
            want += !isnan(v) && (double)mx_bf16_to_float(w) != v;
            bad += isnan(v) ? !isnan(mx_bf16_to_float(b[i])) : b[i] != w;
        }
        EXPECT(bad == 0, "%s: %zu of 65536 BF16 codes differ", f->name, bad);
        EXPECT(got == want, "%s: %zu inexact counted, %zu expected", f->name, got, want);
    }
    ck_assert_int_ge(nfmt, 2);
    free(q);
    free(s);
    free(b);
}
END_TEST

START_TEST(test_layouts)
{
    enum { E = 3, N = 5, G = 4 };
    uint8_t rows[E * N * G], packed[E * G * N], back[E * N * G];
    for (int i = 0; i < E * N * G; i++)
        rows[i] = (uint8_t)(i * 7 + 3);
    mx_scales_pack(rows, E, N, G, packed);
    /* element (e=2, n=3, g=1): rows index (2*5+3)*4+1, packed (2*4+1)*5+3 */
    ck_assert_uint_eq(packed[(2 * 4 + 1) * 5 + 3], rows[(2 * 5 + 3) * 4 + 1]);
    mx_scales_unpack(packed, E, N, G, back);
    ck_assert(memcmp(rows, back, sizeof rows) == 0);
}
END_TEST

START_TEST(test_bad_inputs_refused)
{
    float x[64] = {0};
    uint8_t q[64], s[2];
    size_t bad = 0;
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    x[40] = NAN;
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 64, 64, q, s, &bad), MX_ERANGE);
    ck_assert_uint_eq(bad, 40);
    x[40] = INFINITY;
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 64, 64, q, s, &bad), MX_ERANGE);
    x[40] = 0;
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 48, 48, q, s, &bad), MX_EINVAL);
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 64, 32, q, s, &bad), MX_EINVAL);
    p.elem = MX_E8M0;
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 64, 64, q, s, &bad), MX_EINVAL);
    p.elem = MX_BF16;
    ck_assert_int_eq(mx_quantize_f32(&p, x, 1, 64, 64, q, s, &bad), MX_EINVAL);
    mx_quant_params o = mx_quant_production(MX_E4M3FNUZ);
    uint8_t sc;
    ck_assert_int_eq(mx_quant_scale(&o, -1.0f, &sc), MX_EINVAL);
    ck_assert_int_eq(mx_quant_scale(&o, INFINITY, &sc), MX_EINVAL);
    mx_scale_rule r;
    ck_assert_int_eq(mx_scale_rule_by_name("floor", &r), -1);
    ck_assert_int_eq(mx_scale_rule_by_name("rceil", &r), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mxquant");
    TCase *t = tcase_create("rules");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_zero_block);
    tcase_add_test(t, test_power_of_two_amax);
    tcase_add_test(t, test_amax_at_clamp_and_log2_models);
    tcase_add_test(t, test_ocp_and_rceil_rules);
    tcase_add_loop_test(t, test_random_blocks_vs_mpfr_quantizer, 0, 4);
    tcase_add_test(t, test_dequant_and_requant);
    tcase_add_test(t, test_dequant_bf16_exhaustive);
    tcase_add_test(t, test_layouts);
    tcase_add_test(t, test_bad_inputs_refused);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
