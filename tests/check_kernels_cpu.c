/* check_kernels_cpu.c -- the CPU backend of kernels/mxk.h against second,
 * deliberately simple implementations written here:
 *  - mx_quant: amax and floor(log2 amax) in MPFR, codes by mxref's
 *    encoder (mx_encode_mpfr) of the exact x * 2^(127-s);
 *  - fn_to_fnuz: mxref's byte rewrite and value-preservation proof, the
 *    packing by its index formula, the refusal with the first index;
 *  - moe_align: the invariants of its contract and a counting sort;
 *  - the GEMMs: loops over tokens and their top-k experts straight from
 *    topk_ids (never through sorted_ids), FP8/E8M0 values from mxref's
 *    decoders, and the documented order of operations;
 *  - swiglu_quant and moe_sum: the formulas of facts §5, mxref encoding;
 * then every planted bug: it changes its kernel's output on at least one
 * standard case and leaves every other kernel alone; and the argument
 * checks (each names the kernel and the argument).
 *
 * Build note: compiled with -ffp-contract=off like the backend, so that
 * `acc + p * sc` here is a multiply and an add.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpfr.h>
#include "testutil.h"
#include "kcase.h"
#include "mxref/format.h"
#include "mxref/fnuz.h"
#include "mxk.h"
#include "mxk_numerics.h"

#define NSEEDS 6

static const mxk_ops *cpu;

static const mx_format *fp8fmt(int fmt)
{
    return mx_format_get(fmt == MXK_FP8_E4M3FN ? MX_E4M3FN : MX_E4M3FNUZ);
}

static float fp8val(int fmt, uint8_t b)
{
    return (float)mx_decode_double(fp8fmt(fmt), b);
}

static float e8m0val(int spec, uint8_t s)
{
    return (float)(spec ? mx_e8m0_decode_spec(s) : mx_e8m0_decode_production(s));
}

/* ---- simple implementations --------------------------------------------- */

/* One block of 32 FP32 values by the production floor rule, in MPFR. */
static void ref_quant_block(const float *v, int fmt, uint8_t *q, uint8_t *s)
{
    mpfr_t amax, t;
    mpfr_inits2(64, amax, t, (mpfr_ptr)0);
    mpfr_set_d(amax, 1e-30f, MPFR_RNDN);
    for (int i = 0; i < 32; i++)
        if (!isnan(v[i])) {
            mpfr_set_flt(t, fabsf(v[i]), MPFR_RNDN);
            mpfr_max(amax, amax, t, MPFR_RNDN);
        }
    long fl = mpfr_inf_p(amax) ? 1000 : mpfr_get_exp(amax) - 1;
    long sc = fl + 127 > 254 ? 254 : fl + 127 < 0 ? 0 : fl + 127;
    *s = (uint8_t)sc;
    mx_encode_opts o = mx_encode_defaults();
    for (int i = 0; i < 32; i++) {
        uint32_t code;
        if (isnan(v[i])) { /* MPFR keeps no sign on NaN; binary64 does */
            EXPECT1(mx_encode_double(fp8fmt(fmt), v[i], &o, &code) == MX_OK);
            q[i] = (uint8_t)code;
            continue;
        }
        mpfr_set_flt(t, v[i], MPFR_RNDN);
        mpfr_mul_2si(t, t, 127 - sc, MPFR_RNDN);
        EXPECT1(mx_encode_mpfr(fp8fmt(fmt), t, &o, &code) == MX_OK);
        q[i] = (uint8_t)code;
    }
    mpfr_clears(amax, t, (mpfr_ptr)0);
}

static void ref_quant(const mxk_quant_args *a, uint8_t *q, uint8_t *s)
{
    for (int64_t b = 0; b < (int64_t)a->rows * a->k / 32; b++) {
        float v[32];
        for (int i = 0; i < 32; i++)
            v[i] = mx_bf16_to_float(a->x[b * 32 + i]);
        ref_quant_block(v, a->fmt, q + b * 32, s + b);
    }
}

/* Output row id of a GEMM, from the token's routing directly. */
static void ref_gemm_mxfp8(const mxk_mxfp8_gemm_args *a, const int32_t *topk_ids,
                           const int32_t *map, uint16_t *out)
{
    const int T = a->r.tokens, topk = a->r.topk, N = a->n, K = a->k, G = K / 32;
    const int spec = a->e8m0 == MXK_E8M0_SPEC;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < topk; j++) {
            int id = t * topk + j, e = topk_ids[id];
            if (map)
                e = map[e];
            for (int n = 0; n < N; n++) {
                if (e < 0) {
                    out[(size_t)id * N + n] = 0;
                    continue;
                }
                int arow = a->r.a_per_token ? t : id;
                float acc = 0.0f;
                for (int g = 0; g < G; g++) {
                    float p = 0.0f;
                    for (int kk = 0; kk < 32; kk++)
                        p = fmaf(fp8val(a->fmt, a->a[(size_t)arow * K + g * 32 + kk]),
                                 fp8val(a->fmt, a->b[((size_t)e * N + n) * K + g * 32 + kk]),
                                 p);
                    size_t bi = a->b_scale_packed ? ((size_t)e * G + g) * N + n
                                                  : ((size_t)e * N + n) * G + g;
                    float sa = e8m0val(spec, a->a_scale[(size_t)arow * G + g]);
                    float sb = e8m0val(spec, a->b_scale[bi]);
                    float sc = sa * sb;
                    float ps = p * sc;
                    acc = acc + ps;
                }
                if (a->r.topk_weights)
                    acc = acc * a->r.topk_weights[id];
                out[(size_t)id * N + n] = mx_bf16_from_float(acc);
            }
        }
}

static void ref_gemm_bf16(const mxk_bf16_gemm_args *a, const int32_t *topk_ids,
                          const int32_t *map, uint16_t *out)
{
    const int T = a->r.tokens, topk = a->r.topk, N = a->n, K = a->k;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < topk; j++) {
            int id = t * topk + j, e = topk_ids[id];
            if (map)
                e = map[e];
            for (int n = 0; n < N; n++) {
                if (e < 0) {
                    out[(size_t)id * N + n] = 0;
                    continue;
                }
                int arow = a->r.a_per_token ? t : id;
                float acc = 0.0f;
                for (int k = 0; k < K; k++)
                    acc = fmaf(mx_bf16_to_float(a->a[(size_t)arow * K + k]),
                               mx_bf16_to_float(a->b[((size_t)e * N + n) * K + k]),
                               acc);
                if (a->r.topk_weights)
                    acc = acc * a->r.topk_weights[id];
                out[(size_t)id * N + n] = mx_bf16_from_float(acc);
            }
        }
}

/* facts §5; the sigmoid is the kernels' deterministic routine (it is the
 * definition, checked against MPFR in check_kernels_numerics). */

static void ref_swiglu(const mxk_swiglu_args *a, uint8_t *q, uint8_t *s,
                       float *act)
{
    const int I = a->inter;
    for (int r = 0; r < a->rows; r++)
        for (int g = 0; g < I / 32; g++) {
            float v[32];
            for (int i = 0; i < 32; i++) {
                float gate = mx_bf16_to_float(a->g1[(size_t)r * 2 * I + g * 32 + i]);
                float up = mx_bf16_to_float(a->g1[(size_t)r * 2 * I + I + g * 32 + i]);
                if (gate > 7.0f)
                    gate = 7.0f;
                if (up > 7.0f)
                    up = 7.0f;
                if (up < -7.0f)
                    up = -7.0f;
                float t = 1.702f * gate;
                float sg = mxk_sigmoidf(t);
                float gs = gate * sg;
                float u1 = up + 1.0f;
                v[i] = gs * u1;
                act[(size_t)r * I + g * 32 + i] = v[i];
            }
            ref_quant_block(v, a->fmt, q + (size_t)r * I + g * 32,
                            s + (size_t)r * (I / 32) + g);
        }
}

static void ref_sum(const mxk_sum_args *a, uint16_t *out)
{
    const int N = a->n, K = a->topk;
    for (int t = 0; t < a->tokens; t++)
        for (int i = 0; i < N; i++) {
            const uint16_t *x = a->x + (size_t)t * K * N + i;
            if (a->fp32_acc) {
                float s = mx_bf16_to_float(x[0]);
                for (int j = 1; j < K; j++)
                    s = s + mx_bf16_to_float(x[(size_t)j * N]);
                out[(size_t)t * N + i] = mx_bf16_from_float(s);
            } else {
                uint16_t s = x[0];
                for (int j = 1; j < K; j++)
                    s = mx_bf16_from_float(mx_bf16_to_float(s) +
                                           mx_bf16_to_float(x[(size_t)j * N]));
                out[(size_t)t * N + i] = s;
            }
        }
}

/* Same bits, NaNs of any payload being equal. */
static int same_f32(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (isnan(a) && isnan(b));
}

/* ---- the kernels, shape by shape ------------------------------------- */

typedef void (*shape_check)(kc_case *c, const char *what);

static void for_shapes(unsigned kernel, shape_check f)
{
    int n;
    const kc_shape *sh = kc_standard_shapes(&n);
    char what[256];
    for (int i = 0; i < n; i++) {
        if (sh[i].kernel != kernel)
            continue;
        for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
            kc_case *c = kc_new(&sh[i], seed);
            ck_assert_msg(c, "out of memory");
            kc_describe(&sh[i], what, sizeof what);
            size_t l = strlen(what);
            snprintf(what + l, sizeof what - l, " seed=%llu",
                     (unsigned long long)seed);
            f(c, what);
            kc_free(c);
        }
    }
}

static void chk_quant(kc_case *c, const char *what)
{
    const mxk_quant_args *a = kc_quant(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    size_t n = (size_t)a->rows * a->k;
    uint8_t *q = malloc(n), *s = malloc(n / 32);
    ref_quant(a, q, s);
    for (size_t i = 0; i < n / 32; i++)
        EXPECT(s[i] == a->scale[i], "%s: scale[%zu] = %u, want %u", what, i,
               a->scale[i], s[i]);
    for (size_t i = 0; i < n; i++)
        EXPECT(q[i] == a->q[i], "%s: q[%zu] = 0x%02x, want 0x%02x (x 0x%04x)",
               what, i, a->q[i], q[i], a->x[i]);
    free(q);
    free(s);
}

START_TEST(test_mx_quant) { for_shapes(MXK_K_MX_QUANT, chk_quant); }
END_TEST

static void chk_fnuz(kc_case *c, const char *what)
{
    const mxk_fnuz_args *a = kc_fnuz(c);
    mxk_status st = kc_run(cpu, c, 0, NULL);
    const int64_t E = a->experts, N = a->n, G = a->k / 32;
    const int64_t ns = E * N * G, nv = ns * 32;
    int64_t first = -1;
    for (int64_t i = 0; i < ns && first < 0; i++)
        if (a->scales[i] >= 254)
            first = i;
    if (first >= 0) {
        ck_assert_msg(st == MXK_ERANGE, "%s: status %d, want ERANGE", what, st);
        ck_assert_msg(*a->bad_index == first, "%s: bad_index %lld, want %lld",
                      what, (long long)*a->bad_index, (long long)first);
        ck_assert_msg(strstr(cpu->last_error(), "scales["), "%s: message '%s'",
                      what, cpu->last_error());
        for (int64_t i = 0; i < nv; i++)
            EXPECT(a->out_vals[i] == 0xa5, "%s: out_vals written on refusal",
                   what);
        for (int64_t i = 0; i < ns; i++)
            EXPECT(a->out_scales[i] == 0xa5, "%s: out_scales written", what);
        return;
    }
    ck_assert_msg(st == MXK_OK, "%s: status %d", what, st);
    ck_assert_int_eq(*a->bad_index, -1);
    uint8_t *want_v = malloc(nv), *want_s = malloc(ns), *unpacked = malloc(ns);
    size_t bad;
    ck_assert(mx_fn_to_fnuz_mx(a->vals, nv, a->scales, ns, 32, want_v, want_s,
                               &bad) == MX_OK);
    for (int64_t i = 0; i < nv; i++)
        EXPECT(a->out_vals[i] == want_v[i], "%s: out_vals[%lld] = 0x%02x, want "
               "0x%02x", what, (long long)i, a->out_vals[i], want_v[i]);
    for (int64_t e = 0; e < E; e++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                int64_t src = (e * N + n) * G + g;
                int64_t dst = a->pack ? e * G * N + g * N + n : src;
                EXPECT(a->out_scales[dst] == want_s[src],
                       "%s: scale (e%lld n%lld g%lld) = %u, want %u", what,
                       (long long)e, (long long)n, (long long)g,
                       a->out_scales[dst], want_s[src]);
                unpacked[src] = a->out_scales[dst];
            }
    /* values preserved wherever the FN byte is not a NaN */
    uint8_t *v = malloc(nv);
    memcpy(v, a->vals, nv);
    uint8_t *ov = malloc(nv);
    memcpy(ov, a->out_vals, nv);
    for (int64_t i = 0; i < nv; i++)
        if ((v[i] & 0x7f) == 0x7f)
            v[i] = ov[i] = 0;
    ck_assert_msg(mx_fnuz_check_preserved(v, a->scales, ov, unpacked, nv, 32) ==
                      -1,
                  "%s: a value changed", what);
    free(v);
    free(ov);
    free(want_v);
    free(want_s);
    free(unpacked);
}

START_TEST(test_fn_to_fnuz) { for_shapes(MXK_K_FN_TO_FNUZ, chk_fnuz); }
END_TEST

static void chk_align(kc_case *c, const char *what)
{
    const mxk_align_args *a = kc_align(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    const int E = a->experts, bm = a->block_m;
    const int32_t nids = a->tokens * a->topk;
    const int64_t cap = mxk_align_max_rows(a->tokens, a->topk, E, bm);
    const int64_t capb = mxk_align_max_blocks(a->tokens, a->topk, E, bm);
    /* counting sort: expected layout */
    int32_t *want = malloc(cap * 4), *wante = malloc(capb * 4);
    int32_t off = 0;
    for (int64_t i = 0; i < cap; i++)
        want[i] = nids;
    for (int64_t b = 0; b < capb; b++)
        wante[b] = -1;
    for (int e = 0; e < E; e++) {
        int32_t cnt = 0;
        for (int32_t i = 0; i < nids; i++)
            if (a->topk_ids[i] == e)
                want[off + cnt++] = i;
        int32_t len = cnt % bm ? cnt + bm - cnt % bm : cnt;
        for (int32_t b = off / bm; b < (off + len) / bm; b++)
            wante[b] = a->expert_map ? a->expert_map[e] : e;
        off += len;
    }
    ck_assert_msg(*a->num_post_pad == off, "%s: num_post_pad %d, want %d",
                  what, *a->num_post_pad, off);
    ck_assert(off % bm == 0 && off <= cap);
    for (int64_t i = 0; i < cap; i++)
        EXPECT(a->sorted_ids[i] == want[i], "%s: sorted_ids[%lld] = %d, want "
               "%d", what, (long long)i, a->sorted_ids[i], want[i]);
    for (int64_t b = 0; b < capb; b++)
        EXPECT(a->expert_ids[b] == wante[b], "%s: expert_ids[%lld] = %d, want "
               "%d", what, (long long)b, a->expert_ids[b], wante[b]);
    /* invariants, stated directly: every id once; each block one expert */
    int *seen = calloc(nids, sizeof *seen);
    for (int32_t p = 0; p < off; p++) {
        int32_t id = a->sorted_ids[p];
        if (id == nids)
            continue;
        EXPECT(id >= 0 && id < nids && !seen[id], "%s: id %d twice or bad",
               what, id);
        seen[id] = 1;
        int e = a->topk_ids[id];
        int le = a->expert_map ? a->expert_map[e] : e;
        EXPECT(a->expert_ids[p / bm] == le, "%s: id %d in a block of expert "
               "%d, routed to %d", what, id, a->expert_ids[p / bm], le);
        if (p > 0 && a->sorted_ids[p - 1] != nids &&
            a->topk_ids[a->sorted_ids[p - 1]] == e)
            EXPECT(a->sorted_ids[p - 1] < id, "%s: not stable at %d", what, p);
    }
    for (int32_t i = 0; i < nids; i++)
        EXPECT(seen[i], "%s: id %d missing", what, i);
    free(seen);
    free(want);
    free(wante);
}

START_TEST(test_moe_align) { for_shapes(MXK_K_MOE_ALIGN, chk_align); }
END_TEST

static void chk_out16(const char *what, const uint16_t *got,
                      const uint16_t *want, size_t n, int ncols)
{
    for (size_t i = 0; i < n; i++)
        EXPECT(got[i] == want[i], "%s: out[%zu][%zu] = 0x%04x, want 0x%04x",
               what, i / ncols, i % ncols, got[i], want[i]);
}

static void chk_mxfp8(kc_case *c, const char *what)
{
    const mxk_mxfp8_gemm_args *a = kc_mxfp8(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    size_t n = (size_t)a->r.tokens * a->r.topk * a->n;
    uint16_t *want = malloc(2 * n);
    ref_gemm_mxfp8(a, kc_topk_ids(c), kc_expert_map(c), want);
    chk_out16(what, a->out, want, n, a->n);
    free(want);
}

START_TEST(test_mxfp8_gemm) { for_shapes(MXK_K_MXFP8_GEMM, chk_mxfp8); }
END_TEST

static void chk_bf16(kc_case *c, const char *what)
{
    const mxk_bf16_gemm_args *a = kc_bf16_args(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    size_t n = (size_t)a->r.tokens * a->r.topk * a->n;
    uint16_t *want = malloc(2 * n);
    ref_gemm_bf16(a, kc_topk_ids(c), kc_expert_map(c), want);
    chk_out16(what, a->out, want, n, a->n);
    free(want);
}

START_TEST(test_bf16_gemm) { for_shapes(MXK_K_BF16_GEMM, chk_bf16); }
END_TEST

/* The kernels that split their work (mxk_cpu_set_parallel: the GEMMs by
 * column chunks, fn_to_fnuz by experts) under a loop that runs the tasks
 * in reverse order, so any task that read or wrote outside its own slice,
 * or any element whose order depended on the cut, would differ from the
 * simple implementations above. */
static size_t most_tasks;

static void reverse_for(size_t n, mxk_task_fn fn, void *ctx)
{
    if (n > most_tasks)
        most_tasks = n;
    for (size_t i = n; i-- > 0;)
        fn(ctx, i);
}

START_TEST(test_parallel_tasks)
{
    most_tasks = 0;
    mxk_cpu_set_parallel(reverse_for);
    for_shapes(MXK_K_MXFP8_GEMM, chk_mxfp8);
    for_shapes(MXK_K_BF16_GEMM, chk_bf16);
    for_shapes(MXK_K_FN_TO_FNUZ, chk_fnuz);
    mxk_cpu_set_parallel(NULL);
    ck_assert_msg(most_tasks >= 2, "no shape had more than one task (%zu)",
                  most_tasks);
}
END_TEST

/* A GEMM whose every step is exact: small integer FP8 values, scale 2^0,
 * sums far below 2^24: the output is the exact dot product, from integer
 * arithmetic, whatever the order. */
START_TEST(test_mxfp8_gemm_exact_integers)
{
    const int T = 3, topk = 2, E = 2, N = 5, K = 64, G = 2, bm = 4;
    int32_t ids[6] = {0, 1, 1, 0, 0, 1};
    int32_t sorted[16], eids[4], npp;
    mxk_align_args al = {ids, T, topk, E, bm, NULL, sorted, eids, &npp, 0};
    ck_assert_int_eq(cpu->moe_align(&al, NULL), MXK_OK);
    uint8_t a[3 * 64], as[3 * 2], b[2 * 5 * 64], bs[2 * 5 * 2];
    int av[3 * 64], bv[2 * 5 * 64];
    /* FNUZ codes of small integers: 1 = 0x40, 2 = 0x48, 3 = 0x4c, -1 = 0xc0 */
    static const uint8_t code[4] = {0x40, 0x48, 0x4c, 0xc0};
    static const int val[4] = {1, 2, 3, -1};
    for (int i = 0; i < 3 * 64; i++)
        a[i] = code[i % 4], av[i] = val[i % 4];
    for (int i = 0; i < 2 * 5 * 64; i++)
        b[i] = code[(i / 3) % 4], bv[i] = val[(i / 3) % 4];
    memset(as, 127, sizeof as);
    memset(bs, 127, sizeof bs);
    uint16_t out[6 * 5];
    mxk_mxfp8_gemm_args g = {{sorted, eids, npp, bm, T, topk, 1, NULL},
                             a, as, b, bs, 0, E, N, K, MXK_FP8_E4M3FNUZ,
                             MXK_E8M0_PRODUCTION, MXK_PATH_AUTO, out, 0};
    ck_assert_int_eq(cpu->mxfp8_group_gemm(&g, NULL), MXK_OK);
    (void)G;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < topk; j++)
            for (int n = 0; n < N; n++) {
                long dot = 0;
                for (int k = 0; k < K; k++)
                    dot += (long)av[t * K + k] * bv[(ids[t * topk + j] * N + n) * K + k];
                float want = (float)dot;
                ck_assert_msg(mx_bf16_to_float(out[(t * topk + j) * N + n]) ==
                                  mx_bf16_to_float(mx_bf16_from_float(want)),
                              "t%d j%d n%d", t, j, n);
            }
}
END_TEST

static void chk_swiglu(kc_case *c, const char *what)
{
    const mxk_swiglu_args *a = kc_swiglu(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    size_t n = (size_t)a->rows * a->inter;
    uint8_t *q = malloc(n), *s = malloc(n / 32);
    float *act = malloc(4 * n);
    ref_swiglu(a, q, s, act);
    for (size_t i = 0; i < n; i++)
        EXPECT(same_f32(act[i], a->act[i]), "%s: act[%zu] = %a, want %a", what,
               i, a->act[i], act[i]);
    for (size_t i = 0; i < n / 32; i++)
        EXPECT(s[i] == a->scale[i], "%s: scale[%zu] = %u, want %u", what, i,
               a->scale[i], s[i]);
    for (size_t i = 0; i < n; i++)
        EXPECT(q[i] == a->q[i], "%s: q[%zu] = 0x%02x, want 0x%02x", what, i,
               a->q[i], q[i]);
    free(q);
    free(s);
    free(act);
}

START_TEST(test_swiglu_quant) { for_shapes(MXK_K_SWIGLU_QUANT, chk_swiglu); }
END_TEST

static void chk_sum(kc_case *c, const char *what)
{
    const mxk_sum_args *a = kc_sum(c);
    ck_assert_int_eq(kc_run(cpu, c, 0, NULL), MXK_OK);
    size_t n = (size_t)a->tokens * a->n;
    uint16_t *want = malloc(2 * n);
    ref_sum(a, want);
    chk_out16(what, a->out, want, n, a->n);
    free(want);
}

START_TEST(test_moe_sum) { for_shapes(MXK_K_MOE_SUM, chk_sum); }
END_TEST

/* ---- planted bugs ----------------------------------------------------- */

START_TEST(test_mutant_table)
{
    int n;
    const mxk_mutant_info *t = mxk_mutant_table(&n);
    ck_assert_int_ge(n, 12);
    ck_assert_int_eq(n, MXK_MUT_COUNT - 1);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(t[i].id, i + 1);
        ck_assert(t[i].kernels != 0 && t[i].what && strlen(t[i].what) > 20);
        ck_assert_ptr_eq(mxk_mutant_by_name(t[i].name), &t[i]);
        ck_assert_ptr_eq(mxk_mutant_by_id(t[i].id), &t[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(t[i].name, t[j].name);
        for (const char *p = t[i].name; *p; p++)
            ck_assert((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      *p == '-');
    }
    ck_assert_ptr_null(mxk_mutant_by_id(0));
    ck_assert_ptr_null(mxk_mutant_by_id(MXK_MUT_COUNT));
    ck_assert_ptr_null(mxk_mutant_by_name("no-such-bug"));
    ck_assert_str_eq(mxk_kernel_name(MXK_K_MOE_SUM), "moe_sum");
    ck_assert_ptr_null(mxk_kernel_name(3));
}
END_TEST

/* Each bug changes the output of each kernel it names on at least one
 * standard case (so none is a no-op) and never touches another kernel. */
START_TEST(test_mutants_change_their_kernels)
{
    int n, nm;
    const kc_shape *sh = kc_standard_shapes(&n);
    const mxk_mutant_info *t = mxk_mutant_table(&nm);
    char what[256];
    for (int m = 0; m < nm; m++) {
        unsigned changed = 0;
        for (int i = 0; i < n; i++) {
            kc_case *c = kc_new(&sh[i], 1);
            ck_assert(c);
            kc_describe(&sh[i], what, sizeof what);
            mxk_status s0 = kc_run(cpu, c, 0, NULL);
            uint8_t *snap = kc_snapshot(c, NULL);
            mxk_status s1 = kc_run(cpu, c, t[m].id, NULL);
            const char *d = kc_first_diff(c, snap);
            if (*d || s0 != s1)
                changed |= sh[i].kernel;
            if (!(t[m].kernels & sh[i].kernel))
                EXPECT(!*d && s0 == s1, "%s changed %s (%s)", t[m].name, what, d);
            free(snap);
            kc_free(c);
        }
        ck_assert_msg(changed == t[m].kernels,
                      "%s changes kernels 0x%x, its table says 0x%x", t[m].name,
                      changed, t[m].kernels);
    }
}
END_TEST

/* The bug the lead's acceptance test plants: scales of group g+1 on g. */
START_TEST(test_mutant_next_group_detail)
{
    kc_shape s = {.kernel = MXK_K_MXFP8_GEMM, .tokens = 4, .topk = 2,
                  .experts = 4, .block_m = 4, .n = 8, .k = 96,
                  .fmt = MXK_FP8_E4M3FNUZ};
    kc_case *c = kc_new(&s, 3);
    const mxk_mxfp8_gemm_args *a = kc_mxfp8(c);
    ck_assert_int_eq(kc_run(cpu, c, MXK_MUT_SCALE_NEXT_GROUP, NULL), MXK_OK);
    /* expected: the simple GEMM with the scales shifted one group down and
     * a zero (masked) scale on the last group */
    size_t nout = (size_t)s.tokens * s.topk * s.n;
    uint16_t *got = malloc(2 * nout), *want = malloc(2 * nout);
    memcpy(got, a->out, 2 * nout);
    int G = s.k / 32, arows = s.tokens, E = s.experts;
    uint8_t *as = malloc(arows * G), *bs = malloc(E * s.n * G);
    for (int r = 0; r < arows; r++)
        for (int g = 0; g < G; g++)
            as[r * G + g] = g + 1 < G ? a->a_scale[r * G + g + 1] : 0;
    for (int i = 0; i < E * s.n; i++)
        for (int g = 0; g < G; g++)
            bs[i * G + g] = g + 1 < G ? a->b_scale[i * G + g + 1] : 0;
    mxk_mxfp8_gemm_args shifted = *a;
    shifted.a_scale = as;
    shifted.b_scale = bs;
    ref_gemm_mxfp8(&shifted, kc_topk_ids(c), kc_expert_map(c), want);
    chk_out16("scale-next-group", got, want, nout, s.n);
    free(got);
    free(want);
    free(as);
    free(bs);
    kc_free(c);
}
END_TEST

/* ---- argument checks -------------------------------------------------- */

#define REFUSED(call, needle)                                                  \
    do {                                                                       \
        ck_assert_int_eq((call), MXK_EINVAL);                                  \
        ck_assert_msg(strstr(cpu->last_error(), (needle)),                     \
                      "message '%s' lacks '%s'", cpu->last_error(), (needle)); \
    } while (0)

START_TEST(test_bad_arguments)
{
    uint16_t x[64] = {0};
    uint8_t q[64], s[4];
    mxk_quant_args qa = {x, q, s, 1, 64, MXK_FP8_E4M3FNUZ, 0};
    ck_assert_int_eq(cpu->mx_quant(&qa, NULL), MXK_OK);
    qa.k = 40;
    REFUSED(cpu->mx_quant(&qa, NULL), "mx_quant: k = 40");
    qa.k = 64, qa.fmt = 7;
    REFUSED(cpu->mx_quant(&qa, NULL), "fmt 7");
    qa.fmt = 0, qa.mutant = MXK_MUT_COUNT;
    REFUSED(cpu->mx_quant(&qa, NULL), "unknown mutant");
    qa.mutant = 0, qa.q = NULL;
    REFUSED(cpu->mx_quant(&qa, NULL), "must be given");
    REFUSED(cpu->mx_quant(NULL, NULL), "mx_quant");

    uint8_t v[64], sc[2], ov[64], os[2];
    int64_t bad;
    memset(sc, 1, sizeof sc);
    mxk_fnuz_args fa = {v, sc, ov, os, 1, 1, 64, 1, &bad, 0};
    ck_assert_int_eq(cpu->fn_to_fnuz(&fa, NULL), MXK_OK);
    fa.out_scales = sc;
    REFUSED(cpu->fn_to_fnuz(&fa, NULL), "overlap");
    fa.out_scales = os, fa.pack = 2;
    REFUSED(cpu->fn_to_fnuz(&fa, NULL), "pack = 2");

    int32_t ids[4] = {0, 1, 2, 9}, sorted[64], eids[64], npp;
    mxk_align_args al = {ids, 2, 2, 4, 4, NULL, sorted, eids, &npp, 0};
    REFUSED(cpu->moe_align(&al, NULL), "topk_ids[3] = 9");
    ids[3] = 3;
    ck_assert_int_eq(cpu->moe_align(&al, NULL), MXK_OK);
    al.block_m = 0;
    REFUSED(cpu->moe_align(&al, NULL), "block_m = 0");
    al.block_m = 4;
    int32_t map[4] = {0, -2, 1, -1};
    al.expert_map = map;
    REFUSED(cpu->moe_align(&al, NULL), "expert_map[1] = -2");

    uint8_t a8[2 * 64], as8[4], b8[4 * 3 * 64], bs8[4 * 3 * 2];
    uint16_t out[4 * 3];
    memset(a8, 0x40, sizeof a8);
    memset(b8, 0x40, sizeof b8);
    memset(as8, 127, sizeof as8);
    memset(bs8, 127, sizeof bs8);
    mxk_mxfp8_gemm_args g = {{sorted, eids, npp, 4, 2, 2, 1, NULL}, a8, as8,
                             b8, bs8, 0, 4, 3, 64, 0, 0, 0, out, 0};
    ck_assert_int_eq(cpu->mxfp8_group_gemm(&g, NULL), MXK_OK);
    g.k = 48;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "k = 48 is not a multiple of 32");
    g.k = 64, g.e8m0 = 5;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "e8m0 decode 5");
    g.e8m0 = 0, g.r.num_post_pad = 3;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "num_post_pad = 3");
    g.r.num_post_pad = npp;
    sorted[1] = 5;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "sorted_ids[1] = 5");
    sorted[1] = 4;
    eids[0] = 4;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "expert_ids[0] = 4");
    eids[0] = -2;
    REFUSED(cpu->mxfp8_group_gemm(&g, NULL), "expert_ids[0] = -2");
    eids[0] = 0;

    uint16_t a16[2 * 10], b16[4 * 3 * 10];
    memset(a16, 0, sizeof a16);
    memset(b16, 0, sizeof b16);
    mxk_bf16_gemm_args bg = {{sorted, eids, npp, 4, 2, 2, 1, NULL}, a16, b16,
                             4, 3, 10, 0, out, 0};
    ck_assert_int_eq(cpu->bf16_group_gemm(&bg, NULL), MXK_OK);
    bg.path = 9;
    REFUSED(cpu->bf16_group_gemm(&bg, NULL), "bf16_group_gemm: unknown path");
    bg.path = 0, bg.r.a_per_token = 3;
    REFUSED(cpu->bf16_group_gemm(&bg, NULL), "a_per_token = 3");

    uint16_t g1[2 * 64] = {0};
    mxk_swiglu_args sw = {g1, q, s, NULL, 1, 32, 0, 0};
    ck_assert_int_eq(cpu->swiglu_quant(&sw, NULL), MXK_OK);
    sw.inter = 48;
    REFUSED(cpu->swiglu_quant(&sw, NULL), "inter = 48");

    mxk_sum_args sm = {x, out, 2, 2, 3, 0, 0};
    ck_assert_int_eq(cpu->moe_sum(&sm, NULL), MXK_OK);
    sm.fp32_acc = 2;
    REFUSED(cpu->moe_sum(&sm, NULL), "fp32_acc = 2");
    sm.fp32_acc = 0, sm.topk = 0;
    REFUSED(cpu->moe_sum(&sm, NULL), "topk = 0");
}
END_TEST

START_TEST(test_ops_table)
{
    ck_assert_int_eq(cpu->abi, MXK_ABI_VERSION);
    ck_assert_str_eq(cpu->name, "cpu");
    ck_assert_int_eq(cpu->gemm_exact, 1);
    double ms = -1;
    uint16_t x[32] = {0};
    uint8_t q[32], s;
    mxk_quant_args qa = {x, q, &s, 1, 32, 0, 0};
    ck_assert_int_eq(cpu->mx_quant(&qa, &ms), MXK_OK);
    ck_assert(ms >= 0);
    ck_assert_int_eq(s, 27); /* all zero: amax = 1e-30 -> floor(log2) = -100 */
}
END_TEST

int main(void)
{
    cpu = mxk_cpu_ops();
    printf("seeds 1..%d of the standard shapes (tests/kcase.c)\n", NSEEDS);
    Suite *su = suite_create("kernels, CPU backend");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mx_quant);
    tcase_add_test(tc, test_fn_to_fnuz);
    tcase_add_test(tc, test_moe_align);
    tcase_add_test(tc, test_mxfp8_gemm);
    tcase_add_test(tc, test_mxfp8_gemm_exact_integers);
    tcase_add_test(tc, test_bf16_gemm);
    tcase_add_test(tc, test_parallel_tasks);
    tcase_add_test(tc, test_swiglu_quant);
    tcase_add_test(tc, test_moe_sum);
    tcase_add_test(tc, test_mutant_table);
    tcase_add_test(tc, test_mutants_change_their_kernels);
    tcase_add_test(tc, test_mutant_next_group_detail);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_ops_table);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
