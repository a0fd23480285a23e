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

/* Router: the top-k of FP32 scores.  Experts 0..k-2 carry a large bias
 * (always chosen), experts k+1.. a very negative one (never): the k-th
 * place is decided between experts k-1 and k, whose router rows differ by
 * one FP32 ulp scaled per token (x[t][0] = 2^-(t/2)), on rows whose other
 * columns cancel in pairs (+L, -L: the FP32 dot loses up to gamma_H of
 * them in rounding).  For every token the claim is: not flagged ambiguous
 * => every correct FP32 router (three summation orders, mul+add or fma,
 * the sigmoid RN32 moved up to 3 ulps each way for either expert) picks
 * the reference's expert; the reference's pick is the exact (MPFR) top-k. */
static float dot32(const float *w, const float *x, int H, int order, int fused)
{
    float acc = 0;
    if (order == 2) { /* pairwise tree */
        float t[512];
        for (int h = 0; h < H; h++)
            t[h] = w[h] * x[h];
        for (int n = H; n > 1;) {
            int m = 0;
            for (int i = 0; i + 1 < n; i += 2)
                t[m++] = t[i] + t[i + 1];
            if (n & 1)
                t[m++] = t[n - 1];
            n = m;
        }
        return t[0];
    }
    for (int j = 0; j < H; j++) {
        int h = order ? H - 1 - j : j;
        acc = fused ? fmaf(w[h], x[h], acc) : acc + w[h] * x[h];
    }
    return acc;
}

START_TEST(test_router_ambiguity_is_sound)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:128,64,8", &s);
    const int H = (int)s.H, E = (int)s.E, k = s.topk, T = 64;
    ck_assert_int_lt(k, E);
    float *W = calloc((size_t)E * H, sizeof *W), *bias = calloc((size_t)E, sizeof *bias);
    uint16_t *x = calloc((size_t)T * H, sizeof *x);
    for (int e = 0; e < E; e++) {
        W[e * H] = 0.25f;
        for (int h = 1; h + 1 < H; h += 2) {
            float L = ldexpf(1.0f + (float)((h * 7 + e) % 13) / 16.0f, (h % 5) - 2);
            W[e * H + h] = L;
            W[e * H + h + 1] = -L;
        }
        bias[e] = e < k - 1 ? 4.0f : e > k ? -4.0f : 0.0f;
    }
    /* expert k's first column 2^-6 above expert k-1's: the logit gap is
     * 2^-6 x[t][0], from 2^-6 down to 2^-29; the cancelling columns weigh
     * 1 or 2^-12 per token (the FP32 dot's error with them) */
    W[k * H] = 0.25f + 0x1p-6f;
    for (int t = 0; t < 48; t++) {
        x[t * H] = bf(ldexp(1.0, -(t / 2)));
        for (int h = 1; h < H; h++)
            x[t * H + h] = bf(t % 2 ? 1.0 : 0x1p-12);
    }
    /* tokens 48..63: no cancelling columns, score gaps of 3.8 .. 7.6 ulps of
     * sigma = 2^-24: there the sigmoid's own error decides (a 4-ulp sigmoid
     * moves each score by up to 8 u sigma, not 4 u sigma) */
    for (int t = 48; t < 64; t++)
        x[t * H] = bf(ldexp(1.0 + (t - 48) / 16.0, -14));
    mx_moe_routing r;
    ck_assert_int_eq(mx_moe_route(&s, W, bias, x, (size_t)T, &r), MX_OK);
    mpfr_t acc, p;
    mpfr_inits2(512, acc, p, (mpfr_ptr)0);
    int flagged = 0, flagged_real = 0, unflagged_close = 0;
    for (int t = 0; t < T; t++) {
        float xf[512];
        for (int h = 0; h < H; h++)
            xf[h] = mx_bf16_to_float(x[t * H + h]);
        /* exact scores of experts k-1 and k */
        double ex[2];
        for (int i = 0; i < 2; i++) {
            int e = k - 1 + i;
            mpfr_set_zero(acc, 1);
            for (int h = 0; h < H; h++) {
                mpfr_set_flt(p, W[e * H + h], MPFR_RNDN);
                mpfr_mul_d(p, p, xf[h], MPFR_RNDN);
                mpfr_add(acc, acc, p, MPFR_RNDN);
            }
            mpfr_neg(acc, acc, MPFR_RNDN);
            mpfr_exp(acc, acc, MPFR_RNDN);
            mpfr_add_ui(acc, acc, 1, MPFR_RNDN);
            mpfr_ui_div(acc, 1, acc, MPFR_RNDN);
            mpfr_add_d(acc, acc, (double)bias[e], MPFR_RNDN);
            ex[i] = mpfr_get_d(acc, MPFR_RNDN);
        }
        int ref_pick = r.ids[t * k + k - 1];
        ck_assert(ref_pick == k - 1 || ref_pick == k);
        if (ex[0] != ex[1])
            EXPECT(ref_pick == (ex[1] > ex[0] ? k : k - 1), "token %d: reference picks "
                   "%d, exact scores %a %a", t, ref_pick, ex[0], ex[1]);
        /* every correct FP32 router */
        int picks = 0; /* bit 0: picked k-1, bit 1: picked k */
        for (int order = 0; order < 3; order++)
            for (int fused = 0; fused < 2; fused++) {
                float sc[2][7];
                for (int i = 0; i < 2; i++) {
                    float l = dot32(W + (k - 1 + i) * H, xf, H, order, fused);
                    float s0 = sigmoid_rn32(l), lo = s0, hi = s0;
                    sc[i][0] = s0 + bias[k - 1 + i];
                    for (int st = 1; st <= 3; st++) {
                        lo = nextafterf(lo, 0);
                        hi = nextafterf(hi, 2);
                        sc[i][2 * st - 1] = lo + bias[k - 1 + i];
                        sc[i][2 * st] = hi + bias[k - 1 + i];
                    }
                }
                for (int a = 0; a < 7; a++)
                    for (int b = 0; b < 7; b++)
                        picks |= sc[1][b] > sc[0][a] ? 2 : 1; /* ties: lower id */
            }
        if (r.ambiguous[t]) {
            flagged++;
            flagged_real += picks == 3;
        } else {
            EXPECT(picks == (ref_pick == k ? 2 : 1), "token %d not flagged ambiguous, "
                   "but a correct FP32 router picks expert %d (exact %a vs %a)", t,
                   ref_pick == k ? k - 1 : k, ex[0], ex[1]);
            unflagged_close += fabs(ex[1] - ex[0]) < 0x1p-20;
        }
    }
    printf("moe bounds: router: %d of %d tokens flagged ambiguous, %d of them with "
           "FP32 routers that really disagree; %d unflagged within 2^-20\n", flagged, T,
           flagged_real, unflagged_close);
    ck_assert_int_gt(flagged_real, 0);
    ck_assert_int_gt(T - flagged, T / 5);
    ck_assert_int_gt(unflagged_close, 0);
    mpfr_clears(acc, p, (mpfr_ptr)0);
    mx_moe_routing_free(&r);
    free(W);
    free(bias);
    free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("moe_bounds");
    TCase *t = tcase_create("bounds");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_swiglu_bound_worst_cases);
    tcase_add_test(t, test_moe_sum_bound_every_order);
    tcase_add_test(t, test_router_ambiguity_is_sound);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
