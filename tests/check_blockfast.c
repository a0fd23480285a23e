/* check_blockfast.c -- the fast paths of the block-FMA model and its bounds
 * (reference/blockfma_fx.h: the int64 block sum, the per-code magnitude
 * tables, rounding upward by the bit pattern) against the general code
 * (mxb_set_slow(1): the wide fixed-point accumulator, decoding every code,
 * nextafter), bit for bit, for every preset and for variants of each that
 * exercise every alignment rounding, sticky bits, normalised products and
 * grids wider than the int64 path takes.  Operands: random codes of every
 * class (NaN, inf, subnormal, zero of both signs), wide-exponent blocks,
 * exact cancellation, all-zero blocks, random FP32 accumulators of every
 * class.  The slow path is the independent side here; tests/check_blockfma
 * holds that one to an MPFR/GMP oracle and to the H100's outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "mxref/blockfma.h"
#include "blockfma_fx.h"
#include "testutil.h"

#define NMAX 128

static uint32_t rnd_code(gsl_rng *r, const mx_format *f, int family)
{
    uint32_t mask = f->bits == 8 ? 0xffu : 0xffffu;
    uint32_t c = (uint32_t)gsl_rng_get(r) & mask;
    switch (family) {
    case 0: /* any code: NaN, inf, subnormals, both zeros */
        return c;
    case 1: /* finite, narrow exponents (the common case) */
        if (f->bits == 8)
            return (c & 0x87u) | 0x30u;
        return (c & 0x807fu) | 0x3f00u;
    case 2: /* subnormals and zeros */
        return f->bits == 8 ? (c & 0x83u) : (c & 0x807fu);
    default: /* wide exponents, never NaN/inf */
        if (f->bits == 8)
            return c & 0xf7u;
        return c & 0xbfffu;
    }
}

static uint32_t rnd_c(gsl_rng *r)
{
    uint32_t c = (uint32_t)gsl_rng_get(r);
    switch (gsl_rng_uniform_int(r, 6)) {
    case 0: return 0;
    case 1: return 0x80000000u;
    case 2: return c & 0x807fffffu;                /* subnormal */
    case 3: return (c & 0x83ffffffu) | 0x3c000000u; /* near 1 */
    case 4: return c;                              /* anything */
    default: return (c & 0x81ffffffu) | 0x40000000u;
    }
}

static void fill(gsl_rng *r, const mx_format *fa, void *a, const mx_format *fb,
                 void *b, size_t n, int family)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t ca = rnd_code(r, fa, family), cb = rnd_code(r, fb, family);
        if (family == 4 && i >= n / 2) { /* second half cancels the first */
            size_t j = i - n / 2;
            ca = fa->bits == 8 ? ((uint8_t *)a)[j] : ((uint16_t *)a)[j];
            cb = fb->bits == 8 ? ((uint8_t *)b)[j] : ((uint16_t *)b)[j];
            ca ^= fa->bits == 8 ? 0x80u : 0x8000u;
            if (fa->id == MX_E4M3FNUZ || fa->id == MX_E5M2FNUZ)
                ca = (ca & 0x7fu) ? ca : 0; /* 0x80 is NaN there */
        }
        if (family == 5)
            ca = cb = 0;
        if (fa->bits == 8)
            ((uint8_t *)a)[i] = (uint8_t)ca;
        else
            ((uint16_t *)a)[i] = (uint16_t)ca;
        if (fb->bits == 8)
            ((uint8_t *)b)[i] = (uint8_t)cb;
        else
            ((uint16_t *)b)[i] = (uint16_t)cb;
    }
}

static int same_d(double x, double y) { return memcmp(&x, &y, sizeof x) == 0; }

/* Every preset, and variants of it that the int64 path must follow too. */
static size_t param_sets(mx_blockfma_params *ps, size_t cap)
{
    size_t n = 0;
    const mx_blockfma_params *p;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && n + 8 <= cap; i++) {
        ps[n++] = *p;
        if (p->frac_bits == MX_BFMA_EXACT)
            continue;
        static const int fb[] = {3, 40, 49, 60};
        for (size_t j = 0; j < 4; j++) {
            mx_blockfma_params q = *p;
            q.frac_bits = fb[j];
            q.align_round = (mx_align_round)(j % 3);
            q.sticky = 0;
            q.prod_norm = (int)(j & 1);
            if (mx_blockfma_check(&q) == MX_OK)
                ps[n++] = q;
        }
        mx_blockfma_params q = *p;
        q.sticky = 1;
        q.align_round = MX_ALIGN_TRUNC;
        if (mx_blockfma_check(&q) == MX_OK)
            ps[n++] = q;
    }
    return n;
}

static const mx_format_id pairs[][2] = {
    {MX_E4M3FN, MX_E4M3FN}, {MX_E4M3FNUZ, MX_E4M3FNUZ}, {MX_E5M2, MX_E4M3FN},
    {MX_E5M2FNUZ, MX_E5M2FNUZ}, {MX_BF16, MX_BF16}, {MX_FP16, MX_FP16},
};

START_TEST(test_fast_vs_slow)
{
    mx_blockfma_params ps[128];
    size_t np = param_sets(ps, 128);
    ck_assert_uint_ge(np, 10);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20261202);
    uint16_t a[NMAX], b[NMAX];
    size_t cases = 0, fast_hits = 0;
    for (size_t pi = 0; pi < np; pi++) {
        const mx_blockfma_params *p = &ps[pi];
        for (size_t fi = 0; fi < sizeof pairs / sizeof pairs[0]; fi++) {
            const mx_format *fa = mx_format_get(pairs[fi][0]);
            const mx_format *fb = mx_format_get(pairs[fi][1]);
            for (int it = 0; it < 240; it++) {
                int family = it % 6;
                size_t unit = p->block > 0 ? (size_t)p->k : 1;
                size_t n = unit * (1 + gsl_rng_uniform_int(r, NMAX / unit > 4 ? 4 : NMAX / unit));
                if (p->block == 0)
                    n = 1 + gsl_rng_uniform_int(r, NMAX);
                if (n > NMAX)
                    n = NMAX;
                fill(r, fa, a, fb, b, n, family);
                uint32_t c = rnd_c(r);
                double cabs = (double)gsl_rng_uniform(r) * 4.0;

                mxb_set_slow(0);
                uint32_t d1 = mx_blockfma_dot_bits(p, fa, a, fb, b, n, c);
                double s1 = mx_blockfma_sum_abs(p, fa, a, fb, b, n);
                double bd1 = mx_blockfma_bound_dot(p, fa, a, fb, b, n, cabs);
                double bb1 = mx_blockfma_bound(p, n, isfinite(s1) ? s1 : 1.0, cabs);
                mxb_set_slow(1);
                uint32_t d0 = mx_blockfma_dot_bits(p, fa, a, fb, b, n, c);
                double s0 = mx_blockfma_sum_abs(p, fa, a, fb, b, n);
                double bd0 = mx_blockfma_bound_dot(p, fa, a, fb, b, n, cabs);
                double bb0 = mx_blockfma_bound(p, n, isfinite(s0) ? s0 : 1.0, cabs);
                mxb_set_slow(0);
                EXPECT(d1 == d0,
                       "%s (frac %d, round %d, sticky %d, norm %d) %s x %s n=%zu family %d "
                       "c=0x%08x: fast 0x%08x, slow 0x%08x",
                       p->name, p->frac_bits, p->align_round, p->sticky, p->prod_norm,
                       fa->name, fb->name, n, family, c, d1, d0);
                EXPECT(same_d(s1, s0), "%s %s x %s family %d: sum_abs %a vs %a",
                       p->name, fa->name, fb->name, family, s1, s0);
                EXPECT(same_d(bd1, bd0), "%s %s x %s family %d: bound_dot %a vs %a",
                       p->name, fa->name, fb->name, family, bd1, bd0);
                EXPECT(same_d(bb1, bb0), "%s: bound %a vs %a", p->name, bb1, bb0);
                cases++;
                fast_hits += p->frac_bits != MX_BFMA_EXACT && p->frac_bits <= 49;
            }
        }
    }
    gsl_rng_free(r);
    ck_assert_uint_gt(fast_hits, cases / 2);
}
END_TEST

/* mxb_up is nextafter(x, +inf) for every class of x. */
START_TEST(test_up)
{
    const double xs[] = {0.0, -0.0, 0x1p-1074, -0x1p-1074, 0x1p-1022, 1.0, -1.0,
                         0x1.fffffffffffffp+1023, -0x1.fffffffffffffp+1023,
                         INFINITY, -INFINITY, 3.0e-300, 1e300};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        EXPECT(same_d(mxb_up(xs[i]), nextafter(xs[i], INFINITY)), "up(%a) = %a, want %a",
               xs[i], mxb_up(xs[i]), nextafter(xs[i], INFINITY));
    EXPECT1(isnan(mxb_up(NAN)));
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t u = ((uint64_t)gsl_rng_get(r) << 32) ^ gsl_rng_get(r);
        double x;
        memcpy(&x, &u, sizeof x);
        if (isnan(x))
            continue;
        EXPECT(same_d(mxb_up(x), nextafter(x, INFINITY)), "up(%a)", x);
    }
    gsl_rng_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blockfast");
    TCase *tc = tcase_create("fast-vs-slow");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fast_vs_slow);
    tcase_add_test(tc, test_up);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
