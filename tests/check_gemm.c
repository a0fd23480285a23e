/* check_gemm.c -- the group GEMM reference.
 *
 *  - the fast exact engine against the MPFR oracle (mpfr_sum), bit for bit,
 *    on random and adversarial families: cancellation, huge scale spread,
 *    subnormal values, zero scales, scale products below FP32, BF16 ties,
 *    E5M2 and BF16 operands that defeat the BLAS window, row weights,
 *    gathered rows, packed scales;
 *  - the vectorized models against the direct element-by-element model;
 *  - the bound: every model output, and FP32 sums of the same terms in
 *    random orders and trees, lie within it; and it is not vacuous.
 */
#include <check.h>
#include <stdio.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "mxref/gemm.h"
#include <mpfr.h>
#include "gemm_internal.h"
#include "oracle/oracle.h"
#include "testutil.h"

typedef struct {
    const char *name;
    mx_format_id fmt;
    int scaled;          /* MX operands (E8M0 per 32) or plain           */
    int smin, smax;      /* scale byte range                             */
    double zero_scale;   /* probability of a 0 scale byte                */
    int cancel;          /* make B rows the negation of A rows per group */
    int subnormal;       /* only subnormal codes                         */
    int weighted;        /* GEMM2-style row weights                      */
    mx_e8m0_decode decode;
    size_t M, N, K;
} family;

static const family families[] = {
    {"e4m3fnuz narrow", MX_E4M3FNUZ, 1, 120, 130, 0, 0, 0, 0, MX_E8M0_PRODUCTION, 9, 13, 256},
    {"e4m3fnuz weighted", MX_E4M3FNUZ, 1, 110, 140, 0, 0, 0, 1, MX_E8M0_PRODUCTION, 7, 11, 384},
    {"e4m3fn spec decode", MX_E4M3FN, 1, 100, 150, 0, 0, 0, 0, MX_E8M0_SPEC, 6, 9, 256},
    /* scale bytes 0..170: a spread of 170 binades (no FP32 overflow) */
    {"huge scale spread", MX_E4M3FNUZ, 1, 0, 170, 0, 0, 0, 1, MX_E8M0_SPEC, 6, 7, 512},
    {"cancellation", MX_E4M3FNUZ, 1, 125, 129, 0, 1, 0, 0, MX_E8M0_PRODUCTION, 8, 8, 256},
    /* subnormal codes (products ~2^-20..2^-14) times scale products
     * 2^-122..2^-116: nearly every scaled partial lies in the FP32 subnormal
     * range and stays there (a flush-to-zero kernel loses all of it) */
    {"subnormals", MX_E4M3FNUZ, 1, 66, 69, 0, 0, 1, 0, MX_E8M0_SPEC, 5, 6, 128},
    /* 30 % zero scale bytes among ordinary ones (a zero byte is +0 under
     * the production decode) */
    {"zero scales", MX_E4M3FNUZ, 1, 110, 140, 0.3, 0, 0, 1, MX_E8M0_PRODUCTION, 6, 6, 256},
    {"e5m2 irregular", MX_E5M2, 1, 120, 135, 0, 0, 0, 1, MX_E8M0_PRODUCTION, 6, 7, 256},
    {"e5m2fnuz", MX_E5M2FNUZ, 1, 120, 135, 0, 1, 0, 0, MX_E8M0_PRODUCTION, 5, 6, 128},
    {"bf16", MX_BF16, 0, 0, 0, 0, 0, 0, 0, MX_E8M0_PRODUCTION, 7, 9, 200},
    {"bf16 cancellation weighted", MX_BF16, 0, 0, 0, 0, 1, 0, 1, MX_E8M0_PRODUCTION, 5, 8, 96},
    {"fp16", MX_FP16, 0, 0, 0, 0, 0, 0, 1, MX_E8M0_PRODUCTION, 5, 5, 70},
    /* scale products 2^-174..2^-152 (bytes 40..52 under the spec decode):
     * below FP32's smallest subnormal, so every group's product is inexact
     * and the bound's count of such groups matters */
    {"underflowing scale products", MX_E4M3FN, 1, 40, 52, 0, 0, 0, 1, MX_E8M0_SPEC, 6, 9, 256},
};
#define NFAM (int)(sizeof families / sizeof families[0])

typedef struct {
    size_t M, N, K, G;
    void *a, *b;
    uint8_t *sa, *sb;
    float *w;
    mx_operand A, B;
    mx_gemm_spec spec;
} gcase;

static uint32_t random_code(gsl_rng *r, const mx_format *f, int subnormal)
{
    for (;;) {
        uint32_t c = (uint32_t)gsl_rng_uniform_int(r, 1ul << f->bits);
        mx_class k = mx_classify(f, c);
        if (k == MX_CLASS_NAN || k == MX_CLASS_INF)
            continue;
        if (subnormal && k == MX_CLASS_NORMAL)
            continue;
        /* 16-bit formats: keep most exponents moderate, some far apart
         * (irregular groups, slow elements), none that overflow FP32 */
        if (f->bits == 16) {
            double v = fabs(mx_decode_double(f, c));
            double lim = gsl_rng_uniform(r) < 0.9 ? 0x1p13 : 0x1p50;
            if (v != 0 && (v > lim || v < 1 / lim))
                continue;
        }
        return c;
    }
}

static void put(void *p, const mx_format *f, size_t i, uint32_t c)
{
    if (f->bits == 8)
        ((uint8_t *)p)[i] = (uint8_t)c;
    else
        ((uint16_t *)p)[i] = (uint16_t)c;
}

static uint32_t get(const void *p, const mx_format *f, size_t i)
{
    return f->bits == 8 ? ((const uint8_t *)p)[i] : ((const uint16_t *)p)[i];
}

static void make_case(const family *fm, gsl_rng *r, gcase *c)
{
    const mx_format *f = mx_format_get(fm->fmt);
    memset(c, 0, sizeof *c);
    c->M = fm->M;
    c->N = fm->N;
    c->K = fm->K;
    c->G = fm->K / 32;
    size_t sz = f->bits / 8;
    c->a = malloc(c->M * c->K * sz);
    c->b = malloc(c->N * c->K * sz);
    for (size_t i = 0; i < c->M * c->K; i++)
        put(c->a, f, i, random_code(r, f, fm->subnormal));
    for (size_t i = 0; i < c->N * c->K; i++)
        put(c->b, f, i, random_code(r, f, fm->subnormal));
    if (fm->scaled) {
        c->sa = malloc(c->M * c->G);
        c->sb = malloc(c->N * c->G);
        for (size_t i = 0; i < c->M * c->G; i++)
            c->sa[i] = (uint8_t)(fm->smin + (int)gsl_rng_uniform_int(r, (unsigned long)(fm->smax - fm->smin + 1)));
        for (size_t i = 0; i < c->N * c->G; i++)
            c->sb[i] = (uint8_t)(fm->smin + (int)gsl_rng_uniform_int(r, (unsigned long)(fm->smax - fm->smin + 1)));
        for (size_t i = 0; i < c->M * c->G; i++)
            if (gsl_rng_uniform(r) < fm->zero_scale)
                c->sa[i] = 0;
    }
    if (fm->cancel) /* B row n = -(A row n % M) on every other group */
        for (size_t n = 0; n < c->N; n++)
            for (size_t k = 0; k < c->K; k++) {
                if ((k / 32) % 2)
                    continue;
                uint32_t code = get(c->a, f, (n % c->M) * c->K + k);
                double v = -mx_decode_double(f, code);
                put(c->b, f, n * c->K + k, mx_encode_rne(f, v));
                if (fm->scaled && c->sb)
                    c->sb[n * c->G + k / 32] = c->sa[(n % c->M) * c->G + k / 32]
                                                   ? c->sa[(n % c->M) * c->G + k / 32]
                                                   : 127;
            }
    if (fm->weighted) {
        c->w = malloc(c->M * sizeof *c->w);
        for (size_t m = 0; m < c->M; m++)
            c->w[m] = (float)gsl_rng_uniform_pos(r);
    }
    mx_operand A = {f, c->a, c->M, c->K, c->K, c->sa, c->G, 1, NULL};
    mx_operand B = {f, c->b, c->N, c->K, c->K, c->sb, c->G, 1, NULL};
    c->A = A;
    c->B = B;
    c->spec.decode = fm->decode;
    c->spec.model = mx_accum_default();
    c->spec.row_weight = c->w;
}

static void free_case(gcase *c)
{
    free(c->a);
    free(c->b);
    free(c->sa);
    free(c->sb);
    free(c->w);
}

static const char *model_names[] = {"fp32-group", "fp32-seq", "dequant-fp32"};

/* Max of |model - exact| / bound over the whole run, per family, and how
 * often the slow exact paths ran. */
static double max_ratio[NFAM];
static size_t slow_seen[NFAM], irr_seen[NFAM];

START_TEST(test_fast_exact_model_bound)
{
    const family *fm = &families[_i];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1000 + (unsigned long)_i);
    for (int rep = 0; rep < 3; rep++) {
        gcase c;
        make_case(fm, r, &c);
        size_t MN = c.M * c.N;
        double *ex = malloc(MN * 8), *ex2 = malloc(MN * 8), *bd = malloc(MN * 8);
        double *ba = malloc(MN * 8);
        float *ma = malloc(MN * 4), *md = malloc(MN * 4);
        uint16_t *mo = malloc(MN * 2);
        ck_assert_int_eq(mx_gemm_exact_mpfr(&c.spec, &c.A, &c.B, ex2), MX_OK);
        for (int mi = 0; mi < 3; mi++) {
            mx_accum_parse(model_names[mi], &c.spec.model);
            mx_gemm_out o = {ex, ma, mo, bd, NULL, ba};
            mx_gemm_stats st;
            ck_assert_int_eq(mx_gemm(&c.spec, &c.A, &c.B, &o, &st), MX_OK);
            slow_seen[_i] += st.slow_elements;
            irr_seen[_i] += st.irregular_groups;
            ck_assert_int_eq(mx_gemm_model_direct(&c.spec, &c.A, &c.B, md), MX_OK);
            for (size_t i = 0; i < MN; i++) {
                EXPECT(memcmp(&ex[i], &ex2[i], 8) == 0,
                       "%s: element %zu: fast exact %a, MPFR %a", fm->name, i,
                       ex[i], ex2[i]);
                double err = fabs((double)mx_bf16_to_float(mo[i]) - ex[i]);
                EXPECT(err <= bd[i], "%s %s: element %zu: |%a - %a| > bound %a",
                       fm->name, model_names[mi], i,
                       (double)mx_bf16_to_float(mo[i]), ex[i], bd[i]);
                EXPECT(memcmp(&ma[i], &md[i], 4) == 0,
                       "%s %s: element %zu: model %a, direct %a", fm->name,
                       model_names[mi], i, (double)ma[i], (double)md[i]);
                EXPECT(mo[i] == mx_bf16_from_float(ma[i]), "bf16 out %zu", i);
                /* the FP32 output (before the BF16 rounding) and its bound */
                EXPECT(fabs((double)ma[i] - ex[i]) <= ba[i] && ba[i] <= bd[i],
                       "%s %s: element %zu: FP32 |%a - %a| > bound_acc %a (B %a)",
                       fm->name, model_names[mi], i, (double)ma[i], ex[i], ba[i], bd[i]);
                if (bd[i] > 0 && err / bd[i] > max_ratio[_i])
                    max_ratio[_i] = err / bd[i];
            }
        }
        free(ex);
        free(ex2);
        free(bd);
        free(ba);
        free(ma);
        free(md);
        free(mo);
        free_case(&c);
    }
    gsl_rng_free(r);
}
END_TEST

/* FP32 sums of the scaled terms in random orders and random trees: the
 * bound claims to cover any kernel of the model family (MX operands: any
 * tree inside each 32-group, then any tree across the group partials;
 * unscaled operands: any tree at all), so it must cover these. */
static float tree_sum(float *t, size_t n, gsl_rng *r)
{
    while (n > 1) {
        size_t i = gsl_rng_uniform_int(r, n), j = gsl_rng_uniform_int(r, n - 1);
        if (j >= i)
            j++;
        float s = t[i] + t[j];
        t[i < j ? i : j] = s;
        t[i < j ? j : i] = t[n - 1];
        n--;
    }
    return t[0];
}

START_TEST(test_bound_covers_random_orders)
{
    const family *fm = &families[_i];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2000 + (unsigned long)_i);
    gcase c;
    make_case(fm, r, &c);
    const mx_format *f = mx_format_get(fm->fmt);
    size_t MN = c.M * c.N;
    double *ex = malloc(MN * 8), *bd = malloc(MN * 8);
    mx_gemm_out o = {ex, NULL, NULL, bd, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&c.spec, &c.A, &c.B, &o, NULL), MX_OK);
    float *t = malloc(c.K * sizeof *t);
    for (size_t m = 0; m < c.M; m++)
        for (size_t n = 0; n < c.N; n++)
            for (int trial = 0; trial < 20; trial++) {
                for (size_t k = 0; k < c.K; k++) {
                    float a = (float)mx_decode_double(f, get(c.a, f, m * c.K + k));
                    float b = (float)mx_decode_double(f, get(c.b, f, n * c.K + k));
                    float sc = 1;
                    if (c.sa)
                        sc = (float)mx_scale_value(fm->decode, c.sa[m * c.G + k / 32]) *
                             (float)mx_scale_value(fm->decode, c.sb[n * c.G + k / 32]);
                    t[k] = (float)((double)a * b) * sc;
                }
                float acc;
                if (c.sa) {
                    for (size_t g = 0; g < c.G; g++)
                        t[g] = tree_sum(t + g * 32, 32, r);
                    acc = tree_sum(t, c.G, r);
                } else {
                    acc = tree_sum(t, c.K, r);
                }
                if (c.w)
                    acc = acc * c.w[m];
                uint16_t out = mx_bf16_from_float(acc);
                double err = fabs((double)mx_bf16_to_float(out) - ex[m * c.N + n]);
                EXPECT(err <= bd[m * c.N + n],
                       "%s: random tree sum of (%zu,%zu): err %a > bound %a",
                       fm->name, m, n, err, bd[m * c.N + n]);
            }
    free(t);
    free(ex);
    free(bd);
    free_case(&c);
    gsl_rng_free(r);
}
END_TEST

/* The gradual-underflow assumption (docs/bounds.md): a kernel that flushes
 * FP32 subnormal partials to zero must fail.  The "subnormals" family
 * keeps every scaled partial p * sc in the subnormal range; the fp32-seq
 * arithmetic with p * sc flushed to zero leaves elements outside the
 * bound, the same arithmetic without the flush does not. */
START_TEST(test_flush_to_zero_caught)
{
    const family *fm = &families[5];
    ck_assert_str_eq(fm->name, "subnormals");
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    gcase c;
    make_case(fm, r, &c);
    const mx_format *f = mx_format_get(fm->fmt);
    size_t MN = c.M * c.N, outside_ftz = 0, outside_ok = 0, subnormal_terms = 0;
    double *ex = malloc(MN * 8), *bd = malloc(MN * 8);
    mx_gemm_out o = {ex, NULL, NULL, bd, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&c.spec, &c.A, &c.B, &o, NULL), MX_OK);
    for (size_t m = 0; m < c.M; m++)
        for (size_t n = 0; n < c.N; n++) {
            float acc[2] = {0, 0}; /* [0] gradual underflow, [1] flushed */
            for (size_t g = 0; g < c.G; g++) {
                float p = 0;
                for (size_t k = g * 32; k < g * 32 + 32; k++)
                    p = fmaf((float)mx_decode_double(f, get(c.a, f, m * c.K + k)),
                             (float)mx_decode_double(f, get(c.b, f, n * c.K + k)), p);
                float sc = (float)mx_scale_value(fm->decode, c.sa[m * c.G + g]) *
                           (float)mx_scale_value(fm->decode, c.sb[n * c.G + g]);
                float t = p * sc;
                subnormal_terms += t != 0 && fabsf(t) < FLT_MIN;
                acc[0] = acc[0] + t;
                acc[1] = acc[1] + (fabsf(t) < FLT_MIN ? 0.0f : t);
            }
            for (int v = 0; v < 2; v++) {
                double err = fabs((double)mx_bf16_to_float(mx_bf16_from_float(acc[v])) -
                                  ex[m * c.N + n]);
                if (!(err <= bd[m * c.N + n]))
                    *(v ? &outside_ftz : &outside_ok) += 1;
            }
        }
    printf("gemm: flush-to-zero of subnormal partials: %zu of %zu elements "
           "outside the bound (%zu subnormal partials), 0 expected without it: %zu\n",
           outside_ftz, MN, subnormal_terms, outside_ok);
    ck_assert_uint_gt(subnormal_terms, MN);
    ck_assert_uint_eq(outside_ok, 0);
    ck_assert_uint_gt(outside_ftz, MN / 2);
    free(ex);
    free(bd);
    free_case(&c);
    gsl_rng_free(r);
}
END_TEST

/* The sequential worst case of the depth term: one product L = 2^15 (a 128
 * x 128 product with scale product 2), then products t just under half an
 * FP32 ulp of L (1.875 2^-5 x 2^-6 x 2 = 0.9375 2^-9; ulp(2^15)/2 = 2^-9):
 * 31 in group 0 (after L, in k order) and one in each of the G - 2 middle
 * groups, and -L in the last group.  Summed in k order every t is lost:
 * the model returns 0 where the exact sum is (31 + G - 2) t, close to half
 * the depth term gamma_d 2L of the bound (d = 31 + G - 1).  fp32-group
 * keeps group 0's t (one rounding per group) and loses G - 2. */
START_TEST(test_seq_worst_case)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    const size_t G = 192, K = 32 * G;
    uint8_t *a = calloc(K, 1), *b = calloc(K, 1), sa[192], sb[192];
    uint8_t big = (uint8_t)mx_encode_rne(f, 128.0);
    uint8_t ta = (uint8_t)mx_encode_rne(f, 1.875 * 0x1p-5), tb = (uint8_t)mx_encode_rne(f, 0x1p-6);
    ck_assert(mx_decode_double(f, ta) == 1.875 * 0x1p-5 && mx_decode_double(f, tb) == 0x1p-6);
    a[0] = b[0] = big;
    for (size_t k = 1; k < 32; k++) {
        a[k] = ta;
        b[k] = tb;
    }
    for (size_t g = 1; g + 1 < G; g++) {
        a[32 * g + 5] = ta;
        b[32 * g + 5] = tb;
    }
    a[32 * (G - 1) + 7] = (uint8_t)mx_encode_rne(f, -128.0);
    b[32 * (G - 1) + 7] = big;
    for (size_t g = 0; g < G; g++) {
        sa[g] = 128; /* 2^1 */
        sb[g] = 127; /* 2^0 */
    }
    mx_operand A = {f, a, 1, K, K, sa, G, 1, NULL}, B = {f, b, 1, K, K, sb, G, 1, NULL};
    mx_gemm_spec s = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
    const char *models[] = {"fp32-seq", "fp32-group"};
    const double lost[] = {31.0 + (double)(G - 2), 0};
    double t = 0.9375 * 0x1p-9;
    for (int mi = 0; mi < 2; mi++) {
        ck_assert_int_eq(mx_accum_parse(models[mi], &s.model), 0);
        double ex, bd, ba;
        float ma;
        uint16_t mo;
        mx_gemm_out o = {&ex, &ma, &mo, &bd, NULL, &ba};
        ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_OK);
        /* independent expectations: exact (31 + G - 2) t; the model loses
         * the lost[] terms */
        ck_assert(ex == (31.0 + (double)(G - 2)) * t);
        double want = ex - lost[mi] * t;
        if (mi == 1) /* group 0 rounded once to FP32, then the rest lost */
            want = (double)(float)(0x1p14 + 31 * 1.875 * 0x1p-11) * 2 - 0x1p15;
        ck_assert_msg(fabs((double)ma - want) < 1e-12, "%s: model %a, expected %a",
                      models[mi], (double)ma, want);
        double err = fabs((double)mx_bf16_to_float(mo) - ex);
        printf("gemm: sequential worst case, %-10s |model - exact| / bound = %.4f\n",
               models[mi], err / bd);
        ck_assert_msg(err <= bd, "%s: err %a > bound %a", models[mi], err, bd);
        ck_assert_msg(err / bd >= 0.25, "%s: err/B %g: the depth term is not "
                      "stressed", models[mi], err / bd);
        /* the FP32 output and its own bound: the depth term dominates */
        double ea = fabs((double)ma - ex);
        printf("gemm: sequential worst case, %-10s FP32 |acc - exact| / bound_acc = %.4f\n",
               models[mi], ea / ba);
        ck_assert(ea <= ba && ea / ba >= 0.25);
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(test_bound_not_vacuous)
{
    /* runs after the loop test in the same process (CK_NOFORK in main) */
    /* every family on its own: a family whose models stay far inside the
     * bound tests nothing (a bound 4x too loose would pass it) */
    for (int i = 0; i < NFAM; i++) {
        printf("gemm: %-28s max |model - exact| / bound = %.4f\n",
               families[i].name, max_ratio[i]);
        EXPECT(max_ratio[i] >= 0.25, "family %s: max |model - exact| / bound "
               "is only %g", families[i].name, max_ratio[i]);
    }
    /* the adversarial families reach the GMP and irregular paths */
    ck_assert(slow_seen[3] > 0);
    ck_assert(irr_seen[7] > 0 && irr_seen[9] > 0);
    ck_assert(slow_seen[9] > 0);
    ck_assert_msg(max_ratio[0] > 0.1, "narrow family ratio %g", max_ratio[0]);
}
END_TEST

/* BF16 ties: exact results at the midpoint of two BF16 values round to
 * even in the model output (fp32-group keeps the exact value). */
START_TEST(test_bf16_tie_rounding)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    uint8_t a[32] = {0}, b[32] = {0}, sa[1] = {127}, sb[1] = {127};
    /* 1 + 2^-8 is the midpoint of 1 and 1 + 2^-7: a = {1, 2^-4}, b = {1, 2^-4} */
    a[0] = (uint8_t)mx_encode_rne(f, 1.0);
    b[0] = a[0];
    a[5] = (uint8_t)mx_encode_rne(f, 0x1p-4);
    b[5] = a[5];
    mx_operand A = {f, a, 1, 32, 32, sa, 1, 1, NULL}, B = {f, b, 1, 32, 32, sb, 1, 1, NULL};
    mx_gemm_spec s = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
    double ex;
    float ma;
    uint16_t mo;
    mx_gemm_out o = {&ex, &ma, &mo, NULL, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_OK);
    ck_assert(ex == 1 + 0x1p-8);
    ck_assert(ma == 1 + 0x1p-8f);
    ck_assert_uint_eq(mo, 0x3F80); /* tie to even: 1.0 */
    a[6] = (uint8_t)mx_encode_rne(f, 0x1p-10); /* above the tie */
    b[6] = (uint8_t)mx_encode_rne(f, 0x1p-10 * 1.0);
    b[6] = (uint8_t)mx_encode_rne(f, 1.0);
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_OK);
    ck_assert_uint_eq(mo, 0x3F81);
}
END_TEST

/* Gathered rows and packed scales give the same results as the plain
 * layout. */
START_TEST(test_gather_and_packed_layout)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    gcase c;
    make_case(&families[1], r, &c);
    size_t MN = c.M * c.N;
    double *ex = malloc(MN * 8), *ex2 = malloc(MN * 8);
    mx_gemm_out o = {ex, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&c.spec, &c.A, &c.B, &o, NULL), MX_OK);
    /* B's scales packed [G][N] */
    uint8_t *packed = malloc(c.N * c.G);
    mx_scales_pack(c.sb, 1, c.N, c.G, packed);
    mx_operand B2 = c.B;
    B2.scales = packed;
    B2.srs = 1;
    B2.sgs = c.N;
    /* A read through a reversing gather of a reversed copy */
    uint8_t *ar = malloc(c.M * c.K), *sar = malloc(c.M * c.G);
    int32_t *idx = malloc(c.M * sizeof *idx);
    float *wr = malloc(c.M * sizeof *wr);
    for (size_t m = 0; m < c.M; m++) {
        memcpy(ar + (c.M - 1 - m) * c.K, (uint8_t *)c.a + m * c.K, c.K);
        memcpy(sar + (c.M - 1 - m) * c.G, c.sa + m * c.G, c.G);
        idx[m] = (int32_t)(c.M - 1 - m);
        wr[m] = c.w[m];
    }
    mx_operand A2 = c.A;
    A2.codes = ar;
    A2.scales = sar;
    A2.row_idx = idx;
    mx_gemm_out o2 = {ex2, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&c.spec, &A2, &B2, &o2, NULL), MX_OK);
    ck_assert(memcmp(ex, ex2, MN * 8) == 0);
    free(packed);
    free(ar);
    free(sar);
    free(idx);
    free(wr);
    free(ex);
    free(ex2);
    free_case(&c);
    gsl_rng_free(r);
}
END_TEST

/* Block-FMA models through the engine: the model output equals the direct
 * per-element evaluation, and every element lies within the block bound. */
static const struct { const char *model; int fam; } block_cases[] = {
    {"block:hopper-fp8", 0}, {"block:hopper-fp8", 4}, {"block:cdna3-fp8", 0},
    {"block:cdna3-fp8", 1},  {"block:exact-rne", 0},   {"block:hopper-bf16", 9},
    {"block:cdna3-bf16", 10},
};

START_TEST(test_block_models)
{
    const family *fm = &families[block_cases[_i].fam];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3000 + (unsigned long)_i);
    gcase c;
    make_case(fm, r, &c);
    ck_assert_int_eq(mx_accum_parse(block_cases[_i].model, &c.spec.model), 0);
    size_t MN = c.M * c.N;
    double *ex = malloc(MN * 8), *bd = malloc(MN * 8);
    float *ma = malloc(MN * 4), *md = malloc(MN * 4);
    uint16_t *mo = malloc(MN * 2);
    mx_gemm_out o = {ex, ma, mo, bd, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&c.spec, &c.A, &c.B, &o, NULL), MX_OK);
    ck_assert_int_eq(mx_gemm_model_direct(&c.spec, &c.A, &c.B, md), MX_OK);
    double worst = 0;
    for (size_t i = 0; i < MN; i++) {
        double err = fabs((double)mx_bf16_to_float(mo[i]) - ex[i]);
        EXPECT(err <= bd[i], "%s on %s: element %zu: |%a - %a| > bound %a",
               block_cases[_i].model, fm->name, i, (double)mx_bf16_to_float(mo[i]),
               ex[i], bd[i]);
        EXPECT(memcmp(&ma[i], &md[i], 4) == 0, "%s: model %a, direct %a",
               block_cases[_i].model, (double)ma[i], (double)md[i]);
        if (bd[i] > 0 && err / bd[i] > worst)
            worst = err / bd[i];
    }
    printf("gemm: %-18s on %-26s max |model - exact| / bound = %.4f\n",
           block_cases[_i].model, fm->name, worst);
    free(ex);
    free(bd);
    free(ma);
    free(md);
    free(mo);
    free_case(&c);
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_bad_operands_refused)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    uint8_t a[64] = {0}, b[64] = {0}, sa[2] = {127, 127}, sb[2] = {127, 127};
    mx_operand A = {f, a, 1, 64, 64, sa, 2, 1, NULL}, B = {f, b, 1, 64, 64, sb, 2, 1, NULL};
    mx_gemm_spec s = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
    double ex;
    mx_gemm_out o = {&ex, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_OK);
    a[10] = 0x80; /* the FNUZ NaN */
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_ERANGE);
    a[10] = 0;
    sb[1] = 255;
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_ERANGE);
    sb[1] = 127;
    /* scales group-major (a row's bytes 2 apart): the byte-by-byte scan */
    uint8_t a2[128] = {0}, sa2[4] = {127, 127, 127, 255}; /* row 1, group 1 */
    double ex2[2];
    mx_operand A2 = {f, a2, 2, 64, 64, sa2, 1, 2, NULL};
    mx_gemm_out o2 = {ex2, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(mx_gemm(&s, &A2, &B, &o2, NULL), MX_ERANGE);
    sa2[3] = 127;
    ck_assert_int_eq(mx_gemm(&s, &A2, &B, &o2, NULL), MX_OK);
    mx_operand B3 = B;
    B3.K = 32;
    B3.ld = 32;
    ck_assert_int_eq(mx_gemm(&s, &A, &B3, &o, NULL), MX_EINVAL);
    mx_operand A4 = A;
    A4.K = A4.ld = 48; /* not a multiple of 32 with scales */
    mx_operand B4 = B;
    B4.K = B4.ld = 48;
    ck_assert_int_eq(mx_gemm(&s, &A4, &B4, &o, NULL), MX_EINVAL);
    mx_operand B5 = B;
    B5.scales = NULL;
    ck_assert_int_eq(mx_gemm(&s, &A, &B5, &o, NULL), MX_EINVAL);
    float w = NAN;
    s.row_weight = &w;
    ck_assert_int_eq(mx_gemm(&s, &A, &B, &o, NULL), MX_ERANGE);
    s.row_weight = NULL;
    mx_accum_model bad;
    ck_assert_int_eq(mx_accum_parse("fp64", &bad), -1);
    ck_assert_int_eq(mx_accum_parse("block:volta-fp8", &bad), -1);
    ck_assert_int_eq(mx_accum_parse("block:hopper-fp8", &bad), 0);
    ck_assert(bad.kind == MX_ACC_BLOCK && bad.block != NULL);
}
END_TEST

/* The fused FP8 kernel (gemm_fused.c) against the engine of gemm.c (BLAS
 * slices): every output bit for bit, on every E4M3 family (huge scale
 * spreads with GMP elements, cancellation, subnormals, zero scales, both
 * decodes), under the fp32-group model, a block model and no model, through
 * gathered rows and packed scales, and with every output but one omitted
 * (each output is computed on request, not as a side effect of another).
 * Also: a NaN code in a zero-scale group of B is refused by both. */
static const char *fused_models[] = {"fp32-group", "block:hopper-fp8", NULL};

/* The six outputs of one mx_gemm call, kept to compare two calls (fused
 * pass on and off) bit for bit.  request() asks for every output but the
 * one numbered drop (0 exact, 1 model_acc, 2 model_out, 3 bound, 4
 * sum_abs, 5 bound_acc; -1 drops none), the model's two only under a model
 * and bound_acc only with with_ba.  Every buffer is poisoned before each
 * call, so an output not written differs from one written. */
typedef struct {
    size_t n;
    double *ex, *bd, *sa, *ba;
    float *ma;
    uint16_t *mo;
} gouts;

static void gouts_alloc(gouts *g, size_t n)
{
    g->n = n;
    g->ex = malloc(n * 8);
    g->bd = malloc(n * 8);
    g->sa = malloc(n * 8);
    g->ba = malloc(n * 8);
    g->ma = malloc(n * 4);
    g->mo = malloc(n * 2);
    ck_assert(g->ex && g->bd && g->sa && g->ba && g->ma && g->mo);
}

static void gouts_free(gouts *g)
{
    free(g->ex);
    free(g->bd);
    free(g->sa);
    free(g->ba);
    free(g->ma);
    free(g->mo);
}

static mx_gemm_out gouts_request(gouts *g, int model, int drop, int with_ba)
{
    memset(g->ex, 0x5A, g->n * 8);
    memset(g->bd, 0x5A, g->n * 8);
    memset(g->sa, 0x5A, g->n * 8);
    memset(g->ba, 0x5A, g->n * 8);
    memset(g->ma, 0x5A, g->n * 4);
    memset(g->mo, 0x5A, g->n * 2);
    return (mx_gemm_out){drop == 0 ? NULL : g->ex, !model || drop == 1 ? NULL : g->ma,
                         !model || drop == 2 ? NULL : g->mo, drop == 3 ? NULL : g->bd,
                         drop == 4 ? NULL : g->sa,
                         !with_ba || drop == 5 ? NULL : g->ba};
}

/* Every output of x and y the same bits; what names the call. */
static void gouts_expect_same(const gouts *x, const gouts *y, const char *what)
{
    size_t n = x->n;
    EXPECT(memcmp(x->ex, y->ex, n * 8) == 0, "%s: exact differs", what);
    EXPECT(memcmp(x->bd, y->bd, n * 8) == 0, "%s: bound differs", what);
    EXPECT(memcmp(x->sa, y->sa, n * 8) == 0, "%s: sum_abs differs", what);
    EXPECT(memcmp(x->ba, y->ba, n * 8) == 0, "%s: bound_acc differs", what);
    EXPECT(memcmp(x->ma, y->ma, n * 4) == 0, "%s: model_acc differs", what);
    EXPECT(memcmp(x->mo, y->mo, n * 2) == 0, "%s: model_out differs", what);
}

/* The call under spec twice, into g[0] by the engine (the fused passes
 * off) and into g[1] with them on, requesting the outputs that model, drop
 * and with_ba name (gouts_request); the second run must have been taken
 * by a fused pass (what names the call in the message).  st: each run's
 * statistics, or NULL. */
static void engine_then_fused(const mx_gemm_spec *spec, const mx_operand *A,
                              const mx_operand *B, int model, int drop, int with_ba,
                              gouts g[2], mx_gemm_stats st[2], const char *what)
{
    int best = mxg_fused_dots(-1);
    for (int v = 0; v < 2; v++)
        for (int kind = v ? 0 : best; kind <= best; kind++) {
            /* the fused pass under each tile-dot body this processor runs
             * (the best last, the one g[1] keeps): all against the engine */
            mx_gemm_out o = gouts_request(&g[v], model, drop, with_ba);
            unsigned long before = mxg_fused_count();
            mxg_fused_enable(v);
            mxg_fused_dots(kind);
            ck_assert_int_eq(mx_gemm(spec, A, B, &o, st ? &st[v] : NULL), MX_OK);
            mxg_fused_enable(1);
            mxg_fused_dots(best);
            if (v == 1) {
                EXPECT(mxg_fused_count() > before, "%s: the fused pass did not take the call",
                       what);
                if (kind < best) {
                    char w[200];
                    snprintf(w, sizeof w, "%s, tile dots %d", what, kind);
                    gouts_expect_same(&g[0], &g[1], w);
                }
            }
        }
}

/* engine_then_fused, then both runs' outputs the same bits and the fused
 * run's exact values MPFR's (ref: scratch for them, as many as g's) */
static void fused_as_engine_and_mpfr(const mx_gemm_spec *spec, const mx_operand *A,
                                     const mx_operand *B, int model, int with_ba, gouts g[2],
                                     double *ref, const char *what)
{
    engine_then_fused(spec, A, B, model, -1, with_ba, g, NULL, what);
    gouts_expect_same(&g[0], &g[1], what);
    ck_assert_int_eq(mx_gemm_exact_mpfr(spec, A, B, ref), MX_OK);
    EXPECT(memcmp(g[1].ex, ref, g[1].n * 8) == 0, "%s: exact differs from MPFR", what);
}

static int fused_run(const gcase *c, const mx_operand *A, const mx_operand *B,
                     const char *model, int fused, int drop, gouts *g,
                     mx_gemm_stats *st)
{
    mx_gemm_spec spec = c->spec;
    if (model)
        mx_accum_parse(model, &spec.model);
    mx_gemm_out o = gouts_request(g, model != NULL, drop, 0);
    mxg_fused_enable(fused);
    int rc = (int)mx_gemm(&spec, A, B, &o, st);
    mxg_fused_enable(1);
    return rc;
}

/* Bits from the lowest set one to the highest of |v|. */
static int significant_bits(__int128 v)
{
    unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    if (!u)
        return 0;
    int lo = 0, hi = 127;
    while (!(u >> lo & 1))
        lo++;
    while (!(u >> hi & 1))
        hi--;
    return hi - lo + 1;
}

/* The fused kernel's exact values from its int64 sums, against the engine
 * and the MPFR oracle.  Group 0 of every row: scale 2^0 and 31 odd
 * subnormal codes (its dot an odd multiple of 2^-20, the elements' grid);
 * the other groups: codes of 2^6 .. 240 and scales 2^8 and 2^9 (a spread
 * of 9 binades a side, the most the int64 sums take here).  So sums carry
 * up to 59 significant bits, and one rounding of v 2^e w is not a conversion to
 * binary64 then a multiply; N = 24, a pair of weight tiles and one alone
 * (the kernel's two dots bodies).  Weights of both signs; row 0 of A against row
 * 0 of B cancels to exactly zero in every group: +0 unweighted, and 0
 * times its weight -0.75, -0, weighted (as MPFR rounds it). */
START_TEST(test_fused_int64_sums_rounded_once)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7300);
    size_t M = 9, N = 24, K = 384, G = K / 32, MN = M * N;
    uint8_t *a = malloc(M * K), *b = malloc(N * K), *sa = malloc(M * G), *sb = malloc(N * G);
    double *ref = malloc(MN * 8);
    float w[9];
    ck_assert(a && b && sa && sb && ref);
    uint8_t *ops[2] = {a, b};
    size_t rows[2] = {M, N};
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < rows[side] * K; i++) {
            size_t k = i % K;
            uint8_t sign = (uint8_t)(gsl_rng_uniform_int(r, 2) << 7);
            ops[side][i] = k == 31  ? 0
                           : k < 32 ? (uint8_t)((1 + 2 * gsl_rng_uniform_int(r, 4)) | sign)
                                    : (uint8_t)((0x70 + gsl_rng_uniform_int(r, 0x10)) | sign);
        }
    for (size_t k = 0; k < K; k++) {
        a[k] = 0x70;
        b[k] = k % 32 < 16 ? 0x68 : 0xE8;
    }
    for (size_t m = 0; m < M; m++)
        for (size_t g = 0; g < G; g++)
            sa[m * G + g] = (uint8_t)(g ? 135 + (g + m) % 2 : 127);
    for (size_t n = 0; n < N; n++)
        for (size_t g = 0; g < G; g++)
            sb[n * G + g] = (uint8_t)(g ? 135 + (g * 7 + n) % 2 : 127);
    /* the sums on the grid 2^-20, by integers (a second computation): how
     * many need more than binary64's 53 bits */
    size_t past53 = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            __int128 v = 0;
            for (size_t k = 0; k < K; k++) {
                int64_t p = (int64_t)ldexp(mx_decode_double(f, a[m * K + k]), 10) *
                            (int64_t)ldexp(mx_decode_double(f, b[n * K + k]), 10);
                v += (__int128)p * ((__int128)1 << ((sa[m * G + k / 32] - 127) +
                                                    (sb[n * G + k / 32] - 127)));
            }
            past53 += significant_bits(v) > 53;
        }
    EXPECT(past53 >= MN / 4, "only %zu of %zu sums need more than 53 bits", past53, MN);
    for (size_t m = 0; m < M; m++)
        w[m] = (float)(m % 2 ? -gsl_rng_uniform_pos(r) : gsl_rng_uniform_pos(r));
    w[0] = -0.75f;
    mx_operand A = {f, a, M, K, K, sa, G, 1, NULL};
    mx_operand B = {f, b, N, K, K, sb, G, 1, NULL};
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    for (int weighted = 0; weighted < 2; weighted++) {
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), weighted ? w : NULL};
        char what[96];
        snprintf(what, sizeof what, "int64 sums to 2^59, weighted %d", weighted);
        fused_as_engine_and_mpfr(&spec, &A, &B, 0, 0, g, ref, what);
        EXPECT(g[1].ex[0] == 0 && !!signbit(g[1].ex[0]) == weighted, "%s: the cancelled sum is %a",
               what, g[1].ex[0]);
    }
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(a);
    free(b);
    free(sa);
    free(sb);
    free(ref);
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_fused_matches_engine)
{
    const family *fm = &families[_i];
    if (!mxg_fused_applies(&(mx_gemm_spec){fm->decode, mx_accum_default(), NULL},
                           &(mx_operand){mx_format_get(fm->fmt), NULL, 0, 32, 32,
                                         fm->scaled ? (const uint8_t *)"" : NULL, 1, 1, NULL},
                           &(mx_operand){mx_format_get(fm->fmt), NULL, 0, 32, 32,
                                         fm->scaled ? (const uint8_t *)"" : NULL, 1, 1, NULL})) {
        /* E4M3 operands always take the fused kernel */
        EXPECT(fm->fmt != MX_E4M3FN && fm->fmt != MX_E4M3FNUZ,
               "%s: the fused kernel does not take E4M3 operands", fm->name);
        return; /* not an FP8 family on one fixed grid */
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5000 + (unsigned long)_i);
    gcase c;
    make_case(fm, r, &c);
    size_t MN = c.M * c.N;
    /* A gathered in reverse, B's scales packed [G][N] */
    uint8_t *packed = malloc(c.N * c.G);
    mx_scales_pack(c.sb, 1, c.N, c.G, packed);
    mx_operand B2 = c.B;
    B2.scales = packed;
    B2.srs = 1;
    B2.sgs = c.N;
    int32_t *idx = malloc(c.M * sizeof *idx);
    for (size_t m = 0; m < c.M; m++)
        idx[m] = (int32_t)(c.M - 1 - m);
    mx_operand A2 = c.A;
    A2.row_idx = idx;
    const mx_operand *as[2] = {&c.A, &A2}, *bs[2] = {&c.B, &B2};
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    size_t slow = 0;
    for (int lay = 0; lay < 2; lay++)
        for (int mi = 0; mi < 3; mi++)
            for (int drop = -1; drop < 5; drop++) {
                mx_gemm_stats st[2];
                char what[160];
                snprintf(what, sizeof what, "%s %s layout %d drop %d", fm->name,
                         fused_models[mi] ? fused_models[mi] : "no model", lay, drop);
                int best = mxg_fused_dots(-1);
                for (int v = 0; v < 2; v++)
                    for (int kind = v ? 0 : best; kind <= best; kind++) {
                        /* every tile-dot body this processor runs, the best
                         * last (the one g[1] keeps) */
                        mxg_fused_dots(kind);
                        ck_assert_int_eq(fused_run(&c, as[lay], bs[lay], fused_models[mi],
                                                   v, drop, &g[v], &st[v]),
                                         MX_OK);
                        mxg_fused_dots(best);
                        if (v == 1 && kind < best) {
                            char w[200];
                            snprintf(w, sizeof w, "%s, tile dots %d", what, kind);
                            gouts_expect_same(&g[0], &g[1], w);
                        }
                    }
                gouts_expect_same(&g[0], &g[1], what);
                EXPECT(st[0].elements == st[1].elements &&
                           st[0].slow_elements == st[1].slow_elements,
                       "%s: statistics differ: %zu/%zu slow", fm->name, st[0].slow_elements,
                       st[1].slow_elements);
                slow += st[1].slow_elements;
            }
    if (!strcmp(fm->name, "huge scale spread"))
        EXPECT(slow > 0, "the huge spread family never reached the GMP elements");
    /* a NaN code in a zero-scale group of B: refused either way */
    if (fm->zero_scale > 0) {
        uint8_t *bb = c.b, *sb = c.sb;
        uint8_t keep = bb[5], keeps = sb[0];
        bb[5] = 0x80; /* the FNUZ NaN */
        sb[0] = 0;
        for (int v = 0; v < 2; v++)
            ck_assert_int_eq(fused_run(&c, &c.A, &c.B, "fp32-group", v, -1, &g[v], NULL),
                             MX_ERANGE);
        bb[5] = keep;
        sb[0] = keeps;
    }
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(packed);
    free(idx);
    free_case(&c);
    gsl_rng_free(r);
}
END_TEST

/* The fused pass for 16-bit operands (BF16, FP16) against the engine, bit
 * for bit on every output, and against MPFR: values within 2^+-6 (groups
 * that fit the windows, so the fused pass takes the call: the counter
 * says so), zeros, a K that is not a multiple of 32, row weights, a gather,
 * three models and every output subset.  Then one huge value (a group
 * wider than any window): the fused pass splits it as the engine does and
 * must still agree. */
static uint16_t narrow16(gsl_rng *r, const mx_format *f)
{
    if (gsl_rng_uniform(r) < 0.05)
        return 0;
    double v = ldexp(1.0 + (double)gsl_rng_uniform_int(r, 256) / 256.0,
                     (int)gsl_rng_uniform_int(r, 13) - 6);
    return (uint16_t)mx_encode_rne(f, gsl_rng_uniform(r) < 0.5 ? -v : v);
}

/* The fused FP8 kernel's row facts on a last group shorter than 32
 * (unscaled E4M3, K = 70): a row whose largest |value| and only nonzero
 * codes lie in the short group, an all-zero row, every output against the
 * engine and the exact values against MPFR; then a NaN code in the short
 * group of B, and of A, refused by both.  A kernel that skipped the short
 * group's bytes would miss that row's amax (its bound differs) and the
 * NaNs. */
START_TEST(test_fused_short_group)
{
    static const mx_format_id fmts[] = {MX_E4M3FN, MX_E4M3FNUZ};
    const mx_format *f = mx_format_get(fmts[_i]);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7100 + (unsigned long)_i);
    size_t M = 5, N = 11, K = 70, MN = M * N;
    uint8_t *a = malloc(M * K), *b = malloc(N * K);
    for (size_t i = 0; i < M * K; i++)
        a[i] = (uint8_t)random_code(r, f, 0);
    for (size_t i = 0; i < N * K; i++)
        b[i] = (uint8_t)random_code(r, f, 0);
    memset(b + 2 * K, 0, K); /* row 2: zeros, then its largest code at k = 69 */
    b[2 * K + 66] = 0x11;
    b[2 * K + 69] = 0x7E; /* larger than any code of the row before it */
    memset(b + 4 * K, 0, K);  /* row 4: all zero */
    memset(a + 1 * K, 0, 64); /* row 1 of A: nonzero only in the short group */
    double *ref = malloc(MN * 8);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    mx_operand A = {f, a, M, K, K, NULL, 0, 0, NULL};
    mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
    for (int mi = 0; mi < 2; mi++) {
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
        if (fused_models[mi])
            mx_accum_parse(fused_models[mi], &spec.model);
        char what[96];
        snprintf(what, sizeof what, "%s K=70 %s", f->name, fused_models[mi]);
        fused_as_engine_and_mpfr(&spec, &A, &B, 1, 0, g, ref, what);
    }
    uint8_t nan = f->id == MX_E4M3FN ? 0x7F : 0x80;
    for (int side = 0; side < 2; side++) {
        uint8_t *p = side ? a + 3 * K + 68 : b + 3 * K + 68, keep = *p;
        *p = nan;
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
        for (int v = 0; v < 2; v++) {
            mx_gemm_out o = gouts_request(&g[v], 1, -1, 0);
            mxg_fused_enable(v);
            EXPECT(mx_gemm(&spec, &A, &B, &o, NULL) == MX_ERANGE,
                   "%s: a NaN in the short group of %s not refused (fused %d)", f->name,
                   side ? "A" : "B", v);
            mxg_fused_enable(1);
        }
        *p = keep;
    }
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(ref);
    free(a);
    free(b);
    gsl_rng_free(r);
}
END_TEST

/* The code tables count the bits a value occupies: for every code of
 * every 8- and 16-bit format, m 2^e equals the decoded value and m is odd
 * (or 0), checked against mx_decode_double exhaustively; and a BF16 group
 * holding FP8 values dequantized with one scale (E4M3FN's largest, 448,
 * and its smallest subnormal, 2^-9, times 2^s for several s) is 18 bits
 * wide, as the FP8 codes are -- the table of the significand (2^-9 as
 * 128 2^-16) would make it 25 and every such weight group wider than the
 * 18-bit window its natural width should earn. */
START_TEST(test_code_table_trimmed)
{
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        const mxg_code_table *ct = mxg_code_table_get(f);
        if (f->bits > 16)
            continue;
        ck_assert_ptr_nonnull(ct);
        size_t bad = 0;
        for (size_t c = 0; c < ct->n; c++) {
            if (ct->bad[c])
                continue;
            double v = mx_decode_double(f, (uint32_t)c);
            if (ldexp((double)ct->m[c], ct->e[c]) != v || (ct->m[c] && !(ct->m[c] & 1)))
                bad++;
        }
        EXPECT(bad == 0, "%s: %zu codes whose table entry is not the value with m odd",
               f->name, bad);
        /* mxg_fixed_unit's lowest exponent and highest top, from the decoded
         * values alone: v = odd 2^lo_v, |v| < 2^top_v (frexp) */
        int lo = INT_MAX, hi = INT_MIN;
        for (size_t c = 0; c < ct->n; c++) {
            double v = mx_decode_double(f, (uint32_t)c);
            if (v == 0 || !isfinite(v))
                continue;
            int ex, el = 0;
            frexp(v, &ex);
            while (fmod(ldexp(v, -el), 2.0) == 0.0)
                el++;
            while (fmod(ldexp(v, -el), 1.0) != 0.0)
                el--;
            lo = el < lo ? el : lo;
            hi = ex > hi ? ex : hi;
        }
        int unit, topmax, fixed = mxg_fixed_unit(ct, &unit, &topmax);
        EXPECT(unit == lo && topmax == hi, "%s: fixed unit facts %d..%d, values say %d..%d",
               f->name, unit, topmax, lo, hi);
        EXPECT(fixed == (ct->n == 256 && hi - lo <= 24), "%s: fixed unit %d", f->name, fixed);
        if (id == MX_E4M3FN || id == MX_E4M3FNUZ)
            EXPECT(fixed && hi - lo == 18, "%s: not a fixed unit of 18 binades", f->name);
    }
    const mx_format *bf = mx_format_get(MX_BF16);
    for (int sc = -20; sc <= 20; sc += 10) {
        uint16_t g[32];
        for (int k = 0; k < 32; k++)
            g[k] = (uint16_t)mx_encode_rne(bf, ldexp(k % 2 ? 448.0 : 1.0, k % 2 ? sc : sc - 9));
        mx_operand o = {bf, g, 1, 32, 32, NULL, 0, 0, NULL};
        EXPECT(mxg_natural_width(&o) == 18, "scale 2^%d: dequantized FP8 group %d bits wide",
               sc, mxg_natural_width(&o));
    }
}
END_TEST

START_TEST(test_fused16_matches_engine)
{
    static const mx_format_id fmts[] = {MX_BF16, MX_FP16};
    static const char *models[] = {"fp32-group", "block:hopper-bf16", NULL};
    const mx_format *f = mx_format_get(fmts[_i]);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 900 + (unsigned long)_i);
    size_t M = 7, N = 13, K = 200, MN = M * N;
    uint16_t *a = malloc(M * K * 2), *b = malloc(N * K * 2);
    for (size_t i = 0; i < M * K; i++)
        a[i] = narrow16(r, f);
    for (size_t i = 0; i < N * K; i++)
        b[i] = narrow16(r, f);
    float w[7];
    int32_t idx[7];
    for (size_t m = 0; m < M; m++) {
        w[m] = (float)gsl_rng_uniform_pos(r);
        idx[m] = (int32_t)(M - 1 - m);
    }
    double *ref = malloc(MN * 8);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    for (int wide = 0; wide < 2; wide++) {
        if (wide)
            b[3 * K + 40] = (uint16_t)mx_encode_rne(f, f->id == MX_BF16 ? 0x1p60 : 0x1p14);
        for (int gather = 0; gather < 2; gather++)
            for (int mi = 0; mi < 3; mi++)
                for (int drop = -1; drop < 5; drop++) {
                    mx_operand A = {f, a, M, K, K, NULL, 0, 0, gather ? idx : NULL};
                    mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
                    mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(),
                                         gather ? NULL : w};
                    if (models[mi])
                        mx_accum_parse(models[mi], &spec.model);
                    char what[160];
                    snprintf(what, sizeof what, "%s wide %d gather %d %s drop %d", f->name,
                             wide, gather, models[mi] ? models[mi] : "-", drop);
                    engine_then_fused(&spec, &A, &B, models[mi] != NULL, drop, 0, g, NULL,
                                      what);
                    gouts_expect_same(&g[0], &g[1], what);
                    if (drop == -1 && mi == 0) {
                        ck_assert_int_eq(mx_gemm_exact_mpfr(&spec, &A, &B, ref), MX_OK);
                        EXPECT(memcmp(g[1].ex, ref, MN * 8) == 0,
                               "%s: exact differs from MPFR", f->name);
                    }
                }
    }
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(ref);
    free(a);
    free(b);
    gsl_rng_free(r);
}
END_TEST

/* Groups wider than the windows on both sides, split by the fused pass as
 * the engine's prep splits them: values over 2^+-e (BF16 e = 40, past any
 * window; FP16 its whole range), all-zero rows and columns, one row of
 * each operand with scale-free spreads of ~2^+-100 (BF16: elements past
 * 128 bits, summed in GMP, whose residual terms the engine adds one by
 * one), row weights, a gather, three models and every output subset; every
 * output bit for bit against the engine (the fused pass off), the exact
 * values against MPFR, the irregular groups counted as the engine counts
 * them.  Then the comparison must fail on a planted one-ulp error. */
static uint16_t wide16(gsl_rng *r, const mx_format *f, int e)
{
    if (gsl_rng_uniform(r) < 0.1)
        return 0;
    double v = ldexp(1.0 + (double)gsl_rng_uniform_int(r, 256) / 256.0,
                     (int)gsl_rng_uniform_int(r, 2 * (unsigned long)e + 1) - e);
    return (uint16_t)mx_encode_rne(f, gsl_rng_uniform(r) < 0.5 ? -v : v);
}

START_TEST(test_fused16_split_groups)
{
    static const mx_format_id fmts[] = {MX_BF16, MX_FP16};
    static const char *models[] = {"fp32-group", "block:hopper-bf16", NULL};
    const mx_format *f = mx_format_get(fmts[_i]);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    unsigned long seed = 1300 + (unsigned long)_i;
    gsl_rng_set(r, seed);
    size_t M = 6, N = 19, K = 232, MN = M * N;
    int e = f->id == MX_BF16 ? 40 : 12;
    uint16_t *a = malloc(M * K * 2), *b = malloc(N * K * 2);
    for (size_t i = 0; i < M * K; i++)
        a[i] = wide16(r, f, e);
    for (size_t i = 0; i < N * K; i++)
        b[i] = wide16(r, f, e);
    memset(a + 2 * K, 0, K * 2);  /* an all-zero row */
    memset(b + 5 * K, 0, K * 2);  /* an all-zero column */
    for (size_t k = 0; k < K; k++) /* narrow groups: fit the windows */
        b[7 * K + k] = (uint16_t)mx_encode_rne(f, k % 3 ? 1.5 : -0.75);
    if (f->id == MX_BF16) {
        for (size_t k = 0; k < K; k++) { /* spreads past 128 bits */
            a[4 * K + k] = wide16(r, f, 100);
            b[11 * K + k] = wide16(r, f, 100);
        }
    }
    float w[6];
    int32_t idx[6];
    for (size_t m = 0; m < M; m++) {
        w[m] = (float)gsl_rng_uniform_pos(r);
        idx[m] = (int32_t)(M - 1 - m);
    }
    double *ref = malloc(MN * 8);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    size_t slow = 0;
    for (int gather = 0; gather < 2; gather++)
        for (int mi = 0; mi < 3; mi++)
            for (int drop = -1; drop < 6; drop++) {
                mx_operand A = {f, a, M, K, K, NULL, 0, 0, gather ? idx : NULL};
                mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
                mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(),
                                     gather ? NULL : w};
                if (models[mi])
                    mx_accum_parse(models[mi], &spec.model);
                mx_gemm_stats gs[2];
                char what[160];
                snprintf(what, sizeof what, "%s seed %lu gather %d %s drop %d", f->name,
                         seed, gather, models[mi] ? models[mi] : "-", drop);
                engine_then_fused(&spec, &A, &B, models[mi] != NULL, drop, 1, g, gs, what);
                EXPECT(gs[0].irregular_groups > 0 &&
                           gs[0].irregular_groups == gs[1].irregular_groups &&
                           gs[0].slow_elements == gs[1].slow_elements,
                       "%s: irregular groups %zu / %zu, slow elements %zu / %zu", f->name,
                       gs[0].irregular_groups, gs[1].irregular_groups,
                       gs[0].slow_elements, gs[1].slow_elements);
                slow += gs[1].slow_elements;
                gouts_expect_same(&g[0], &g[1], what);
                if (drop == -1 && mi == 0) {
                    double *ex1 = g[1].ex;
                    ck_assert_int_eq(mx_gemm_exact_mpfr(&spec, &A, &B, ref), MX_OK);
                    EXPECT(memcmp(ex1, ref, MN * 8) == 0, "%s: exact differs from MPFR",
                           f->name);
                    /* the comparison sees a one-ulp error */
                    ex1[MN / 2] = nextafter(ex1[MN / 2], INFINITY);
                    EXPECT(memcmp(ex1, ref, MN * 8) != 0 && memcmp(g[0].ex, ex1, MN * 8) != 0,
                           "%s: a planted error went unseen", f->name);
                }
            }
    EXPECT(f->id != MX_BF16 || slow > 0, "%s: no element took GMP", f->name);
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(ref);
    free(a);
    free(b);
    gsl_rng_free(r);
}
END_TEST

/* Wide A groups against mostly narrow B, so that most lanes take the fused
 * pass's plane dots (gemm_fused.c, NPL): in each group of A a pair +-1.5
 * 2^10 that B's equal pair cancels, and 30 values from 2^(3-d) (d from 8 to
 * 85: regular groups, one, two and three planes below the 24-bit window,
 * and past them, the term-by-term way), in rows 0-6 only in the bottom six
 * binades, so that the lowest plane decides the exact values and the model
 * partials.  One wide group in B
 * (column 15) sets both windows to 24 bits and sends its lanes the
 * general way.  Every output bit for bit against the engine (fused pass
 * off), the exact values against MPFR, sum_abs at or above the MPFR sum of
 * |a b| and within 2^-40 of it, and a planted one-ulp error must show. */
START_TEST(test_fused16_planes)
{
    static const char *models[] = {"fp32-group", "block:hopper-bf16", NULL};
    static const int spans[] = {8, 20, 30, 45, 60, 75, 85};
    const mx_format *f = mx_format_get(MX_BF16);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1400);
    size_t M = 9, N = 16, K = 256, G = K / 32, MN = M * N;
    uint16_t *a = malloc(M * K * 2), *b = malloc(N * K * 2);
    for (size_t m = 0; m < M; m++)
        for (size_t g = 0; g < G; g++) {
            uint16_t *ag = a + m * K + g * 32;
            /* rows 0-6: one d each and values in the bottom six binades
             * (the lowest plane decides the row's results); rows 7-8: d
             * by group, values anywhere up to 2^4 */
            int d = m < 7 ? spans[m] : spans[(m + g) % 7];
            unsigned long binades = m < 7 ? 6 : (unsigned long)d + 2;
            ag[0] = (uint16_t)mx_encode_rne(f, 0x1.8p10);
            ag[1] = (uint16_t)mx_encode_rne(f, -0x1.8p10);
            for (int i = 2; i < 32; i++) {
                int e = 3 - d + (int)gsl_rng_uniform_int(r, binades);
                double v = ldexp(1.0 + (double)gsl_rng_uniform_int(r, 128) / 128.0, e);
                ag[i] = gsl_rng_uniform(r) < 0.05
                            ? 0
                            : (uint16_t)mx_encode_rne(f, gsl_rng_uniform(r) < 0.5 ? -v : v);
            }
        }
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++) {
            int e = n == 15 && k < 32 ? (int)gsl_rng_uniform_int(r, 21) - 10
                                      : (int)gsl_rng_uniform_int(r, 7) - 3;
            double v = ldexp(1.0 + (double)gsl_rng_uniform_int(r, 128) / 128.0, e);
            b[n * K + k] = k % 32 == 1 ? b[n * K + k - 1]
                                       : (uint16_t)mx_encode_rne(f, gsl_rng_uniform(r) < 0.5 ? -v : v);
        }
    float w[9];
    int32_t idx[9];
    for (size_t m = 0; m < M; m++) {
        w[m] = (float)gsl_rng_uniform_pos(r);
        idx[m] = (int32_t)(M - 1 - m);
    }
    double *ref = malloc(MN * 8);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    mpfr_t acc, t;
    mpfr_inits2(2000, acc, t, (mpfr_ptr)0);
    for (int gather = 0; gather < 2; gather++)
        for (int mi = 0; mi < 3; mi++)
            for (int drop = -1; drop < 6; drop++) {
                mx_operand A = {f, a, M, K, K, NULL, 0, 0, gather ? idx : NULL};
                mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
                mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(),
                                     gather ? NULL : w};
                if (models[mi])
                    mx_accum_parse(models[mi], &spec.model);
                mx_gemm_stats gs[2];
                char what[160];
                snprintf(what, sizeof what, "planes gather %d %s drop %d", gather,
                         models[mi] ? models[mi] : "-", drop);
                engine_then_fused(&spec, &A, &B, models[mi] != NULL, drop, 1, g, gs, what);
                EXPECT(gs[0].irregular_groups > M * G / 2 &&
                           gs[0].irregular_groups == gs[1].irregular_groups,
                       "planes: irregular groups %zu / %zu", gs[0].irregular_groups,
                       gs[1].irregular_groups);
                gouts_expect_same(&g[0], &g[1], what);
                if (drop != -1 || mi != 0)
                    continue;
                ck_assert_int_eq(mx_gemm_exact_mpfr(&spec, &A, &B, ref), MX_OK);
                EXPECT(memcmp(g[1].ex, ref, MN * 8) == 0, "planes: exact differs from MPFR");
                size_t bad = 0;
                for (size_t m = 0; m < M; m++)
                    for (size_t n = 0; n < N; n++) {
                        const uint16_t *ar = a + (gather ? (size_t)idx[m] : m) * K;
                        mpfr_set_zero(acc, 1);
                        for (size_t k = 0; k < K; k++) {
                            mpfr_set_d(t, mx_decode_double(f, ar[k]), MPFR_RNDN);
                            mpfr_mul_d(t, t, mx_decode_double(f, b[n * K + k]), MPFR_RNDN);
                            mpfr_abs(t, t, MPFR_RNDN);
                            mpfr_add(acc, acc, t, MPFR_RNDN); /* exact at 2000 bits */
                        }
                        if (!gather)
                            mpfr_mul_d(acc, acc, (double)w[m], MPFR_RNDN);
                        double sa = g[1].sa[m * N + n], lo = mpfr_get_d(acc, MPFR_RNDD);
                        if (!(sa >= lo && sa <= lo * (1 + 0x1p-40)) && bad++ < 3)
                            fprintf(stderr, "planes (%zu, %zu): sum_abs %a, MPFR %a\n", m, n,
                                    sa, lo);
                    }
                EXPECT(bad == 0, "planes: %zu sum_abs outside [S, S (1 + 2^-40)]", bad);
                g[1].ex[MN / 3] = nextafter(g[1].ex[MN / 3], INFINITY);
                EXPECT(memcmp(g[1].ex, ref, MN * 8) != 0 && memcmp(g[0].ex, g[1].ex, MN * 8) != 0,
                       "planes: a planted error went unseen");
            }
    mpfr_clears(acc, t, (mpfr_ptr)0);
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(ref);
    free(a);
    free(b);
    gsl_rng_free(r);
}
END_TEST

/* The fp32-group step of a group whose A side is one plane wider than its
 * window (gemm_fused.c, plane1_lanes): RN32 of main part + plane, formed
 * from two binary64 numbers, must round as the exact sum does.  K = 32 and
 * every B row one power of two, 2^e times 1 or -1, so that each output is
 * RN32(2^e times the sum of A's row): sums 1 + 2^-24 + t (an FP32 midpoint
 * plus a tail t = +-2^-60 that only the plane holds), 1 + 3 2^-24 + t, the
 * same with t = 0 (a true tie) and negated, 2 - 2^-24 + t (times 2^127:
 * the overflow midpoint), and 1 + 2^-20 + t (times 2^-130: a midpoint
 * among FP32 subnormals), against model outputs from MPFR (mpfr_get_flt of
 * the exact sum), the exact values against MPFR, and every output against
 * the engine. */
START_TEST(test_fused16_plane_midpoints)
{
    static const double sums[][3] = {
        {1, 0x1p-24, 0x1p-60},   {1, 0x1p-24, -0x1p-60},  {-1, -0x1p-24, -0x1p-60},
        {-1, -0x1p-24, 0x1p-60}, {1, 0x3p-24, 0x1p-60},   {1, 0x3p-24, -0x1p-60},
        {1, 0x1p-24, 0},         {1, 0x3p-24, 0},         {2, -0x1p-24, 0x1p-60},
        {2, -0x1p-24, -0x1p-60}, {1, 0x1p-20, 0x1p-60},   {1, 0x1p-20, -0x1p-60},
        {-1, -0x1p-20, 0x1p-60}, {1, -1, 0},
    };
    static const int exps[] = {0, 1, -1, 5, -130, -128, 127, 126, -126, -3, 60, -60};
    const mx_format *f = mx_format_get(MX_BF16);
    size_t M = sizeof sums / sizeof sums[0], N = sizeof exps / sizeof exps[0], K = 32;
    size_t MN = M * N;
    uint16_t *a = calloc(M * K, 2), *b = malloc(N * K * 2);
    for (size_t m = 0; m < M; m++) {
        a[m * K + 3] = (uint16_t)mx_encode_rne(f, sums[m][0]);
        a[m * K + 17] = (uint16_t)mx_encode_rne(f, sums[m][1]);
        /* the tail as two terms (t = 0: 2^-60 - 2^-60), so that every row
         * has the same spread and its plane */
        double t = sums[m][2];
        a[m * K + 8] = (uint16_t)mx_encode_rne(f, t != 0 ? 2 * t : 0x1p-60);
        a[m * K + 29] = (uint16_t)mx_encode_rne(f, t != 0 ? -t : -0x1p-60);
    }
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            b[n * K + k] = (uint16_t)mx_encode_rne(f, ldexp(n % 3 == 2 ? -1.0 : 1.0, exps[n]));
    mx_operand A = {f, a, M, K, K, NULL, 0, 0, NULL};
    mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
    mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
    ck_assert_int_eq(mx_accum_parse("fp32-group", &spec.model), 0);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    mx_gemm_stats gs[2];
    engine_then_fused(&spec, &A, &B, 1, -1, 1, g, gs, "plane midpoints");
    EXPECT(gs[1].irregular_groups == M, "plane midpoints: %zu wide groups, want %zu",
           gs[1].irregular_groups, M);
    gouts_expect_same(&g[0], &g[1], "plane midpoints");
    mpfr_t acc, t;
    mpfr_inits2(1000, acc, t, (mpfr_ptr)0);
    size_t bad = 0, mids = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            mpfr_set_zero(acc, 1);
            for (size_t k = 0; k < K; k++) {
                mpfr_set_d(t, mx_decode_double(f, a[m * K + k]), MPFR_RNDN);
                mpfr_mul_d(t, t, mx_decode_double(f, b[n * K + k]), MPFR_RNDN);
                mpfr_add(acc, acc, t, MPFR_RNDN); /* exact at 1000 bits */
            }
            float want = mpfr_get_flt(acc, MPFR_RNDN);
            double wantd = mpfr_get_d(acc, MPFR_RNDN);
            /* RN32 of the binary64 rounding differs: a double rounding */
            mids += (float)wantd != want;
            size_t i = m * N + n;
            if ((memcmp(&g[1].ma[i], &want, 4) != 0 || g[1].ex[i] != wantd) && bad++ < 4)
                fprintf(stderr, "plane midpoints (%zu, %zu): model %a exact %a, MPFR %a %a\n",
                        m, n, (double)g[1].ma[i], g[1].ex[i], (double)want, wantd);
        }
    EXPECT(bad == 0, "plane midpoints: %zu outputs differ from MPFR", bad);
    EXPECT(mids >= 30, "plane midpoints: only %zu double-rounding cases", mids);
    mpfr_clears(acc, t, (mpfr_ptr)0);
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(a);
    free(b);
}
END_TEST

/* The 16-bit kernel's int64 sums (a tile whose rows' spans fit 63 bits)
 * read a group partial through the binary64 P + 1.5 2^52, which holds
 * only |P| < 2^51: windows of 24 bits on both sides (groups of values
 * 1.9921875 2^h and one 2^(h-23) value, so 24 bits wide, at h = 0 and 3)
 * give partials of up to 2^53 with spans that fit int64, so those tiles
 * must keep 128-bit sums.  Against the engine and MPFR, with and without
 * row weights and with sign patterns that cancel and that do not. */
START_TEST(test_fused16_int64_windows)
{
    const mx_format *f = mx_format_get(MX_BF16);
    size_t M = 4, N = 11, K = 64, MN = M * N;
    uint16_t *a = malloc(M * K * 2), *b = malloc(N * K * 2);
    for (size_t m = 0; m < M; m++)
        for (size_t k = 0; k < K; k++) {
            int h = k < 32 ? 0 : 3, last = k % 32 == 31;
            double v = last ? ldexp(1, h - 23) : ldexp(1.9921875, h);
            a[m * K + k] = (uint16_t)mx_encode_rne(f, m == 1 && k % 3 == 0 ? -v : v);
        }
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++) {
            int h = k < 32 ? (int)(n % 3) : 3, last = k % 32 == 30;
            double v = last ? ldexp(1, h - 23) : ldexp(1.9921875, h);
            b[n * K + k] = (uint16_t)mx_encode_rne(f, n % 4 == 1 && k % 5 == 0 ? -v : v);
        }
    mx_operand A = {f, a, M, K, K, NULL, 0, 0, NULL};
    mx_operand B = {f, b, N, K, K, NULL, 0, 0, NULL};
    int wa, wb;
    mxg_windows(&A, &B, &wa, &wb);
    EXPECT(wa == 24 && wb == 24, "int64 windows: windows %d and %d, want 24 and 24", wa, wb);
    float w[4] = {0.75f, -1.5f, 3.0f, 0.3f};
    double *ref = malloc(MN * 8);
    gouts g[2];
    for (int v = 0; v < 2; v++)
        gouts_alloc(&g[v], MN);
    for (int weighted = 0; weighted < 2; weighted++) {
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), weighted ? w : NULL};
        ck_assert_int_eq(mx_accum_parse("fp32-group", &spec.model), 0);
        char what[80];
        snprintf(what, sizeof what, "int64 windows, weighted %d", weighted);
        fused_as_engine_and_mpfr(&spec, &A, &B, 1, 1, g, ref, what);
    }
    for (int v = 0; v < 2; v++)
        gouts_free(&g[v]);
    free(ref);
    free(a);
    free(b);
}
END_TEST

/* The one rounding of an exact 128-bit integer times 2^e (round_int.c,
 * and the inline mxg_round_f32_fast and mxg_round_f64_pos of the 16-bit
 * kernel's loops) against MPFR: to FP32 (every range: subnormal, normal,
 * overflow) and to binary64 with and without an FP32 weight (normal
 * results, the range the GEMMs use), on random integers of every length and
 * on exact ties and their neighbours at the FP32 and binary64 rounding
 * points (a neighbour of an FP32 tie is where rounding to binary64 first
 * goes wrong). */
static void mpfr_set_i128(mpfr_t x, __int128 v)
{
    unsigned __int128 a = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    mpfr_set_ui(x, (unsigned long)(uint64_t)(a >> 64), MPFR_RNDN);
    mpfr_mul_2ui(x, x, 64, MPFR_RNDN);
    mpfr_add_ui(x, x, (unsigned long)(uint64_t)a, MPFR_RNDN);
    if (v < 0)
        mpfr_neg(x, x, MPFR_RNDN);
}

START_TEST(test_round_int)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    unsigned long seed = 1400;
    gsl_rng_set(r, seed);
    mpfr_t x, y;
    mpfr_init2(x, 256);
    mpfr_init2(y, 53);
    size_t bad32 = 0, bad64 = 0, badfast = 0, badpos = 0, badx4 = 0, okx4 = 0;
    /* the last four cases, for the four-lane roundings */
    mxg_v4u lo4, hi4, alo4, ahi4;
    mxg_v4i e4;
    float want4[4];
    double wpos4[4];
    for (int i = 0; i < 200000; i++) {
        int len = 1 + (int)gsl_rng_uniform_int(r, 126);
        unsigned __int128 a = 0;
        for (int w = 0; w < 4; w++)
            a = a << 32 | (uint32_t)gsl_rng_get(r);
        a &= ((unsigned __int128)1 << len) - 1;
        a |= (unsigned __int128)1 << (len - 1);
        /* 1: an FP32 tie; 2: a binary64 tie; 3: next to a binary64 tie;
         * 4: next to an FP32 tie (binary64 rounding lands on the tie, the
         * trap of rounding twice) */
        int kind = (int)gsl_rng_uniform_int(r, 5);
        int keepbits = kind == 1 || kind == 4 ? 24 : 53;
        if (kind && len > keepbits + 1) { /* a tie below the kept bits, or next to it */
            int low = len - keepbits;
            a &= ~(((unsigned __int128)1 << low) - 1);
            a |= (unsigned __int128)1 << (low - 1);
            if (kind >= 3)
                a += gsl_rng_uniform(r) < 0.5 ? 1 : -1;
        }
        __int128 v = gsl_rng_uniform(r) < 0.5 ? -(__int128)a : (__int128)a;
        int e32 = (int)gsl_rng_uniform_int(r, 400) - 200 - len;
        mpfr_set_i128(x, v);
        mpfr_mul_2si(x, x, e32, MPFR_RNDN);
        float want = oracle_rn32(x), got = mxg_round_f32(v, e32);
        if (memcmp(&want, &got, sizeof got) && bad32++ < 5)
            fprintf(stderr, "round_f32 seed %lu case %d: got %a want %a\n", seed, i,
                    (double)got, (double)want);
        got = mxg_round_f32_fast(v, e32);
        if (memcmp(&want, &got, sizeof got) && badfast++ < 5)
            fprintf(stderr, "round_f32_fast seed %lu case %d: got %a want %a\n", seed, i,
                    (double)got, (double)want);
        /* the bound's rounding of a magnitude sum */
        mpfr_set_i128(x, (__int128)a);
        mpfr_mul_2si(x, x, e32, MPFR_RNDN);
        mpfr_set(y, x, MPFR_RNDN);
        double wpos = mpfr_get_d(y, MPFR_RNDN), gpos = mxg_round_f64_pos(a, e32);
        if (memcmp(&wpos, &gpos, sizeof gpos) && badpos++ < 5)
            fprintf(stderr, "round_f64_pos seed %lu case %d: got %a want %a\n", seed, i, gpos,
                    wpos);
        /* four lanes at once: each lane its own case */
        int ln = i % 4;
        lo4[ln] = (uint64_t)(unsigned __int128)v;
        hi4[ln] = (uint64_t)((unsigned __int128)v >> 64);
        alo4[ln] = (uint64_t)a;
        ahi4[ln] = (uint64_t)(a >> 64);
        e4[ln] = e32;
        want4[ln] = want;
        wpos4[ln] = wpos;
        if (ln == 3) {
            mxg_v4i ok32, ok64;
            mxg_v4f g4;
            mxg_v4d p4;
            mxg_round_f32_x4(&lo4, &hi4, &e4, &g4, &ok32);
            mxg_round_f64_pos_x4(&alo4, &ahi4, &e4, &p4, &ok64);
            for (int l = 0; l < 4; l++) {
                float g = g4[l];
                double pp = p4[l];
                okx4 += (ok32[l] != 0) + (ok64[l] != 0);
                if ((ok32[l] && memcmp(&g, &want4[l], sizeof g)) ||
                    (ok64[l] && memcmp(&pp, &wpos4[l], sizeof pp))) {
                    if (badx4++ < 5)
                        fprintf(stderr, "round x4 seed %lu case %d: got %a %a want %a %a\n",
                                seed, i - 3 + l, (double)g, pp, (double)want4[l], wpos4[l]);
                }
            }
        }
        int e64 = (int)gsl_rng_uniform_int(r, 600) - 300 - len;
        float wf = gsl_rng_uniform(r) < 0.3 ? 1.0f
                                            : (float)ldexp(gsl_rng_uniform_pos(r),
                                                           (int)gsl_rng_uniform_int(r, 60) - 30);
        mpfr_set_i128(x, v);
        mpfr_mul_2si(x, x, e64, MPFR_RNDN);
        mpfr_mul_d(x, x, (double)wf, MPFR_RNDN); /* exact: 256 bits hold it */
        mpfr_set(y, x, MPFR_RNDN);
        double w64 = mpfr_get_d(y, MPFR_RNDN), g64 = mxg_round_weighted_f64(v, e64, wf);
        if (memcmp(&w64, &g64, sizeof g64) && bad64++ < 5)
            fprintf(stderr, "round_weighted_f64 seed %lu case %d: got %a want %a\n", seed, i,
                    g64, w64);
    }
    EXPECT(bad32 == 0, "mxg_round_f32: %zu of 200000 differ from MPFR", bad32);
    EXPECT(badfast == 0, "mxg_round_f32_fast: %zu of 200000 differ from MPFR", badfast);
    EXPECT(badpos == 0, "mxg_round_f64_pos: %zu of 200000 differ from MPFR", badpos);
    EXPECT(badx4 == 0, "mxg_round_f32_x4 / _f64_pos_x4: %zu of 200000 differ from MPFR", badx4);
    /* most lanes take the four-lane path (the rest: the scalar functions) */
    EXPECT(okx4 > 300000, "four-lane roundings: only %zu of 400000 lanes taken", okx4);
    fprintf(stderr, "x4 lanes taken: %zu\n", okx4);
    EXPECT(bad64 == 0, "mxg_round_weighted_f64: %zu of 200000 differ from MPFR", bad64);
    mpfr_clears(x, y, (mpfr_ptr)0);
    gsl_rng_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm");
    TCase *t = tcase_create("engine");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, test_fast_exact_model_bound, 0, NFAM);
    tcase_add_test(t, test_bound_not_vacuous);
    tcase_add_loop_test(t, test_bound_covers_random_orders, 0, NFAM);
    tcase_add_test(t, test_bf16_tie_rounding);
    tcase_add_test(t, test_flush_to_zero_caught);
    tcase_add_test(t, test_seq_worst_case);
    tcase_add_test(t, test_gather_and_packed_layout);
    tcase_add_loop_test(t, test_fused_matches_engine, 0, NFAM);
    tcase_add_loop_test(t, test_fused_short_group, 0, 2);
    tcase_add_test(t, test_code_table_trimmed);
    tcase_add_loop_test(t, test_fused16_matches_engine, 0, 2);
    tcase_add_loop_test(t, test_fused16_split_groups, 0, 2);
    tcase_add_test(t, test_fused16_planes);
    tcase_add_test(t, test_fused16_plane_midpoints);
    tcase_add_test(t, test_fused16_int64_windows);
    tcase_add_test(t, test_round_int);
    tcase_add_test(t, test_fused_int64_sums_rounded_once);
    tcase_add_test(t, test_bad_operands_refused);
    tcase_add_loop_test(t, test_block_models, 0,
                        (int)(sizeof block_cases / sizeof block_cases[0]));
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* max_ratio is shared */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
