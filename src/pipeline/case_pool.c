/* case_pool.c -- suite cases on the worker pool (case_pool.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mxref/gemm.h"
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

/* One step of a GPU backend's pipeline: task 0 finishes the cases
 * fin[0..nfin) one after another (the kernels on the device, their
 * judging), task 1 + j prepares case prep[j] (its reference on the host). */
typedef struct {
    ctx *x;
    mxv_case_ref **p; /* prepared cases, by index */
    double *t0;       /* when each case's preparation began */
    double *tr;       /* how long each case's preparation (the reference) took */
    double (*tparts)[3]; /* of it: generating, the layer, the weights */
    const size_t *fin, *prep;
    size_t nfin, nprep;
    /* the thread that drives the device: seconds in mxv_case_finish, of
     * them judging and the kernels' device events; and waiting at the
     * end of a step for the references still being computed */
    double fin_s, judge_s, events_s, wait_s, step_fin_s;
} step_ctx;

static void prepare_one(step_ctx *s, size_t i)
{
    ctx *x = s->x;
    s->t0[i] = now();
    s->p[i] = mxv_case_prepare(x->cases[i], x->r, x->err[i], sizeof x->err[i]);
    s->tr[i] = now() - s->t0[i];
    x->rc[i] = s->p[i] ? 0 : -1;
    if (s->p[i])
        mxv_case_ref_times(s->p[i], &s->tparts[i][0], &s->tparts[i][1], &s->tparts[i][2]);
}

static void finish_one(step_ctx *s, size_t i)
{
    ctx *x = s->x;
    if (!s->p[i])
        return; /* its preparation failed: rc and err are set */
    double t1 = now(), js = 0;
    x->rc[i] = mxv_case_finish_timed(s->p[i], &x->rows[i], &js, x->err[i], sizeof x->err[i]);
    s->p[i] = NULL;
    double t2 = now(), ev = 0;
    x->secs[i] = t2 - s->t0[i];
    for (size_t j = 0; j < x->rows[i].n; j++)
        ev += x->rows[i].rows[j].ms / 1000.0;
    s->fin_s += t2 - t1;
    s->judge_s += js;
    s->events_s += ev;
    if (x->progress && !x->rc[i])
        fprintf(stderr,
                "mxverify: %s done in %.1f s (reference %.1f s: generating %.1f s, layer "
                "%.1f s, weights %.1f s; then %.1f s: kernels %.1f s of which device events "
                "%.1f s, judging %.1f s)\n",
                x->cases[i]->name, x->secs[i], s->tr[i], s->tparts[i][0], s->tparts[i][1],
                s->tparts[i][2], t2 - t1, t2 - t1 - js, ev, js);
}

static void step_task(void *v, size_t which)
{
    step_ctx *s = v;
    if (which > 0) {
        prepare_one(s, s->prep[which - 1]);
        return;
    }
    double t0 = now();
    for (size_t j = 0; j < s->nfin; j++)
        finish_one(s, s->fin[j]);
    s->step_fin_s = now() - t0;
}

/* A GPU backend drives one device, so its cases' kernels run one after
 * another; but most of a case's time is its reference on the host.  So
 * the cases run as a two-stage pipeline over batches of B cases: while
 * batch k's kernels run (and are judged), one case after another, batch
 * k+1's references are computed side by side, all as one parallel loop of
 * 1 + B tasks on the pool, which therefore never has more busy threads
 * than --jobs (the thread that drives the device is one of them).  One
 * case's reference leaves threads idle (its serial stretches, its uneven
 * loops), so on larger pools B > 1 lets two references fill them: B is 1
 * below 12 threads, else threads / 8, at most MXV_PIPE_BATCH_MAX (each
 * prepared case holds its weights and reference: 2B cases at most are
 * alive at once).  Every case is computed as by mxv_run_case and the rows
 * are joined in case order afterwards, so the report is that of the plain
 * loop for every B. */
#define MXV_PIPE_BATCH_MAX 4

static size_t pipe_batch(void)
{
    int t = mx_pool_threads();
    size_t b = t < 12 ? 1 : (size_t)t / 8;
    return b > MXV_PIPE_BATCH_MAX ? MXV_PIPE_BATCH_MAX : b;
}

/* How many cases batch k of m cases in batches of B holds (0 past the end). */
static size_t batch_len(size_t m, size_t B, size_t k)
{
    size_t first = k * B;
    return first >= m ? 0 : m - first < B ? m - first : B;
}

static int run_pipelined(ctx *x, size_t n)
{
    mxv_case_ref **p = calloc(n ? n : 1, sizeof *p);
    double *t0 = calloc(n ? n : 1, sizeof *t0), *tr = calloc(n ? n : 1, sizeof *tr);
    double (*tparts)[3] = calloc(n ? n : 1, sizeof *tparts);
    size_t *order = calloc(n ? n : 1, sizeof *order), m = 0;
    if (!p || !t0 || !tr || !order || !tparts) {
        free(tparts);
        free(p);
        free(t0);
        free(tr);
        free(order);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        x->rc[i] = 0;
        if (x->cases[i])
            order[m++] = i;
    }
    size_t B = pipe_batch();
    /* batch k: order[k B ..), batch_len(m, B, k) cases */
    step_ctx s = {x, p, t0, tr, tparts, order, order, 0, batch_len(m, B, 0), 0, 0, 0, 0, 0};
    double w0 = now();
    mx_parallel_for(1 + s.nprep, step_task, &s); /* the first batch's references */
    double fill = now() - w0;
    for (size_t k = 0; k * B < m; k++) {
        s.fin = order + k * B;
        s.nfin = batch_len(m, B, k);
        s.prep = order + (k + 1) * B;
        s.nprep = batch_len(m, B, k + 1);
        double ts = now();
        if (s.nprep == 0)
            step_task(&s, 0);
        else
            mx_parallel_for(1 + s.nprep, step_task, &s);
        s.wait_s += now() - ts - s.step_fin_s;
    }
    if (x->progress && m)
        fprintf(stderr,
                "mxverify: the device's thread: %.1f s in the cases' kernels and judging "
                "(device events %.1f s, judging %.1f s), %.1f s waiting for references "
                "(%.1f s for the first %zu), batches of %zu, %.1f s in all\n",
                s.fin_s, s.events_s, s.judge_s, fill + s.wait_s, fill, batch_len(m, B, 0), B,
                now() - w0);
    unsigned long wd = 0, wr = 0, wf = 0;
    mx_gemm_walk_counts(&wd, &wr, &wf);
    if (x->progress && m && mx_gemm_walk_provider(NULL))
        fprintf(stderr,
                "mxverify: block walks on the device: %lu calls, %lu refused (walked on the "
                "CPU), %lu flagged elements walked again on the CPU\n",
                wd, wr, wf);
    for (size_t i = 0; i < n; i++)
        mxv_case_ref_free(p[i]); /* none left; for safety */
    free(p);
    free(t0);
    free(tr);
    free(tparts);
    free(order);
    return 0;
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
    } else if (run_pipelined(&x, n) != 0) {
        snprintf(err, len, "out of memory");
        rc = -1;
        goto out;
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
