/* check_scalepairs.c -- every E8M0 scale byte pair (sa, sb) in 0..254 x
 * 0..254, under both decodes, through the GEMM reference, the judge and the
 * CPU kernel emulation (docs/bounds.md, "Scale products").
 *
 * One GEMM of 255 x 255 elements, K = 64: row m of A carries scale byte m in
 * group 0, column n of B scale byte n; group 1 has scale bytes 127 (scale
 * 1) and small values.  Group 0's FP8 values include 240 x 240 products (the
 * partial reaches 2^17), so the pairs cover: scale products that underflow
 * FP32 (below 2^-149), that are FP32 subnormals, normal ones, ones whose
 * product with the partial overflows FP32, and scale products that are
 * themselves inf (exponent sum past 127); every 7th row has an all-zero
 * group 0 (0 * inf = NaN in production arithmetic).
 *
 * Oracles, independent of the code under test:
 *   exact   each element's sum in MPFR at 2000 bits (exact), rounded once
 *           to binary64;
 *   model   production's FP32 arithmetic written out here with fmaf and
 *           the decode as a bit pattern (s << 23, or 2^(s-127)).
 * Checks, for every pair and both decodes: reference exact and model equal
 * the oracles bit for bit; the CPU kernel's output equals the model; the
 * model's output passes the judge, and its class is "bound" (|model - exact|
 * <= B with B finite) or "model-special" exactly where the oracle's model is
 * inf or NaN -- never an element without a rule; a wrong output (NaN where
 * the model is not NaN, 0 where it is) fails every element.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <mpfr.h>
#include "mxref/gemm.h"
#include "judge.h"
#include "cpu.h"
#include "testutil.h"

#define NS 255 /* scale bytes 0..254 */
#define KK 64

static uint8_t A[NS * KK], B[NS * KK], SA[NS * 2], SB[NS * 2];

static void build(void)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    /* group 0 values: large, small, subnormal, mixed signs */
    static const double ga[8] = {240, -240, 1.5, 0x1p-10, -3.0, 0.375, 96, -0x1p-7};
    static const double gb[8] = {240, 224, -0.75, 0x1p-10, 2.5, -0x1.cp-8, 160, 1};
    for (int r = 0; r < NS; r++) {
        for (int k = 0; k < 32; k++) {
            double va = r % 7 == 0 ? 0 : ga[(k + r) % 8] * (k % 3 == 2 ? 0.5 : 1);
            double vb = gb[(k * 3 + r) % 8];
            A[r * KK + k] = (uint8_t)mx_encode_rne(f, va);
            B[r * KK + k] = (uint8_t)mx_encode_rne(f, vb);
        }
        for (int k = 32; k < KK; k++) {
            A[r * KK + k] = (uint8_t)mx_encode_rne(f, (k % 5) * 0.25 - 0.5);
            B[r * KK + k] = (uint8_t)mx_encode_rne(f, (k % 3) * 0.5 + 0.125);
        }
        SA[r * 2] = SB[r * 2] = (uint8_t)r;
        SA[r * 2 + 1] = SB[r * 2 + 1] = 127;
    }
}

/* decode as production (byte as FP32 exponent field) or spec */
static float dec(uint8_t s, int spec)
{
    if (spec)
        return ldexpf(1.0f, (int)s - 127); /* 2^-127 for 0: a subnormal */
    uint32_t u = (uint32_t)s << 23;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static float oracle_model(int m, int n, int spec, int seq)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    float acc = 0;
    if (seq == 2) { /* dequant-fp32: dequantize in FP32, one fma chain */
        for (int k = 0; k < KK; k++) {
            float a = (float)mx_decode_double(f, A[m * KK + k]) * dec(SA[m * 2 + k / 32], spec);
            float b = (float)mx_decode_double(f, B[n * KK + k]) * dec(SB[n * 2 + k / 32], spec);
            acc = fmaf(a, b, acc);
        }
        return acc;
    }
    for (int g = 0; g < 2; g++) {
        float p = 0;
        if (seq) {
            for (int k = 32 * g; k < 32 * g + 32; k++)
                p = fmaf((float)mx_decode_double(f, A[m * KK + k]),
                         (float)mx_decode_double(f, B[n * KK + k]), p);
        } else { /* fp32-group: the exact dot (exact in binary64), rounded */
            double d = 0;
            for (int k = 32 * g; k < 32 * g + 32; k++)
                d += mx_decode_double(f, A[m * KK + k]) * mx_decode_double(f, B[n * KK + k]);
            p = (float)d;
        }
        float sc = dec(SA[m * 2 + g], spec) * dec(SB[n * 2 + g], spec);
        float t = p * sc;
        acc = acc + t;
    }
    return acc;
}

static double oracle_exact(int m, int n, int spec, mpfr_t sum, mpfr_t t)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    mpfr_set_zero(sum, 1);
    for (int g = 0; g < 2; g++) {
        uint8_t sa = SA[m * 2 + g], sb = SB[n * 2 + g];
        if (!spec && (sa == 0 || sb == 0))
            continue; /* production: byte 0 is +0 */
        for (int k = 32 * g; k < 32 * g + 32; k++) {
            mpfr_set_d(t, mx_decode_double(f, A[m * KK + k]), MPFR_RNDN);
            mpfr_mul_d(t, t, mx_decode_double(f, B[n * KK + k]), MPFR_RNDN);
            mpfr_mul_2si(t, t, (long)sa + sb - 254, MPFR_RNDN);
            mpfr_add(sum, sum, t, MPFR_RNDN); /* exact at 2000 bits */
        }
    }
    return mpfr_get_d(sum, MPFR_RNDN);
}

static void run(int spec, const char *model)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    size_t MN = (size_t)NS * NS;
    mx_operand Ao = {f, A, NS, KK, KK, SA, 2, 1, NULL}, Bo = {f, B, NS, KK, KK, SB, 2, 1, NULL};
    mx_gemm_spec s = {spec ? MX_E8M0_SPEC : MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
    ck_assert_int_eq(mx_accum_parse(model, &s.model), 0);
    int seq = strcmp(model, "fp32-seq") == 0 ? 1 : strcmp(model, "dequant-fp32") == 0 ? 2 : 0;
    double *ex = malloc(MN * 8), *bd = malloc(MN * 8);
    float *ma = malloc(MN * 4);
    uint16_t *mo = malloc(MN * 2), *wrong = malloc(MN * 2), *ko = malloc(MN * 2);
    mx_gemm_out o = {ex, ma, mo, bd, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&s, &Ao, &Bo, &o, NULL), MX_OK);
    mpfr_t sum, t;
    mpfr_init2(sum, 2000);
    mpfr_init2(t, 64);
    size_t special = 0, underflow_pairs = 0, overflow_pairs = 0;
    for (int m = 0; m < NS; m++)
        for (int n = 0; n < NS; n++) {
            size_t i = (size_t)m * NS + n;
            double e = oracle_exact(m, n, spec, sum, t);
            EXPECT(memcmp(&e, &ex[i], 8) == 0, "%s %s (%d,%d): exact %a, MPFR %a",
                   spec ? "spec" : "production", model, m, n, ex[i], e);
            float want = oracle_model(m, n, spec, seq);
            EXPECT(memcmp(&want, &ma[i], 4) == 0 || (isnan(want) && isnan(ma[i])),
                   "%s %s (%d,%d): model %a, oracle %a", spec ? "spec" : "production",
                   model, m, n, (double)ma[i], (double)want);
            special += !isfinite(want);
            int es = m + n - 254;
            underflow_pairs += es < -149;
            overflow_pairs += es > 127;
            wrong[i] = isnan(want) ? 0x0000 : 0x7FC0;
        }
    mpfr_clears(sum, t, (mpfr_ptr)0);
    mxv_judge j;
    mxv_judge_bf16(&j, "pairs", mo, mo, ex, bd, MN, NS);
    EXPECT(mxv_judge_pass(&j), "%s %s: the model's own output fails the judge "
           "(%zu outside)", spec ? "spec" : "production", model, j.outside);
    ck_assert_uint_eq(j.cls_model_special, special);
    ck_assert_uint_eq(j.cls_bound + j.cls_ovf_edge + j.cls_model_special +
                          j.cls_bound_inf, MN);
    ck_assert_uint_eq(j.cls_exact_special, 0);
    size_t binf = j.cls_bound_inf;
    mxv_judge_bf16(&j, "pairs", wrong, mo, ex, bd, MN, NS);
    ck_assert_uint_eq(j.outside, MN);
    printf("scalepairs: %-10s decode, %-12s %zu pairs: %zu model inf/NaN "
           " + %zu FP32-overflow-possible (judged bit for bit), %zu within "
           "the bound; scale products below 2^-149: %zu, above 2^127: %zu\n",
           spec ? "spec" : "production", model, MN, special, binf,
           MN - special - binf, underflow_pairs, overflow_pairs);
    ck_assert_uint_gt(special, seq == 2 ? 100 : 1000);
    if (seq == 1) { /* the CPU kernel emulation computes what the model does */
        int32_t sorted[NS], eids[NS / 15];
        for (int r = 0; r < NS; r++)
            sorted[r] = r;
        for (int b = 0; b < NS / 15; b++)
            eids[b] = 0;
        mxk_mxfp8_gemm_args ka;
        memset(&ka, 0, sizeof ka);
        ka.r.sorted_ids = sorted;
        ka.r.expert_ids = eids;
        ka.r.num_post_pad = NS;
        ka.r.block_m = 15;
        ka.r.tokens = NS;
        ka.r.topk = 1;
        ka.r.a_per_token = 1;
        ka.a = A;
        ka.a_scale = SA;
        ka.b = B;
        ka.b_scale = SB;
        ka.experts = 1;
        ka.n = NS;
        ka.k = KK;
        ka.fmt = MXK_FP8_E4M3FNUZ;
        ka.e8m0 = spec ? MXK_E8M0_SPEC : MXK_E8M0_PRODUCTION;
        ka.path = MXK_PATH_PORTABLE;
        ka.out = ko;
        ck_assert_int_eq(mxk_cpu_mxfp8_group_gemm(&ka), MXK_OK);
        for (size_t i = 0; i < MN; i++)
            /* NaN: the kernels store the positive quiet NaN (its sign is
             * not portable); the judge takes any NaN for a NaN model */
            EXPECT(ko[i] == mo[i] || ((ko[i] & 0x7fff) > 0x7f80 && (mo[i] & 0x7fff) > 0x7f80),
                   "kernel emulation (%zu,%zu): %04x, model %04x",
                   i / NS, i % NS, ko[i], mo[i]);
    }
    free(ex);
    free(bd);
    free(ma);
    free(mo);
    free(wrong);
    free(ko);
}

START_TEST(test_pairs_production_seq) { run(0, "fp32-seq"); }
END_TEST
START_TEST(test_pairs_spec_seq) { run(1, "fp32-seq"); }
END_TEST
START_TEST(test_pairs_production_group) { run(0, "fp32-group"); }
END_TEST
START_TEST(test_pairs_spec_group) { run(1, "fp32-group"); }
END_TEST
START_TEST(test_pairs_production_dequant) { run(0, "dequant-fp32"); }
END_TEST
START_TEST(test_pairs_spec_dequant) { run(1, "dequant-fp32"); }
END_TEST

int main(void)
{
    build();
    Suite *s = suite_create("scalepairs");
    TCase *t = tcase_create("pairs");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, test_pairs_production_seq);
    tcase_add_test(t, test_pairs_spec_seq);
    tcase_add_test(t, test_pairs_production_group);
    tcase_add_test(t, test_pairs_spec_group);
    tcase_add_test(t, test_pairs_production_dequant);
    tcase_add_test(t, test_pairs_spec_dequant);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
