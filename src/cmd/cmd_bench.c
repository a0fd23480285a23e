/* cmd_bench.c -- `mxverify bench`: how fast the exact reference is on a real
 * layer shape, against the MPFR oracle and against plain binary64 BLAS, on
 * one thread and on every thread asked for.
 *
 * On one generated MiniMax-M3 layer (default: TP8, 64 tokens) it times the
 * layer's routed GEMMs (per-expert GEMM1 and GEMM2 over the routed rows,
 * exactly the calls the layer makes) through
 *   - the BLAS-slice engine and the fused FP8 kernel (exact values only),
 *   - the fused kernel plus the accumulation model, and plus the bounds,
 *   - an FP64 dgemm of the same per-expert shapes (operands pre-decoded),
 *     and of the dense shapes (T*topk rows at once): every ratio is to the
 *     dense dgemm, timed in the same run,
 *   - the MPFR oracle on a sample of elements, extrapolated,
 * checks the sample bit for bit against the fast path, times the whole
 * layer reference (every stage, exact + model + bounds, shared expert) and
 * each of its stages on one thread, the whole layer on 1, 2, 4, ... threads
 * up to --jobs (default: the processors available; wall time, with the
 * process's CPU time beside it), and sets the fused
 * kernel's rate of reading weight bytes beside the machine's memcpy rate,
 * and the layer's speed-up beside the compute ceiling of the same threads
 * (a register-only loop on one thread, then on all at once).
 * BLAS runs on one thread in each worker.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_cblas.h>
#include "mxref/casegen.h"
#include "mxref/fnuz.h"
#include "backend_gpu.h"
#include "case_pool.h"
#include "runner.h"
#include "cli.h"
#include "commands.h"
#include "layer_opts.h"
#include "mxref/pool.h"
#include "gemm_internal.h"

/* One-thread figures are the CPU time of the calling thread (the pool runs
 * every loop in it then, and BLAS too): immune to other load on a shared
 * machine.  Multi-thread figures are wall time. */
static clockid_t clock_id = CLOCK_THREAD_CPUTIME_ID;

static double now(void)
{
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One GEMM call of the layer: operands and its output size. */
typedef struct {
    mx_operand A, B;
    const float *w;
    size_t M, N, K;
    void *own[4];
} call;

typedef struct {
    call *c;
    size_t n, cap;
} calls;

static call *push(calls *cs)
{
    if (cs->n == cs->cap) {
        cs->cap = cs->cap * 2 + 16;
        cs->c = realloc(cs->c, cs->cap * sizeof *cs->c);
    }
    memset(&cs->c[cs->n], 0, sizeof cs->c[0]);
    return &cs->c[cs->n++];
}

static void free_calls(calls *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        for (int j = 0; j < 4; j++)
            free(cs->c[i].own[j]);
    free(cs->c);
}

/* The layer's GEMM calls, built from a reference run's intermediates. */
static int build_calls(const mx_case *c, const mx_moe_result *r, calls *cs)
{
    const mx_moe_shape *s = &c->shape;
    size_t H = s->H, I = s->inter, k = (size_t)s->topk, Tk = c->T * k;
    const mx_format *uz = mx_format_get(MX_E4M3FNUZ);
    int w8a8 = r->policy == MX_POLICY_W8A8;
    if (!w8a8)
        return -1; /* the benchmark is the MXFP8 layer */
    for (int gemm = 1; gemm <= 2; gemm++)
        for (size_t le = 0; le < s->E_local; le++) {
            size_t e = s->expert0 + le, M = 0;
            for (size_t i = 0; i < Tk; i++)
                M += (size_t)r->route.ids[i] == e;
            if (!M)
                continue;
            call *x = push(cs);
            int32_t *idx = malloc(M * sizeof *idx);
            float *w = malloc(M * sizeof *w);
            size_t N = gemm == 1 ? 2 * I : H, K = gemm == 1 ? H : I, m = 0;
            for (size_t i = 0; i < Tk; i++)
                if ((size_t)r->route.ids[i] == e) {
                    idx[m] = (int32_t)(gemm == 1 ? i / k : i);
                    w[m++] = r->route.weights[i];
                }
            uint8_t *bq = malloc(N * K), *bs = malloc(N * K / 32);
            size_t bad;
            mx_fn_to_fnuz_mx(gemm == 1 ? c->w13[le] : c->w2[le], N * K,
                             gemm == 1 ? c->w13_s[le] : c->w2_s[le], N * K / 32,
                             32, bq, bs, &bad);
            mx_operand A = {uz, gemm == 1 ? r->xq.q : r->actq.q, M, K, K,
                            gemm == 1 ? r->xq.s : r->actq.s, K / 32, 1, idx};
            mx_operand B = {uz, bq, N, K, K, bs, K / 32, 1, NULL};
            x->A = A;
            x->B = B;
            x->w = gemm == 2 ? w : NULL;
            x->M = M;
            x->N = N;
            x->K = K;
            x->own[0] = idx;
            x->own[1] = w;
            x->own[2] = bq;
            x->own[3] = bs;
        }
    return 0;
}

/* Runs every call through mx_gemm with the chosen outputs; seconds. */
static double time_calls(const calls *cs, int model, int bound, int fused,
                         mx_gemm_stats *st)
{
    mxg_fused_enable(fused);
    double t0 = now();
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < cs->n; i++) {
        const call *x = &cs->c[i];
        size_t MN = x->M * x->N;
        double *ex = malloc(MN * sizeof *ex), *bd = bound ? malloc(MN * sizeof *bd) : NULL;
        uint16_t *mo = model ? malloc(MN * sizeof *mo) : NULL;
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), x->w};
        mx_gemm_out o = {ex, NULL, mo, bd, NULL, NULL};
        mx_gemm_stats s1;
        mx_gemm(&spec, &x->A, &x->B, &o, &s1);
        st->elements += s1.elements;
        st->slow_elements += s1.slow_elements;
        free(ex);
        free(bd);
        free(mo);
    }
    double t = now() - t0;
    mxg_fused_enable(1);
    return t;
}

/* Bytes of weights (FP8 codes and scales) the routed calls read. */
static double weight_bytes(const calls *cs)
{
    double b = 0;
    for (size_t i = 0; i < cs->n; i++)
        b += (double)cs->c[i].N * (double)cs->c[i].K * (1.0 + 1.0 / 32);
    return b;
}

/* The best time of `reps` runs of run(ctx) with the pool set to `threads`
 * threads: on one thread the calling thread's CPU time (the pool runs every
 * task in it; other load on the machine does not count), on more the wall
 * time, as bench's other one-thread and scaling figures; -1 as soon as a
 * run fails (returns nonzero). */
static double best_time(int threads, int reps, int (*run)(void *ctx), void *ctx)
{
    clockid_t saved = clock_id;
    clock_id = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    mx_pool_set_threads(threads);
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        if (run(ctx) != 0) {
            best = -1;
            break;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    clock_id = saved;
    return best;
}

/* One task per thread, each thread's at once. */
typedef struct {
    size_t n;
    mx_task_fn fn;
    void *ctx;
} each_thread;

static int run_each(void *v)
{
    const each_thread *e = v;
    mx_parallel_for(e->n, e->fn, e->ctx);
    return 0;
}

/* best_time of three runs of one task per thread on `threads` threads */
static double best_of_three(int threads, mx_task_fn fn, void *ctx)
{
    each_thread e = {(size_t)threads, fn, ctx};
    return best_time(threads, 3, run_each, &e);
}

/* memcpy rate, bytes copied per second, on `threads` threads each copying
 * its share of a 256 MiB buffer (best of three). */
typedef struct {
    char *dst;
    const char *src;
    size_t chunk, total;
} copy_ctx;

static void copy_task(void *v, size_t i)
{
    copy_ctx *c = v;
    size_t off = i * c->chunk, n = c->total - off < c->chunk ? c->total - off : c->chunk;
    memcpy(c->dst + off, c->src + off, n);
}

static double copy_rate(int threads)
{
    size_t total = (size_t)256 << 20;
    char *a = malloc(total), *b = malloc(total);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, total);
    memset(b, 2, total);
    copy_ctx c = {b, a, (total + (size_t)threads - 1) / (size_t)threads, total};
    double best = best_of_three(threads, copy_task, &c);
    free(a);
    free(b);
    return (double)total / best;
}

/* The compute ceiling of `threads` threads: the same register-only FP64
 * loop (eight-wide vectors, several independent chains, no memory
 * traffic) on one thread alone (its CPU time) and then on each of
 * `threads` threads at once (wall time); threads * t1 / tN is the most any
 * CPU-bound work can speed up on them (clock drop under load, shared or
 * busy cores), the compute counterpart of the memcpy rate.  Best of three
 * each. */
typedef double v8d_b __attribute__((vector_size(64)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static double spin_fma(long iters, double mul, double add)
{
    v8d_b x0 = {1, 1, 1, 1, 1, 1, 1, 1}, x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0;
    const v8d_b m = {mul, mul, mul, mul, mul, mul, mul, mul};
    const v8d_b a = {add, add, add, add, add, add, add, add};
    for (long i = 0; i < iters; i++) {
        x0 = x0 * m + a;
        x1 = x1 * m + a;
        x2 = x2 * m + a;
        x3 = x3 * m + a;
        x4 = x4 * m + a;
        x5 = x5 * m + a;
    }
    v8d_b t = ((x0 + x1) + (x2 + x3)) + (x4 + x5);
    return t[0] + t[7];
}

/* read at run time, so that the compiler cannot fold the loop */
static volatile double spin_sink, spin_mul = 0.999999, spin_add = 1e-6;

static void spin_task(void *v, size_t i)
{
    (void)i;
    spin_sink = spin_fma(*(const long *)v, spin_mul, spin_add);
}

static double compute_ceiling(int threads)
{
    long iters = 50000000; /* about 0.1 s on one core */
    double t1 = best_of_three(1, spin_task, &iters);
    double tn = best_of_three(threads, spin_task, &iters);
    return tn > 0 ? (double)threads * t1 / tn : 0;
}

/* FP64 dgemm of the same per-expert shapes, operands decoded beforehand. */
static double time_dgemm(const calls *cs)
{
    double total = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const call *x = &cs->c[i];
        double *a = malloc(x->M * x->K * sizeof *a), *b = malloc(x->N * x->K * sizeof *b);
        double *c = malloc(x->M * x->N * sizeof *c);
        for (size_t m = 0; m < x->M; m++)
            for (size_t kk = 0; kk < x->K; kk++)
                a[m * x->K + kk] = mx_decode_double(x->A.fmt,
                    ((const uint8_t *)x->A.codes)[(size_t)x->A.row_idx[m] * x->K + kk]);
        for (size_t n = 0; n < x->N * x->K; n++)
            b[n] = mx_decode_double(x->B.fmt, ((const uint8_t *)x->B.codes)[n]);
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)x->M, (int)x->N,
                    (int)x->K, 1.0, a, (int)x->K, b, (int)x->K, 0.0, c, (int)x->N);
        total += now() - t0;
        free(a);
        free(b);
        free(c);
    }
    return total;
}

/* best of three */
static double time_dense(size_t M, size_t N, size_t K)
{
    double *a = malloc(M * K * sizeof *a), *b = malloc(N * K * sizeof *b);
    double *c = malloc(M * N * sizeof *c);
    for (size_t i = 0; i < M * K; i++)
        a[i] = (double)(i % 17) - 8;
    for (size_t i = 0; i < N * K; i++)
        b[i] = (double)(i % 13) - 6;
    double t = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K,
                    1.0, a, (int)K, b, (int)K, 0.0, c, (int)N);
        double d = now() - t0;
        t = d < t ? d : t;
    }
    free(a);
    free(b);
    free(c);
    return t;
}

/* MPFR oracle on the first `sample` output columns of each call's first
 * row; returns seconds per element, and counts bitwise mismatches. */
static double time_mpfr(const calls *cs, size_t sample, size_t *checked,
                        size_t *mismatch)
{
    double t = 0;
    *checked = *mismatch = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const call *x = &cs->c[i];
        size_t ncol = sample < x->N ? sample : x->N;
        mx_operand A1 = x->A, B1 = x->B;
        A1.rows = 1;
        B1.rows = ncol;
        mx_gemm_spec spec = {MX_E8M0_PRODUCTION, mx_accum_default(), x->w};
        double *ex = malloc(ncol * sizeof *ex), *ex2 = malloc(ncol * sizeof *ex2);
        mx_gemm_out o = {ex, NULL, NULL, NULL, NULL, NULL};
        mx_gemm(&spec, &A1, &B1, &o, NULL);
        double t0 = now();
        mx_gemm_exact_mpfr(&spec, &A1, &B1, ex2);
        t += now() - t0;
        for (size_t n = 0; n < ncol; n++)
            *mismatch += memcmp(&ex[n], &ex2[n], sizeof ex[n]) != 0;
        *checked += ncol;
        free(ex);
        free(ex2);
    }
    return *checked ? t / (double)*checked : 0;
}

/* ---- block models on one large GEMM -------------------------------------- */

/* Reference time of one dense M x N x K MXFP8 GEMM (bench --reference
 * gpu's random operands) under each model, with the outputs check asks for
 * (exact values, model outputs, bounds), on one thread (CPU time) and on
 * `threads` (wall); each ratio is to fp32-group's.  BLOCK_ROUNDS rounds,
 * each running every model once on each thread count, and each time the
 * best of its rounds: the models interleaved, so that a machine whose
 * speed drifts (a shared VM, a busy host) gives every model the same
 * drift, not one model a quiet minute and the next a busy one. */
#define BLOCK_ROUNDS 3
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    mx_gemm_out *o;
} gemm_run;

static int run_gemm(void *v)
{
    const gemm_run *g = v;
    return mx_gemm(g->s, g->A, g->B, g->o, NULL) != MX_OK;
}

static int bench_block_models(size_t M, size_t N, size_t K, int threads)
{
    enum { NMODEL = 4 };
    static const char *names[NMODEL] = {"fp32-group", "block:cdna3-fp8", "block:hopper-fp8",
                                        "block:hopper-fp8-mma"};
    mxv_gpuref_ops g;
    size_t MN = M * N;
    double *ex = malloc(mx_nz(MN) * sizeof *ex), *bd = malloc(mx_nz(MN) * sizeof *bd);
    uint16_t *mo = malloc(mx_nz(MN) * sizeof *mo);
    int rc = -1;
    if (!ex || !bd || !mo || mxv_gpuref_ops_make(&g, M, N, K) != 0) {
        free(ex);
        free(bd);
        free(mo);
        return -1;
    }
    mx_gemm_spec spec[NMODEL];
    double t[NMODEL][2];
    for (size_t i = 0; i < NMODEL; i++) {
        spec[i] = g.spec;
        if (mx_accum_parse(names[i], &spec[i].model) != 0)
            goto out;
        t[i][0] = t[i][1] = 1e30;
    }
    for (int r = 0; r < BLOCK_ROUNDS; r++)
        for (size_t i = 0; i < NMODEL; i++) {
            mx_gemm_out o = {ex, NULL, mo, bd, NULL, NULL};
            gemm_run run = {&spec[i], &g.A, &g.B, &o};
            for (int k = 0; k < 2; k++) {
                double d = best_time(k == 0 ? 1 : threads, 1, run_gemm, &run);
                if (d < 0)
                    goto out;
                t[i][k] = d < t[i][k] ? d : t[i][k];
            }
        }
    printf("bench: one %zu x %zu x %zu MXFP8 GEMM (random E4M3FN codes, scales "
           "2^-8..2^7), exact values + model outputs + bounds, by model:\n", M, N, K);
    char head[64];
    snprintf(head, sizeof head, "model (best of %d interleaved rounds)", BLOCK_ROUNDS);
    printf("%-46s %10s %12s %10s %12s\n", head, "1 thread s", "x fp32-group", "wall s",
           "x fp32-group");
    for (size_t i = 0; i < NMODEL; i++)
        printf("  %-44s %10.3f %11.2fx %10.3f %11.2fx\n", names[i], t[i][0],
               t[i][0] / t[0][0], t[i][1], t[i][1] / t[0][1]);
    rc = 0;
out:
    mxv_gpuref_ops_free(&g);
    free(ex);
    free(bd);
    free(mo);
    return rc;
}

/* ---- bench --reference gpu ---------------------------------------------- */

/* Exact values of one dense M x N x K MXFP8 GEMM, best of two wall times
 * each: the CPU engine (fused kernel, every pool thread) against the GPU
 * reference (--reference gpu), every value compared bitwise.  0, or -1
 * (out of memory, a failed call). */
static int gpu_shape(size_t M, size_t N, size_t K, double *tc, double *tg,
                     size_t *differ, unsigned long *on_dev)
{
    mxv_gpuref_ops g;
    double *e1 = malloc(M * N * sizeof *e1), *e2 = malloc(M * N * sizeof *e2);
    int rc = -1;
    if (mxv_gpuref_ops_make(&g, M, N, K) != 0) {
        free(e1);
        free(e2);
        return -1;
    }
    if (!e1 || !e2)
        goto out;
    const mx_operand A = g.A, B = g.B;
    const mx_gemm_spec s = g.spec;
    mx_gemm_out o1 = {e1, NULL, NULL, NULL, NULL, NULL};
    mx_gemm_out o2 = {e2, NULL, NULL, NULL, NULL, NULL};
    *tc = *tg = 1e30;
    unsigned long s0 = mx_gemm_sum_count();
    for (int rep = 0; rep < 2; rep++) {
        mxv_gpu_reference_disable();
        double t0 = now();
        if (mx_gemm(&s, &A, &B, &o1, NULL) != MX_OK)
            goto out;
        double t1 = now();
        if (mxv_reference_apply(MXV_REF_GPU, 1, NULL) != 0 ||
            mx_gemm(&s, &A, &B, &o2, NULL) != MX_OK)
            goto out;
        double t2 = now();
        *tc = t1 - t0 < *tc ? t1 - t0 : *tc;
        *tg = t2 - t1 < *tg ? t2 - t1 : *tg;
    }
    *on_dev = mx_gemm_sum_count() - s0;
    *differ = 0;
    for (size_t i = 0; i < M * N; i++)
        *differ += memcmp(&e1[i], &e2[i], sizeof e1[i]) != 0;
    rc = 0;
out:
    mxv_gpu_reference_disable();
    mxv_gpuref_ops_free(&g);
    free(e1);
    free(e2);
    return rc;
}

/* bench --reference gpu: the exact values of a layer's dense GEMM1 and
 * GEMM2 shapes (T topk routed rows at once) on the device and on the CPU. */
static int bench_gpu(const mx_moe_shape *sh, size_t T, int threads)
{
    char why[1200];
    if (!mxv_gpu_backend(why, sizeof why, NULL))
        return mxv_error(MXV_EXIT_INTERNAL, "--reference gpu: %s", why);
    size_t Tk = T * (size_t)sh->topk, H = sh->H, I = sh->inter;
    size_t shp[2][3] = {{Tk, 2 * I, H}, {Tk, H, I}};
    clock_id = CLOCK_MONOTONIC;
    mx_pool_set_threads(threads);
    /* the device's start-up (context, first allocation) is not the
     * reference's time: one small call first */
    double tc, tg;
    size_t differ;
    unsigned long dev;
    if (gpu_shape(32, 32, 64, &tc, &tg, &differ, &dev) != 0)
        return mxv_error(MXV_EXIT_INTERNAL, "bench: the warm-up call failed");
    printf("bench: exact values of the dense GEMM1 + GEMM2 shapes of a %s layer, "
           "%zu tokens (%zu routes), MXFP8 E4M3FN, random E8M0 scales 2^-8..2^7; "
           "%d threads; GPU library %s\n",
           sh->name, T, Tk, threads, mxv_gpu_backend_path());
    printf("%-28s %10s %10s %8s %s\n", "M x N x K (wall, best of 2)", "CPU s", "GPU s",
           "speed-up", "exact values that differ");
    double sc = 0, sg = 0;
    size_t bad = 0;
    for (int i = 0; i < 2; i++) {
        if (gpu_shape(shp[i][0], shp[i][1], shp[i][2], &tc, &tg, &differ, &dev) != 0)
            return mxv_error(MXV_EXIT_INTERNAL, "bench: out of memory or a failed call "
                                                "on %zu x %zu x %zu", shp[i][0], shp[i][1],
                             shp[i][2]);
        char lab[64];
        snprintf(lab, sizeof lab, "%zu x %zu x %zu", shp[i][0], shp[i][1], shp[i][2]);
        printf("%-28s %10.3f %10.3f %7.2fx %zu of %zu (%lu calls summed on the device)\n",
               lab, tc, tg, tc / tg, differ, shp[i][0] * shp[i][1], dev);
        sc += tc;
        sg += tg;
        bad += differ;
    }
    printf("%-28s %10.3f %10.3f %7.2fx %zu\n", "total", sc, sg, sc / sg, bad);
    unsigned long nd, nf;
    mx_gemm_slice_counts(&nd, &nf);
    printf("bench: GPU reference %s the CPU engine's bits; %lu slice calls fell back to "
           "the CPU\n", bad ? "DIFFERS from" : "gives", nf);
    return bad ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}

static const char *stage_names[MX_MOE_NT] = {
    "routing + activation quantization", "GEMM1", "SwiGLU + quantization", "GEMM2",
    "moe_sum + combine", "shared expert (beside the first four)"};

int mxv_cmd_bench(int argc, char **argv)
{
    mxv_layer_opts lo = {0};
    const char *help = NULL, *sample_s = NULL, *jobs_s = NULL, *ref = NULL,
               *gtok_s = NULL, *bg_s = NULL;
    const mxv_opt opts[] = {{"shape", 1, &lo.shape, 0},  {"tokens", 1, &lo.tokens, 0},
                            {"seed", 1, &lo.seed, 0},    {"family", 1, &lo.family, 0},
                            {"mpfr-sample", 1, &sample_s, 0},
                            {"jobs", 1, &jobs_s, 'j'},   {"reference", 1, &ref, 0},
                            {"gpu-tokens", 1, &gtok_s, 0},
                            {"block-gemm", 1, &bg_s, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "bench");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts("usage: mxverify bench [--shape m3-tp8] [--tokens 64] [--seed 1] "
             "[--family real] [--mpfr-sample 32] [--jobs N]\n"
             "                    [--reference cpu|gpu|auto] [--gpu-tokens T]\n"
             "                    [--block-gemm M,N,K|none]\n"
             "  --shape S          layer shape (default m3-tp8)\n"
             "  --tokens T         tokens (default 64)\n"
             "  --seed N           case seed (default 1)\n"
             "  --family F         input family (default real)\n"
             "  --mpfr-sample N    output elements timed with plain MPFR (default 32)\n"
             "  -j, --jobs N       the most threads the scaling table uses (default: the\n"
             "                     processors available)\n"
             "  --reference R      cpu or auto (default; bench has no GPU backend: cpu):\n"
             "                     the tables below; gpu: instead, the exact values of\n"
             "                     the layer's dense GEMM1 + GEMM2 shapes on the GPU and\n"
             "                     on the CPU (--jobs threads), compared bit for bit\n"
             "                     (exit 4 without a usable GPU)\n"
             "  --gpu-tokens T     tokens of those dense shapes (default 512)\n"
             "  --block-gemm M,N,K the GEMM the accumulation models are timed on, exact\n"
             "                     + model + bounds (default 256,512,6144; K a multiple\n"
             "                     of 32, each at most 65536, M N at most 2^26, (M + N) K\n"
             "                     at most 2^30); none: no such table\n"
             "  -h, --help         this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "bench takes no positional arguments");
    unsigned long long sample = 32;
    if (sample_s && (mxv_parse_uint(sample_s, 1u << 20, &sample) != 0 || !sample))
        return mxv_error(MXV_EXIT_USAGE, "--mpfr-sample '%s' is not a positive "
                                         "integer", sample_s);
    mxv_ref_mode refm;
    if ((rc = mxv_reference_parse(ref, &refm)) != 0)
        return rc;
    unsigned long long gtok = 512;
    if (gtok_s && (mxv_parse_uint(gtok_s, 1u << 16, &gtok) != 0 || !gtok))
        return mxv_error(MXV_EXIT_USAGE, "--gpu-tokens '%s' is not in 1..65536", gtok_s);
    if (gtok_s && refm != MXV_REF_GPU)
        return mxv_error(MXV_EXIT_USAGE, "--gpu-tokens needs --reference gpu");
    unsigned long long bg[3] = {256, 512, 6144};
    if (bg_s && strcmp(bg_s, "none") == 0) {
        bg[0] = 0;
    } else if (bg_s) {
        if (mxv_parse_uint_list(bg_s, 3, 1u << 16, bg) != 0 || !bg[0] || !bg[1] || !bg[2] ||
            bg[2] % 32)
            return mxv_error(MXV_EXIT_USAGE, "--block-gemm '%s' is not M,N,K (each in "
                                             "1..65536, K a multiple of 32) or none", bg_s);
        /* memory: 18 bytes per output, one per operand code */
        if (bg[0] * bg[1] > (1ull << 26) || (bg[0] + bg[1]) * bg[2] > (1ull << 30))
            return mxv_error(MXV_EXIT_USAGE, "--block-gemm '%s': at most 2^26 outputs "
                                             "(M N) and 2^30 operand codes ((M + N) K)", bg_s);
    }
    if (bg_s && refm == MXV_REF_GPU)
        return mxv_error(MXV_EXIT_USAGE, "--block-gemm is a table of the CPU run "
                                         "(not with --reference gpu)");
    if ((rc = mxv_jobs_apply(jobs_s)) != 0)
        return rc;
    int maxj = mx_pool_threads();
    mx_case_params p;
    mx_moe_config cfg;
    lo.policy = "w8a8-mxfp8";
    if ((rc = mxv_layer_opts_parse(&lo, &p, &cfg)) != 0)
        return rc;
    if (refm == MXV_REF_GPU)
        return bench_gpu(&p.shape, (size_t)gtok, maxj);

    /* everything below up to the scaling table runs on one thread */
    mx_pool_set_threads(1);
    double t0 = now();
    mx_case c;
    if (mx_case_generate(&p, &c) != MX_OK)
        return mxv_error(MXV_EXIT_INTERNAL, "bench: cannot generate the case");
    double t_gen = now() - t0;
    mx_moe_result r;
    long bad;
    t0 = now();
    if (mx_moe_run(&cfg, &c.weights, c.x, c.T, NULL, &r, &bad) != MX_OK) {
        mx_case_free(&c);
        return mxv_error(MXV_EXIT_INTERNAL, "bench: the reference failed");
    }
    double t_layer_first = now() - t0;
    calls cs = {NULL, 0, 0};
    build_calls(&c, &r, &cs);
    mx_gemm_stats st;
    size_t Tk = c.T * (size_t)c.shape.topk;
    double t_dense = time_dense(Tk, 2 * c.shape.inter, c.shape.H) +
                     time_dense(Tk, c.shape.H, c.shape.inter);
    double t_dgemm = time_dgemm(&cs);
    double t_engine = time_calls(&cs, 0, 0, 0, &st);
    double t_exact = time_calls(&cs, 0, 0, 1, &st);
    double t_model = time_calls(&cs, 1, 0, 1, &st);
    double t_bound = time_calls(&cs, 1, 1, 1, &st);
    /* the same calls on every thread asked for, wall time (the calls read
     * the activations of r: before r is freed) */
    mx_pool_set_threads(maxj);
    clock_id = CLOCK_MONOTONIC;
    double t_all = time_calls(&cs, 0, 0, 1, &st);
    clock_id = CLOCK_THREAD_CPUTIME_ID;
    mx_pool_set_threads(1);
    size_t checked, mism;
    double per_el = time_mpfr(&cs, (size_t)sample, &checked, &mism);
    double t_mpfr = per_el * (double)st.elements;
    mx_moe_result_free(&r);
    /* the layer warm, best of three as the dgemm it is measured against
     * (its stages from that run) */
    double t_layer = 1e30, stage[MX_MOE_NT];
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
        if (mx_moe_run(&cfg, &c.weights, c.x, c.T, NULL, &r, &bad) != MX_OK) {
            free_calls(&cs);
            mx_case_free(&c);
            return mxv_error(MXV_EXIT_INTERNAL, "bench: the reference failed");
        }
        double d = now() - t0;
        if (d < t_layer) {
            t_layer = d;
            memcpy(stage, r.seconds, sizeof stage);
        }
        mx_moe_result_free(&r);
    }

    printf("bench: %s, %zu tokens (%zu routes), %zu experts used, seed %llu; "
           "%d processors available, up to %d threads; BLAS on 1 thread per worker\n",
           c.shape.name, c.T, Tk, c.n_materialized, (unsigned long long)p.seed,
           mx_cpus_available(), maxj);
    printf("bench: routed GEMM1 + GEMM2: %zu calls, %zu output elements, %zu "
           "took the GMP path\n",
           cs.n, st.elements, st.slow_elements);
    printf("%-46s %10s %12s\n", "one thread (CPU time)", "seconds", "x dense dgemm");
    printf("%-46s %10.3f %12s\n", "case generation", t_gen, "");
    printf("%-46s %10.1f %11.0fx\n", "MPFR oracle (extrapolated)", t_mpfr,
           t_mpfr / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "FP64 dgemm, dense GEMM1 + GEMM2 shapes", t_dense, 1.0);
    printf("%-46s %10.3f %11.2fx\n", "FP64 dgemm, same per-expert shapes", t_dgemm,
           t_dgemm / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "exact, BLAS-slice engine", t_engine,
           t_engine / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "exact, fused FP8 kernel", t_exact, t_exact / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "fused exact + model (fp32-group)", t_model,
           t_model / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "fused exact + model + bounds", t_bound,
           t_bound / t_dense);
    printf("%-46s %10.3f %11.2fx\n", "whole layer (every stage, + shared expert)", t_layer,
           t_layer / t_dense);
    printf("whole layer by stage (wall time):\n");
    for (int i = 0; i < MX_MOE_NT; i++)
        printf("  %-44s %10.3f %11.2fx\n", stage_names[i], stage[i], stage[i] / t_dense);

    /* scaling: the whole layer on 1, 2, 4, ... threads, and on maxj; the
     * CPU time of the process in the same run tells waiting threads
     * (busy < threads) from slower ones (CPU seconds above one thread's) */
    clock_id = CLOCK_MONOTONIC;
    printf("%-46s %10s %12s %9s %6s\n", "whole layer (wall time), threads", "seconds",
           "speed-up", "CPU s", "busy");
    double t1 = 0;
    for (int th = 1;; th = th * 2 > maxj && th < maxj ? maxj : th * 2) {
        mx_pool_set_threads(th);
        double best = 1e30, cpu = 0;
        for (int rep = 0; rep < (th == 1 ? 2 : 3); rep++) {
            struct timespec c0, c1;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            t0 = now();
            mx_moe_run(&cfg, &c.weights, c.x, c.T, NULL, &r, &bad);
            double t = now() - t0;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            mx_moe_result_free(&r);
            if (t < best) {
                best = t;
                cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
            }
        }
        if (th == 1)
            t1 = best;
        char lab[32];
        snprintf(lab, sizeof lab, "%d", th);
        printf("  %-44s %10.3f %11.2fx %9.3f %6.1f\n", lab, best, t1 / best, cpu,
               cpu / best);
        if (th >= maxj)
            break;
    }
    mx_pool_set_threads(maxj);
    double wb = weight_bytes(&cs);
    double cp1 = copy_rate(1), cpn = copy_rate(maxj);
    printf("bench: weight bytes read by the fused exact kernel: %.2f GB/s on 1 thread, "
           "%.2f GB/s on %d (%.0f MB of FP8 weights and scales)\n",
           wb / t_exact * 1e-9, wb / t_all * 1e-9, maxj, wb * 1e-6);
    printf("bench: memcpy of 256 MiB: %.2f GB/s on 1 thread, %.2f GB/s on %d "
           "(bytes copied per second)\n", cp1 * 1e-9, cpn * 1e-9, maxj);
    double ceil_n = compute_ceiling(maxj);
    printf("bench: compute ceiling: the same register-only FP64 loop on each of %d "
           "threads ran %.2fx one thread's rate (the most CPU-bound work can gain)\n",
           maxj, ceil_n);
    if (bg[0] && bench_block_models((size_t)bg[0], (size_t)bg[1], (size_t)bg[2], maxj) != 0) {
        free_calls(&cs);
        mx_case_free(&c);
        return mxv_error(MXV_EXIT_INTERNAL, "bench: out of memory or a failed call on the "
                                            "%llu x %llu x %llu GEMM", bg[0], bg[1], bg[2]);
    }
    mx_pool_set_threads(maxj);
    printf("bench: MPFR oracle vs fast exact on %zu sampled elements: %zu "
           "mismatches (%.1f us per element in MPFR)\n",
           checked, mism, per_el * 1e6);
    printf("bench: first layer run (cold) %.3f s\n", t_layer_first);
    free_calls(&cs);
    mx_case_free(&c);
    return mism ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
