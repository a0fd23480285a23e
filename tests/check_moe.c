/* check_moe.c -- the MoE layer reference against a second, deliberately
 * simple implementation written here: plain loops over tokens and routes,
 * group dots exact in binary64 or MPFR, the FP32 model written out
 * operation by operation, a quantizer of its own.  The model outputs must
 * agree bit for bit; exact values must agree with the simple
 * implementation's own, and every stage's model output must lie within the
 * bound the reference names for it (g1, y, routed, shared, out; the bounds
 * themselves are tested against MPFR in check_moe_bounds.c).  Also: dispatch, routing ties, EP, determinism of
 * the case generator, stage-wise recomputation from given intermediates.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/casegen.h"
#include "mxref/fnuz.h"
#include "mxref/pool.h"
#include "oracle/oracle.h"
#include "testutil.h"

/* ---- the simple implementation --------------------------------------- */

static double bf(uint16_t b) { return (double)mx_bf16_to_float(b); }

/* value of an E4M3 code */
static double e4m3(const mx_format *f, uint8_t c) { return mx_decode_double(f, c); }

/* the production quantizer (tests/oracle) on n values given as binary64 */
static void simple_quant(const double *v, size_t n, uint8_t *q, uint8_t *s)
{
    for (size_t b = 0; b < n / 32; b++) {
        float x[32];
        for (int i = 0; i < 32; i++)
            x[i] = (float)v[b * 32 + (size_t)i];
        oracle_mx_quant_block(MX_E4M3FNUZ, x, q + b * 32, s + b);
    }
}

/* one MX GEMM row in the fp32-group model: out = bf16(w * sum ...) */
static uint16_t simple_mx_dot(const uint8_t *a, const uint8_t *sa, const uint8_t *b,
                              const uint8_t *sb, size_t K, float w, int weighted,
                              double *exact)
{
    const mx_format *uz = mx_format_get(MX_E4M3FNUZ);
    float acc = 0;
    mpfr_t ex, t;
    mpfr_init2(ex, 2400);
    mpfr_init2(t, 64);
    mpfr_set_zero(ex, 1);
    for (size_t g = 0; g < K / 32; g++) {
        double terms[32];
        for (int i = 0; i < 32; i++) {
            size_t k = g * 32 + (size_t)i;
            terms[i] = e4m3(uz, a[k]) * e4m3(uz, b[k]); /* exact */
        }
        float p = oracle_rn32_sum(terms, 32);
        float sc = oracle_e8m0_production(sa[g]) * oracle_e8m0_production(sb[g]);
        float tt = p * sc;
        acc = acc + tt;
        if (sa[g] && sb[g])
            for (int i = 0; i < 32; i++) {
                mpfr_set_d(t, terms[i], MPFR_RNDN);
                mpfr_mul_2si(t, t, (long)sa[g] + sb[g] - 254, MPFR_RNDN);
                mpfr_add(ex, ex, t, MPFR_RNDN);
            }
    }
    if (weighted) {
        acc = acc * w;
        mpfr_mul_d(ex, ex, (double)w, MPFR_RNDN);
    }
    *exact = mpfr_get_d(ex, MPFR_RNDN);
    mpfr_clears(ex, t, (mpfr_ptr)0);
    return mx_bf16_from_float(acc);
}

/* one BF16 GEMM row in the fp32-group model */
static uint16_t simple_bf16_dot(const uint16_t *a, const uint16_t *b, size_t K,
                                double *exact)
{
    float acc = 0;
    double all[8192];
    for (size_t g = 0; g < (K + 31) / 32; g++) {
        double terms[32];
        int n = 0;
        for (size_t k = g * 32; k < K && k < g * 32 + 32; k++)
            terms[n++] = bf(a[k]) * bf(b[k]);
        acc = acc + oracle_rn32_sum(terms, n);
    }
    for (size_t k = 0; k < K; k++)
        all[k] = bf(a[k]) * bf(b[k]);
    mpfr_t ex, t;
    mpfr_init2(ex, 2400);
    mpfr_init2(t, 53);
    mpfr_set_zero(ex, 1);
    for (size_t k = 0; k < K; k++) {
        mpfr_set_d(t, all[k], MPFR_RNDN);
        mpfr_add(ex, ex, t, MPFR_RNDN);
    }
    *exact = mpfr_get_d(ex, MPFR_RNDN);
    mpfr_clears(ex, t, (mpfr_ptr)0);
    return mx_bf16_from_float(acc);
}

static double simple_act(double g, double u)
{
    g = g < 7 ? g : 7;
    u = u < -7 ? -7 : u > 7 ? 7 : u;
    double z = (double)1.702f * g;
    return g / (1 + exp(-z)) * (u + 1);
}

/* ---- the comparison ------------------------------------------------------ */

static void compare_layer(mx_moe_policy policy, const char *shape, size_t T,
                          uint64_t seed, mx_case_family fam)
{
    mx_moe_shape sh;
    ck_assert_int_eq(mx_moe_shape_by_name(shape, &sh), 0);
    mx_case_params p = mx_case_params_default(&sh, T, seed);
    p.family = fam;
    mx_case c;
    ck_assert_int_eq(mx_case_generate(&p, &c), MX_OK);
    mx_moe_config cfg = mx_moe_config_default(&sh, policy);
    mx_moe_result r;
    long bad;
    ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, T, NULL, &r, &bad), MX_OK);
    size_t H = sh.H, I = sh.inter, Is = sh.inter_shared, k = (size_t)sh.topk;
    int w8a8 = r.policy == MX_POLICY_W8A8;

    /* router: weights renormalized in FP32, in rank order */
    for (size_t t = 0; t < T; t++) {
        double sig[64];
        float s32[64], sum = 0;
        for (size_t j = 0; j < k; j++) {
            size_t e = (size_t)r.route.ids[t * k + j];
            double l = 0;
            for (size_t h = 0; h < H; h++)
                l += bf(c.x[t * H + h]) * (double)c.router[e * H + h];
            sig[j] = 1 / (1 + exp(-l));
            s32[j] = (float)(1 / (1 + exp(-(double)(float)l)));
            sum = sum + s32[j];
        }
        for (size_t j = 0; j < k; j++)
            EXPECT(r.route.ambiguous[t] ||
                       r.route.weights[t * k + j] == s32[j] / sum,
                   "token %zu rank %zu: weight %a, simple %a", t, j,
                   (double)r.route.weights[t * k + j], (double)(s32[j] / sum));
        /* rank order: scores descending */
        for (size_t j = 1; j < k; j++) {
            size_t e0 = (size_t)r.route.ids[t * k + j - 1], e1 = (size_t)r.route.ids[t * k + j];
            EXPECT(r.route.ambiguous[t] || sig[j - 1] + c.bias[e0] >= sig[j] + c.bias[e1],
                   "token %zu: ranks out of order", t);
        }
    }

    /* expert path, row by row */
    const mx_format *fn = mx_format_get(MX_E4M3FN);
    uint8_t *xq = malloc(H), *xs = malloc(H / 32), *aq = malloc(I), *as = malloc(I / 32);
    uint8_t *wq = malloc(2 * I * H > H * I ? 2 * I * H : H * I);
    uint8_t *ws = malloc(2 * I * H / 32 > H * I / 32 ? 2 * I * H / 32 : H * I / 32);
    double *act = malloc(I * sizeof *act);
    uint16_t *g1 = malloc(2 * I * sizeof *g1), *a16 = malloc(I * sizeof *a16);
    uint16_t *wbf = malloc(2 * I * H * sizeof *wbf);
    for (size_t t = 0; t < T; t++) {
        double xv[8192];
        for (size_t h = 0; h < H; h++)
            xv[h] = bf(c.x[t * H + h]);
        if (w8a8) {
            simple_quant(xv, H, xq, xs);
            EXPECT(memcmp(xq, r.xq.q + t * H, H) == 0 && memcmp(xs, r.xq.s + t * H / 32, H / 32) == 0,
                   "token %zu: activation quantization differs", t);
        }
        for (size_t j = 0; j < k; j++) {
            size_t row = t * k + j, le = (size_t)r.route.ids[row] - sh.expert0;
            const uint8_t *w13 = c.w13[le], *w13s = c.w13_s[le];
            /* GEMM1 */
            if (w8a8) {
                for (size_t i = 0; i < 2 * I * H; i++)
                    wq[i] = w13[i] == 0x80 ? 0 : w13[i];
                for (size_t i = 0; i < 2 * I * H / 32; i++)
                    ws[i] = (uint8_t)(w13s[i] + 1);
            } else {
                for (size_t i = 0; i < 2 * I * H; i++)
                    wbf[i] = mx_bf16_from_float((float)(mx_decode_double(fn, w13[i]) *
                                                        ldexp(1, (int)w13s[i / 32] - 127)));
            }
            for (size_t n = 0; n < 2 * I; n++) {
                double ex;
                uint16_t o = w8a8 ? simple_mx_dot(xq, xs, wq + n * H, ws + n * H / 32, H, 1, 0, &ex)
                                  : simple_bf16_dot(c.x + t * H, wbf + n * H, H, &ex);
                g1[n] = o;
                EXPECT(o == r.g1.model[row * 2 * I + n], "row %zu g1[%zu]: 0x%04X, simple 0x%04X",
                       row, n, r.g1.model[row * 2 * I + n], o);
                EXPECT(ex == r.g1.exact[row * 2 * I + n], "row %zu g1[%zu] exact %a, simple %a",
                       row, n, r.g1.exact[row * 2 * I + n], ex);
            }
            /* SwiGLU (+ quantization) */
            for (size_t i = 0; i < I; i++)
                act[i] = simple_act(bf(g1[i]), bf(g1[I + i]));
            if (w8a8) {
                simple_quant(act, I, aq, as);
                int amb = 0;
                for (size_t b = 0; b < I / 32; b++)
                    amb |= r.actq.s_alt[row * I / 32 + b] != r.actq.s[row * I / 32 + b];
                for (size_t i = 0; i < I; i++)
                    amb |= r.actq.q_alt[row * I + i] != r.actq.q[row * I + i];
                EXPECT(amb || (memcmp(aq, r.actq.q + row * I, I) == 0 &&
                               memcmp(as, r.actq.s + row * I / 32, I / 32) == 0),
                       "row %zu: act quantization differs", row);
            } else {
                for (size_t i = 0; i < I; i++) {
                    a16[i] = mx_bf16_from_float((float)act[i]);
                    EXPECT(a16[i] == r.act16.model[row * I + i] ||
                               r.act16.alt[row * I + i] != r.act16.model[row * I + i],
                           "row %zu act[%zu]", row, i);
                }
            }
            /* GEMM2, top-k weighted, from the reference's act (ambiguous
             * bytes would otherwise make the rows differ) */
            const uint8_t *w2 = c.w2[le], *w2s = c.w2_s[le];
            float wt = r.route.weights[row];
            for (size_t n = 0; n < H; n++) {
                double ex;
                uint16_t o;
                if (w8a8) {
                    for (size_t i = 0; i < I; i++)
                        wq[i] = w2[n * I + i] == 0x80 ? 0 : w2[n * I + i];
                    for (size_t i = 0; i < I / 32; i++)
                        ws[i] = (uint8_t)(w2s[n * I / 32 + i] + 1);
                    o = simple_mx_dot(r.actq.q + row * I, r.actq.s + row * I / 32, wq, ws, I,
                                      wt, 1, &ex);
                } else {
                    /* bf16 GEMM2 with the weight applied on the accumulator */
                    float acc = 0;
                    for (size_t g = 0; g < I / 32; g++) {
                        double terms[32];
                        for (int i = 0; i < 32; i++) {
                            size_t kk = g * 32 + (size_t)i;
                            double wv = mx_decode_double(fn, w2[n * I + kk]) *
                                        ldexp(1, (int)w2s[(n * I + kk) / 32] - 127);
                            terms[i] = bf(r.act16.model[row * I + kk]) *
                                       (double)mx_bf16_to_float(mx_bf16_from_float((float)wv));
                        }
                        acc = acc + oracle_rn32_sum(terms, 32);
                    }
                    o = mx_bf16_from_float(acc * wt);
                    ex = r.y.exact[row * H + n];
                }
                EXPECT(o == r.y.model[row * H + n], "row %zu y[%zu]: 0x%04X, simple 0x%04X",
                       row, n, r.y.model[row * H + n], o);
                EXPECT(ex == r.y.exact[row * H + n], "row %zu y[%zu] exact", row, n);
            }
        }
        /* moe_sum: BF16, sequential over ranks */
        for (size_t h = 0; h < H; h++) {
            uint16_t s = r.y.model[(t * k) * H + h];
            for (size_t j = 1; j < k; j++)
                s = mx_bf16_from_float(mx_bf16_to_float(s) +
                                       mx_bf16_to_float(r.y.model[(t * k + j) * H + h]));
            EXPECT(s == r.routed.model[t * H + h], "token %zu routed[%zu]", t, h);
        }
    }
    /* shared expert and the final combine */
    for (size_t i = 0; i < 2 * Is * H; i++)
        wbf[i] = mx_bf16_from_float((float)(mx_decode_double(fn, c.ws13[i]) *
                                            ldexp(1, (int)c.ws13_s[i / 32] - 127)));
    for (size_t t = 0; t < T; t++)
        for (size_t n = 0; n < 2 * Is; n++) {
            double ex;
            uint16_t o = simple_bf16_dot(c.x + t * H, wbf + n * H, H, &ex);
            EXPECT(o == r.sh_g1.model[t * 2 * Is + n], "token %zu shared g1[%zu]", t, n);
        }
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            float v = 2.0f * mx_bf16_to_float(r.routed.model[t * H + h]) +
                      mx_bf16_to_float(r.shared.model[t * H + h]);
            EXPECT(mx_bf16_from_float(v) == r.out.model[t * H + h], "token %zu out[%zu]", t, h);
        }
    /* the bounds the reference names: every stage's model output lies
     * within its finite bound of the exact value, and the GEMM bounds are
     * not vacuous on these data (some element uses a quarter of its bound) */
    const mx_stage_gemm *stages[] = {&r.g1, &r.y, &r.routed, &r.sh_g1, &r.shared, &r.out};
    const char *sname[] = {"g1", "y", "routed", "shared g1", "shared", "out"};
    double worst_gemm = 0;
    for (int st = 0; st < 6; st++) {
        const mx_stage_gemm *g = stages[st];
        for (size_t i = 0; i < g->rows * g->cols; i++) {
            double err = fabs(bf(g->model[i]) - g->exact[i]);
            EXPECT(isfinite(g->bound[i]) && err <= g->bound[i],
                   "%s[%zu]: |%a - %a| = %a, bound %a", sname[st], i, bf(g->model[i]),
                   g->exact[i], err, g->bound[i]);
            if (st < 2 && g->bound[i] > 0 && err / g->bound[i] > worst_gemm)
                worst_gemm = err / g->bound[i];
        }
    }
    EXPECT(worst_gemm >= 0.25, "GEMM stage bounds vacuous: max err/B %g", worst_gemm);
    free(xq);
    free(xs);
    free(aq);
    free(as);
    free(wq);
    free(ws);
    free(act);
    free(g1);
    free(a16);
    free(wbf);
    mx_moe_result_free(&r);
    mx_case_free(&c);
}

START_TEST(test_w8a8_matches_simple)
{
    compare_layer(MX_POLICY_W8A8, "custom:128,64,8", 5, 3, MX_FAMILY_REAL);
}
END_TEST

START_TEST(test_w8a8_cancel_matches_simple)
{
    compare_layer(MX_POLICY_W8A8, "custom:128,64,8", 3, 4, MX_FAMILY_CANCEL);
}
END_TEST

START_TEST(test_bf16_matches_simple)
{
    compare_layer(MX_POLICY_BF16, "custom:96,64,6,2", 4, 5, MX_FAMILY_REAL);
}
END_TEST

/* ---- dispatch, EP, determinism, stage-wise recomputation ----------------- */

START_TEST(test_hybrid_dispatch)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("m3-tp8", &s);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 1), MX_POLICY_BF16);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 8), MX_POLICY_BF16);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 9), MX_POLICY_W8A8);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 1023), MX_POLICY_W8A8);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 1024), MX_POLICY_BF16);
    s.hybrid_high = 832;
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 832), MX_POLICY_BF16);
    s.hybrid_high = 1024;
    s.max_model_len = 8192;
    s.layer = 10;
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 64), MX_POLICY_BF16);
    s.layer = 11;
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 64), MX_POLICY_W8A8);
    mx_moe_shape_by_name("m3-ep8", &s);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_HYBRID, 64), MX_POLICY_BF16);
    ck_assert_int_eq(mx_moe_dispatch(&s, MX_POLICY_W8A8, 64), MX_POLICY_W8A8);
    ck_assert_int_eq(mx_moe_shape_by_name("custom:100,64,8", &s), -1);
    ck_assert_int_eq(mx_moe_shape_by_name("m3-tp4", &s), -1);
}
END_TEST

START_TEST(test_expert_parallel_rows_zero)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:128,64,16", &s);
    s.E_local = 4;
    s.expert0 = 4;
    s.ep = 4;
    mx_case_params p = mx_case_params_default(&s, 6, 9);
    mx_case c;
    ck_assert_int_eq(mx_case_generate(&p, &c), MX_OK);
    mx_moe_config cfg = mx_moe_config_default(&s, MX_POLICY_W8A8);
    mx_moe_result r;
    long bad;
    /* the stages are not cleared on allocation (moe.c, stage_gemm_alloc):
     * freed chunks of the stages' sizes, full of nonzero bytes, so that a
     * row left unwritten shows */
    for (int round = 0; round < 2; round++) {
        void *dirty[48];
        const size_t sizes[6] = {24 * 128 * 8, 24 * 128 * 2, 24 * 128 * 8 * 2,
                                 24 * 128 * 2 * 2, 24 * 64 * 8, 24 * 64 * 2};
        for (int i = 0; i < 48; i++)
            if ((dirty[i] = malloc(sizes[i % 6])) != NULL)
                memset(dirty[i], 0xa5, sizes[i % 6]);
        for (int i = 0; i < 48; i++)
            free(dirty[i]);
        ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, 6, NULL, &r, &bad), MX_OK);
        if (round == 0)
            mx_moe_result_free(&r);
    }
    size_t local = 0, remote = 0;
    for (size_t row = 0; row < 6 * 4; row++) {
        int32_t id = r.route.ids[row];
        int is_local = id >= 4 && id < 8;
        for (size_t h = 0; h < 128; h++)
            if (!is_local)
                EXPECT(r.y.model[row * 128 + h] == 0 && r.y.exact[row * 128 + h] == 0 &&
                           r.y.bound[row * 128 + h] == 0,
                       "non-local row %zu is not zero", row);
        for (size_t j = 0; j < 2 * 64; j++)
            if (!is_local)
                EXPECT(r.g1.model[row * 128 + j] == 0 && r.g1.exact[row * 128 + j] == 0 &&
                           r.g1.bound[row * 128 + j] == 0,
                       "non-local row %zu of GEMM1 is not zero", row);
        local += (size_t)is_local;
        remote += (size_t)!is_local;
    }
    ck_assert(local > 0 && remote > 0);
    mx_moe_result_free(&r);
    mx_case_free(&c);
}
END_TEST

START_TEST(test_case_generation_deterministic)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:128,64,16", &s);
    mx_case_params p = mx_case_params_default(&s, 7, 42);
    mx_case a, b;
    ck_assert_int_eq(mx_case_generate(&p, &a), MX_OK);
    ck_assert_int_eq(mx_case_generate(&p, &b), MX_OK);
    ck_assert(memcmp(a.x, b.x, 7 * 128 * 2) == 0);
    ck_assert(memcmp(a.router, b.router, 16 * 128 * 4) == 0);
    for (size_t e = 0; e < 16; e++) {
        ck_assert((a.w13[e] == NULL) == (b.w13[e] == NULL));
        if (a.w13[e])
            ck_assert(memcmp(a.w13[e], b.w13[e], 128 * 128) == 0);
    }
    /* an expert's bytes do not depend on which others exist */
    size_t e = 0;
    while (e < 16 && a.w13[e])
        e++;
    ck_assert(e < 16 || a.n_materialized == 16);
    if (e < 16) {
        ck_assert_int_eq(mx_case_materialize(&p, &a, e), MX_OK);
        mx_case_params p2 = p;
        p2.T = 1; /* other routing, other materialized set */
        mx_case d;
        ck_assert_int_eq(mx_case_generate(&p2, &d), MX_OK);
        ck_assert_int_eq(mx_case_materialize(&p2, &d, e), MX_OK);
        ck_assert(memcmp(a.w13[e], d.w13[e], 128 * 128) == 0);
        ck_assert(memcmp(a.ws2, d.ws2, 128 * 64) == 0);
        mx_case_free(&d);
    }
    /* a different seed gives different inputs */
    mx_case_params p3 = p;
    p3.seed = 43;
    mx_case f;
    ck_assert_int_eq(mx_case_generate(&p3, &f), MX_OK);
    ck_assert(memcmp(a.x, f.x, 7 * 128 * 2) != 0);
    mx_case_free(&f);
    mx_case_free(&a);
    mx_case_free(&b);
}
END_TEST

START_TEST(test_stagewise_from_given)
{
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:128,64,8", &s);
    mx_case_params p = mx_case_params_default(&s, 4, 11);
    mx_case c;
    ck_assert_int_eq(mx_case_generate(&p, &c), MX_OK);
    mx_moe_config cfg = mx_moe_config_default(&s, MX_POLICY_W8A8);
    mx_moe_result r, r2;
    long bad;
    ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, 4, NULL, &r, &bad), MX_OK);
    /* a kernel's g1 that is off by one ulp in one element: GEMM1's stage
     * still matches the reference; SwiGLU recomputed from the given g1
     * differs from the reference chain exactly there */
    size_t n = r.g1.rows * r.g1.cols;
    uint16_t *g1 = malloc(n * sizeof *g1);
    memcpy(g1, r.g1.model, n * sizeof *g1);
    g1[5] ^= 1;
    mx_moe_given gv;
    memset(&gv, 0, sizeof gv);
    gv.g1 = g1;
    ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, 4, &gv, &r2, &bad), MX_OK);
    ck_assert(memcmp(r.g1.model, r2.g1.model, n * 2) == 0); /* own stage */
    mx_swiglu_exact(&s, g1, 1, 64, 4, (double[64]){0}, NULL);
    /* the act stage used the given g1: row 0, element 5 moved */
    mx_moe_shape sh = s;
    double a1[64], a2[64];
    mx_swiglu_exact(&sh, r.g1.model, 1, 64, 4, a1, NULL);
    mx_swiglu_exact(&sh, g1, 1, 64, 4, a2, NULL);
    ck_assert(a1[5] != a2[5]);
    /* refusing a routing to an expert that was not materialized */
    int32_t ids[16];
    memcpy(ids, r.route.ids, sizeof ids);
    size_t missing = 0;
    while (missing < 8 && c.w13[missing])
        missing++;
    if (missing < 8) {
        ids[0] = (int32_t)missing;
        gv.topk_ids = ids;
        mx_moe_result r3;
        ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, 4, &gv, &r3, &bad), MX_EINVAL);
        ck_assert_int_eq(bad, (long)missing);
    }
    ids[0] = 99; /* out of range */
    gv.topk_ids = ids;
    mx_moe_result r4;
    ck_assert_int_eq(mx_moe_run(&cfg, &c.weights, c.x, 4, &gv, &r4, &bad), MX_ERANGE);
    free(g1);
    mx_moe_result_free(&r);
    mx_moe_result_free(&r2);
    mx_case_free(&c);
}
END_TEST

START_TEST(test_routing_ties_reported)
{
    /* two experts with identical router rows and biases tie exactly */
    mx_moe_shape s;
    mx_moe_shape_by_name("custom:64,32,8,2", &s);
    uint16_t x[64];
    float router[8 * 64], bias[8] = {0};
    for (int h = 0; h < 64; h++)
        x[h] = mx_bf16_from_float((float)(h % 7) - 3);
    for (int e = 0; e < 8; e++)
        for (int h = 0; h < 64; h++)
            router[e * 64 + h] = (float)((e * 13 + h * 7) % 11 - 5) / 64;
    /* make experts 2 and 5 the best two plus a third equal: a tie at the
     * cut between rank 2 and rank 3 */
    for (int h = 0; h < 64; h++) {
        router[2 * 64 + h] = (float)(h % 7 - 3) / 8;
        router[5 * 64 + h] = (float)(h % 7 - 3) / 16;
        router[6 * 64 + h] = (float)(h % 7 - 3) / 16;
    }
    mx_moe_routing r;
    ck_assert_int_eq(mx_moe_route(&s, router, bias, x, 1, &r), MX_OK);
    ck_assert_int_eq(r.ids[0], 2);
    ck_assert_int_eq(r.ids[1], 5); /* exact tie: the lower id, reported */
    ck_assert_int_eq(r.ambiguous[0], 1);
    ck_assert_uint_eq(r.n_ambiguous, 1);
    mx_moe_routing_free(&r);
}
END_TEST

START_TEST(test_routing_blocks)
{
    /* the router's conversions (blocks of 8 tokens, 32 experts) and
     * products (blocks of 32 experts from 8 tokens up): the same routing
     * for any thread count, at token counts around the blocks' edges and
     * an expert count past a block; a non-finite x in a later block is
     * refused */
    mx_moe_shape s;
    ck_assert_int_eq(mx_moe_shape_by_name("custom:64,32,40,3", &s), 0);
    enum { H = 64, E = 40, TMAX = 17 };
    static uint16_t x[TMAX * H];
    static float router[E * H], bias[E];
    for (int i = 0; i < TMAX * H; i++)
        x[i] = mx_bf16_from_float((float)((i * 37 % 23) - 11) / 8);
    for (int i = 0; i < E * H; i++)
        router[i] = (float)((i * 13 % 29) - 14) / 128;
    for (int e = 0; e < E; e++)
        bias[e] = (float)(e % 5) / 64;
    const size_t Ts[] = {1, 7, 8, 9, 16, 17};
    for (size_t a = 0; a < sizeof Ts / sizeof *Ts; a++) {
        size_t T = Ts[a];
        mx_moe_routing r1, rn;
        mx_pool_set_threads(1);
        ck_assert_int_eq(mx_moe_route(&s, router, bias, x, T, &r1), MX_OK);
        for (int th = 2; th <= 7; th += 5) {
            mx_pool_set_threads(th);
            ck_assert_int_eq(mx_moe_route(&s, router, bias, x, T, &rn), MX_OK);
            EXPECT(memcmp(r1.ids, rn.ids, T * 3 * sizeof *r1.ids) == 0 &&
                       memcmp(r1.weights, rn.weights, T * 3 * sizeof *r1.weights) == 0 &&
                       memcmp(r1.weights_exact, rn.weights_exact,
                              T * 3 * sizeof *r1.weights_exact) == 0 &&
                       memcmp(r1.ambiguous, rn.ambiguous, T) == 0,
                   "T = %zu: %d threads route otherwise than one", T, th);
            mx_moe_routing_free(&rn);
        }
        /* each token's top 3 by its own scores, recomputed in long double
         * (ties and near ties aside: none here) */
        for (size_t t = 0; t < T; t++) {
            long double sc[E];
            for (int e = 0; e < E; e++) {
                long double l = 0;
                for (int h = 0; h < H; h++)
                    l += (long double)mx_bf16_to_float(x[t * H + h]) * router[e * H + h];
                sc[e] = 1 / (1 + expl(-l)) + bias[e];
            }
            for (int j = 0; j < 3; j++) {
                int best = -1;
                for (int e = 0; e < E; e++) {
                    int used = 0;
                    for (int q = 0; q < j; q++)
                        used |= r1.ids[t * 3 + q] == e;
                    if (!used && (best < 0 || sc[e] > sc[best]))
                        best = e;
                }
                EXPECT(r1.ambiguous[t] || r1.ids[t * 3 + j] == best,
                       "T = %zu, token %zu, rank %d: expert %d, not %d", T, t, j,
                       r1.ids[t * 3 + j], best);
            }
        }
        mx_moe_routing_free(&r1);
    }
    mx_pool_set_threads(1);
    mx_moe_routing r;
    x[9 * H + 5] = 0x7f80; /* +inf in token 9: the second block of tokens */
    ck_assert_int_eq(mx_moe_route(&s, router, bias, x, 17, &r), MX_ERANGE);
    ck_assert_ptr_null(r.ids);
}
END_TEST

START_TEST(test_moe_align_reference)
{
    /* rows (flat ids): 0:e2 1:e0 2:e2 3:e1 4:e0 5:e2; block_m 2, pad id 6 */
    const int32_t ids[6] = {2, 0, 2, 1, 0, 2};
    int32_t sorted[12], blocks[6], npp;
    ck_assert_int_eq(mx_moe_align(ids, 3, 2, 4, 2, NULL, sorted, 12, blocks, 6, &npp),
                     MX_OK);
    const int32_t want_sorted[12] = {1, 4, 3, 6, 0, 2, 5, 6, 6, 6, 6, 6};
    const int32_t want_blocks[6] = {0, 1, 2, 2, -1, -1};
    ck_assert_int_eq(npp, 8);
    ck_assert(memcmp(sorted, want_sorted, sizeof sorted) == 0);
    ck_assert(memcmp(blocks, want_blocks, sizeof blocks) == 0);
    /* EP map: expert 2 lives on another rank */
    const int32_t map[4] = {0, 1, -1, 2};
    ck_assert_int_eq(mx_moe_align(ids, 3, 2, 4, 2, map, sorted, 12, blocks, 6, &npp),
                     MX_OK);
    ck_assert_int_eq(blocks[2], -1);
    ck_assert_int_eq(blocks[1], 1);
    /* refusals */
    const int32_t bad[6] = {2, 0, 2, 4, 0, 2};
    ck_assert_int_eq(mx_moe_align(bad, 3, 2, 4, 2, NULL, sorted, 12, blocks, 6, &npp),
                     MX_EINVAL);
    ck_assert_int_eq(mx_moe_align(ids, 3, 2, 4, 2, NULL, sorted, 7, blocks, 6, &npp),
                     MX_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("moe");
    TCase *t = tcase_create("layer");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_w8a8_matches_simple);
    tcase_add_test(t, test_w8a8_cancel_matches_simple);
    tcase_add_test(t, test_bf16_matches_simple);
    tcase_add_test(t, test_hybrid_dispatch);
    tcase_add_test(t, test_expert_parallel_rows_zero);
    tcase_add_test(t, test_case_generation_deterministic);
    tcase_add_test(t, test_stagewise_from_given);
    tcase_add_test(t, test_routing_ties_reported);
    tcase_add_test(t, test_routing_blocks);
    tcase_add_test(t, test_moe_align_reference);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
