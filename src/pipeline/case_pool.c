/* case_pool.c -- suite cases on the worker pool (case_pool.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mxref/pool.h"
#include "case_pool.h"
#include "cli.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const mxv_case_def *const *cases;
    const mxv_runner *r;
    mxv_rows *rows;   /* one per case */
    int *rc;
    char (*err)[256];
    double *secs;
    int progress;
} ctx;

static void case_task(void *vctx, size_t i)
{
    ctx *x = vctx;
    x->rc[i] = 0;
    if (!x->cases[i])
        return;
    double t0 = now();
    x->rc[i] = mxv_run_case(x->cases[i], x->r, &x->rows[i], x->err[i], sizeof x->err[i]);
    x->secs[i] = now() - t0;
    if (x->progress && !x->rc[i])
        fprintf(stderr, "mxverify: %s done in %.1f s\n", x->cases[i]->name, x->secs[i]);
}

int mxv_run_cases(const mxv_case_def *const *cases, size_t n, const mxv_runner *r,
                  mxv_rows *rows, int progress, char *err, size_t len)
{
    ctx x = {cases, r, calloc(n ? n : 1, sizeof(mxv_rows)), calloc(n ? n : 1, sizeof(int)),
             calloc(n ? n : 1, sizeof *x.err), calloc(n ? n : 1, sizeof(double)), progress};
    int rc = 0;
    if (!x.rows || !x.rc || !x.err || !x.secs) {
        snprintf(err, len, "out of memory");
        rc = -1;
        goto out;
    }
    if (r->ops == mxk_cpu_ops()) {
        mx_parallel_for(n, case_task, &x);
    } else {
        for (size_t i = 0; i < n; i++)
            case_task(&x, i);
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (x.rc[i]) {
            snprintf(err, len, "%s", x.err[i]);
            rc = -1;
        }
    for (size_t i = 0; i < n && !rc; i++)
        for (size_t j = 0; j < x.rows[i].n; j++) {
            mxv_row *w = mxv_rows_push(rows);
            if (!w) {
                snprintf(err, len, "out of memory");
                rc = -1;
                break;
            }
            *w = x.rows[i].rows[j];
        }
out:
    for (size_t i = 0; x.rows && i < n; i++)
        mxv_rows_free(&x.rows[i]);
    free(x.rows);
    free(x.rc);
    free(x.err);
    free(x.secs);
    return rc;
}

int mxv_jobs_apply(const char *value)
{
    unsigned long long n = 0;
    if (value && mxv_parse_uint(value, 1024, &n) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--jobs '%s' is not in 0..1024 (0: the %d "
                                         "processors available)", value,
                         mx_cpus_available());
    mx_pool_set_threads((int)n);
    return 0;
}
