/* check_moe_bounds.c -- the SwiGLU, moe_sum and router bounds of the MoE
 * reference (docs/bounds.md) against MPFR on worst-case inputs: clamp edges,
 * sigmoid underflow, cancellation, subnormals.
 *
 * Each bound claims to cover every correct FP32 (or BF16) evaluation, so
 * the test evaluates adversarially -- every rounding choice the claim
 * allows that is easy to enumerate -- and compares with the exact value
 * from MPFR at 256 bits.  The bounds must hold everywhere and must not be
 * vacuous (some evaluation comes within a factor 4 of each).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpfr.h>
#include "mxref/casegen.h"
#include "mxref/moe.h"
#include "testutil.h"

static uint16_t bf(double v) { return (uint16_t)mx_bf16_from_float((float)v); }
static double fb(uint16_t b) { return (double)mx_bf16_to_float(b); }

/* act = g sigmoid(alpha g) (u + 1) in MPFR, g and u clamped, alpha the FP32
 * 1.702, from BF16 inputs. */
static double swiglu_mpfr(double g, double up)
{
    g = g < 7 ? g : 7;
    up = up < -7 ? -7 : up > 7 ? 7 : up;
    mpfr_t z, s, a;
    mpfr_inits2(256, z, s, a, (mpfr_ptr)0);
    mpfr_set_flt(z, 1.702f, MPFR_RNDN);
    mpfr_mul_d(z, z, g, MPFR_RNDN);
    mpfr_neg(s, z, MPFR_RNDN);
    mpfr_exp(s, s, MPFR_RNDN);
    mpfr_add_ui(s, s, 1, MPFR_RNDN);
    mpfr_ui_div(s, 1, s, MPFR_RNDN);
    mpfr_mul_d(a, s, g, MPFR_RNDN);
    mpfr_mul_d(a, a, up + 1.0, MPFR_RNDN); /* up + 1 exact in binary64 */
    double r = mpfr_get_d(a, MPFR_RNDN);
    mpfr_clears(z, s, a, (mpfr_ptr)0);
    return r;
}

/* RN32(sigmoid(z)) for an FP32 z, through MPFR. */
static float sigmoid_rn32(float z)
{
    mpfr_t s;
    mpfr_init2(s, 256);
    mpfr_set_flt(s, -z, MPFR_RNDN);
    mpfr_exp(s, s, MPFR_RNDN);
    mpfr_add_ui(s, s, 1, MPFR_RNDN);
    mpfr_ui_div(s, 1, s, MPFR_RNDN);
    float r = mpfr_get_flt(s, MPFR_RNDN);
    mpfr_clear(s);
    return r;
}

START_TEST(test_swiglu_bound_worst_cases)
{
    mx_moe_shape sh;
    mx_moe_shape_by_name("custom:128,64,8", &sh);
    /* gates: clamp edge, just below/above it, ordinary, sigmoid deep in
     * underflow, subnormal; ups: clamp edges, -1 (act 0), near -1
     * (cancellation in u + 1), tiny (u + 1 rounds in FP32) */
    static const double gates[] = {7, 6.96875, 7.0625, 1e4, 1.0, -1.0, 2.5, -2.5,
                                   0x1p-130, -0x1p-133, 0x1p-126, -20, -50, -51.25,
                                   -60, -87, -88, -89, -100, -1e4, -3e38, 3e38};
    static const double ups[] = {7, -7, 7.0625, -7.0625, -1, -0.99609375,
                                 -1.0078125, 0x1p-100, -0x1p-30, 0, 3.5, -6.5};
    const size_t ng = sizeof gates / sizeof gates[0], nu = sizeof ups / sizeof ups[0];
    double worst = 0, worst_normal = 0;
    size_t evals = 0;
    for (size_t i = 0; i < ng; i++)
        for (size_t j = 0; j < nu; j++) {
            uint16_t g1[2] = {bf(gates[i]), bf(ups[j])};
            double act, bound;
            mx_swiglu_exact(&sh, g1, 1, 1, 4, &act, &bound);
            double gv = fb(g1[0]), uv = fb(g1[1]);
            double ex = swiglu_mpfr(gv, uv);
            /* the binary64 act within 2^-50 relative of the real value */
            EXPECT(fabs(act - ex) <= 0x1p-50 * fabs(ex) + 0x1p-1074,
                   "act(%a, %a) = %a, MPFR %a", gv, uv, act, ex);
            /* FP32 evaluations: z rounded; sigmoid RN32 moved by up to 3
             * ulps each way (within 4 ulps of the real sigmoid) where it is
             * an FP32 normal, else any of 0, RN32, 2^-125 (exp(-z) may
             * overflow, the quotient be subnormal) */
            float g = (float)(gv < 7 ? gv : 7);
            float u = (float)(uv < -7 ? -7 : uv > 7 ? 7 : uv);
            float z = 1.702f * g;
            float s0 = sigmoid_rn32(z);
            float cand[9];
            int nc = 0;
            if ((double)s0 < 0x1p-126) {
                cand[nc++] = 0;
                cand[nc++] = s0;
                cand[nc++] = 0x1p-125f;
            }
            if ((double)s0 >= 0x1p-126) {
                float lo = s0, hi = s0;
                cand[nc++] = s0;
                for (int st = 0; st < 3; st++) {
                    lo = nextafterf(lo, 0);
                    hi = nextafterf(hi, 2);
                    cand[nc++] = lo;
                    cand[nc++] = hi;
                }
            }
            for (int c = 0; c < nc; c++) {
                if (cand[c] > 1)
                    continue;
                float t = g * cand[c];
                float v = u + 1.0f;
                float a32 = t * v;
                double err = fabs((double)a32 - ex);
                EXPECT(err <= bound, "swiglu(%a, %a), sigmoid %a: |%a - %a| = %a > "
                       "bound %a", gv, uv, (double)cand[c], (double)a32, ex, err, bound);
                if (bound > 0 && err / bound > worst)
                    worst = err / bound;
                if ((double)s0 >= 0x1p-126 && bound > 0 && err / bound > worst_normal)
                    worst_normal = err / bound;
                evals++;
            }
        }
    printf("moe bounds: SwiGLU: %zu adversarial FP32 evaluations, max |a32 - act| "
           "/ bound = %.4f (%.4f where the sigmoid is an FP32 normal)\n", evals,
           worst, worst_normal);
    ck_assert_msg(worst_normal >= 0.25, "SwiGLU bound vacuous on its worst cases: %g",
                  worst_normal);
}
END_TEST

/* moe_sum: k BF16 rows summed; the bound claims every order of k - 1 BF16
 * additions, and an FP32 accumulation rounded once to BF16.  y rows built
 * for cancellation (a, -a + ulp, small terms) through the given-y path. */
START_TEST(test_moe_sum_bound_every_order)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:128,64,8", &s);
    const size_t T = 4, H = s.H;
    const int k = s.topk;
    ck_assert_int_le(k, 4);
    mx_case_params p = mx_case_params_default(&s, T, 5);
    mx_case c;
    ck_assert_int_eq(mx_case_generate(&p, &c), MX_OK);
    mx_moe_config cfg = mx_moe_config_default(&s, MX_POLICY_W8A8);
    mx_moe_result r;
    long bad;
    uint16_t *y = malloc(T * (size_t)k * H * sizeof *y);
    srand(7);
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            double a = ldexp(1.0 + (h % 127) / 128.0, (int)(h % 9) - 4);
            double v[4] = {a, -a * (1 + 0x1p-7), a * 0x1p-9 * (1 + (h % 5) / 8.0),
                           -a * 0x1p-8 * (h % 3)};
            if (h % 17 == 0) { /* subnormal BF16 values */
                v[0] = 0x1p-130;
                v[1] = -0x1p-131;
                v[2] = 0x1p-133;
                v[3] = 0x1p-127;
            }
            for (int j = 0; j < k; j++)
                y[(t * (size_t)k + (size_t)j) * H + h] = bf(v[(j + t) % 4]);
        }
    mx_moe_given gv;
    memset(&gv, 0, sizeof gv);
    gv.y = y;
    ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, T, &gv, &r, &bad), MX_OK);
    static const int perms[24][4] = {
        {0,1,2,3},{0,1,3,2},{0,2,1,3},{0,2,3,1},{0,3,1,2},{0,3,2,1},
        {1,0,2,3},{1,0,3,2},{1,2,0,3},{1,2,3,0},{1,3,0,2},{1,3,2,0},
        {2,0,1,3},{2,0,3,1},{2,1,0,3},{2,1,3,0},{2,3,0,1},{2,3,1,0},
        {3,0,1,2},{3,0,2,1},{3,1,0,2},{3,1,2,0},{3,2,0,1},{3,2,1,0}};
    mpfr_t acc;
    mpfr_init2(acc, 512);
    double worst = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            mpfr_set_zero(acc, 1);
            for (int j = 0; j < k; j++)
                mpfr_add_d(acc, acc, fb(y[(t * (size_t)k + (size_t)j) * H + h]), MPFR_RNDN);
            double ex = mpfr_get_d(acc, MPFR_RNDN), bd = r.routed.bound[t * H + h];
            EXPECT(ex == r.routed.exact[t * H + h], "routed exact (%zu,%zu)", t, h);
            for (int q = 0; q < 24; q++) {
                int ok = 1;
                for (int j = 0; j < 4; j++)
                    ok &= perms[q][j] < k || j >= k;
                if (!ok)
                    continue;
                float sb = mx_bf16_to_float(y[(t * (size_t)k + (size_t)perms[q][0]) * H + h]);
                float s32 = sb;
                for (int j = 1; j < k; j++) {
                    float v = mx_bf16_to_float(y[(t * (size_t)k + (size_t)perms[q][j]) * H + h]);
                    sb = mx_bf16_to_float(mx_bf16_from_float(sb + v));
                    s32 = s32 + v;
                }
                double e1 = fabs((double)sb - ex);
                double e2 = fabs((double)mx_bf16_to_float(mx_bf16_from_float(s32)) - ex);
                EXPECT(e1 <= bd && e2 <= bd, "moe_sum (%zu,%zu) order %d: errors %a %a > "
                       "bound %a", t, h, q, e1, e2, bd);
                if (bd > 0 && e1 / bd > worst)
                    worst = e1 / bd;
            }
        }
    mpfr_clear(acc);
    printf("moe bounds: moe_sum: max |BF16 sum - exact| / bound over every order = %.4f\n",
           worst);
    ck_assert_msg(worst >= 0.25, "moe_sum bound vacuous: %g", worst);
    free(y);
    mx_moe_result_free(&r);
    mx_case_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("moe_bounds");
    TCase *t = tcase_create("bounds");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_swiglu_bound_worst_cases);
    tcase_add_test(t, test_moe_sum_bound_every_order);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
