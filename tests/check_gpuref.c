/* check_gpuref.c -- `--reference gpu`: the exact reference's group partials
 * computed by the GPU library (kernels/gpu_slice.hip) against the CPU
 * engine, bit for bit.
 *
 * Loads libmxk_gpu.so as mxverify does (MXVERIFY_GPU_LIB, the build tree,
 * pkglibdir); without a library or device it prints why and exits 77; a
 * library without the slice entry point, or that fails on the device,
 * fails.  make check runs it on the host-thread emulation of the HIP
 * sources (tests/libmxk_emu.so, tests/kernels_emu.test); on a GPU machine
 * it runs the real device code (docs/reference.md).
 *
 *  1. Every case of the suite (default: "default") runs twice on the CPU
 *     backend: with the CPU reference (fused kernels, BLAS) and with the
 *     GPU slice provider.  While the provider is set, EVERY slice block the
 *     device returns is compared bit for bit with the CPU's BLAS on the
 *     same operands (any difference fails), the number of calls that fell
 *     back to the CPU must be 0, and the two runs' rows -- every metric
 *     derived from the exact values (errors, ulps, ratios to the bounds,
 *     histograms, first bad elements) -- must be equal.
 *  3. --walk M,N,K: a block model's walk on the device
 *     (mxk_gpu_block_walk, mx_gemm_set_walk_provider), with the exact
 *     values summed on the device beside it (mx_gemm_set_sum_provider),
 *     against the CPU walk, every exact value, model output and both
 *     bounds bit for bit, for every
 *     block preset, E4M3FN and E4M3FNUZ operands with random scales (and
 *     with row weights, gathered rows and a scale spread reaching FP32's
 *     subnormals), and unscaled BF16 and FP16 operands (one chain of the
 *     unit over K; narrow exponents, and wide ones with row weights and
 *     gathered rows, whose FP32 results leave the normal range and are
 *     flagged by the device); every fifth element flagged by a wrapper of the
 *     provider, so that the host's walk of flagged elements runs too; and
 *     a provider that refuses: the CPU's bits after one offer per call.
 *  2. --time T: the dense GEMM1 (4T x 768 x 6144) and GEMM2 (4T x 6144 x
 *     384) shapes of a MiniMax-M3 TP8 layer of T tokens (top-4), MXFP8
 *     E4M3FN with random E8M0 scales: exact values only, CPU reference
 *     (--jobs threads) against the GPU (the whole exact sum on the device:
 *     mxk_gpu_exact_sum, mx_gemm_set_sum_provider), every element compared
 *     bitwise, both times printed; the device sum must have taken calls.
 *
 * usage: check_gpuref [--suite NAME] [--case NAME] [--time T] [--jobs N]
 *                     [--dense M,N,K] [--walk M,N,K]
 *                     [--no-suite] [--no-blas-check]
 *   --case: only this case of the suite; --jobs: the reference's threads
 *   (mx_pool_set_threads; default 1); --no-blas-check: the suite's rows
 *   only (no per-block BLAS comparison: times the GPU reference run);
 *   --dense M,N,K: one dense shape as in 2.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cblas.h>
#include "backend_gpu.h"
#include "runner.h"
#include "mxref/gemm.h"
#include "mxref/pool.h"
#include "mxref/blockfma.h"
#include <gsl/gsl_rng.h>

static mx_slice_provider gpu_fn;
static mx_sum_provider sum_fn; /* the device's whole exact sum */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long calls, mism_calls, fail_calls;
static unsigned long long elems, mism_elems;
static int compare_on = 1;

/* The GPU's blocks, each checked against BLAS on the same operands. */
static int checking(void *ctx, size_t M, size_t N, size_t K, const double *a,
                    const double *b, size_t g0, size_t ng, double *P)
{
    int rc = gpu_fn(ctx, M, N, K, a, b, g0, ng, P);
    if (rc != 0) {
        pthread_mutex_lock(&mu);
        fail_calls++;
        pthread_mutex_unlock(&mu);
        return rc;
    }
    if (!compare_on) {
        pthread_mutex_lock(&mu);
        calls++;
        pthread_mutex_unlock(&mu);
        return 0;
    }
    double *C = malloc(M * N * sizeof *C);
    unsigned long long bad = 0;
    for (size_t j = 0; j < ng && C; j++) {
        size_t k0 = (g0 + j) * 32, len = K - k0 < 32 ? K - k0 : 32;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N,
                    (int)len, 1.0, a + k0, (int)K, b + k0, (int)K, 0.0, C,
                    (int)N);
        for (size_t i = 0; i < M * N; i++)
            bad += memcmp(&C[i], &P[j * M * N + i], sizeof(double)) != 0;
    }
    pthread_mutex_lock(&mu);
    calls++;
    elems += (unsigned long long)ng * M * N;
    mism_elems += bad;
    mism_calls += bad != 0 || !C;
    pthread_mutex_unlock(&mu);
    free(C);
    return 0;
}

static int same_judge(const mxv_judge *x, const mxv_judge *y)
{
    if (strcmp(x->name ? x->name : "", y->name ? y->name : "") ||
        x->by_bytes != y->by_bytes || x->n != y->n || x->outside != y->outside ||
        x->cls_bound != y->cls_bound || x->cls_ovf_edge != y->cls_ovf_edge ||
        x->cls_model_special != y->cls_model_special ||
        x->cls_bound_inf != y->cls_bound_inf ||
        x->cls_exact_special != y->cls_exact_special ||
        x->bound_not_exact != y->bound_not_exact || x->bit_exact != y->bit_exact ||
        x->ambiguous != y->ambiguous || x->nbad != y->nbad ||
        x->allclose != y->allclose)
        return 0;
    /* bitwise, NaN-safe */
    if (memcmp(&x->max_ratio, &y->max_ratio, sizeof x->max_ratio) ||
        memcmp(&x->max_ulp, &y->max_ulp, sizeof x->max_ulp) ||
        memcmp(&x->rel_l2, &y->rel_l2, sizeof x->rel_l2) ||
        memcmp(&x->sqnr_db, &y->sqnr_db, sizeof x->sqnr_db) ||
        memcmp(&x->aiter_mismatch, &y->aiter_mismatch, sizeof x->aiter_mismatch) ||
        memcmp(x->hist, y->hist, sizeof x->hist))
        return 0;
    for (size_t i = 0; i < x->nbad && i < MXV_JUDGE_FIRST; i++)
        if (x->bad[i].index != y->bad[i].index ||
            memcmp(&x->bad[i].out, &y->bad[i].out, sizeof(double)) ||
            memcmp(&x->bad[i].exact, &y->bad[i].exact, sizeof(double)) ||
            memcmp(&x->bad[i].bound, &y->bad[i].bound, sizeof(double)))
            return 0;
    return 1;
}

static int run_suite(const char *suite, const char *only)
{
    mxv_runner r;
    const char *device;
    if (mxv_runner_backend("cpu", &r, &device) != 0)
        return 1;
    mxv_rows A = {NULL, 0, 0}, B = {NULL, 0, 0};
    double t0 = mxv_now();
    mx_gemm_set_slice_provider(NULL, NULL);
    if (mxv_run_suite(suite, only, &r, &A, 0) != 0)
        return 1;
    double t1 = mxv_now();
    mx_gemm_set_slice_provider(checking, NULL);
    int rc = mxv_run_suite(suite, only, &r, &B, 0);
    mx_gemm_set_slice_provider(NULL, NULL);
    double t2 = mxv_now();
    if (rc != 0)
        return 1;
    int fails = 0;
    if (A.n != B.n) {
        printf("FAIL: %zu rows with the CPU reference, %zu with the GPU one\n", A.n, B.n);
        fails++;
    }
    for (size_t i = 0; i < A.n && i < B.n; i++) {
        const mxv_row *x = &A.rows[i], *y = &B.rows[i];
        int same = !strcmp(x->case_name, y->case_name) && !strcmp(x->kernel, y->kernel) &&
                   x->bit_exact == y->bit_exact && x->error == y->error &&
                   x->not_device == y->not_device && !strcmp(x->message, y->message) &&
                   same_judge(&x->j, &y->j);
        if (!same) {
            printf("FAIL: row %zu (%s %s) differs between the CPU and GPU reference\n",
                   i, x->case_name, x->kernel);
            fails++;
        }
    }
    printf("suite %s%s%s: %zu rows equal: %s; %lu provider calls, %llu partials "
           "compared, %llu differ (%lu calls), %lu fell back to the CPU; "
           "CPU reference run %.2f s, GPU reference run%s %.2f s\n",
           suite, only ? " case " : "", only ? only : "", A.n, fails ? "no" : "yes", calls, elems, mism_elems, mism_calls,
           fail_calls, t1 - t0,
           compare_on ? " (with the BLAS cross-check)" : "", t2 - t1);
    if (!compare_on)
        printf("(no per-block BLAS comparison: --no-blas-check)\n");
    if (calls == 0) {
        printf("FAIL: the provider was never called\n");
        fails++;
    }
    if (mism_elems || mism_calls || fail_calls)
        fails++;
    mxv_rows_free(&A);
    mxv_rows_free(&B);
    return fails != 0;
}

static int time_shape(size_t M, size_t N, size_t K, double *tc, double *tg)
{
    mxv_gpuref_ops g;
    double *e1 = malloc(M * N * sizeof *e1), *e2 = malloc(M * N * sizeof *e2);
    if (!e1 || !e2 || mxv_gpuref_ops_make(&g, M, N, K) != 0) {
        free(e1);
        free(e2);
        return 1;
    }
    const mx_operand A = g.A, B = g.B;
    const mx_gemm_spec s = g.spec;
    mx_gemm_out o1, o2;
    memset(&o1, 0, sizeof o1);
    memset(&o2, 0, sizeof o2);
    o1.exact = e1;
    o2.exact = e2;
    mx_gemm_set_slice_provider(NULL, NULL);
    double t0 = mxv_now();
    int st1 = mx_gemm(&s, &A, &B, &o1, NULL);
    double t1 = mxv_now();
    int was = compare_on;
    unsigned long c0 = calls;
    compare_on = 0; /* timing: the device alone */
    mx_gemm_set_slice_provider(checking, NULL);
    unsigned long f0 = fail_calls, s0 = mx_gemm_sum_count();
    mx_gemm_set_sum_provider(sum_fn, NULL);
    int st2 = mx_gemm(&s, &A, &B, &o2, NULL);
    double t2 = mxv_now();
    mx_gemm_set_slice_provider(NULL, NULL);
    mx_gemm_set_sum_provider(NULL, NULL);
    unsigned long nsum = mx_gemm_sum_count() - s0;
    compare_on = was;
    size_t diff = 0;
    for (size_t i = 0; i < M * N; i++)
        diff += memcmp(&e1[i], &e2[i], sizeof(double)) != 0;
    *tc = t1 - t0;
    *tg = t2 - t1;
    printf("  %zu x %zu x %zu: CPU %.3f s, GPU %.3f s, %zu of %zu exact values "
           "differ; %lu calls summed on the device, %lu slice calls, %lu fallbacks\n",
           M, N, K, *tc, *tg, diff, M * N, nsum, calls - c0, fail_calls - f0);
    mxv_gpuref_ops_free(&g);
    free(e1);
    free(e2);
    return st1 != MX_OK || st2 != MX_OK || diff != 0 || fail_calls != f0 ||
           (sum_fn && nsum == 0);
}

/* ---- 3. the walk on the device ---------------------------------------- */

static mx_walk_provider walk_fn;
static unsigned long walk_forced;

/* The device's walk, then every fifth element flagged and its outputs
 * spoiled (the host must walk those again on the CPU, and that path must
 * give the same bits too). */
static int walk_flagging(void *ctx, const mx_walk_call *c, float *macc, double *sum_b,
                         double *sum_p, unsigned char *flag)
{
    int rc = walk_fn(ctx, c, macc, sum_b, sum_p, flag);
    for (size_t i = 0; rc == 0 && i < c->M * c->N; i += 5) {
        flag[i] = 1;
        macc[i] = -1.0f;
        sum_b[i] = sum_p[i] = -1.0;
        walk_forced++;
    }
    return rc;
}

/* A device that takes nothing: every offer counted and refused (the
 * host must walk the call on the CPU, and offer it once, not per block). */
static unsigned long walk_offers;

static int walk_refusing(void *ctx, const mx_walk_call *c, float *macc, double *sum_b,
                         double *sum_p, unsigned char *flag)
{
    (void)ctx, (void)c, (void)macc, (void)sum_b, (void)sum_p, (void)flag;
    walk_offers++;
    return -1;
}

/* The block model p over (A, B) with the CPU walk, then with the walk
 * provider prov and the device's exact sum (the walk gives the model and
 * the bound sums, so the device sums the exact values: mxg_device_sums):
 * -1 when a status is not MX_OK or any exact value, model output or bound
 * differs (a FAIL line names what), else how many device walks the second
 * call took; *nsum counts the calls the device summed. */
static unsigned long sums_walked;

static int walk_compare(const mx_blockfma_params *p, const mx_operand *A, const mx_operand *B,
                        const float *rw, mx_walk_provider prov, const char *what)
{
    size_t MN = A->rows * B->rows;
    float *m1 = malloc(MN * 4), *m2 = malloc(MN * 4);
    double *b1 = malloc(MN * 8), *b2 = malloc(MN * 8), *y1 = malloc(MN * 8), *y2 = malloc(MN * 8);
    double *e1 = malloc(MN * 8), *e2 = malloc(MN * 8);
    mx_gemm_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.decode = MX_E8M0_PRODUCTION;
    sp.model.kind = MX_ACC_BLOCK;
    sp.model.block = p;
    sp.row_weight = rw;
    mx_gemm_out o1 = {e1, m1, NULL, b1, NULL, y1}, o2 = {e2, m2, NULL, b2, NULL, y2};
    mx_gemm_set_walk_provider(NULL, NULL);
    mx_gemm_set_sum_provider(NULL, NULL);
    int st1 = mx_gemm(&sp, A, B, &o1, NULL);
    unsigned long d0, d1, s0 = mx_gemm_sum_count();
    mx_gemm_walk_counts(&d0, NULL, NULL);
    mx_gemm_set_walk_provider(prov, NULL);
    mx_gemm_set_sum_provider(sum_fn, NULL);
    int st2 = mx_gemm(&sp, A, B, &o2, NULL);
    mx_gemm_set_walk_provider(NULL, NULL);
    mx_gemm_set_sum_provider(NULL, NULL);
    mx_gemm_walk_counts(&d1, NULL, NULL);
    sums_walked += mx_gemm_sum_count() - s0;
    size_t diff = 0;
    for (size_t i = 0; i < MN; i++)
        diff += memcmp(&m1[i], &m2[i], 4) != 0 || memcmp(&b1[i], &b2[i], 8) != 0 ||
                memcmp(&y1[i], &y2[i], 8) != 0 || memcmp(&e1[i], &e2[i], 8) != 0;
    int bad = st1 != MX_OK || st2 != MX_OK || diff != 0;
    if (bad)
        printf("FAIL: walk %s %s: status %d/%d, %zu of %zu elements differ\n", p->name, what,
               st1, st2, diff, MN);
    free(m1);
    free(m2);
    free(b1);
    free(b2);
    free(y1);
    free(y2);
    free(e1);
    free(e2);
    return bad ? -1 : (int)(d1 - d0);
}

static int walk_case(const mx_blockfma_params *p, mx_format_id fid, int kind, size_t M,
                     size_t N, size_t K, gsl_rng *r, mx_walk_provider prov)
{
    const mx_format *f = mx_format_get(fid);
    size_t G = K / 32;
    uint8_t *ca = malloc(M * K), *cb = malloc(N * K), *sa = malloc(M * G), *sb = malloc(N * G);
    float *rw = malloc(M * sizeof *rw);
    int32_t *idx = malloc(M * sizeof *idx);
    for (size_t i = 0; i < M * K; i++)
        do
            ca[i] = (uint8_t)gsl_rng_uniform_int(r, 256);
        while (mx_classify(f, ca[i]) == MX_CLASS_NAN || mx_classify(f, ca[i]) == MX_CLASS_INF);
    for (size_t i = 0; i < N * K; i++)
        do
            cb[i] = (uint8_t)gsl_rng_uniform_int(r, 256);
        while (mx_classify(f, cb[i]) == MX_CLASS_NAN || mx_classify(f, cb[i]) == MX_CLASS_INF);
    /* kind 0: scales 2^(-8..7); kind 1: 2^(-80..-60), FP32 scale products
     * from 2^-160 (below FP32's least subnormal: formed before the partial
     * is scaled, as production forms them), row weights, rows gathered in
     * reverse */
    for (size_t i = 0; i < M * G; i++)
        sa[i] = (uint8_t)(kind ? 47 + gsl_rng_uniform_int(r, 21) : 119 + gsl_rng_uniform_int(r, 16));
    for (size_t i = 0; i < N * G; i++)
        sb[i] = (uint8_t)(kind ? 47 + gsl_rng_uniform_int(r, 21) : 119 + gsl_rng_uniform_int(r, 16));
    for (size_t m = 0; m < M; m++) {
        rw[m] = (float)gsl_rng_uniform_pos(r);
        idx[m] = (int32_t)(M - 1 - m);
    }
    mx_operand A = {f, ca, M, K, K, sa, G, 1, kind ? idx : NULL};
    mx_operand B = {f, cb, N, K, K, sb, G, 1, NULL};
    char what[64];
    snprintf(what, sizeof what, "%s kind %d", f->name, kind);
    int d = walk_compare(p, &A, &B, kind ? rw : NULL, prov, what);
    free(ca);
    free(cb);
    free(sa);
    free(sb);
    free(rw);
    free(idx);
    return d;
}

/* An unscaled 16-bit GEMM (one chain of the unit over K): codes with
 * exponents within 2^(+-lim) of 1 (lim 8: every group walked on the
 * device; lim 60: some FP32 results out of range, flagged), kind 1 with
 * row weights and rows gathered in reverse.  The same outputs as the CPU
 * walk; the number of device walks it took (-1: a difference). */
static int walk_case16(const mx_blockfma_params *p, mx_format_id fid, int kind, int lim,
                       size_t M, size_t N, size_t K, gsl_rng *r, mx_walk_provider prov)
{
    const mx_format *f = mx_format_get(fid);
    uint16_t *ca = malloc(M * K * 2), *cb = malloc(N * K * 2);
    float *rw = malloc(M * sizeof *rw);
    int32_t *idx = malloc(M * sizeof *idx);
    int bias = (1 << (f->ebits - 1)) - 1, mb = f->mbits; /* BF16 127, FP16 15 */
    for (size_t i = 0; i < (M + N) * K; i++) {
        int e = bias + (int)gsl_rng_uniform_int(r, (unsigned long)(2 * lim + 1)) - lim;
        e = e < 0 ? 0 : e > 2 * bias ? 2 * bias : e; /* no inf or NaN exponent */
        uint16_t c = (uint16_t)(gsl_rng_uniform_int(r, 2) << 15 | (unsigned)e << mb |
                                gsl_rng_uniform_int(r, 1ul << mb));
        if (gsl_rng_uniform_int(r, 16) == 0)
            c = 0; /* zeros too */
        if (i < M * K)
            ca[i] = c;
        else
            cb[i - M * K] = c;
    }
    for (size_t m = 0; m < M; m++) {
        rw[m] = (float)gsl_rng_uniform_pos(r);
        idx[m] = (int32_t)(M - 1 - m);
    }
    mx_operand A = {f, ca, M, K, K, NULL, 0, 1, kind ? idx : NULL};
    mx_operand B = {f, cb, N, K, K, NULL, 0, 1, NULL};
    char what[64];
    snprintf(what, sizeof what, "%s kind %d lim %d", f->name, kind, lim);
    int d = walk_compare(p, &A, &B, kind ? rw : NULL, prov, what);
    free(ca);
    free(cb);
    free(rw);
    free(idx);
    return d;
}

static int run_walk(size_t M, size_t N, size_t K)
{
    *(void **)&walk_fn = mxv_gpu_walk_fn();
    if (!walk_fn) {
        printf("FAIL: %s has no %s\n", mxv_gpu_backend_path(), MXK_GPU_WALK_SYMBOL);
        return 1;
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    sums_walked = 0;
    unsigned long f0;
    mx_gemm_walk_counts(NULL, NULL, &f0);
    int fails = 0, cases = 0, device = 0;
    const mx_blockfma_params *p;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) != NULL; i++)
        for (int fi = 0; fi < 2; fi++)
            for (int kind = 0; kind < 2; kind++) {
                int d = walk_case(p, fi ? MX_E4M3FNUZ : MX_E4M3FN, kind, M, N, K, r,
                                  walk_flagging);
                cases++;
                if (d < 0)
                    fails++;
                else
                    device += d > 0;
            }
    /* unscaled 16-bit operands: one chain over K (presets whose
     * instruction divides the group; exact-rne is not walked there) */
    int cases16 = 0, device16 = 0;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) != NULL; i++)
        for (int fi = 0; fi < 2; fi++)
            for (int kind = 0; kind < 2; kind++) {
                int d = walk_case16(p, fi ? MX_FP16 : MX_BF16, kind, kind ? 60 : 8, M, N, K, r,
                                    walk_flagging);
                cases16++;
                if (d < 0)
                    fails++;
                else
                    device16 += d > 0;
            }
    printf("walk %zu x %zu x %zu, unscaled BF16 and FP16 (one chain over K): %d cases, %d "
           "walked on the device\n",
           M, N, K, cases16, device16);
    if (device16 == 0) {
        printf("FAIL: no 16-bit chain was walked on the device\n");
        fails++;
    }
    /* refused: the CPU's bits, one offer and one refusal for the call */
    unsigned long r0, r1, o0 = walk_offers;
    mx_gemm_walk_counts(NULL, &r0, NULL);
    int dr = walk_case(mx_blockfma_preset_at(0), MX_E4M3FN, 1, M, N, K, r, walk_refusing);
    mx_gemm_walk_counts(NULL, &r1, NULL);
    printf("walk %zu x %zu x %zu refused by the device: %s, %lu offer(s), %lu refusal(s)\n", M,
           N, K, dr == 0 ? "the CPU's bits" : "FAIL", walk_offers - o0, r1 - r0);
    if (dr != 0 || walk_offers - o0 != 1 || r1 - r0 != 1) {
        printf("FAIL: a refused walk must give the CPU's bits after exactly one offer\n");
        fails++;
    }
    printf("walk %zu x %zu x %zu: %lu calls' exact values summed on the device beside "
           "its walk\n", M, N, K, sums_walked);
    if (sums_walked == 0) {
        printf("FAIL: no walked call's exact values were summed on the device\n");
        fails++;
    }
    unsigned long f1;
    mx_gemm_walk_counts(NULL, NULL, &f1);
    printf("walk %zu x %zu x %zu: %d scaled cases (every preset, E4M3FN and E4M3FNUZ, two "
           "data kinds), %d walked on the device; %d of all %d cases differ; %lu elements "
           "flagged and walked again on the CPU\n",
           M, N, K, cases, device, fails, cases + cases16, f1 - f0);
    if (device == 0 || f1 == f0) {
        printf("FAIL: the device walk was never taken, or no flagged element was walked\n");
        fails++;
    }
    gsl_rng_free(r);
    return fails != 0;
}

int main(int argc, char **argv)
{
    const char *suite = "default", *only = NULL;
    long T = 0;
    size_t dM = 0, dN = 0, dK = 0, wM = 0, wN = 0, wK = 0;
    int do_suite = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--suite") && i + 1 < argc)
            suite = argv[++i];
        else if (!strcmp(argv[i], "--time") && i + 1 < argc)
            T = atol(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            mx_pool_set_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--dense") && i + 1 < argc) {
            if (sscanf(argv[++i], "%zu,%zu,%zu", &dM, &dN, &dK) != 3 || !dM || !dN ||
                !dK || dK % 32) {
                fprintf(stderr, "--dense M,N,K (K a multiple of 32)\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--walk") && i + 1 < argc) {
            if (sscanf(argv[++i], "%zu,%zu,%zu", &wM, &wN, &wK) != 3 || !wM || !wN ||
                !wK || wK % 32) {
                fprintf(stderr, "--walk M,N,K (K a multiple of 32)\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--no-blas-check"))
            compare_on = 0;
        else if (!strcmp(argv[i], "--no-suite"))
            do_suite = 0;
        else {
            fprintf(stderr, "usage: check_gpuref [--suite NAME] [--case NAME] [--time T] "
                            "[--jobs N] [--no-suite] [--no-blas-check] [--dense M,N,K] "
                            "[--walk M,N,K]\n");
            return 2;
        }
    }
    char why[1024];
    mxv_gpu_state st;
    if (!mxv_gpu_backend(why, sizeof why, &st)) {
        printf("%s: %s\n", st == MXV_GPU_BROKEN ? "FAIL" : "SKIP", why);
        return st == MXV_GPU_BROKEN ? 1 : 77;
    }
    *(void **)&gpu_fn = mxv_gpu_slice_fn();
    if (!gpu_fn) {
        printf("FAIL: %s has no %s\n", mxv_gpu_backend_path(), MXK_GPU_SLICE_SYMBOL);
        return 1;
    }
    *(void **)&sum_fn = mxv_gpu_sum_fn();
    if (!sum_fn) {
        printf("FAIL: %s has no %s\n", mxv_gpu_backend_path(), MXK_GPU_SUM_SYMBOL);
        return 1;
    }
    printf("GPU library: %s\n", mxv_gpu_backend_path());
    int fails = 0;
    if (do_suite)
        fails += run_suite(suite, only);
    if (T > 0) {
        double c1, g1, c2, g2;
        printf("dense shapes of a TP8 layer, %ld tokens (top-4), exact values, %d threads:\n",
               T, mx_pool_threads());
        fails += time_shape((size_t)T * 4, 768, 6144, &c1, &g1);
        fails += time_shape((size_t)T * 4, 6144, 384, &c2, &g2);
        printf("  total: CPU %.3f s, GPU reference %.3f s (%.1fx)\n", c1 + c2, g1 + g2,
               (c1 + c2) / (g1 + g2));
    }
    if (dM) {
        double c, g;
        printf("dense shape, exact values, %d threads:\n", mx_pool_threads());
        fails += time_shape(dM, dN, dK, &c, &g);
    }
    if (wM)
        fails += run_walk(wM, wN, wK);
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
