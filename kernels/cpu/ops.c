/* ops.c -- the CPU backend's mxk_ops table: validate (mxk_check.h), run the
 * emulation, time it with the monotonic clock. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cpu.h"
#include "mxk_check.h"

static _Thread_local char last_err[256];

static mxk_parallel_fn parallel; /* mxk_cpu_set_parallel's, or NULL */

void mxk_cpu_set_parallel(mxk_parallel_fn pf) { parallel = pf; }

void mxk_cpu_parallel_for(size_t n, mxk_task_fn fn, void *ctx)
{
    if (parallel) {
        parallel(n, fn, ctx);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fn(ctx, i);
}

typedef struct {
    int64_t N;
    size_t nbuf, nids;
    mxk_cols_fn cols;
    const void *ctx;
    unsigned char *done; /* by chunk: computed */
} by_columns;

static void chunk_range(const by_columns *b, size_t c, int64_t *n0, int64_t *n1)
{
    *n0 = (int64_t)c * MXK_CPU_COL_CHUNK;
    *n1 = *n0 + MXK_CPU_COL_CHUNK < b->N ? *n0 + MXK_CPU_COL_CHUNK : b->N;
}

static void chunk_task(void *v, size_t c)
{
    by_columns *b = v;
    float *buf = malloc(b->nbuf * sizeof *buf);
    int32_t *ids = malloc(b->nids * sizeof *ids);
    if (buf && ids) {
        int64_t n0, n1;
        chunk_range(b, c, &n0, &n1);
        b->cols(b->ctx, n0, n1, buf, ids);
        b->done[c] = 1;
    }
    free(buf);
    free(ids);
}

mxk_status mxk_cpu_by_columns(int64_t N, size_t nbuf, size_t nids, mxk_cols_fn cols,
                              const void *ctx)
{
    size_t nchunk = (size_t)((N + MXK_CPU_COL_CHUNK - 1) / MXK_CPU_COL_CHUNK);
    by_columns b = {N, nbuf, nids ? nids : 1, cols, ctx, calloc(nchunk ? nchunk : 1, 1)};
    /* the fallback's scratch, taken before anything is written */
    float *buf = malloc(nbuf * sizeof *buf);
    int32_t *ids = malloc(b.nids * sizeof *ids);
    if (!buf || !ids || !b.done) {
        free(buf);
        free(ids);
        free(b.done);
        return MXK_ENOMEM;
    }
    mxk_cpu_parallel_for(nchunk, chunk_task, &b);
    for (size_t c = 0; c < nchunk; c++)
        if (!b.done[c]) {
            int64_t n0, n1;
            chunk_range(&b, c, &n0, &n1);
            cols(ctx, n0, n1, buf, ids);
        }
    free(buf);
    free(ids);
    free(b.done);
    return MXK_OK;
}

static const char *cpu_last_error(void) { return last_err; }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Runs one checked call: st is the validation result. */
#define RUN(check_expr, call_expr, kname)                                      \
    do {                                                                       \
        last_err[0] = 0;                                                       \
        mxk_status st_ = (check_expr);                                         \
        if (st_ != MXK_OK)                                                     \
            return st_;                                                        \
        double t0_ = now_ms();                                                 \
        st_ = (call_expr);                                                     \
        if (ms)                                                                \
            *ms = now_ms() - t0_;                                              \
        if (st_ == MXK_ENOMEM)                                                 \
            snprintf(last_err, sizeof last_err, "%s: out of memory", kname);   \
        return st_;                                                            \
    } while (0)

static mxk_status cpu_quant(const mxk_quant_args *a, double *ms)
{
    RUN(mxk_check_quant(a, last_err, sizeof last_err), mxk_cpu_mx_quant(a),
        "mx_quant");
}

static mxk_status fnuz_checked(const mxk_fnuz_args *a)
{
    mxk_status st = mxk_cpu_fn_to_fnuz(a);
    if (st == MXK_ERANGE)
        snprintf(last_err, sizeof last_err,
                 "fn_to_fnuz: scales[%lld] = %u is >= 254 (refused)",
                 (long long)*a->bad_index, a->scales[*a->bad_index]);
    return st;
}

static mxk_status cpu_fnuz(const mxk_fnuz_args *a, double *ms)
{
    RUN(mxk_check_fnuz(a, last_err, sizeof last_err), fnuz_checked(a),
        "fn_to_fnuz");
}

static mxk_status check_align(const mxk_align_args *a)
{
    mxk_status st = mxk_check_align_scalars(a, last_err, sizeof last_err);
    return st ? st : mxk_check_align_data(a, last_err, sizeof last_err);
}

static mxk_status cpu_align(const mxk_align_args *a, double *ms)
{
    RUN(check_align(a), mxk_cpu_moe_align(a), "moe_align");
}

static mxk_status check_mxfp8(const mxk_mxfp8_gemm_args *a)
{
    mxk_status st = mxk_check_mxfp8_gemm(a, last_err, sizeof last_err);
    return st ? st
              : mxk_check_route_data("mxfp8_group_gemm", &a->r, a->experts,
                                     last_err, sizeof last_err);
}

static mxk_status cpu_mxfp8(const mxk_mxfp8_gemm_args *a, double *ms)
{
    RUN(check_mxfp8(a), mxk_cpu_mxfp8_group_gemm(a), "mxfp8_group_gemm");
}

static mxk_status check_bf16(const mxk_bf16_gemm_args *a)
{
    mxk_status st = mxk_check_bf16_gemm(a, last_err, sizeof last_err);
    return st ? st
              : mxk_check_route_data("bf16_group_gemm", &a->r, a->experts,
                                     last_err, sizeof last_err);
}

static mxk_status cpu_bf16(const mxk_bf16_gemm_args *a, double *ms)
{
    RUN(check_bf16(a), mxk_cpu_bf16_group_gemm(a), "bf16_group_gemm");
}

static mxk_status cpu_swiglu(const mxk_swiglu_args *a, double *ms)
{
    RUN(mxk_check_swiglu(a, last_err, sizeof last_err),
        mxk_cpu_swiglu_quant(a), "swiglu_quant");
}

static mxk_status cpu_sum(const mxk_sum_args *a, double *ms)
{
    RUN(mxk_check_sum(a, last_err, sizeof last_err), mxk_cpu_moe_sum(a),
        "moe_sum");
}

static const mxk_ops cpu_ops = {
    MXK_ABI_VERSION, "cpu", "C emulation", 1,
    cpu_quant, cpu_fnuz, cpu_align, cpu_mxfp8, cpu_bf16, cpu_swiglu, cpu_sum,
    cpu_last_error, "cpu", "fp32-seq", "fp32-seq",
};

const mxk_ops *mxk_cpu_ops(void) { return &cpu_ops; }
