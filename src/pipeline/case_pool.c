/* case_pool.c -- suite cases on the worker pool (case_pool.h). */
#include <pthread.h>
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

/* A GPU backend drives one device, so its cases' kernels run one after
 * another; but most of a case's time is its reference on the host.  So the
 * cases stream through two stages: references are prepared ahead, in case
 * order, up to B at once, and each case's kernels run (and are judged) as
 * soon as its reference is ready and the case before it is done.  One
 * parallel loop of 1 + B lanes on the pool does both, so there are never
 * more busy threads than --jobs: a lane finishes the next case when its
 * reference is ready and no lane is finishing one, else prepares the next
 * case when fewer than B lanes are preparing and fewer than 2B cases are
 * alive (prepared or being prepared, not yet finished: each holds its
 * weights and reference), else, until a lane is done with something, runs
 * indices of the other lanes' nested loops (mx_pool_help_until).
 * B + 1 lanes with at most B preparing leave a lane free for the device
 * whenever a reference is ready.  A lane waits only while another lane
 * works, so the loop cannot stall, and a pool that runs the lanes one
 * after another in one thread (one thread, or no threads to be had)
 * prepares and finishes each case in turn.  One case's reference leaves
 * threads idle (its serial stretches, its uneven loops), so on larger
 * pools B > 1 lets several references fill them: B is 1 below 12
 * threads, else threads / 8, at most MXV_PIPE_BATCH_MAX.  Every case is
 * computed as by mxv_run_case and the rows are joined in case order
 * afterwards, so the report is that of the plain loop for every B. */
#define MXV_PIPE_BATCH_MAX 4

static size_t pipe_batch(void)
{
    int t = mx_pool_threads();
    size_t b = t < 12 ? 1 : (size_t)t / 8;
    return b > MXV_PIPE_BATCH_MAX ? MXV_PIPE_BATCH_MAX : b;
}

typedef struct {
    ctx *x;
    const size_t *order; /* the cases to run, in case order */
    size_t m;
    size_t B, alive_max; /* most preparing at once; most cases alive */
    pthread_mutex_t mu;
    /* under mu: the next position of order to prepare and to finish, the
     * lanes preparing, whether a lane is finishing, each position's
     * reference ready (prepared, or its preparation failed) */
    size_t prep_pos, fin_pos, preparing;
    int finishing;
    unsigned char *ready;
    mxv_case_ref **p;    /* prepared cases, by case index */
    double *t0;          /* when each case's preparation began */
    double *tr;          /* how long each case's preparation (the reference) took */
    mxv_case_times *tparts; /* where each reference's seconds went */
    /* seconds in mxv_case_finish (one case at a time), of them judging and
     * the kernels' device events; when the first reference was ready */
    double fin_s, judge_s, events_s, first_ready;
    double w0;
} stream_ctx;

static void prepare_one(stream_ctx *s, size_t i)
{
    ctx *x = s->x;
    s->t0[i] = now();
    s->p[i] = mxv_case_prepare(x->cases[i], x->r, x->err[i], sizeof x->err[i]);
    s->tr[i] = now() - s->t0[i];
    x->rc[i] = s->p[i] ? 0 : -1;
    if (s->p[i])
        mxv_case_ref_times(s->p[i], &s->tparts[i]);
}

static void finish_one(stream_ctx *s, size_t i)
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
    s->fin_s += t2 - t1; /* one lane finishes at a time */
    s->judge_s += js;
    s->events_s += ev;
    const mxv_case_times *tp = &s->tparts[i];
    if (x->progress && !x->rc[i])
        fprintf(stderr,
                "mxverify: %s done in %.1f s (reference %.1f s: generating %.1f s, layer "
                "%.1f s [GEMM1 %.1f s, GEMM2 %.1f s, shared expert %.1f s beside them, the "
                "rest %.1f s], weights %.1f s; then %.1f s: kernels %.1f s of which device "
                "events %.1f s, judging %.1f s)\n",
                x->cases[i]->name, x->secs[i], s->tr[i], tp->gen_s, tp->layer_s,
                tp->stage_s[MX_MOE_T_GEMM1], tp->stage_s[MX_MOE_T_GEMM2],
                tp->stage_s[MX_MOE_T_SHARED],
                tp->stage_s[MX_MOE_T_ROUTE] + tp->stage_s[MX_MOE_T_ACT] +
                    tp->stage_s[MX_MOE_T_COMBINE],
                tp->weights_s, t2 - t1, t2 - t1 - js, ev, js);
}

/* With s->mu held: the next case may be finished; may be prepared;
 * something for a lane to do (or nothing left at all). */
static int can_finish(const stream_ctx *s)
{
    return s->fin_pos < s->m && !s->finishing && s->ready[s->fin_pos];
}

static int can_prepare(const stream_ctx *s)
{
    return s->preparing < s->B && s->prep_pos < s->m &&
           s->prep_pos < s->fin_pos + s->alive_max;
}

static int lane_work(const stream_ctx *s)
{
    return s->fin_pos >= s->m || can_finish(s) || can_prepare(s);
}

/* mx_pool_help_until's test (under the pool's lock; s->mu is only ever
 * taken inside it, never held while calling into the pool) */
static int lane_ready(void *v)
{
    stream_ctx *s = v;
    pthread_mutex_lock(&s->mu);
    int r = lane_work(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void lane_task(void *v, size_t lane)
{
    (void)lane; /* the lanes are alike */
    stream_ctx *s = v;
    pthread_mutex_lock(&s->mu);
    while (s->fin_pos < s->m) {
        if (can_finish(s)) {
            size_t j = s->fin_pos;
            s->finishing = 1;
            pthread_mutex_unlock(&s->mu);
            finish_one(s, s->order[j]);
            pthread_mutex_lock(&s->mu);
            s->finishing = 0;
            s->fin_pos = j + 1;
        } else if (can_prepare(s)) {
            size_t j = s->prep_pos++;
            s->preparing++;
            pthread_mutex_unlock(&s->mu);
            prepare_one(s, s->order[j]);
            pthread_mutex_lock(&s->mu);
            s->preparing--;
            s->ready[j] = 1;
            if (j == 0)
                s->first_ready = now() - s->w0;
        } else {
            /* another lane is finishing or preparing: meanwhile this
             * thread helps with their nested loops (the references'
             * GEMMs, the judging) */
            pthread_mutex_unlock(&s->mu);
            mx_pool_help_until(lane_ready, s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        mx_pool_notify(); /* a lane may have something to do now */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

static int run_pipelined(ctx *x, size_t n)
{
    size_t nn = n ? n : 1;
    mxv_case_ref **p = calloc(nn, sizeof *p);
    double *t0 = calloc(nn, sizeof *t0), *tr = calloc(nn, sizeof *tr);
    mxv_case_times *tparts = calloc(nn, sizeof *tparts);
    size_t *order = calloc(nn, sizeof *order), m = 0;
    unsigned char *ready = calloc(nn, 1);
    if (!p || !t0 || !tr || !order || !tparts || !ready) {
        free(tparts);
        free(p);
        free(t0);
        free(tr);
        free(order);
        free(ready);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        x->rc[i] = 0;
        if (x->cases[i])
            order[m++] = i;
    }
    stream_ctx s;
    memset(&s, 0, sizeof s);
    s.x = x;
    s.order = order;
    s.m = m;
    s.B = pipe_batch();
    s.alive_max = 2 * s.B;
    s.ready = ready;
    s.p = p;
    s.t0 = t0;
    s.tr = tr;
    s.tparts = tparts;
    pthread_mutex_init(&s.mu, NULL);
    s.w0 = now();
    mx_parallel_for(m ? 1 + s.B : 0, lane_task, &s);
    double all = now() - s.w0;
    pthread_mutex_destroy(&s.mu);
    /* the device had no case to run while no lane was finishing one */
    if (x->progress && m)
        fprintf(stderr,
                "mxverify: the device's cases: %.1f s in their kernels and judging (device "
                "events %.1f s, judging %.1f s), %.1f s with no reference ready (%.1f s for "
                "the first), at most %zu references prepared at once, %.1f s in all\n",
                s.fin_s, s.events_s, s.judge_s, all - s.fin_s, s.first_ready, s.B, all);
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
    free(ready);
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
