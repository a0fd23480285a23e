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
 * holds that one to an MPFR/GMP oracle and to the H100's outputs.
 * test_gemm_walk holds the one-walk GEMM path of block models
 * (reference/blockfma_gemm.c) to the element-by-element one the same way:
 * every output of mx_gemm, scaled operands of every format, every preset
 * and grid variants, data that forces its fallbacks (subnormal and
 * overflowing block results).  test_walk_split holds a call split into
 * column blocks on three threads, whose blocks share A's decoded rows, to
 * the same call on one thread, for every preset and operand kind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "mxref/blockfma.h"
#include "mxref/pool.h"
#include "blockfma_fx.h"
#include "gemm_internal.h"
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

/* Codes of a scaled GEMM operand: kind 0 the common case (narrow
 * exponents), 1 wide exponents with subnormals, 2 any finite code,
 * 3 half the rows the negation of the other half (cancelling dots), 4
 * sparse (mostly zeros of both signs). */
static uint32_t walk_code1(gsl_rng *r, const mx_format *f, int kind)
{
    uint32_t top = f->bits == 8 ? 0x80u : 0x8000u;
    switch (kind) {
    case 1:
        return rnd_code(r, f, 3);
    case 2:
        return rnd_code(r, f, 0);
    case 4:
        if (gsl_rng_uniform_int(r, 4))
            return gsl_rng_uniform_int(r, 2) ? top : 0;
        return rnd_code(r, f, 1);
    default:
        return rnd_code(r, f, 1);
    }
}

/* ... never NaN or inf (mx_gemm refuses them) */
static uint32_t walk_code(gsl_rng *r, const mx_format *f, int kind)
{
    uint32_t c, m;
    int neg, x;
    do
        c = walk_code1(r, f, kind);
    while (mx_decode_fields(f, c, &neg, &m, &x) >= MX_CLASS_INF);
    return c;
}

static void walk_fill(gsl_rng *r, const mx_format *f, void *codes, uint8_t *sc,
                      size_t rows, size_t K, int kind, int scale_kind)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t k = 0; k < K; k++) {
            uint32_t c = walk_code(r, f, kind);
            if (kind == 3 && i >= rows / 2 && rows / 2 > 0) {
                size_t j = i - rows / 2;
                c = f->bits == 8 ? ((uint8_t *)codes)[j * K + k]
                                 : ((uint16_t *)codes)[j * K + k];
                c ^= f->bits == 8 ? 0x80u : 0x8000u;
                if (f->id == MX_E4M3FNUZ || f->id == MX_E5M2FNUZ)
                    c = (c & 0x7fu) ? c : 0;
            }
            if (f->bits == 8)
                ((uint8_t *)codes)[i * K + k] = (uint8_t)c;
            else
                ((uint16_t *)codes)[i * K + k] = (uint16_t)c;
        }
    for (size_t i = 0; i < rows * (K / 32); i++) {
        /* 0: near 1; 1: anything but 255 (zero scales, the extremes);
         * 2: 2^-12 .. 2^12 (sums past int64 that fit 128 bits: the
         * walk's wide exact sums, mxg_xsum), one in 8 a zero scale */
        sc[i] = scale_kind == 2   ? (uint8_t)(gsl_rng_uniform_int(r, 8) == 0
                                                  ? 0
                                                  : 115 + gsl_rng_uniform_int(r, 25))
                : scale_kind == 1 ? (uint8_t)gsl_rng_uniform_int(r, 255)
                                  : (uint8_t)(120 + gsl_rng_uniform_int(r, 15));
    }
}

static int same_f(float x, float y) { return memcmp(&x, &y, sizeof x) == 0; }

/* Runs mx_gemm with every output, fast or slow.  Fast, the call runs
 * twice more: without sum |ab| (so that the walk may form the exact
 * values itself, mxg_xsum, instead of the fused kernel), and with exact
 * values and bounds alone; every output of those must be the first run's
 * bit for bit. */
static void walk_run(const mx_gemm_spec *sp, const mx_operand *A, const mx_operand *B,
                     int slow, double *ex, float *ma, uint16_t *mo, double *bd,
                     double *sa, double *ba)
{
    mx_gemm_out o = {ex, ma, mo, bd, sa, ba};
    mxb_set_slow(slow);
    mx_status st = mx_gemm(sp, A, B, &o, NULL);
    mxb_set_slow(0);
    ck_assert_int_eq(st, MX_OK);
    if (slow)
        return;
    size_t MN = A->rows * B->rows;
    double *ex2 = malloc(MN * sizeof *ex2), *bd2 = malloc(MN * sizeof *bd2);
    double *ba2 = malloc(MN * sizeof *ba2);
    float *ma2 = malloc(MN * sizeof *ma2);
    uint16_t *mo2 = malloc(MN * sizeof *mo2);
    ck_assert(ex2 && bd2 && ba2 && ma2 && mo2);
    for (int v = 0; v < 2; v++) {
        mx_gemm_out o2 = {ex2, v ? NULL : ma2, v ? NULL : mo2, bd2, NULL, v ? NULL : ba2};
        ck_assert_int_eq(mx_gemm(sp, A, B, &o2, NULL), MX_OK);
        for (size_t i = 0; i < MN; i++)
            EXPECT(same_d(ex[i], ex2[i]) && same_d(bd[i], bd2[i]) &&
                       (v || (same_f(ma[i], ma2[i]) && mo[i] == mo2[i] &&
                              same_d(ba[i], ba2[i]))),
                   "%s, %zux%zux%zu, %s: element %zu differs from the run with sum |ab| "
                   "(exact %a / %a, bound %a / %a)",
                   sp->model.block ? sp->model.block->name : "-", A->rows, B->rows, A->K,
                   v ? "exact and bound alone" : "no sum |ab|", i, ex[i], ex2[i], bd[i],
                   bd2[i]);
    }
    free(ex2);
    free(bd2);
    free(ba2);
    free(ma2);
    free(mo2);
}

/* mxb_wmag and mxb_wsum_exact against the values themselves: for every
 * pair of 8-bit formats under every in_fmt, every w of every code pair
 * (mxb_mag_of, the general decode) is at least |a b| and 2^(r_a + r_b),
 * and |a b| for normal operands; the least quantum (lowest
 * set bit) and the largest binade of any w; sums of n of them are exact
 * when (largest binade + 1) - least quantum + ceil(log2 n) <= 53.  A
 * claim of exactness must hold by that count, and E4M3 x E4M3 must get
 * it (so the exact path of the bound is taken where it applies). */
START_TEST(test_wsum_exact)
{
    static const mx_format_id f8[] = {MX_E4M3FN, MX_E4M3FNUZ, MX_E5M2, MX_E5M2FNUZ};
    size_t claimed = 0;
    for (size_t x = 0; x < 4; x++)
        for (size_t y = 0; y < 4; y++)
            for (int in = 0; in <= MX_FORMAT_COUNT; in++) {
                const mx_format *fa = mx_format_get(f8[x]), *fb = mx_format_get(f8[y]);
                int lo = 10000, hi = -10000;
                size_t wrong = 0;
                for (uint32_t ca = 0; ca < 256; ca++) {
                    mxb_mag a = mxb_mag_of(fa, in, ca);
                    if (a.cls != 1)
                        continue;
                    for (uint32_t cb = 0; cb < 256; cb++) {
                        mxb_mag b = mxb_mag_of(fb, in, cb);
                        if (b.cls != 1)
                            continue;
                        /* the bounds' w: at least |a b| and 2^(r_a + r_b),
                         * and |a b| itself when a and b are normal */
                        double t = a.v * b.v, q = a.p * b.p;
                        double w = mxb_wmag(a) * mxb_wmag(b);
                        wrong += !(w >= t && w >= q);
                        wrong += a.v >= a.p && b.v >= b.p && w != t;
                        int e;
                        frexp(w, &e); /* w in [2^(e-1), 2^e) */
                        hi = e > hi ? e : hi;
                        /* lowest set bit: w = 2^(e-53) m, m < 2^53 an integer */
                        uint64_t m = (uint64_t)ldexp(w, 53 - e);
                        int k = e - 53 + __builtin_ctzll(m);
                        lo = k < lo ? k : lo;
                    }
                }
                EXPECT(wrong == 0, "%s x %s in_fmt %d: %zu code pairs whose w is below "
                       "|a b| or 2^(r_a + r_b), or not |a b| for normal operands", fa->name,
                       fb->name, in, wrong);
                for (size_t n = 1; n <= 128; n *= 2) {
                    int lg = 0;
                    while (((size_t)1 << lg) < n)
                        lg++;
                    int need = hi - lo + lg;
                    int says = mxb_wsum_exact(fa, fb, in, n);
                    claimed += says;
                    EXPECT(!says || need <= 53, "%s x %s in_fmt %d n %zu: claims exact sums, "
                           "values need %d bits", fa->name, fb->name, in, n, need);
                    if (x < 2 && y < 2 && n <= 32)
                        EXPECT(says, "%s x %s in_fmt %d n %zu: exact sums not claimed "
                               "(%d bits)", fa->name, fb->name, in, n, need);
                }
            }
    ck_assert_uint_gt(claimed, 0);
    /* 16-bit formats are never exact (a BF16 product spans far more) */
    ck_assert_int_eq(mxb_wsum_exact(mx_format_get(MX_BF16), mx_format_get(MX_BF16), 0, 2), 0);
}
END_TEST

START_TEST(test_gemm_walk)
{
    mx_blockfma_params ps[64];
    size_t np = 0;
    const mx_blockfma_params *p;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && np + 5 <= 64; i++) {
        ps[np++] = *p;
        if (p->frac_bits == MX_BFMA_EXACT)
            continue;
        /* grids the walk takes (3, 28) and one it leaves (29); RNE out */
        static const int fb[] = {3, 28, 29};
        for (size_t j = 0; j < 3; j++) {
            mx_blockfma_params q = *p;
            q.frac_bits = fb[j];
            q.final_round = j == 1 ? MX_RNE : q.final_round;
            if (mx_blockfma_check(&q) == MX_OK)
                ps[np++] = q;
        }
        if (p->late_c) { /* late c: a short cutoff, the narrowest sum kept */
            mx_blockfma_params q = *p;
            q.late_c_cutoff = 1;
            q.late_sum_frac_bits = 23;
            if (mx_blockfma_check(&q) == MX_OK)
                ps[np++] = q;
        }
    }
    static const mx_format_id fmts[][2] = {
        {MX_E4M3FN, MX_E4M3FN}, {MX_E5M2, MX_E4M3FN}, {MX_E4M3FNUZ, MX_E4M3FNUZ},
        {MX_E5M2FNUZ, MX_E5M2FNUZ}, {MX_BF16, MX_BF16}, {MX_FP16, MX_FP16},
    };
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20261202);
    enum { MM = 9, NN = 37, KMAX = 96 };
    static uint16_t ca[MM * KMAX], cb[NN * KMAX];
    static uint8_t sca[MM * KMAX / 32], scb[NN * KMAX / 32];
    static double ex[2][MM * NN], bd[2][MM * NN], sa[2][MM * NN], ba[2][MM * NN];
    static float ma[2][MM * NN];
    static uint16_t mo[2][MM * NN];
    int32_t idx[MM];
    float wt[MM];
    size_t walked = 0, runs = 0, fell_back = 0, unscaled_walked = 0, sums_checked = 0;
    size_t kinds = 0;
    unsigned long x64 = mxg_xsum_calls(0), x128 = mxg_xsum_calls(1);
    /* each first pass of the walk this processor has: the portable one
     * (0) and the AVX-512 one (1) */
    for (int wk = 0; wk < 2; wk++) {
        if (mxg_block_walk_set_kind(wk) != 0)
            continue;
        kinds++;
        for (size_t pi = 0; pi < np; pi++)
            for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++)
                for (int kc = 0; kc < 10; kc++) {
                    /* kc >= 5: unscaled operands (one chain of the unit over
                     * K, any K) */
                    int kind = kc % 5, unscaled = kc >= 5;
                    const mx_format *fa = mx_format_get(fmts[fi][0]);
                    const mx_format *fb = mx_format_get(fmts[fi][1]);
                    size_t K = unscaled ? 1 + gsl_rng_uniform_int(r, KMAX)
                                        : 32 * (1 + gsl_rng_uniform_int(r, KMAX / 32));
                    size_t M = 1 + gsl_rng_uniform_int(r, MM), N = 1 + gsl_rng_uniform_int(r, NN);
                    int scale_kind = (kind + (int)pi) % 3;
                    walk_fill(r, fa, ca, sca, MM, K, kind, scale_kind);
                    walk_fill(r, fb, cb, scb, N, K, kind, scale_kind);
                    for (size_t i = 0; i < M; i++) {
                        idx[i] = (int32_t)gsl_rng_uniform_int(r, MM);
                        wt[i] = (float)(gsl_rng_uniform(r) * 2.0 - 0.5);
                    }
                    mx_operand A = {fa, ca, M, K, K, unscaled ? NULL : sca, K / 32, 1,
                                    kind % 2 ? idx : NULL};
                    mx_operand B = {fb, cb, N, K, K, unscaled ? NULL : scb, K / 32, 1, NULL};
                    mx_gemm_spec sp = {MX_E8M0_PRODUCTION, mx_accum_default(),
                                       kind == 2 ? wt : NULL};
                    sp.model.kind = MX_ACC_BLOCK;
                    sp.model.block = &ps[pi];
                    for (int slow = 0; slow < 2; slow++)
                        walk_run(&sp, &A, &B, slow, ex[slow], ma[slow], mo[slow], bd[slow],
                                 sa[slow], ba[slow]);
                    for (size_t i = 0; i < M * N; i++) {
                        EXPECT(same_f(ma[0][i], ma[1][i]) && mo[0][i] == mo[1][i] &&
                                   same_d(ex[0][i], ex[1][i]) && same_d(bd[0][i], bd[1][i]) &&
                                   same_d(sa[0][i], sa[1][i]) && same_d(ba[0][i], ba[1][i]),
                               "%s (frac %d, round %d) %s x %s kind %d%s, %zux%zux%zu, element "
                               "%zu: model %a / %a, bound %a / %a, bound_acc %a / %a",
                               ps[pi].name, ps[pi].frac_bits, ps[pi].final_round, fa->name,
                               fb->name, kind, unscaled ? " unscaled" : "", M, N, K, i,
                               (double)ma[0][i], (double)ma[1][i],
                               bd[0][i], bd[1][i], ba[0][i], ba[1][i]);
                    }
                    /* did the walk take the call? (so the comparison is not
                     * slow against slow) */
                    float w1[MM * NN];
                    double wb[MM * NN], wp[MM * NN];
                    mx_status wst;
                    unsigned long fb0 = mxg_block_walk_fallbacks();
                    int took = mxg_block_walk(&sp, &A, &B, w1, wb, wp, &wst);
                    walked += took;
                    /* the walk's per-element sums against mxg_acc_block's own
                     * (no walk set: it forms them group by group, or as one
                     * chain from mx_blockfma_sum_abs and the per-block bound):
                     * the accumulator bound and sum |ab| it returns, bit for
                     * bit, with and without the walk's sums */
                    for (size_t i = 0; took && i < M * N; i++) {
                        size_t m = i / N, n = i % N;
                        double e0, e1, b0, b1;
                        mxg_block_sums_set(NULL);
                        b0 = mxg_acc_block(&sp, &A, &B, m, n, 1.0, &e0);
                        mxg_block_sums bs = {&sp, &A, &B, wb, wp};
                        mxg_block_sums_set(&bs);
                        b1 = mxg_acc_block(&sp, &A, &B, m, n, 1.0, &e1);
                        mxg_block_sums_set(NULL);
                        EXPECT(same_d(b0, b1) && same_d(e0, e1),
                               "%s (frac %d) %s x %s%s, K %zu, element %zu: accumulator "
                               "bound %a (own) / %a (walk), sum |ab| %a / %a",
                               ps[pi].name, ps[pi].frac_bits, fa->name, fb->name,
                               unscaled ? " unscaled" : "", K, i, b0, b1, e0, e1);
                        sums_checked += unscaled;
                    }
                    runs++;
                    fell_back += mxg_block_walk_fallbacks() - fb0;
                    /* the presets the walk takes (exact-rne on E4M3 only) */
                    int want = !strncmp(ps[pi].name, "hopper", 6) ? ps[pi].frac_bits <= 28
                               : !strncmp(ps[pi].name, "cdna3", 5)
                                   ? ps[pi].frac_bits >= 23 && ps[pi].frac_bits <= 28
                                   : fa->bits == 8 && fa->mbits == 3 && fb->mbits == 3 &&
                                         !unscaled;
                    EXPECT(took == want, "%s (frac %d) %s x %s%s: walk %d, expected %d",
                           ps[pi].name, ps[pi].frac_bits, fa->name, fb->name,
                           unscaled ? " unscaled" : "", took, want);
                    unscaled_walked += took && unscaled;
                }
    }
    gsl_rng_free(r);
    mxg_block_walk_set_kind(1); /* back to the default where there is one */
    x64 = mxg_xsum_calls(0) - x64;
    x128 = mxg_xsum_calls(1) - x128;
    printf("test_gemm_walk: %zu first-pass kinds; the walk's exact values in %lu calls "
           "(int64), %lu (128 bits)\n", kinds, x64, x128);
    ck_assert_uint_gt(x64, 50);
    ck_assert_uint_gt(x128, 20);
    ck_assert_uint_gt(kinds, 0);
    ck_assert_uint_gt(walked, runs / 4);
    ck_assert_uint_gt(unscaled_walked, runs / 8);
    ck_assert_uint_gt(fell_back, 0); /* the general code took some groups */
    ck_assert_uint_gt(sums_checked, 1000);
}
END_TEST

/* A call large enough to be split on the pool, against the same call on
 * one thread (one block, its own decode): every output bit for bit, for
 * every preset, 8- and 16-bit operands, scaled and unscaled, A through a
 * row index, with and without row weights (a tile's are its first row's
 * on).  The splits (gemm_split.c): column blocks that share A's rows
 * decoded once (the walk's, the fused FP8 kernel's, the 16-bit
 * kernel's); with 8-bit operands, tiles of rows and columns that each run
 * the walk and the fused kernels on a view of A's shared decode; and,
 * the fused kernels off (mxg_fused_enable), the whole walk done first in
 * such tiles (mxg_block_walk_tiled) and copied by the column blocks. */
START_TEST(test_walk_split)
{
    static const mx_format_id fmts[] = {MX_E4M3FN, MX_E4M3FNUZ, MX_BF16};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20261203);
    enum { MS = 40, NS = 96, KS = 576 }; /* M N K > 2^21: split on 3 threads */
    static uint16_t ca[MS * KS], cb[NS * KS];
    static uint8_t sca[MS * KS / 32], scb[NS * KS / 32];
    static double ex[3][MS * NS], bd[3][MS * NS], sa[3][MS * NS], ba[3][MS * NS];
    static float ma[3][MS * NS];
    static uint16_t mo[3][MS * NS];
    int32_t idx[MS];
    float wt[MS];
    size_t cases = 0, tiled = 0, split_tiles = 0, walk_first = 0;
    const mx_blockfma_params *p;
    for (size_t pi = 0; (p = mx_blockfma_preset_at(pi)) != NULL; pi++)
        for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++)
            for (int unscaled = 0; unscaled < 2; unscaled++) {
                const mx_format *f = mx_format_get(fmts[fi]);
                walk_fill(r, f, ca, sca, MS, KS, (int)(pi + fi) % 5, 0);
                walk_fill(r, f, cb, scb, NS, KS, (int)(pi + fi + 2) % 5, 0);
                for (size_t i = 0; i < MS; i++)
                    idx[i] = (int32_t)(MS - 1 - i);
                mx_operand A = {f, ca, MS, KS, KS, unscaled ? NULL : sca, KS / 32, 1, idx};
                mx_operand B = {f, cb, NS, KS, KS, unscaled ? NULL : scb, KS / 32, 1, NULL};
                for (size_t i = 0; i < MS; i++) /* FP32 weights in (0, 1) */
                    wt[i] = (float)(gsl_rng_uniform_int(r, 1u << 24) + 1) * 0x1p-24f;
                mx_gemm_spec sp = {MX_E8M0_PRODUCTION, mx_accum_default(),
                                   (pi + fi + (size_t)unscaled) % 2 ? wt : NULL};
                sp.model.kind = MX_ACC_BLOCK;
                sp.model.block = p;
                /* 1 thread; 3 threads; 3 threads, the fused kernels off */
                int runs = f->bits == 8 ? 3 : 2;
                for (int t = 0; t < runs; t++) {
                    unsigned long t0 = mxg_block_walk_tiled_calls();
                    unsigned long s0 = mxg_split_tiles_calls();
                    mx_pool_set_threads(t ? 3 : 1);
                    mxg_fused_enable(t < 2);
                    walk_run(&sp, &A, &B, 0, ex[t], ma[t], mo[t], bd[t], sa[t], ba[t]);
                    mxg_fused_enable(1);
                    int planned = mxg_block_walk_tiled_calls() != t0;
                    int both = mxg_split_tiles_calls() != s0;
                    tiled += planned;
                    split_tiles += both;
                    walk_first += planned && !both;
                    /* 8-bit A on 3 threads: tiles, of both kinds */
                    EXPECT(planned == (t > 0 && f->bits == 8) && both == (t == 1 && planned),
                           "%s %s%s, run %d: planned in tiles %d, walk and fused kernels "
                           "in tiles %d", p->name, f->name, unscaled ? " unscaled" : "", t,
                           planned, both);
                }
                mx_pool_set_threads(1);
                for (int t = 1; t < runs; t++)
                    for (size_t i = 0; i < (size_t)MS * NS; i++)
                        EXPECT(same_f(ma[0][i], ma[t][i]) && mo[0][i] == mo[t][i] &&
                                   same_d(ex[0][i], ex[t][i]) && same_d(bd[0][i], bd[t][i]) &&
                                   same_d(sa[0][i], sa[t][i]) && same_d(ba[0][i], ba[t][i]),
                               "%s %s%s, run %d, element %zu: 1 thread and 3 differ (model "
                               "%a / %a, bound %a / %a, exact %a / %a)", p->name, f->name,
                               unscaled ? " unscaled" : "", t, i, (double)ma[0][i],
                               (double)ma[t][i], bd[0][i], bd[t][i], ex[0][i], ex[t][i]);
                cases++;
            }
    gsl_rng_free(r);
    printf("test_walk_split: %zu cases, %zu calls planned in tiles: %zu as tiles of walk "
           "and fused kernels, %zu walked first\n", cases, tiled, split_tiles, walk_first);
    ck_assert_uint_ge(cases, 12);
    ck_assert_uint_ge(split_tiles, 8);
    ck_assert_uint_ge(walk_first, 8);
}
END_TEST

/* The walk declines (returns 0, mxg_block_walk and the tiled walk alike)
 * a call with one NaN or infinite code in A or in B, wherever it lies, and
 * takes the same call without it: every special code of every 8-bit
 * format (its class from mx_decode_fields, not the walk's tables) and a
 * few of BF16's, at random places. */
START_TEST(test_walk_specials)
{
    static const mx_format_id fmts[] = {MX_E4M3FN, MX_E4M3FNUZ, MX_E5M2, MX_E5M2FNUZ,
                                        MX_BF16};
    enum { MS = 24, NS = 64, KS = 256 };
    static uint16_t ca[MS * KS], cb[NS * KS];
    static uint8_t sca[MS * KS / 32], scb[NS * KS / 32];
    static float ma[MS * NS];
    static double sb[MS * NS], sp[MS * NS];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20261207);
    const mx_blockfma_params *p = mx_blockfma_preset("cdna3-fp8");
    ck_assert_ptr_nonnull(p);
    size_t declined = 0;
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
        const mx_format *f = mx_format_get(fmts[fi]);
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), NULL};
        spec.model.kind = MX_ACC_BLOCK;
        spec.model.block = p;
        uint32_t top = f->bits == 8 ? 256u : 65536u;
        for (uint32_t c = 0; c < top; c++) {
            int neg, x;
            uint32_t m;
            /* BF16: its infinities, and every 4099th NaN */
            if (mx_decode_fields(f, c, &neg, &m, &x) < MX_CLASS_INF ||
                (f->bits == 16 && m != 0 && c % 4099 != 0))
                continue;
            walk_fill(r, f, ca, sca, MS, KS, 1, 0);
            walk_fill(r, f, cb, scb, NS, KS, 1, 0);
            mx_operand A = {f, ca, MS, KS, KS, sca, KS / 32, 1, NULL};
            mx_operand B = {f, cb, NS, KS, KS, scb, KS / 32, 1, NULL};
            mx_status st = MX_OK;
            /* the same operands with no special code are walked */
            ck_assert_int_eq(mxg_block_walk(&spec, &A, &B, ma, sb, sp, &st), 1);
            ck_assert_int_eq(st, MX_OK);
            int inb = (int)gsl_rng_uniform_int(r, 2);
            size_t at = gsl_rng_uniform_int(r, (inb ? NS : MS) * KS);
            if (f->bits == 8)
                ((uint8_t *)(inb ? (void *)cb : (void *)ca))[at] = (uint8_t)c;
            else
                (inb ? cb : ca)[at] = (uint16_t)c;
            EXPECT(mxg_block_walk(&spec, &A, &B, ma, sb, sp, &st) == 0,
                   "%s code %#x at %zu of %s: walked", f->name, c, at, inb ? "B" : "A");
            if (f->bits == 8) {
                mx_pool_set_threads(3);
                EXPECT(mxg_block_walk_tiled(&spec, &A, &B, ma, sb, sp) == 0,
                       "%s code %#x at %zu of %s: walked in tiles", f->name, c, at,
                       inb ? "B" : "A");
                mx_pool_set_threads(1);
            }
            declined++;
        }
    }
    gsl_rng_free(r);
    printf("test_walk_specials: %zu calls declined\n", declined);
    ck_assert_uint_ge(declined, 12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blockfast");
    TCase *tc = tcase_create("fast-vs-slow");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fast_vs_slow);
    tcase_add_test(tc, test_up);
    tcase_add_test(tc, test_wsum_exact);
    tcase_add_test(tc, test_gemm_walk);
    tcase_add_test(tc, test_walk_split);
    tcase_add_test(tc, test_walk_specials);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
