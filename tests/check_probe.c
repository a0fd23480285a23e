/* check_probe.c -- the matrix-unit probe (mxprobe/probe.h): its designed
 * inputs, its replay of real H100 outputs, and the inference of block-FMA
 * parameters from outputs, measured (the golden/h100 .probe files) and simulated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "mxprobe/probe.h"
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

/* mx_probe_plan_count (the resource cap of .probe readers) against the
 * plans themselves: the same count for every format pair and several k,
 * and the refusals of mx_probe_plan_make. */
START_TEST(test_plan_count)
{
    const mx_format_id ids[] = {MX_E4M3FN, MX_E5M2, MX_BF16, MX_FP16};
    const int ks[] = {4, 16, 32, 66};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t q = 0; q < 4; q++) {
                if (ks[q] == 66 && (a || b))
                    continue; /* one large k is enough */
                const mx_format *fa = mx_format_get(ids[a]), *fb = mx_format_get(ids[b]);
                mx_probe_plan *p;
                size_t n = 0;
                ck_assert_int_eq(mx_probe_plan_make(fa, fb, ks[q], &p), MX_OK);
                ck_assert_int_eq(mx_probe_plan_count(fa, fb, ks[q], &n), MX_OK);
                ck_assert_msg(n == p->ncase, "%s x %s k=%d: count %zu, plan %zu",
                              fa->name, fb->name, ks[q], n, p->ncase);
                mx_probe_plan_free(p);
            }
    size_t n;
    const mx_format *e4 = mx_format_get(MX_E4M3FN);
    ck_assert_int_eq(mx_probe_plan_count(e4, e4, 130, &n), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_count(e4, e4, 5, &n), MX_EINVAL);
    ck_assert_int_eq(mx_probe_plan_count(mx_format_get(MX_E8M0), e4, 8, &n), MX_EINVAL);
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

/* The presets reproduce every designed case on the H100, and the designed
 * cases see the signs of zero and the overflow rule the random ones miss. */
START_TEST(test_probe_replay)
{
    for (size_t h = 0; h < NHW; h++) {
        mx_probe_plan *p = measured(h);
        const mx_blockfma_params *q = mx_blockfma_preset(HW[h].preset);
        EXPECT(mx_probe_plan_misses(p, q) == 0, "%s: %ld plan results differ from %s",
               HW[h].probe, mx_probe_plan_misses(p, q), HW[h].preset);
        mx_blockfma_params z = *q;
        z.zero_pos = 0;
        if (!q->c_fadd) /* an FADD of +0 makes +0 anyway */
            EXPECT(mx_probe_plan_misses(p, &z) > 0, "%s: IEEE zero signs not noticed", HW[h].probe);
        if (p->fa->ebits == 8) {
            z = *q;
            z.ovf_inf = 0;
            EXPECT(mx_probe_plan_misses(p, &z) > 0, "%s: IEEE overflow not noticed", HW[h].probe);
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

/* The features the recorded H100 results leave open.  wgmma FP8 keeps 14
 * bits of the sum, so its final rounding to FP32's 24 never has anything
 * to round (docs/blockfma.md), while F, the accumulator and the kept width
 * are pinned; wgmma BF16's plan pins every feature.  The mask, the
 * report's "not determined" line and mx_probe_undetermined agree. */
static void check_open(size_t h, const mx_probe_plan *p, const mx_blockfma_params *q,
                       unsigned mask, const char *rep)
{
    EXPECT(mask == mx_probe_undetermined(p, q), "%s: %x vs %x", HW[h].probe, mask,
           mx_probe_undetermined(p, q));
    const char *line = strstr(rep, "not determined by this plan");
    ck_assert_ptr_nonnull(line);
    char open[1024];
    snprintf(open, sizeof open, "%.*s", (int)strcspn(line, "\n"), line);
    for (int f = 0; f < MX_PF_COUNT; f++)
        EXPECT(!!(mask >> f & 1) == (strstr(open, mx_probe_feature_name(f)) != NULL),
               "%s: feature %s: mask %x, report '%s'", HW[h].probe,
               mx_probe_feature_name(f), mask, open);
    /* an open final rounding really has another fitting mode, a pinned one
     * none */
    static const mx_round modes[4] = {MX_RNE, MX_RTZ, MX_RUP, MX_RDOWN};
    int others = 0;
    for (int m = 0; m < 4; m++) {
        mx_blockfma_params t = *q;
        t.final_round = modes[m];
        others += modes[m] != q->final_round && mx_probe_plan_misses(p, &t) == 0;
    }
    EXPECT((others > 0) == !!(mask >> MX_PF_FINAL_ROUND & 1), "%s: %d other final "
           "roundings fit, mask %x", HW[h].probe, others, mask);
    if (!strcmp(HW[h].preset, "hopper-fp8")) {
        EXPECT(mask >> MX_PF_FINAL_ROUND & 1, "%s: FP8 final rounding pinned?", HW[h].probe);
        EXPECT(!(mask & (1u << MX_PF_FRAC_BITS | 1u << MX_PF_ACCUM | 1u << MX_PF_OUT_PREC)),
               "%s: mask %x", HW[h].probe, mask);
    }
    if (!strcmp(HW[h].probe, "h100/wgmma_bf16_bf16.probe"))
        EXPECT(mask == 0, "BF16: open features %x", mask);
}

/* On the H100's probe outputs the inference finds the fitted presets, and
 * the inferred model also reproduces the random vectors it never saw. */
START_TEST(test_infer_measured)
{
    for (size_t h = 0; h < NHW; h++) {
        mx_probe_plan *p = measured(h);
        mx_blockfma_params q;
        char rep[8192];
        unsigned open;
        mx_status st = mx_probe_infer_ex(p, &q, &open, rep, sizeof rep);
        ck_assert_msg(st == MX_OK, "%s: status %d\n%s", HW[h].probe, st, rep);
        check_open(h, p, &q, open, rep);
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
        mx_probe_plan_simulate(p, &truth);
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
        mx_probe_plan_simulate(p, &truth);
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

START_TEST(test_undetermined_traps)
{
    mx_blockfma_params q = *mx_blockfma_preset("hopper-bf16");
    ck_assert_uint_eq(mx_probe_undetermined(NULL, &q), 0);
    ck_assert_str_eq(mx_probe_feature_name(MX_PF_FINAL_ROUND), "final rounding");
    ck_assert_str_eq(mx_probe_feature_name(MX_PF_COUNT), "?");
    unsigned mask = 7;
    ck_assert_int_eq(mx_probe_infer_ex(NULL, &q, &mask, NULL, 0), MX_EINVAL);
    ck_assert_uint_eq(mask, 0);
}
END_TEST

/* The plan file tc_probe reads, read back field by field as tc_probe's
 * read_plan does (src/lib/probe_io.h has the layout). */
START_TEST(test_plan_file)
{
    const mx_format *fa = mx_format_get(MX_E4M3FN), *fb = mx_format_get(MX_BF16);
    mx_probe_plan *p;
    ck_assert_int_eq(mx_probe_plan_make(fa, fb, 8, &p), MX_OK);
    char name[256], path[300], err[600];
    mxv_plan_file_name(p, name, sizeof name);
    ck_assert_str_eq(name, "plan_e4m3fn_bf16_k8.bin");
    snprintf(path, sizeof path, "check_probe_%s", name);
    ck_assert_msg(mxv_plan_write(path, p, err, sizeof err) == 0, "%s", err);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char magic[4];
    uint32_t h[7];
    ck_assert_uint_eq(fread(magic, 1, 4, f), 4);
    ck_assert(memcmp(magic, "MXPL", 4) == 0);
    ck_assert_uint_eq(fread(h, 4, 7, f), 7);
    ck_assert_uint_eq(h[0], MX_PROBE_PLAN_VERSION);
    ck_assert_uint_eq(h[1], MX_E4M3FN);
    ck_assert_uint_eq(h[2], MX_BF16);
    ck_assert_uint_eq(h[3], 8);
    ck_assert_uint_eq(h[4], p->ncase);
    ck_assert_uint_eq(h[5], 16);
    ck_assert_uint_eq(h[6], 1 | 2 << 8);
    for (size_t i = 0; i < p->ncase; i++) {
        int32_t n;
        EXPECT(fread(&n, 4, 1, f) == 1 && n == p->n[i], "n[%zu]", i);
    }
    for (size_t i = 0; i < p->ncase * 16; i++) {
        uint8_t x;
        EXPECT(fread(&x, 1, 1, f) == 1 && x == ((uint8_t *)p->a)[i], "a[%zu]", i);
    }
    for (size_t i = 0; i < p->ncase * 16; i++) {
        uint16_t x;
        EXPECT(fread(&x, 2, 1, f) == 1 && x == ((uint16_t *)p->b)[i], "b[%zu]", i);
    }
    for (size_t i = 0; i < p->ncase; i++) {
        uint32_t x;
        EXPECT(fread(&x, 4, 1, f) == 1 && x == p->c[i], "c[%zu]", i);
    }
    ck_assert_int_eq(fgetc(f), EOF);
    fclose(f);
    remove(path);
    /* a folder that does not exist: an error, and no file */
    ck_assert_int_eq(mxv_plan_write("no/such/dir/plan.bin", p, err, sizeof err), -1);
    ck_assert(strstr(err, "no/such/dir/plan.bin") != NULL);
    mx_probe_plan_free(p);
}
END_TEST

/* The input checksums tc_probe recorded on the H100 for the plans it ran
 * (the "MXTD" headers of res/wgmma_{bf16_bf16,e4m3_e4m3}_plan.mxtd in
 * golden/h100/tc_probe_outputs.tar.xz): both checksum functions of
 * probe_io.h must give them, or recorded results could not be matched to
 * their inputs. */
START_TEST(test_plan_checksum)
{
    static const struct { mx_format_id f; int k; uint64_t recorded; } T[] = {
        {MX_BF16, 16, UINT64_C(0xd1abd5573e777ee9)},
        {MX_E4M3FN, 32, UINT64_C(0x8fa479ec175b031c)}};
    for (size_t t = 0; t < 2; t++) {
        const mx_format *f = mx_format_get(T[t].f);
        mx_probe_plan *p;
        ck_assert_int_eq(mx_probe_plan_make(f, f, T[t].k, &p), MX_OK);
        ck_assert_uint_eq(mxv_plan_checksum(p), T[t].recorded);
        size_t nn = p->ncase * p->stride;
        uint32_t *a = malloc(nn * 4), *b = malloc(nn * 4);
        for (size_t i = 0; i < nn; i++) {
            a[i] = code_at(f, p->a, i);
            b[i] = code_at(f, p->b, i);
        }
        ck_assert_uint_eq(mxv_mxtd_checksum(a, b, nn, p->c, p->ncase), T[t].recorded);
        free(a);
        free(b);
        mx_probe_plan_free(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("probe");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plan_basic);
    tcase_add_test(tc, test_plan_traps);
    tcase_add_test(tc, test_plan_count);
    tcase_add_test(tc, test_plan_file);
    tcase_add_test(tc, test_plan_checksum);
    suite_add_tcase(s, tc);
    tc = tcase_create("infer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_probe_replay);
    tcase_add_test(tc, test_infer_measured);
    tcase_add_test(tc, test_infer_simulated);
    tcase_add_test(tc, test_infer_traps);
    tcase_add_test(tc, test_undetermined_traps);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
