/* pool.c -- the worker pool behind mx_parallel_for (mxref/pool.h).
 *
 * A loop in progress is a "job" on a shared stack (newest on top).  A
 * thread looking for work takes the next index of the newest job that has
 * indices left: nested loops, pushed by tasks of an outer loop, are served
 * first, so work that has started finishes before new outer work starts
 * (bounded memory, depth-first).  The thread that called mx_parallel_for
 * works on its own job until no index is left; then, until the indices
 * other threads hold are done, it takes indices of the jobs nested in its
 * own (pushed by its job's tasks, at any depth: work its job waits for
 * anyway), and sleeps when there are none.  Tasks always make progress, so
 * no loop waits on a loop that waits on it.  One mutex guards the stack; a task is coarse (an
 * expert's GEMM, a block of output columns, a suite case), so the lock is
 * taken rarely.
 *
 * Tracing (MXREF_POOL_TRACE=FILE, docs/scaling.md "Where the time goes"):
 * every loop then runs in its calling thread, in index order, as with one
 * thread, while mx_pool_threads() still reports the count asked for, so
 * the loops are split exactly as they would be on that many threads; each
 * loop, each task and each mark (mx_pool_trace_mark) is timed and written
 * to FILE at exit, for tools/pool_schedule.py to schedule on N workers.
 */
#define _GNU_SOURCE
#include "mxref/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int n) __attribute__((weak));
int openblas_get_parallel(void) __attribute__((weak));
int blas_thread_shutdown_(void) __attribute__((weak));

typedef struct job {
    mx_task_fn fn;
    void *ctx;
    size_t n, next, done;
    struct job *below;
    struct job *parent; /* the job whose task started this one, or NULL */
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* signalled when a job is pushed and when a job's last task is done */
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static job *top;             /* the newest job with indices left, or NULL  */
static int want = 1;         /* threads per loop, the caller included       */
static int started;          /* worker threads created so far               */

/* --- tracing: off unless MXREF_POOL_TRACE names a file --- */
typedef struct {
    char kind;               /* 'J' loop, 'T' task, 'M' mark               */
    size_t id, parent, pidx; /* loop id; the task that ran it (loop, index) */
    size_t n;                /* J: indices; T: the index                   */
    const char *label;       /* M: the mark                                */
    long fn;                 /* J: fn - mx_parallel_for (bytes)            */
    double t0, t1;
} trace_ev;

static int trace_on = -1; /* -1: not looked at yet */
static FILE *trace_file;
static trace_ev *trace_evs;
static size_t trace_n, trace_cap, trace_jobs, trace_dropped;
static _Thread_local size_t cur_job, cur_idx; /* the task running here */
static _Thread_local job *running; /* the job whose task runs here, or NULL */

/* CPU time of the thread: every traced loop runs in one thread, and CPU
 * time is immune to other load on the machine. */
static double trace_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void trace_write(void)
{
    fprintf(trace_file, "# mxref pool trace: threads %d\n", mx_pool_threads());
    for (size_t i = 0; i < trace_n; i++) {
        const trace_ev *e = &trace_evs[i];
        if (e->kind == 'M')
            fprintf(trace_file, "M %.9f %s\n", e->t0, e->label);
        else if (e->kind == 'J')
            fprintf(trace_file, "J %zu %zu %zu %zu %ld %.9f %.9f\n", e->id, e->parent,
                    e->pidx, e->n, e->fn, e->t0, e->t1);
        else
            fprintf(trace_file, "T %zu %zu %.9f %.9f\n", e->id, e->n, e->t0, e->t1);
    }
    if (trace_dropped)
        fprintf(trace_file, "# dropped %zu events (out of memory)\n", trace_dropped);
    fclose(trace_file);
    free(trace_evs);
}

/* 1 when tracing (the first call opens the file named by the variable). */
static int tracing(void)
{
    if (trace_on < 0) {
        const char *f = getenv("MXREF_POOL_TRACE");
        trace_on = 0;
        if (f && *f) {
            trace_file = fopen(f, "w");
            if (!trace_file)
                fprintf(stderr, "mxref: cannot write the pool trace '%s'\n", f);
            else if (atexit(trace_write) == 0)
                trace_on = 1;
        }
    }
    return trace_on;
}

/* Appends an event; returns its slot (or NULL when out of memory: that
 * event is dropped and counted at the trace's end). */
static trace_ev *trace_add(char kind)
{
    if (trace_n == trace_cap) {
        size_t cap = trace_cap * 2 + 1024;
        trace_ev *e = realloc(trace_evs, cap * sizeof *e);
        if (!e) {
            trace_dropped++;
            return NULL;
        }
        trace_evs = e;
        trace_cap = cap;
    }
    trace_ev *e = &trace_evs[trace_n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    return e;
}

void mx_pool_trace_mark(const char *label)
{
    if (!tracing())
        return;
    trace_ev *e = trace_add('M');
    if (e) {
        e->label = label;
        e->t0 = trace_now();
    }
}

/* The loop run in the calling thread, each task timed. */
static void traced_loop(size_t n, mx_task_fn fn, void *ctx)
{
    size_t id = ++trace_jobs, pj = cur_job, pi = cur_idx;
    trace_ev *j = trace_add('J');
    size_t jslot = j ? (size_t)(j - trace_evs) : 0;
    double t0 = trace_now();
    for (size_t i = 0; i < n; i++) {
        double a = trace_now();
        cur_job = id;
        cur_idx = i;
        fn(ctx, i);
        cur_job = pj;
        cur_idx = pi;
        trace_ev *t = trace_add('T');
        if (t) {
            t->id = id;
            t->n = i;
            t->t0 = a;
            t->t1 = trace_now();
        }
    }
    if (j) {
        j = &trace_evs[jslot]; /* the array may have moved */
        j->id = id;
        j->parent = pj;
        j->pidx = pi;
        j->n = n;
        j->fn = (long)((intptr_t)fn - (intptr_t)mx_parallel_for);
        j->t0 = t0;
        j->t1 = trace_now();
    }
}

int mx_cpus_available(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Removes jobs without indices left from the top of the stack; a job
 * lower down that is exhausted is skipped by take() and removed when it
 * surfaces.  Called with the lock held. */
static job *take(size_t *idx)
{
    for (job **p = &top; *p; ) {
        job *j = *p;
        if (j->next < j->n) {
            *idx = j->next++;
            return j;
        }
        *p = j->below; /* exhausted: unlink (its caller still waits on it) */
    }
    return NULL;
}

static void finish(job *j)
{
    if (++j->done == j->n)
        pthread_cond_broadcast(&work);
}

/* The next index of the newest job nested in `own` (its parent chain
 * reaches own) with indices left, or NULL.  Called with the lock held. */
static job *take_nested(const job *own, size_t *idx)
{
    for (job *j = top; j; j = j->below) {
        if (j == own || j->next >= j->n)
            continue;
        for (const job *p = j->parent; p; p = p->parent)
            if (p == own) {
                *idx = j->next++;
                return j;
            }
    }
    return NULL;
}

/* Runs task i of j on this thread (lock released meanwhile). */
static void run_task(job *j, size_t i)
{
    job *saved = running;
    running = j;
    pthread_mutex_unlock(&lock);
    j->fn(j->ctx, i);
    pthread_mutex_lock(&lock);
    running = saved;
    finish(j);
}

/* BLAS is called single-threaded everywhere (mxref/pool.h).  OpenBLAS's
 * thread count is one process-wide value in its pthreads build (where
 * openblas_get_parallel() == 1), but a per-thread setting in its OpenMP
 * build, so there every pool thread sets it. */
static int blas_per_thread(void)
{
    return openblas_set_num_threads && !(openblas_get_parallel && openblas_get_parallel() == 1);
}

/* The pthreads build starts a server thread for every processor but one
 * when it is loaded, and each spins on sched_yield for about 2^28 cycles
 * before it sleeps: a short run shared every processor with them.  With
 * the count at 1 no call of ours wakes them, so they are stopped, once.
 * A later call of openblas_set_num_threads would start them again: it is
 * made once, here, before they stop. */
static void blas_serial_once(void)
{
    if (!openblas_set_num_threads)
        return;
    openblas_set_num_threads(1);
    if (!blas_per_thread() && blas_thread_shutdown_)
        blas_thread_shutdown_();
}

static void blas_serial(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, blas_serial_once);
    if (blas_per_thread())
        openblas_set_num_threads(1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 0, 1, ...: works while id < want - 1 */
    blas_serial();
    pthread_mutex_lock(&lock);
    for (;;) {
        size_t i;
        job *j = id < want - 1 ? take(&i) : NULL;
        if (!j) {
            pthread_cond_wait(&work, &lock);
            continue;
        }
        run_task(j, i);
    }
    return NULL;
}

void mx_pool_set_threads(int n)
{
    if (n <= 0)
        n = mx_cpus_available();
    if (n > 1024)
        n = 1024;
    pthread_mutex_lock(&lock);
    want = n;
    pthread_mutex_unlock(&lock);
    blas_serial();
}

int mx_pool_threads(void)
{
    pthread_mutex_lock(&lock);
    int n = want;
    pthread_mutex_unlock(&lock);
    return n;
}

/* Creates workers up to want - 1 (the caller is the last thread).  Called
 * with the lock held; a failure leaves fewer workers, never an error. */
static void grow(void)
{
    while (started < want - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, (size_t)8 << 20);
        int rc = pthread_create(&t, &at, worker, (void *)(intptr_t)started);
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        started++;
    }
}

void mx_parallel_for(size_t n, mx_task_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (tracing()) {
        traced_loop(n, fn, ctx);
        return;
    }
    pthread_mutex_lock(&lock);
    grow();
    if (n == 1 || want == 1 || started == 0) {
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    job j = {fn, ctx, n, 0, 0, top, running};
    top = &j;
    pthread_cond_broadcast(&work);
    /* work on this job only: an outer caller must not pick up unrelated
     * outer work while its own loop is unfinished (that could stack
     * unbounded work on this thread) */
    while (j.next < j.n)
        run_task(&j, j.next++);
    /* unlink it if it is still on the stack (others skip exhausted jobs) */
    for (job **p = &top; *p; p = &(*p)->below)
        if (*p == &j) {
            *p = j.below;
            break;
        }
    /* until the tasks other threads hold are done: the loops they started */
    while (j.done < j.n) {
        size_t i;
        job *h = take_nested(&j, &i);
        if (h)
            run_task(h, i);
        else
            pthread_cond_wait(&work, &lock);
    }
    pthread_mutex_unlock(&lock);
}

void mx_pool_help_until(int (*ready)(void *arg), void *arg)
{
    pthread_mutex_lock(&lock);
    job *own = running;
    while (!ready(arg)) {
        size_t i;
        job *h = own ? take_nested(own, &i) : NULL;
        if (h)
            run_task(h, i);
        else
            pthread_cond_wait(&work, &lock);
    }
    pthread_mutex_unlock(&lock);
}

void mx_pool_notify(void)
{
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&work);
    pthread_mutex_unlock(&lock);
}

/* ---- row blocks ---------------------------------------------------------- */

typedef struct {
    size_t n_rows, rows;
    mx_rows_fn fn;
    void *ctx;
    mx_status *st;
} rows_job;

static void rows_task(void *v, size_t b)
{
    rows_job *r = v;
    size_t r0 = b * r->rows, n = r->n_rows - r0 < r->rows ? r->n_rows - r0 : r->rows;
    r->st[b] = r->fn(r->ctx, r0, n);
}

mx_status mx_parallel_rows(size_t n_rows, size_t rows_per_block, mx_rows_fn fn,
                           void *ctx)
{
    if (rows_per_block == 0)
        return MX_EINVAL;
    if (n_rows == 0)
        return MX_OK;
    size_t nb = n_rows / rows_per_block + (n_rows % rows_per_block != 0);
    rows_job r = {n_rows, rows_per_block, fn, ctx, malloc(nb * sizeof(mx_status))};
    if (!r.st)
        return MX_ENOMEM;
    mx_parallel_for(nb, rows_task, &r);
    mx_status res = MX_OK;
    for (size_t b = 0; b < nb && res == MX_OK; b++)
        res = r.st[b];
    free(r.st);
    return res;
}
