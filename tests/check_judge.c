/* check_judge.c -- the verdict classes of a bound-judged BF16 tensor
 * (src/judge.h): every element falls in one class, every class has a rule,
 * and for each class an admissible output passes and a wrong one fails.
 * No class means "not judged": a NaN or garbage output fails everywhere
 * except where the reference itself is that special value.
 *
 * Expected verdicts come from the rules as docs/bounds.md states them,
 * applied by hand to values chosen here (BF16 bit patterns written out).
 * The MX peer figures (test_peers_mx) are held to a second implementation;
 * a tensor of several chunks (test_chunks) to its elements judged one at a
 * time, on 1, 2 and 7 threads.
 */
#include <check.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_histogram.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "judge.h"
#include "mxref/format.h"
#include "mxref/pool.h"

#define BF_ONE 0x3F80u      /* 1.0 */
#define BF_ONE_UP 0x3F81u   /* 1 + 2^-7 */
#define BF_TWO 0x4000u      /* 2.0 */
#define BF_INF 0x7F80u
#define BF_NINF 0xFF80u
#define BF_NAN 0x7FC0u
#define BF_NAN2 0xFFC1u     /* another NaN: payload and sign differ */
#define BF_MAX 0x7F7Fu      /* largest finite BF16, (2 - 2^-7) 2^127 */

/* Judges one element; returns 1 when it passes.  *cls receives which class
 * counter moved (0 bound, 1 ovf-edge, 2 model-special, 3 bound-inf,
 * 4 exact-special). */
static int judge1(uint16_t out, const uint16_t *model, double exact, double bound,
                  int *cls)
{
    mxv_judge j;
    mxv_judge_bf16(&j, "t", &out, model, &exact, &bound, 1, 1);
    size_t c[5] = {j.cls_bound, j.cls_ovf_edge, j.cls_model_special,
                   j.cls_bound_inf, j.cls_exact_special};
    int k = -1, total = 0;
    for (int i = 0; i < 5; i++) {
        total += (int)c[i];
        if (c[i])
            k = i;
    }
    ck_assert_int_eq(total, 1); /* exactly one class, never none */
    *cls = k;
    return mxv_judge_pass(&j);
}

START_TEST(test_class_bound)
{
    uint16_t m = BF_ONE;
    int cls;
    /* exact 1 + 2^-9, bound 2^-8: 1.0 is within, 1 + 2^-7 is not */
    ck_assert(judge1(BF_ONE, &m, 1 + 0x1p-9, 0x1p-8, &cls));
    ck_assert_int_eq(cls, 0);
    ck_assert(!judge1(BF_ONE_UP, &m, 1 + 0x1p-9, 0x1p-8, &cls));
    ck_assert(!judge1(BF_NAN, &m, 1 + 0x1p-9, 0x1p-8, &cls));
    ck_assert(!judge1(BF_INF, &m, 1 + 0x1p-9, 0x1p-8, &cls));
    ck_assert_int_eq(cls, 0); /* an infinity is no overflow far from 2^128 */
    /* without a model: the same rule */
    ck_assert(judge1(BF_ONE, NULL, 1 + 0x1p-9, 0x1p-8, &cls));
    ck_assert(!judge1(BF_TWO, NULL, 1 + 0x1p-9, 0x1p-8, &cls));
}
END_TEST

START_TEST(test_class_overflow_edge)
{
    /* exact (2 - 2^-8) 2^127: its BF16 RNE is inf (at the threshold) */
    /* the model (one order) stayed finite; another correct order may
     * round past the threshold */
    double ex = 0x1.FF8p127, bd = 0x1p121; /* |max finite - ex| = 0x1.cp120 */
    uint16_t m = BF_MAX;
    int cls;
    ck_assert(judge1(BF_INF, &m, ex, bd, &cls));
    ck_assert_int_eq(cls, 1);
    ck_assert(judge1(BF_MAX, &m, ex, bd, &cls));
    ck_assert(!judge1(BF_NINF, &m, ex, bd, &cls)); /* wrong sign */
    ck_assert(!judge1(BF_NAN, &m, ex, bd, &cls));
    ck_assert(!judge1(0x7F00u, &m, ex, bd, &cls)); /* 2^127: too far */
    ck_assert_int_eq(cls, 1);
    /* negative side */
    uint16_t mn = BF_MAX | 0x8000u;
    ck_assert(judge1(BF_NINF, &mn, -ex, bd, &cls));
    ck_assert(!judge1(BF_INF, &mn, -ex, bd, &cls));
}
END_TEST

/* The not-device rule (docs/bounds.md, "Verdict classes"): under a model
 * measured on a device, an element within its bound but not bit-exact
 * fails unless bound-only judging is asked for; an element outside its
 * bound is counted there, not here; a NaN model met by another NaN is the
 * model's special value, not a different arithmetic. */
static size_t not_device1(uint16_t out, uint16_t model, double exact, double bound,
                          int measured, int bound_only)
{
    mxv_judge j;
    mxv_judge_bf16(&j, "t", &out, &model, &exact, &bound, 1, 1);
    return mxv_judge_not_device(&j, measured, bound_only);
}

START_TEST(test_not_device)
{
    /* exact 1 + 2^-9, bound 2^-8: the output is the model, bit-exact */
    ck_assert_uint_eq(not_device1(BF_ONE, BF_ONE, 1 + 0x1p-9, 0x1p-8, 1, 0), 0);
    /* model 1 + 2^-7 with a bound 2^-6: 1.0 is within but not the model */
    ck_assert_uint_eq(not_device1(BF_ONE, BF_ONE_UP, 1 + 0x1p-9, 0x1p-6, 1, 0), 1);
    ck_assert_uint_eq(not_device1(BF_ONE, BF_ONE_UP, 1 + 0x1p-9, 0x1p-6, 1, 1), 0);
    ck_assert_uint_eq(not_device1(BF_ONE, BF_ONE_UP, 1 + 0x1p-9, 0x1p-6, 0, 0), 0);
    /* outside the bound: the bound's failure, not this class */
    ck_assert_uint_eq(not_device1(BF_TWO, BF_ONE, 1 + 0x1p-9, 0x1p-8, 1, 0), 0);
    /* NaN model, another NaN out: passes, and is no not-device element */
    ck_assert_uint_eq(not_device1(BF_NAN2, BF_NAN, 0.0, 0x1p-134, 1, 0), 0);
}
END_TEST

START_TEST(test_class_model_special)
{
    /* the FP32 scale product overflowed: exact finite 2^120, model +inf */
    uint16_t m = BF_INF;
    int cls;
    ck_assert(judge1(BF_INF, &m, 0x1p120, 0x1p113, &cls));
    ck_assert_int_eq(cls, 2);
    ck_assert(!judge1(0x7B80u, &m, 0x1p120, 0x1p113, &cls)); /* 2^120: finite */
    ck_assert(!judge1(BF_NINF, &m, 0x1p120, 0x1p113, &cls));
    ck_assert(!judge1(BF_NAN, &m, 0x1p120, 0x1p113, &cls));
    ck_assert_int_eq(cls, 2);
    /* model NaN (0 * inf): any NaN passes, a number does not */
    uint16_t mnan = BF_NAN;
    ck_assert(judge1(BF_NAN2, &mnan, 0.0, 0x1p-134, &cls));
    ck_assert(!judge1(0x0000u, &mnan, 0.0, 0x1p-134, &cls));
    ck_assert(!judge1(BF_INF, &mnan, 0.0, 0x1p-134, &cls));
    ck_assert_int_eq(cls, 2);
}
END_TEST

START_TEST(test_class_bound_infinite)
{
    /* an FP32 intermediate may overflow: the model is the verdict */
    uint16_t m = BF_ONE;
    int cls;
    ck_assert(judge1(BF_ONE, &m, 1.0, INFINITY, &cls));
    ck_assert_int_eq(cls, 3);
    ck_assert(!judge1(BF_ONE_UP, &m, 1.0, INFINITY, &cls));
    ck_assert(!judge1(BF_NAN, &m, 1.0, INFINITY, &cls));
    ck_assert(!judge1(BF_INF, &m, 1.0, INFINITY, &cls));
    /* without a model nothing vouches for the element: it fails */
    ck_assert(!judge1(BF_ONE, NULL, 1.0, INFINITY, &cls));
    ck_assert_int_eq(cls, 3);
    /* a NaN bound is treated as infinite, never as "pass" */
    ck_assert(!judge1(BF_TWO, &m, 1.0, NAN, &cls));
    ck_assert_int_eq(cls, 3);
}
END_TEST

START_TEST(test_class_exact_special)
{
    uint16_t m = BF_INF;
    int cls;
    ck_assert(judge1(BF_INF, &m, INFINITY, 1.0, &cls));
    ck_assert_int_eq(cls, 2); /* a non-finite model takes precedence */
    /* model finite but exact not (inconsistent reference): must match the
     * model bit for bit */
    uint16_t mf = BF_MAX;
    ck_assert(judge1(BF_MAX, &mf, INFINITY, 1.0, &cls));
    ck_assert_int_eq(cls, 4);
    ck_assert(!judge1(BF_INF, &mf, INFINITY, 1.0, &cls));
    /* no model: out must be exact itself */
    ck_assert(judge1(BF_NINF, NULL, -INFINITY, 1.0, &cls));
    ck_assert(!judge1(BF_INF, NULL, -INFINITY, 1.0, &cls));
    ck_assert(judge1(BF_NAN2, NULL, NAN, 1.0, &cls));
    ck_assert(!judge1(BF_ONE, NULL, NAN, 1.0, &cls));
    ck_assert_int_eq(cls, 4);
}
END_TEST

/* A whole tensor: the class counts sum to n, and one bad element of each
 * class fails the tensor with that many outside. */
START_TEST(test_tensor_counts)
{
    uint16_t model[5] = {BF_ONE, BF_INF, BF_INF, BF_NAN, BF_ONE};
    double exact[5] = {1.0, 0x1.FF8p127, 0x1p120, 0.0, 1.0};
    double bound[5] = {0x1p-8, 0x1p119, 0x1p113, 0x1p-134, INFINITY};
    uint16_t good[5] = {BF_ONE, BF_INF, BF_INF, BF_NAN2, BF_ONE};
    uint16_t bad[5] = {BF_TWO, BF_NINF, 0x7B80u, 0x0000u, BF_ONE_UP};
    mxv_judge j;
    mxv_judge_bf16(&j, "t", good, model, exact, bound, 5, 5);
    ck_assert(mxv_judge_pass(&j));
    ck_assert_uint_eq(j.cls_bound + j.cls_ovf_edge + j.cls_model_special +
                          j.cls_bound_inf + j.cls_exact_special, 5);
    ck_assert_uint_eq(j.cls_bound, 1);
    ck_assert_uint_eq(j.cls_ovf_edge, 0); /* model inf: model-special first */
    ck_assert_uint_eq(j.cls_model_special, 3);
    ck_assert_uint_eq(j.cls_bound_inf, 1);
    mxv_judge_bf16(&j, "t", bad, model, exact, bound, 5, 5);
    ck_assert(!mxv_judge_pass(&j));
    ck_assert_uint_eq(j.outside, 5);
    /* the information row never gates and judges nothing */
    mxv_judge_bf16_info(&j, "t", bad, exact, 5, 5);
    ck_assert(j.info_only);
}
END_TEST

/* FP32 outputs: the same classes with FP32's overflow threshold and bit
 * patterns. */
START_TEST(test_f32_classes)
{
    float model[5] = {1.0f, 0x1.fffffep127f, INFINITY, NAN, 1.0f};
    double exact[5] = {1.0 + 0x1p-26, 0x1.fffffe8p127, 0x1p120, 0.0, 1.0};
    double bound[5] = {0x1p-24, 0x1p104, 0x1p100, 0x1p-149, INFINITY};
    float good[5] = {1.0f, INFINITY, INFINITY, -NAN, 1.0f};
    float bad[5] = {nextafterf(1.0f, 2.0f) + 0x1p-22f, -INFINITY, 0x1p120f, 0.0f,
                    nextafterf(1.0f, 2.0f)};
    mxv_judge j;
    mxv_judge_f32_model(&j, "t", good, model, exact, bound, 5, 5);
    ck_assert_msg(mxv_judge_pass(&j), "%zu outside", j.outside);
    ck_assert_uint_eq(j.cls_bound, 1);
    ck_assert_uint_eq(j.cls_ovf_edge, 1); /* 2^128 (1 - 2^-25) reached */
    ck_assert_uint_eq(j.cls_model_special, 2);
    ck_assert_uint_eq(j.cls_bound_inf, 1);
    mxv_judge_f32_model(&j, "t", bad, model, exact, bound, 5, 5);
    ck_assert_uint_eq(j.outside, 5);
    /* a BF16-sized error is outside an FP32 bound */
    float m1 = 1.0f, o1 = 1.0078125f;
    double e1 = 1.0, b1 = 0x1p-23;
    mxv_judge_f32_model(&j, "t", &o1, &m1, &e1, &b1, 1, 1);
    ck_assert(!mxv_judge_pass(&j));
}
END_TEST

/* The text row's exact% reads 100.00% only when every element is
 * bit-exact: one element of 131072 a unit off the model (inside its bound,
 * so the tensor passes) reads 99.99%, not a rounded-up 100.00%; none off
 * reads 100.00%. */
static char *row_text(const mxv_judge *j)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    mxv_judge_print_row(f, "t", j);
    fclose(f);
    return buf;
}

START_TEST(test_exact_percent_text)
{
    enum { N = 131072 };
    float *model = malloc(N * sizeof *model), *out = malloc(N * sizeof *out);
    double *exact = malloc(N * sizeof *exact), *bound = malloc(N * sizeof *bound);
    ck_assert(model && out && exact && bound);
    for (size_t i = 0; i < N; i++) {
        model[i] = out[i] = 1.0f + (float)i * 0x1p-17f;
        exact[i] = model[i];
        bound[i] = 0x1p-20;
    }
    mxv_judge j;
    mxv_judge_f32_model(&j, "t", out, model, exact, bound, N, 512);
    char *t = row_text(&j);
    ck_assert_msg(strstr(t, "100.00%"), "%s", t);
    free(t);
    out[102700] = nextafterf(out[102700], 4.0f);
    mxv_judge_f32_model(&j, "t", out, model, exact, bound, N, 512);
    ck_assert(mxv_judge_pass(&j));
    ck_assert_uint_eq(j.bit_exact, N - 1);
    t = row_text(&j);
    ck_assert_msg(!strstr(t, "100.00%") && strstr(t, " 99.99%"), "%s", t);
    free(t);
    free(model), free(out), free(exact), free(bound);
}
END_TEST

/* mxv_hist_bin against GSL's gsl_histogram_find over the same ranges (the
 * edges, then 1e300 as the last bin's upper end; NaN, inf and ratios from
 * 1e300 up counted as 1e299 in the last bin): at every edge and the doubles
 * either side of it, at 0, the least subnormal and the extremes, and at 10^6
 * values spread over [0, 3) and over 2^-40 .. 2^40. */
static size_t gsl_bin(const gsl_histogram *h, double x)
{
    size_t b = 99;
    double y = isfinite(x) && x < 1e300 ? x : 1e299;
    return gsl_histogram_find(h, y, &b) == GSL_SUCCESS ? b : 99; /* 99: no bin */
}

START_TEST(test_hist_bin_gsl)
{
    gsl_histogram *h = gsl_histogram_alloc(MXV_HIST_BINS);
    double range[MXV_HIST_BINS + 1];
    memcpy(range, mxv_hist_edges, sizeof mxv_hist_edges);
    range[MXV_HIST_BINS] = 1e300;
    ck_assert_int_eq(gsl_histogram_set_ranges(h, range, MXV_HIST_BINS + 1), GSL_SUCCESS);
    double fixed[] = {0, 0x1p-1074, 0x1p-1022, 1e299, 0x1.fffffffffffffp1023,
                      1e300, INFINITY, NAN};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        ck_assert_msg(mxv_hist_bin(fixed[i]) == gsl_bin(h, fixed[i]), "%a", fixed[i]);
    for (size_t b = 0; b < MXV_HIST_BINS; b++) {
        double e = mxv_hist_edges[b];
        double xs[3] = {nextafter(e, 0), e, nextafter(e, INFINITY)};
        for (int k = 0; k < 3; k++)
            ck_assert_msg(mxv_hist_bin(xs[k]) == gsl_bin(h, xs[k]), "%a (edge %zu)",
                          xs[k], b);
        /* the tenths as x * 10 would compute them, both sides */
        double t = (double)b / 10.0;
        ck_assert_msg(mxv_hist_bin(t) == gsl_bin(h, t), "%a", t);
    }
    /* plain comparisons in the loop, one assertion after it (an assertion
     * per value costs Check a write each: too slow under the sanitizers) */
    uint64_t st = 88172645463325252ull;
    size_t differ = 0;
    double first = 0;
    for (int i = 0; i < 1000000; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        double u = (double)(st >> 11) * 0x1p-53;
        double x = i & 1 ? 3.0 * u : ldexp(1.0, -40) * exp2(80.0 * u);
        if (mxv_hist_bin(x) != gsl_bin(h, x) && !differ++)
            first = x;
    }
    ck_assert_msg(differ == 0, "%zu of 10^6 values in another bin, the first %a", differ,
                  first);
    gsl_histogram_free(h);
}
END_TEST

/* mxv_judge_peers_mx against a second implementation: every value decoded
 * on its own from its (expert, row, k) coordinates (scale 2^(s - 127), NaN
 * for 0xFF, as the spec E8M0), then mxv_judge_peers_values on the two
 * arrays; every peer figure must be the same bits.  Scales differ from
 * block to block, so reading one block's values with another's scale (a
 * block cut in the wrong place, a wrong packed index) changes the sums. */
static unsigned lcg_state = 12345u;
static unsigned lcg(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

static void peers_mx_case(size_t E, size_t N, size_t K, int packed, int nan_scale)
{
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    size_t n = E * N * K, G = (K + 31) / 32, ns = packed ? E * N * G : (n + 31) / 32;
    uint8_t *q = malloc(n), *rq = malloc(n), *sc = malloc(ns), *rs = malloc(ns);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    ck_assert(q && rq && sc && rs && a && b);
    for (size_t i = 0; i < n; i++) {
        rq[i] = (uint8_t)(lcg() & 0x7F);
        q[i] = lcg() % 5 == 0 ? (uint8_t)(rq[i] ^ 1) : rq[i]; /* some differ */
    }
    for (size_t i = 0; i < ns; i++) {
        rs[i] = (uint8_t)(110 + lcg() % 30);
        sc[i] = lcg() % 7 == 0 ? (uint8_t)(rs[i] + 1) : rs[i];
    }
    if (nan_scale)
        sc[ns / 2] = 0xFF;
    for (size_t e = 0; e < E; e++)
        for (size_t r = 0; r < N; r++)
            for (size_t k = 0; k < K; k++) {
                size_t i = (e * N + r) * K + k;
                size_t si = packed ? (e * G + k / 32) * N + r : i / 32;
                double x = sc[si] == 0xFF ? NAN : ldexp(1.0, (int)sc[si] - 127);
                double y = rs[si] == 0xFF ? NAN : ldexp(1.0, (int)rs[si] - 127);
                a[i] = mx_decode_double(f, q[i]) * x;
                b[i] = mx_decode_double(f, rq[i]) * y;
            }
    mxv_judge got, want;
    mxv_judge_peers_mx(&got, q, sc, rq, rs, n, K, packed ? N : 0);
    mxv_judge_peers_values(&want, a, b, n);
    ck_assert_msg(memcmp(&got.rel_l2, &want.rel_l2, sizeof(double)) == 0 &&
                      memcmp(&got.sqnr_db, &want.sqnr_db, sizeof(double)) == 0 &&
                      memcmp(&got.aiter_mismatch, &want.aiter_mismatch, sizeof(double)) == 0 &&
                      got.allclose == want.allclose,
                  "E=%zu N=%zu K=%zu packed %d nan %d: rel_l2 %.17g / %.17g, sqnr %.17g / "
                  "%.17g, aiter %.17g / %.17g, allclose %d / %d",
                  E, N, K, packed, nan_scale, got.rel_l2, want.rel_l2, got.sqnr_db,
                  want.sqnr_db, got.aiter_mismatch, want.aiter_mismatch, got.allclose,
                  want.allclose);
    ck_assert(nan_scale ? isinf(want.rel_l2) : want.rel_l2 > 0 && isfinite(want.rel_l2));
    free(q);
    free(rq);
    free(sc);
    free(rs);
    free(a);
    free(b);
}

START_TEST(test_peers_mx)
{
    peers_mx_case(2, 3, 96, 1, 0);  /* packed [E, K/32, N] scales */
    peers_mx_case(3, 5, 64, 1, 0);
    peers_mx_case(1, 4, 96, 0, 0);  /* one scale per 32 values */
    peers_mx_case(1, 1, 100, 0, 0); /* a short last block */
    peers_mx_case(2, 3, 96, 1, 1);  /* a NaN scale */
    /* several chunks (MXV_JUDGE_CHUNK) on the pool: a chunk's edge inside
     * a row, packed and not */
    mx_pool_set_threads(3);
    peers_mx_case(3, 21, 1056, 1, 0);
    peers_mx_case(1, 7, 9000, 0, 0);
    mx_pool_set_threads(1);
}
END_TEST

/* A tensor of several MXV_JUDGE_CHUNK chunks, with elements of every class
 * passing and failing spread over the chunks (more failing ones than
 * MXV_JUDGE_FIRST, in more than one chunk), judged whole on 1, 2 and 7
 * threads, against its elements judged one at a time (n = 1) and merged
 * here in index order: counts, classes, the first bad elements, maxima and
 * histogram equal; the peer figures from sums formed here in the order
 * judge.h states (each chunk in index order, then the chunks). */
/* max_ulp counts the output format's ulps at exact's binade, worked out
 * by hand: BF16 2^(e-7) (2^-133 below 2^-126), FP32 2^(e-23) (2^-149). */
START_TEST(test_ulps)
{
    mxv_judge j;
    uint16_t one = BF_ONE, zero = 0;
    double e1 = 1.0 + 0x1p-9, b = 1.0, e2 = 0x1.8p-1, e3 = 0x1p-130;
    mxv_judge_bf16(&j, "t", &one, NULL, &e1, &b, 1, 1);
    ck_assert(j.max_ulp == 0.25); /* 2^-9 / 2^-7 */
    mxv_judge_bf16(&j, "t", &one, NULL, &e2, &b, 1, 1);
    ck_assert(j.max_ulp == 64.0); /* 2^-2 / 2^-8 */
    mxv_judge_bf16(&j, "t", &zero, NULL, &e3, &b, 1, 1);
    ck_assert(j.max_ulp == 8.0); /* 2^-130 / 2^-133 */
    float f = 3.0f + 0x1p-22f, g = 0.0f;
    double x = 3.0, y = 0x1p-140;
    mxv_judge_f32_model(&j, "t", &f, NULL, &x, &b, 1, 1);
    ck_assert(j.max_ulp == 1.0); /* 2^-22 / 2^-22 */
    mxv_judge_f32_model(&j, "t", &g, NULL, &y, &b, 1, 1);
    ck_assert(j.max_ulp == 512.0); /* 2^-140 / 2^-149 */
}
END_TEST

/* Byte- and code-judged tensors longer than one chunk of the pool's
 * loop (2^20 codes), wrong codes and alternatives in several chunks, on
 * 1, 2 and 7 threads, against the plain loop written here: counts, the
 * first MXV_JUDGE_FIRST bad elements (index, codes or values) in order. */
START_TEST(test_code_chunks)
{
    enum { N = (5 << 20) / 2 + 77 };
    uint8_t *o = malloc(N), *m = malloc(N), *a = malloc(N);
    uint16_t *o16 = malloc(N * 2), *m16 = malloc(N * 2), *a16 = malloc(N * 2);
    ck_assert(o && m && a && o16 && m16 && a16);
    size_t want_ex = 0, want_amb = 0, want_out = 0, bad_i[MXV_JUDGE_FIRST], nb = 0;
    for (size_t i = 0; i < N; i++) {
        m[i] = (uint8_t)(i * 7);
        a[i] = (uint8_t)(m[i] + 1);
        o[i] = m[i];
        if (i % 300007 == 11)
            o[i] = a[i]; /* the alternative */
        else if (i % 250001 == 3)
            o[i] = (uint8_t)(m[i] + 2); /* wrong */
        m16[i] = (uint16_t)(0x3F00u + (i % 256));
        a16[i] = (uint16_t)(m16[i] + 1);
        o16[i] = o[i] == m[i] ? m16[i] : o[i] == a[i] ? a16[i] : (uint16_t)(m16[i] + 2);
        if (o[i] == m[i])
            want_ex++;
        else if (o[i] == a[i])
            want_amb++;
        else {
            want_out++;
            if (nb < MXV_JUDGE_FIRST)
                bad_i[nb++] = i;
        }
    }
    ck_assert_uint_eq(nb, MXV_JUDGE_FIRST);
    ck_assert_uint_gt(bad_i[MXV_JUDGE_FIRST - 1], (size_t)1 << 20); /* past chunk 0 */
    static const int threads[] = {1, 2, 7};
    for (int t = 0; t < 3; t++) {
        mx_pool_set_threads(threads[t]);
        mxv_judge j;
        mxv_judge_bytes(&j, "t", o, m, a, N, 1);
        ck_assert_uint_eq(j.bit_exact, want_ex);
        ck_assert_uint_eq(j.ambiguous, want_amb);
        ck_assert_uint_eq(j.outside, want_out);
        ck_assert_uint_eq(j.nbad, MXV_JUDGE_FIRST);
        for (size_t b = 0; b < nb; b++) {
            size_t i = bad_i[b];
            ck_assert_uint_eq(j.bad[b].index, i);
            ck_assert(j.bad[b].out == o[i] && j.bad[b].exact == m[i] && j.bad[b].bound == a[i]);
        }
        /* the same codes as BF16: equality (the alternative is wrong
         * there) and codes with the alternative */
        size_t n16 = N;
        double *ex = malloc(n16 * sizeof *ex);
        ck_assert(ex != NULL);
        for (size_t i = 0; i < n16; i++)
            ex[i] = mx_bf16_to_float(m16[i]);
        mxv_judge_bf16_codes(&j, "t", o16, m16, a16, ex, n16, 1);
        ck_assert_uint_eq(j.outside, want_out);
        ck_assert_uint_eq(j.bad[MXV_JUDGE_FIRST - 1].index, bad_i[MXV_JUDGE_FIRST - 1]);
        ck_assert(j.bad[0].out == mx_bf16_to_float(o16[bad_i[0]]) &&
                  j.bad[0].exact == mx_bf16_to_float(m16[bad_i[0]]) && j.bad[0].bound == 0);
        mxv_judge_bf16_equal(&j, "t", o16, m16, ex, ex, n16, 1);
        ck_assert_uint_eq(j.outside, want_out + want_amb);
        free(ex);
    }
    mx_pool_set_threads(1);
    free(o);
    free(m);
    free(a);
    free(o16);
    free(m16);
    free(a16);
}
END_TEST

START_TEST(test_chunks)
{
    enum { N = 3 * MXV_JUDGE_CHUNK + 1234 };
    static uint16_t out[N], model[N];
    static double exact[N], bound[N];
    unsigned st = 777u;
    for (size_t i = 0; i < N; i++) {
        st = st * 1103515245u + 12345u;
        unsigned r = i % 2003 == 5 ? (unsigned)(i / 2003) % 6 : 99; /* one in 2003 */
        /* mostly within the bound; rare specials and failures */
        uint16_t m = (uint16_t)(0x3F00u + (st >> 20) % 256);
        double e = mx_bf16_to_float(m) * (1 + 0x1p-12), b = 0x1p-7;
        uint16_t o = (st >> 4) % 3 ? m : (uint16_t)(m + 1);
        if (r == 0) { /* outside the bound */
            o = (uint16_t)(m + 40);
        } else if (r == 1) { /* model-special, matched or not */
            m = BF_NAN;
            o = (st >> 12) % 2 ? BF_NAN2 : BF_ONE;
        } else if (r == 2) { /* bound-inf */
            b = INFINITY;
        } else if (r == 3) { /* exact-special */
            e = INFINITY;
            m = BF_MAX;
            o = (st >> 12) % 2 ? BF_INF : BF_MAX;
        } else if (r == 4) { /* overflow edge */
            e = 0x1.FFp127;
            b = 0x1p121;
            m = BF_MAX;
            o = (st >> 12) % 3 == 0 ? BF_NINF : (st >> 12) % 3 == 1 ? BF_INF : BF_MAX;
        } else if (r == 5) { /* a NaN output where a number is due */
            o = BF_NAN;
        }
        out[i] = o;
        model[i] = m;
        exact[i] = e;
        bound[i] = b;
    }
    /* the plain loop, element by element */
    mxv_judge want;
    memset(&want, 0, sizeof want);
    double d2 = 0, r2 = 0, cd2 = 0, cr2 = 0;
    size_t mis = 0;
    for (size_t i = 0; i < N; i++) {
        mxv_judge e;
        mxv_judge_bf16(&e, "t", &out[i], &model[i], &exact[i], &bound[i], 1, 1);
        want.bit_exact += e.bit_exact;
        want.bound_not_exact += e.bound_not_exact;
        want.cls_bound += e.cls_bound;
        want.cls_ovf_edge += e.cls_ovf_edge;
        want.cls_model_special += e.cls_model_special;
        want.cls_bound_inf += e.cls_bound_inf;
        want.cls_exact_special += e.cls_exact_special;
        want.outside += e.outside;
        if (e.outside && want.nbad < MXV_JUDGE_FIRST) {
            want.bad[want.nbad] = e.bad[0];
            want.bad[want.nbad++].index = i;
        }
        want.max_ratio = fmax(want.max_ratio, e.max_ratio);
        want.max_ulp = fmax(want.max_ulp, e.max_ulp);
        for (int b = 0; b < MXV_HIST_BINS; b++)
            want.hist[b] += e.hist[b];
        double o = mx_bf16_to_float(out[i]), d = o - exact[i];
        if (isnan(o) || isnan(exact[i])) {
            cd2 = INFINITY;
            mis++;
        } else {
            cd2 += d * d;
            cr2 += exact[i] * exact[i];
            mis += !(fabs(d) <= 1e-2 + 1e-2 * fabs(exact[i]));
        }
        if ((i + 1) % MXV_JUDGE_CHUNK == 0 || i + 1 == N) { /* a chunk ends */
            d2 += cd2;
            r2 += cr2;
            cd2 = cr2 = 0;
        }
    }
    ck_assert_msg(want.outside > MXV_JUDGE_FIRST, "outside %zu of %d", want.outside, N);
    ck_assert_msg(want.bad[MXV_JUDGE_FIRST - 1].index > MXV_JUDGE_CHUNK, "outside %zu, 10th at %zu", want.outside, want.bad[MXV_JUDGE_FIRST - 1].index);
    ck_assert_msg(want.cls_ovf_edge && want.cls_model_special && want.cls_bound_inf &&
                  want.cls_exact_special, "classes %zu %zu %zu %zu %zu", want.cls_bound, want.cls_ovf_edge, want.cls_model_special, want.cls_bound_inf, want.cls_exact_special);
    double rel = sqrt(d2) / (sqrt(r2) + 1e-8);
    static const int threads[] = {1, 2, 7};
    for (int t = 0; t < 3; t++) {
        mx_pool_set_threads(threads[t]);
        mxv_judge j;
        mxv_judge_bf16(&j, "t", out, model, exact, bound, N, 1);
        ck_assert_uint_eq(j.n, N);
        ck_assert_uint_eq(j.bit_exact, want.bit_exact);
        ck_assert_uint_eq(j.bound_not_exact, want.bound_not_exact);
        ck_assert_uint_eq(j.cls_bound, want.cls_bound);
        ck_assert_uint_eq(j.cls_ovf_edge, want.cls_ovf_edge);
        ck_assert_uint_eq(j.cls_model_special, want.cls_model_special);
        ck_assert_uint_eq(j.cls_bound_inf, want.cls_bound_inf);
        ck_assert_uint_eq(j.cls_exact_special, want.cls_exact_special);
        ck_assert_uint_eq(j.outside, want.outside);
        ck_assert_uint_eq(j.nbad, want.nbad);
        for (size_t b = 0; b < j.nbad; b++) {
            ck_assert_uint_eq(j.bad[b].index, want.bad[b].index);
            ck_assert(memcmp(&j.bad[b].out, &want.bad[b].out, sizeof(double)) == 0);
            ck_assert(memcmp(&j.bad[b].exact, &want.bad[b].exact, sizeof(double)) == 0);
            ck_assert(memcmp(&j.bad[b].bound, &want.bad[b].bound, sizeof(double)) == 0);
        }
        ck_assert(memcmp(&j.max_ratio, &want.max_ratio, sizeof(double)) == 0);
        ck_assert(memcmp(&j.max_ulp, &want.max_ulp, sizeof(double)) == 0);
        for (int b = 0; b < MXV_HIST_BINS; b++)
            ck_assert_uint_eq(j.hist[b], want.hist[b]);
        ck_assert_msg(memcmp(&j.rel_l2, &rel, sizeof rel) == 0, "rel_l2 %a, want %a",
                      j.rel_l2, rel);
        ck_assert(j.aiter_mismatch == (double)mis / N);
        ck_assert(!j.allclose);
    }
    mx_pool_set_threads(1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("judge");
    TCase *t = tcase_create("classes");
    tcase_add_test(t, test_class_bound);
    tcase_add_test(t, test_class_overflow_edge);
    tcase_add_test(t, test_class_model_special);
    tcase_add_test(t, test_class_bound_infinite);
    tcase_add_test(t, test_class_exact_special);
    tcase_add_test(t, test_tensor_counts);
    tcase_add_test(t, test_f32_classes);
    tcase_add_test(t, test_not_device);
    tcase_add_test(t, test_peers_mx);
    tcase_add_test(t, test_chunks);
    tcase_add_test(t, test_ulps);
    tcase_add_test(t, test_code_chunks);
    tcase_add_test(t, test_exact_percent_text);
    tcase_add_test(t, test_hist_bin_gsl);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
