/* check_probe.c -- the matrix-unit probe (mxref/probe.h): its designed
 * inputs, its replay of real H100 outputs, and the inference of block-FMA
 * parameters from outputs, measured (the golden/h100 .probe files) and simulated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "mxref/probe.h"
#include "golden.h"
#include "probe_io.h"
#include "testutil.h"

static uint32_t code_at(const mx_format *f, const void *v, size_t i)
{
    return f->bits == 8 ? ((const uint8_t *)v)[i] : ((const uint16_t *)v)[i];
}

static double prod(const mx_probe_plan *p, size_t c, int i)
{
    size_t j = c * p->stride + (size_t)i;
    return mx_decode_double(p->fa, code_at(p->fa, p->a, j)) *
           mx_decode_double(p->fb, code_at(p->fb, p->b, j));
}

static void simulate(mx_probe_plan *p, const mx_blockfma_params *q)
{
    size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
    for (size_t i = 0; i < p->ncase; i++)
        p->d[i] = mx_blockfma_dot_bits(q, p->fa, (const char *)p->a + i * p->stride * ea,
                                       p->fb, (const char *)p->b + i * p->stride * eb,
                                       (size_t)p->n[i], p->c[i]);
}

START_TEST(test_plan_basic)
{
    static const struct { mx_format_id a, b; int k; } T[] = {
        {MX_E4M3FN, MX_E4M3FN, 32}, {MX_BF16, MX_BF16, 16},
        {MX_E4M3FNUZ, MX_E5M2FNUZ, 16}, {MX_FP16, MX_FP16, 8}};
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        mx_probe_plan *p, *p2;
        const mx_format *fa = mx_format_get(T[t].a), *fb = mx_format_get(T[t].b);
        ck_assert_int_eq(mx_probe_plan_make(fa, fb, T[t].k, &p), MX_OK);
        ck_assert_int_eq(mx_probe_plan_make(fa, fb, T[t].k, &p2), MX_OK);
        ck_assert_int_eq(p->version, MX_PROBE_PLAN_VERSION);
        ck_assert_uint_eq(p->ncase, p2->ncase);
        size_t ea = fa->bits / 8, eb = fb->bits / 8;
        ck_assert(memcmp(p->a, p2->a, p->ncase * p->stride * ea) == 0);
        ck_assert(memcmp(p->b, p2->b, p->ncase * p->stride * eb) == 0);
        ck_assert(memcmp(p->c, p2->c, p->ncase * 4) == 0);
        int count[MX_PT_COUNT] = {0};
        for (size_t i = 0; i < p->ncase; i++) {
            const mx_probe_tag *g = &p->tag[i];
            count[g->test]++;
            EXPECT(p->n[i] == p->k || p->n[i] == 2 * p->k, "case %zu: n=%d", i, p->n[i]);
            EXPECT(p->d[i] == 0, "d not zeroed");
            for (size_t j = (size_t)p->n[i]; j < p->stride; j++)
                EXPECT(code_at(fa, p->a, i * p->stride + j) == 0, "case %zu: code past n", i);
            /* the designed values are what the tag says, exactly */
            if (g->test == MX_PT_ALIGN) {
                static const double sig[3] = {1.0, 1.5, 1.75};
                double bs = g->w ? 2.25 : 1.0;
                EXPECT(prod(p, i, 0) == ldexp(bs, p->eb) && prod(p, i, 1) == -ldexp(bs, p->eb),
                       "ALIGN case %zu: the pair is not +-B", i);
                EXPECT(prod(p, i, 2) == ldexp(g->i ? -sig[g->v] : sig[g->v], p->eb - g->j),
                       "ALIGN case %zu: small term %a", i, prod(p, i, 2));
            }
            if (g->test == MX_PT_ORDER) {
                for (int q = 0; q < p->n[i]; q++) {
                    double want = q == g->i ? ldexp(1, p->eb) : q == g->j ? -ldexp(1, p->eb)
                                                                        : ldexp(1, p->es);
                    EXPECT(prod(p, i, q) == want, "ORDER case %zu place %d", i, q);
                }
            }
        }
        for (int t2 = 0; t2 < MX_PT_COUNT; t2++) {
            if (t2 == MX_PT_OVF && fa->ebits != 8)
                continue; /* only BF16 reaches 2^103 */
            EXPECT(count[t2] > 0, "%s x %s k=%d: no %s cases", fa->name, fb->name,
                   T[t].k, mx_probe_test_name(t2));
        }
        ck_assert_int_eq(count[MX_PT_ORDER], 2 * T[t].k * (2 * T[t].k - 1));
        mx_probe_plan_free(p);
        mx_probe_plan_free(p2);
    }
    mx_probe_plan_free(NULL);
    ck_assert_str_eq(mx_probe_test_name(MX_PT_GROUP), "group");
    ck_assert_str_eq(mx_probe_test_name(-1), "?");
}
END_TEST

START_TEST(test_plan_traps)
{
    mx_probe_plan *p = (mx_probe_plan *)1;
    const mx_format *e4 = mx_format_get(MX_E4M3FN);
    ck_assert_int_eq(mx_probe_plan_make(NULL, e4, 32, &p), MX_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(mx_probe_plan_make(e4, mx_format_get(MX_FP32), 32, &p), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_make(e4, mx_format_get(MX_E8M0), 32, &p), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_make(e4, e4, 31, &p), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_make(e4, e4, 2, &p), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_make(e4, e4, 256, &p), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_make(e4, e4, 32, NULL), MX_EINVAL);
}
END_TEST

/* ---- measured outputs --------------------------------------------------- */

static const struct {
    const char *probe, *vec, *preset;
} HW[] = {
    {"h100/wgmma_e4m3_e4m3.probe", "h100/wgmma_e4m3_e4m3.vec", "hopper-fp8"},
    {"h100/wgmma_e5m2_e5m2.probe", "h100/wgmma_e5m2_e5m2.vec", "hopper-fp8"},
    {"h100/wgmma_bf16_bf16.probe", "h100/wgmma_bf16_bf16.vec", "hopper-bf16"},
    {"h100/mma_e4m3_e4m3.probe", "h100/mma_e4m3_e4m3.vec", "hopper-fp8-mma"},
};
#define NHW (sizeof HW / sizeof HW[0])

/* The recorded outputs into a freshly built plan of the same version. */
static mx_probe_plan *measured(size_t h)
{
    mxv_probe_file g;
    char err[600];
    ck_assert_msg(mxv_probe_file_read(golden_path(HW[h].probe), &g, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(g.plan, MX_PROBE_PLAN_VERSION);
    mx_probe_plan *p;
    ck_assert_int_eq(mx_probe_plan_make(g.fa, g.fb, g.k, &p), MX_OK);
    ck_assert_msg(p->ncase == g.ncase, "%s: %zu results for a plan of %zu cases",
                  HW[h].probe, g.ncase, p->ncase);
    memcpy(p->d, g.d, g.ncase * sizeof *g.d);
    mxv_probe_file_free(&g);
    return p;
}

static long plan_misses(const mx_probe_plan *p, const mx_blockfma_params *q)
{
    size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
    long bad = 0;
    for (size_t i = 0; i < p->ncase; i++)
        bad += mx_blockfma_dot_bits(q, p->fa, (const char *)p->a + i * p->stride * ea,
                                    p->fb, (const char *)p->b + i * p->stride * eb,
                                    (size_t)p->n[i], p->c[i]) != p->d[i];
    return bad;
}

/* The presets reproduce every designed case on the H100, and the designed
 * cases see the signs of zero and the overflow rule the random ones miss. */
START_TEST(test_probe_replay)
{
    for (size_t h = 0; h < NHW; h++) {
        mx_probe_plan *p = measured(h);
        const mx_blockfma_params *q = mx_blockfma_preset(HW[h].preset);
        EXPECT(plan_misses(p, q) == 0, "%s: %ld plan results differ from %s",
               HW[h].probe, plan_misses(p, q), HW[h].preset);
        mx_blockfma_params z = *q;
        z.zero_pos = 0;
        if (!q->c_fadd) /* an FADD of +0 makes +0 anyway */
            EXPECT(plan_misses(p, &z) > 0, "%s: IEEE zero signs not noticed", HW[h].probe);
        if (p->fa->ebits == 8) {
            z = *q;
            z.ovf_inf = 0;
            EXPECT(plan_misses(p, &z) > 0, "%s: IEEE overflow not noticed", HW[h].probe);
        }
        mx_probe_plan_free(p);
    }
}
END_TEST

static long vec_misses(const char *name, const mx_blockfma_params *q)
{
    gvec g;
    char err[600];
    ck_assert_msg(gvec_load(golden_path(name), &g, err, sizeof err) == 0, "%s", err);
    long bad = 0;
    uint8_t a8[GVEC_MAXN], b8[GVEC_MAXN];
    for (size_t i = 0; i < g.ncase; i++) {
        const void *a, *b;
        gvec_operands(&g, i, a8, b8, &a, &b);
        bad += mx_blockfma_dot_bits(q, g.fa, a, g.fb, b, (size_t)g.n[i], g.c[i]) != g.d[i];
    }
    gvec_free(&g);
    return bad;
}

/* On the H100's probe outputs the inference finds the fitted presets, and
 * the inferred model also reproduces the random vectors it never saw. */
START_TEST(test_infer_measured)
{
    for (size_t h = 0; h < NHW; h++) {
        mx_probe_plan *p = measured(h);
        mx_blockfma_params q;
        char rep[8192];
        mx_status st = mx_probe_infer(p, &q, rep, sizeof rep);
        ck_assert_msg(st == MX_OK, "%s: status %d\n%s", HW[h].probe, st, rep);
        const mx_blockfma_params *t = mx_blockfma_preset(HW[h].preset);
        EXPECT(q.k == t->k && q.block == t->block && q.deal == t->deal,
               "%s: structure k=%d block=%d deal=%d\n%s", HW[h].probe, q.k, q.block, q.deal, rep);
        EXPECT(q.frac_bits == t->frac_bits, "%s: F=%d\n%s", HW[h].probe, q.frac_bits, rep);
        EXPECT(q.late_c == t->late_c && q.odd_even == t->odd_even && q.c_fadd == t->c_fadd,
               "%s: accumulator\n%s", HW[h].probe, rep);
        EXPECT(q.nan_code == t->nan_code, "%s: NaN %08x", HW[h].probe, q.nan_code);
        if (!t->c_fadd) { /* visible only without the FADD (see the report) */
            EXPECT(q.align_round == t->align_round && q.sticky == t->sticky &&
                   q.prod_norm == t->prod_norm && q.zero_pos == t->zero_pos &&
                   q.out_prec == t->out_prec, "%s: alignment/output\n%s", HW[h].probe, rep);
        }
        EXPECT(vec_misses(HW[h].vec, &q) == 0, "%s: the inferred model misses %ld vectors\n%s",
               HW[h].vec, vec_misses(HW[h].vec, &q), rep);
        EXPECT(strstr(rep, "reproduced") != NULL, "report:\n%s", rep);
        mx_probe_plan_free(p);
    }
}
END_TEST

/* On a unit that follows a known model the inference recovers it: the
 * CDNA3 presets (what an MI300X would give if the published model holds),
 * the exact unit, and random members of the searched family. */
START_TEST(test_infer_simulated)
{
    struct { const char *preset; mx_format_id f; int k; } T[] = {
        {"cdna3-fp8", MX_E4M3FNUZ, 16}, {"cdna3-bf16", MX_BF16, 8},
        {"hopper-fp8", MX_E5M2, 32}, {"exact-rne", MX_FP16, 8}};
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        const mx_format *f = mx_format_get(T[t].f);
        mx_blockfma_params truth = *mx_blockfma_preset(T[t].preset);
        if (truth.block == 0) { /* the exact unit, seen per instruction */
            truth.k = truth.block = T[t].k;
        }
        mx_probe_plan *p;
        ck_assert_int_eq(mx_probe_plan_make(f, f, T[t].k, &p), MX_OK);
        simulate(p, &truth);
        mx_blockfma_params q;
        char rep[8192];
        mx_status st = mx_probe_infer(p, &q, rep, sizeof rep);
        EXPECT(st == MX_OK, "%s: status %d\n%s", T[t].preset, st, rep);
        EXPECT(q.block == truth.block && q.frac_bits == truth.frac_bits &&
               q.late_c == truth.late_c && q.odd_even == truth.odd_even,
               "%s: inferred block %d F %d late %d odd/even %d\n%s", T[t].preset,
               q.block, q.frac_bits, q.late_c, q.odd_even, rep);
        mx_probe_plan_free(p);
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    static const mx_round fr[] = {MX_RNE, MX_RTZ, MX_RUP, MX_RDOWN};
    for (int it = 0; it < 4; it++) {
        mx_blockfma_params truth = *mx_blockfma_preset("hopper-bf16");
        truth.k = 16;
        truth.block = (int)(4u << gsl_rng_uniform_int(r, 3));
        truth.deal = truth.block < 16 && gsl_rng_uniform_int(r, 2) ? 2 : 0;
        truth.frac_bits = 10 + (int)gsl_rng_uniform_int(r, 20);
        truth.align_round = (mx_align_round)gsl_rng_uniform_int(r, 3);
        truth.prod_norm = (int)gsl_rng_uniform_int(r, 2);
        truth.final_round = fr[gsl_rng_uniform_int(r, 4)];
        truth.zero_pos = (int)gsl_rng_uniform_int(r, 2);
        mx_probe_plan *p;
        ck_assert_int_eq(mx_probe_plan_make(mx_format_get(MX_BF16), mx_format_get(MX_BF16),
                                            16, &p), MX_OK);
        simulate(p, &truth);
        mx_blockfma_params q;
        char rep[8192];
        mx_status st = mx_probe_infer(p, &q, rep, sizeof rep);
        EXPECT(st == MX_OK && q.block == truth.block && q.deal == truth.deal &&
               q.frac_bits == truth.frac_bits,
               "random unit %d (block %d deal %d F %d round %d norm %d final %d): "
               "status %d\n%s", it, truth.block, truth.deal, truth.frac_bits,
               truth.align_round, truth.prod_norm, truth.final_round, st, rep);
        mx_probe_plan_free(p);
    }
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_infer_traps)
{
    mx_blockfma_params q;
    char rep[4096];
    ck_assert_int_eq(mx_probe_infer(NULL, &q, rep, sizeof rep), MX_EINVAL);
    mx_probe_plan *p = measured(2);
    ck_assert_int_eq(mx_probe_infer(p, NULL, rep, sizeof rep), MX_EINVAL);
    p->version = 1; /* outputs of an older plan cannot be read */
    ck_assert_int_eq(mx_probe_infer(p, &q, rep, sizeof rep), MX_EINVAL);
    p->version = MX_PROBE_PLAN_VERSION;
    /* scrambled ORDER results: no block structure */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    uint32_t *save = malloc(p->ncase * 4);
    memcpy(save, p->d, p->ncase * 4);
    for (size_t i = 0; i < p->ncase; i++)
        if (p->tag[i].test == MX_PT_ORDER)
            p->d[i] = (uint32_t)gsl_rng_get(r);
    ck_assert_int_eq(mx_probe_infer(p, &q, rep, sizeof rep), MX_ERANGE);
    ck_assert(strstr(rep, "ORDER") != NULL);
    /* a unit no parameter set explains: ROUND results off by one ulp */
    memcpy(p->d, save, p->ncase * 4);
    for (size_t i = 0; i < p->ncase; i++)
        if (p->tag[i].test == MX_PT_ROUND && (p->d[i] & 0x7fffffffu) && p->tag[i].j % 3 == 0)
            p->d[i] ^= 1;
    ck_assert_int_eq(mx_probe_infer(p, &q, rep, sizeof rep), MX_ERANGE);
    ck_assert(strstr(rep, "NO FIT") != NULL);
    /* a short report buffer is cut, never overrun */
    memcpy(p->d, save, p->ncase * 4);
    char small[16];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(mx_probe_infer(p, &q, small, 8), MX_OK);
    ck_assert(small[7] == 0 && small[8] == 'x');
    free(save);
    gsl_rng_free(r);
    mx_probe_plan_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("probe");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plan_basic);
    tcase_add_test(tc, test_plan_traps);
    suite_add_tcase(s, tc);
    tc = tcase_create("infer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_probe_replay);
    tcase_add_test(tc, test_infer_measured);
    tcase_add_test(tc, test_infer_simulated);
    tcase_add_test(tc, test_infer_traps);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
